"""A synthesized expression as a live zero-cost metric: call it with a network and a batch.

::

    metric = gpsr.Metric.from_result("runs/paper/result.json", seed=0)
    net = gpsr.spaces.build_network("nb201", "|nor_conv_3x3~0|+|...|", seed=0)
    score = metric(net, gpsr.proxies.default_batch())   # = gpsr score --seed 0

Only the proxies the expression names are computed, in the fused passes of
:func:`gpsr.proxies.compute_proxies`; the expression is then evaluated with the
same protected semantics as during the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gpsr.errors import GpsrError
from gpsr.expressions import Expression, parse


class Metric:
    """A callable ZC metric over live networks, backed by one expression."""

    def __init__(
        self, expression: Expression | str, seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        """``seed`` drives the proxies' random draws and, in :meth:`score_archs`, the
        networks' initial weights, as ``gpsr score --seed`` does; ``device`` defaults to
        CUDA when present."""
        from gpsr.proxies import PROXIES

        self.expression = parse(expression) if isinstance(expression, str) else expression
        unknown = sorted(self.expression.proxies() - set(PROXIES))
        if unknown:
            raise GpsrError(
                f"metric {self.expression.infix()!r} uses {unknown[0]!r}, which gpsr cannot "
                f"compute on a live network (known: {', '.join(PROXIES)})"
            )
        self.proxies = sorted(self.expression.proxies())
        self.seed = seed
        self.device = device

    @classmethod
    def from_result(
        cls, path: str | Path, seed: int = 0, device: str | torch.device | None = None
    ) -> Metric:
        """The metric chosen by ``gpsr run`` (its ``result.json``)."""
        from gpsr.search import read_result

        return cls(read_result(Path(path))["expression"]["infix"], seed, device)

    @classmethod
    def load(
        cls, text: str, seed: int = 0, device: str | torch.device | None = None
    ) -> Metric:
        """A ``result.json`` path, an expression, or a single proxy name."""
        if text.endswith(".json"):
            return cls.from_result(text, seed, device)
        return cls(text, seed, device)

    def proxy_values(
        self, net: nn.Module, batch: tuple[Tensor, Tensor],
        device: str | torch.device | None = None, seed: int | None = None,
    ) -> dict[str, float]:
        """The proxies the expression names; ``device``/``seed`` override the metric's."""
        from gpsr.proxies import compute_proxies

        return compute_proxies(net, batch, self.proxies, device=device or self.device,
                               seed=self.seed if seed is None else seed)

    def score_values(self, values: dict[str, float]) -> float:
        """The metric from already computed proxy values."""
        return float(self.expression.evaluate({k: np.array([v]) for k, v in values.items()})[0])

    def __call__(
        self, net: nn.Module, batch: tuple[Tensor, Tensor],
        device: str | torch.device | None = None, seed: int | None = None,
    ) -> float:
        """The score of ``net`` (higher: predicted better); ``net`` is used as it is, so
        build it with ``gpsr.spaces.build_network(..., seed=...)`` to match ``gpsr score``."""
        return self.score_values(self.proxy_values(net, batch, device, seed))

    def score_archs(
        self, space: str, archs: Sequence[str], batch: tuple[Tensor, Tensor],
        num_classes: int = 10, device: str | torch.device | None = None,
        seed: int | None = None,
    ) -> list[float]:
        """Scores of architectures of a benchmark space, each built fresh with the seed
        (``seed``, else the metric's): what ``gpsr score`` prints."""
        from gpsr.spaces import build_network

        seed = self.seed if seed is None else seed
        return [self(build_network(space, arch, num_classes, seed=seed), batch, device, seed)
                for arch in archs]

    def __repr__(self) -> str:
        return f"Metric({self.expression.infix()!r})"
