"""A synthesized expression as a live zero-cost metric: call it with a network and a batch.

::

    metric = gpsr.Metric.from_result("runs/paper/result.json", seed=0)
    net = gpsr.spaces.build_network("nb201", "|nor_conv_3x3~0|+|...|", seed=0)
    score = metric(net, gpsr.proxies.default_batch())   # = gpsr score --seed 0

Only the proxies the expression names are computed, in the fused passes of
:func:`gpsr.proxies.compute_proxies`; the expression is then evaluated with the
same protected semantics as during the search.

A metric synthesized over calibrated terminals (``gpsr run --calibration quantile``)
maps each proxy through the same kind of map before evaluating. The map must come from
the network's own space, computed the same way as the network's proxies: ``reference``
names a problem of the result (its maps, fitted on its input rows, are stored in
``result.json``; right when that problem's proxies were computed by gpsr, as in the
shipped benchmark), or a proxy table of the space written by ``gpsr proxies-table``
(the maps are fitted on all of its rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gpsr.calibration import Calibration
from gpsr.errors import GpsrError
from gpsr.expressions import Expression, parse


class Metric:
    """A callable ZC metric over live networks, backed by one expression, with the terminal
    calibration it was synthesized with (``None``: raw proxies)."""

    def __init__(
        self, expression: Expression | str, seed: int = 0,
        device: str | torch.device | None = None, calibration: Calibration | None = None,
        reference_space: str | None = None,
    ) -> None:
        """``seed`` drives the proxies' random draws and, in :meth:`score_archs`, the
        networks' initial weights, as ``gpsr score --seed`` does; ``device`` defaults to
        CUDA when present. ``calibration`` maps raw proxies as the search saw them."""
        from gpsr.proxies import PROXIES

        self.expression = parse(expression) if isinstance(expression, str) else expression
        self.calibration = calibration
        #: The space whose reference sample the calibration was fitted on, where known.
        self.reference_space = reference_space
        unknown = sorted(self.expression.proxies() - set(PROXIES))
        if unknown:
            raise GpsrError(
                f"metric {self.expression.infix()!r} uses {unknown[0]!r}, which gpsr cannot "
                f"compute on a live network (known: {', '.join(PROXIES)})"
            )
        self.proxies = sorted(self.expression.proxies())
        self.seed = seed
        self.device = device
        if calibration is not None:
            missing = [p for p in self.proxies if p not in calibration.maps]
            if missing:
                raise GpsrError(f"the calibration reference has no {missing[0]!r} "
                                f"(calibrated: {', '.join(calibration.maps)})")

    @classmethod
    def from_result(
        cls, path: str | Path, reference: str | Path | None = None, seed: int = 0,
        device: str | torch.device | None = None,
    ) -> Metric:
        """The metric chosen by ``gpsr run`` (its ``result.json``); ``reference`` (a problem
        of the result, or a proxy table CSV) is needed exactly when it is calibrated."""
        from gpsr.search import read_result

        report = read_result(Path(path))
        expression = parse(report["expression"]["infix"])
        stored = report.get("calibration")
        if stored is None:
            if reference is not None:
                raise GpsrError(f"{path}: this metric uses raw proxies; a calibration "
                                "reference does not apply")
            return cls(expression, seed, device)
        if not isinstance(stored, dict) or not isinstance(stored.get("maps"), dict):
            raise GpsrError(f"{path}: malformed 'calibration' (expected method and maps)")
        problems = stored["maps"]
        if reference is None:
            raise GpsrError(
                f"{path}: this metric calibrates its proxies ({stored.get('method')}); give a "
                f"reference: a problem of the result ({', '.join(problems)}) or a proxy table "
                "of the network's space (gpsr proxies-table)")
        name = str(reference).upper()
        if name in problems:
            calibration = Calibration.from_dict(
                {"method": stored.get("method"), "maps": problems[name]}, f"{path}: {name}")
            return cls(expression, seed, device, calibration,
                       stored.get("spaces", {}).get(name))
        table = Path(reference)
        if not table.is_file():
            raise GpsrError(f"calibration reference {reference!r} is neither a problem of "
                            f"{path} ({', '.join(problems)}) nor a file")
        return cls(expression, seed, device,
                   fit_reference(stored.get("method"), table, expression))

    @classmethod
    def load(
        cls, text: str, reference: str | Path | None = None, seed: int = 0,
        device: str | torch.device | None = None,
    ) -> Metric:
        """A ``result.json`` path, an expression, or a single proxy name."""
        if text.endswith(".json"):
            return cls.from_result(text, reference, seed, device)
        if reference is not None:
            raise GpsrError("a calibration reference applies only to a calibrated result.json")
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
        """The metric from already computed (raw) proxy values."""
        columns = {k: np.array([v], dtype=np.float64) for k, v in values.items()}
        if self.calibration is not None:
            columns = {k: self.calibration.apply(v[:, None], [k])[:, 0] if k in self.proxies
                       else v for k, v in columns.items()}
        return float(self.expression.evaluate(columns)[0])

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
        calibrated = f", {self.calibration.method}" if self.calibration else ""
        return f"Metric({self.expression.infix()!r}{calibrated})"


def fit_reference(method: str, table: Path, expression: Expression) -> Calibration:
    """Maps of ``method`` for the proxies of ``expression``, fitted on every row of a proxy
    table (``arch, <proxies>``, as ``gpsr proxies-table`` writes; a benchmark CSV also works)."""
    from gpsr.data import _read_table

    _, _, proxies, values, _ = _read_table(table, with_accuracy=False)
    needed = sorted(expression.proxies())
    missing = [p for p in needed if p not in proxies]
    if missing:
        raise GpsrError(f"{table}: calibration reference lacks column {missing[0]!r}")
    columns = values[:, [proxies.index(p) for p in needed]]
    return Calibration.fit(method, columns, needed, str(table))
