"""The proxy registry and :func:`compute_proxies`.

A proxy is one function of a :class:`ProxyContext` returning a float, registered with
:func:`register_proxy`. Its ``needs`` name what it reads from the shared main pass (see
:mod:`gpsr.proxies.passes`); a proxy with no needs reads only the network's weights, or runs
passes of its own on ``ctx.copy()`` (synflow, zen, zico, meco, swap)::

    @register_proxy("grad_l1", needs={"grad"})
    def grad_l1(ctx: ProxyContext) -> float:
        return sum(float(g.abs().sum()) for g in ctx.main.grads if g is not None)

Failures are reported as NASLib reports them: a proxy whose pass meets NaN/inf, or whose
value is not finite, scores :data:`FAILURE` (-1e8). Bad input raises :class:`GpsrError`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
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


#: CPU intra-op threads while proxies run. Reductions split over threads (weight gradients
#: over the batch, batch-norm statistics) add in another order, so float32 values move with
#: the thread count; ZiCo's mean/std ratios amplify it (0.5% on an NB201 cell, up to 6%).
PROXY_THREADS = 1


def _cudnn_flag(name: str) -> tuple[Callable[[], object], Callable[[object], None]]:
    return (lambda: getattr(torch.backends.cudnn, name),
            lambda value: setattr(torch.backends.cudnn, name, value))


#: The settings :func:`reproducible` may change: name -> (getter, setter).
_SETTINGS: dict[str, tuple[Callable[[], object], Callable[[object], None]]] = {
    "threads": (torch.get_num_threads, lambda n: torch.set_num_threads(int(n))),
    "cudnn.deterministic": _cudnn_flag("deterministic"),
    "cudnn.benchmark": _cudnn_flag("benchmark"),
    "cudnn.allow_tf32": _cudnn_flag("allow_tf32"),
    "cuda.matmul.allow_tf32": (
        lambda: torch.backends.cuda.matmul.allow_tf32,
        lambda value: setattr(torch.backends.cuda.matmul, "allow_tf32", value),
    ),
}


def determinism_settings(device: torch.device) -> dict[str, object]:
    """What :func:`reproducible` sets for proxies on ``device``: on CPU a fixed thread count
    (:data:`PROXY_THREADS`); on CUDA deterministic cuDNN without autotuning, as NASLib's
    ``set_seed`` sets it, and TF32 off for convolutions and matmuls (TF32 rounds inputs to
    10 mantissa bits, which moves gradient-ratio proxies such as ZiCo)."""
    if device.type == "cpu":
        return {"threads": PROXY_THREADS}
    if device.type == "cuda":
        return {
            "cudnn.deterministic": True,
            "cudnn.benchmark": False,
            "cudnn.allow_tf32": False,
            "cuda.matmul.allow_tf32": False,
        }
    return {}


@contextlib.contextmanager
def reproducible(device: torch.device) -> Iterator[None]:
    """Apply :func:`determinism_settings` for ``device`` and restore the caller's afterwards."""
    before = {name: _SETTINGS[name][0]() for name in determinism_settings(device)}
    try:
        for name, value in determinism_settings(device).items():
            if before[name] != value:
                _SETTINGS[name][1](value)
        yield
    finally:
        for name, value in before.items():
            if _SETTINGS[name][0]() != value:
                _SETTINGS[name][1](value)


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
    deterministic: bool = True,
) -> dict[str, float]:
    """Zero-cost proxies of ``net`` on a real minibatch ``batch = (images, labels)``.

    ``images`` is a normalised float NCHW tensor and ``labels`` integer class indices (see
    :func:`gpsr.proxies.as_batch`). ``names`` defaults to every registered proxy. With
    ``fused=True`` proxies share one main forward and its backwards; ``fused=False`` gives
    each proxy passes of its own (the reference the fused path is tested against). ``device``
    defaults to CUDA when available. ``seed`` drives the only random draws (zen's Gaussian
    weights and inputs, swap's re-initialisations). ``deterministic=True`` runs the passes
    under :func:`reproducible` (one CPU thread; deterministic cuDNN without TF32 on CUDA), so
    values do not depend on the caller's thread count or cuDNN's algorithm choice; the
    caller's settings are restored afterwards. ``net`` itself is never modified. Returns
    ``{name: value}``, failed proxies as :data:`FAILURE`.
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
    with reproducible(dev) if deterministic else contextlib.nullcontext():
        if fused:
            shared = frozenset().union(*(s.needs for s in specs))
            ctx = ProxyContext(net, images, targets, dev, shared, seed)
            return {s.name: _evaluate(s, ctx) for s in specs}
        return {
            s.name: _evaluate(s, ProxyContext(net, images, targets, dev, s.needs, seed))
            for s in specs
        }
