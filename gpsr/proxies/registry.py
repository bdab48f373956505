"""The proxy registry and :func:`compute_proxies`.

A proxy is one function of a :class:`ProxyContext` returning a float, registered with
:func:`register_proxy`. Its ``needs`` name what it reads from the shared main pass (see
:mod:`gpsr.proxies.passes`); a proxy with no needs reads only the network's weights, or runs
passes of its own on ``ctx.copy()`` (synflow, zen, zico, meco)::

    @register_proxy("grad_l1", needs={"grad"})
    def grad_l1(ctx: ProxyContext) -> float:
        return sum(float(g.abs().sum()) for g in ctx.main.grads if g is not None)

Failures are reported as NASLib reports them: a proxy whose pass meets NaN/inf, or whose
value is not finite, scores :data:`FAILURE` (-1e8). Bad input raises :class:`GpsrError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gpsr.data import FAILURE_SENTINEL
from gpsr.errors import GpsrError
from gpsr.kernels.evaluate import resolve_device
from gpsr.proxies.inputs import check_batch
from gpsr.proxies.passes import (
    MAIN_PASS_CHANNELS_LAST,
    MAIN_PASS_NEEDS,
    VALUE_NEEDS,
    MainPass,
    NonFiniteForward,
    run_main_pass,
    working_copy,
)

#: The value a failed proxy reports (NASLib's ``ZeroCost.query`` writes NaN/inf as -1e8).
FAILURE = FAILURE_SENTINEL

ProxyFn = Callable[["ProxyContext"], float]


@dataclass(frozen=True)
class ProxySpec:
    name: str
    fn: ProxyFn
    needs: frozenset[str]


_REGISTRY: dict[str, ProxySpec] = {}
#: Names of the registered proxies, in registration order.
PROXIES: list[str] = []


def register_proxy(name: str, needs: Iterable[str] = ()) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn(ctx) -> float`` as proxy ``name``; ``needs`` is a subset of
    ``{"grad", "layer_grad", "hvp", "input_grad", "relu_gram", "relu_patterns", "stats"}``."""
    wanted = frozenset(needs)
    unknown = wanted - MAIN_PASS_NEEDS
    if unknown:
        raise GpsrError(
            f"proxy {name}: unknown needs {sorted(unknown)}; known: {sorted(MAIN_PASS_NEEDS)}"
        )

    def decorate(fn: ProxyFn) -> ProxyFn:
        if name in _REGISTRY:
            raise GpsrError(f"proxy {name} is already registered")
        _REGISTRY[name] = ProxySpec(name, fn, wanted)
        PROXIES.append(name)
        return fn

    return decorate


class ProxyContext:
    """The network, the batch on the device, and the main pass, run once on first use."""

    def __init__(
        self,
        net: nn.Module,
        images: Tensor,
        targets: Tensor,
        device: torch.device,
        needs: frozenset[str],
        seed: int,
    ) -> None:
        #: The caller's network; proxies never modify it (they work on copies).
        self.net = net
        self.images = images
        self.targets = targets
        self.device = device
        self.seed = seed
        self._needs = needs
        self._main: MainPass | None = None
        self._shared: nn.Module | None = None

    def copy(
        self, dtype: torch.dtype | None = None, batch_norm: bool = True, channels_last: bool = True
    ) -> nn.Module:
        """A fresh train-mode copy of the caller's network on the device, for passes that
        change its weights (synflow, zen)."""
        return working_copy(self.net, self.device, dtype, batch_norm, channels_last)

    def shared_copy(self, channels_last: bool = True) -> nn.Module:
        """The context's one working copy, in the asked-for layout, for passes that leave the
        weights alone (the main pass, zico, meco): they change only batch-norm running
        statistics, which train-mode forwards never read. Saves a deep copy per pass."""
        if self._shared is None:
            self._shared = self.copy(channels_last=channels_last)
        else:
            layout = torch.channels_last if channels_last else torch.contiguous_format
            self._shared.to(memory_format=layout)
        return self._shared

    @property
    def main(self) -> MainPass:
        if self._main is None:
            net = self.shared_copy(channels_last=MAIN_PASS_CHANNELS_LAST)
            self._main = run_main_pass(net, self.images, self.targets, self._needs)
        return self._main


def _evaluate(spec: ProxySpec, ctx: ProxyContext) -> float:
    if spec.needs & VALUE_NEEDS and not ctx.main.finite:
        return FAILURE
    try:
        value = float(spec.fn(ctx))
    except (NonFiniteForward, torch.linalg.LinAlgError, np.linalg.LinAlgError):
        return FAILURE
    return value if math.isfinite(value) else FAILURE


def compute_proxies(
    net: nn.Module,
    batch: tuple[Tensor, Tensor],
    names: list[str] | None = None,
    device: str | torch.device | None = None,
    fused: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Zero-cost proxies of ``net`` on a real minibatch ``batch = (images, labels)``.

    ``images`` is a normalised float NCHW tensor and ``labels`` integer class indices (see
    :func:`gpsr.proxies.as_batch`). ``names`` defaults to every registered proxy. With
    ``fused=True`` proxies share one main forward and its backwards; ``fused=False`` gives
    each proxy passes of its own (the reference the fused path is tested against). ``device``
    defaults to CUDA when available. ``seed`` drives the only random draws (zen's Gaussian
    weights and inputs). ``net`` itself is never modified. Returns ``{name: value}``, failed
    proxies as :data:`FAILURE`.
    """
    if not isinstance(net, nn.Module):
        raise GpsrError(f"net must be a torch.nn.Module, not {type(net).__name__}")
    wanted = list(PROXIES if names is None else names)
    unknown = [n for n in wanted if n not in _REGISTRY]
    if unknown:
        raise GpsrError(f"unknown proxies {unknown}; known: {', '.join(PROXIES)}")
    images, targets = check_batch(batch)
    dev = resolve_device(device)
    # The batch follows the network's float type, so a float64 batch can score a float32 net.
    dtype = next((p.dtype for p in net.parameters() if p.is_floating_point()), torch.float32)
    images, targets = images.to(dev, dtype), targets.to(dev)
    specs = [_REGISTRY[n] for n in wanted]
    if fused:
        shared = frozenset().union(*(s.needs for s in specs))
        ctx = ProxyContext(net, images, targets, dev, shared, seed)
        return {s.name: _evaluate(s, ctx) for s in specs}
    return {
        s.name: _evaluate(s, ProxyContext(net, images, targets, dev, s.needs, seed)) for s in specs
    }
