"""Forward/backward passes shared by the proxies, and the helpers their own passes use.

The *main pass* is one forward of the real minibatch through a private copy of the network in
train mode (NASLib computes every measure on such a copy, with batch-norm using batch
statistics), followed by only the backward passes the requested proxies need:

* ``grad``: cross-entropy gradients of every Conv2d/Linear weight;
* ``layer_grad``: each Conv2d/Linear output and the cross-entropy gradient at it (fisher);
* ``hvp``: the Hessian-gradient product ``H g`` over those weights (grasp), by double backward
  through the graph the ``grad`` backward keeps;
* ``input_grad``: the gradient of the summed logits with respect to the input (jacov, epe_nas);
* ``relu_gram`` / ``relu_patterns``: binary ReLU codes, reduced on the fly (nwot; swap runs
  the pattern recorder on re-initialised copies of its own);
* ``stats``: torchstat's per-module FLOP and parameter counts (flops, params).

Everything is computed from the same forward, so the fused path costs one forward plus one
backward per distinct gradient kind, and a proxy computed alone runs the same code on a forward
of its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpsr.errors import GpsrError
from gpsr.proxies.stats import ModuleStats

#: What a proxy may ask of the main pass (``register_proxy(needs=...)``).
MAIN_PASS_NEEDS = frozenset(
    {"grad", "layer_grad", "hvp", "input_grad", "relu_gram", "relu_patterns", "stats"}
)
#: Needs whose results depend on the activations' values; a non-finite forward fails them.
VALUE_NEEDS = MAIN_PASS_NEEDS - {"stats"}
_GRAD_NEEDS = frozenset({"grad", "layer_grad", "hvp", "input_grad"})
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: torch.nn's activation modules with "ReLU" in their name (nwot's hook points).
_RELU_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU)


class NonFiniteForward(Exception):
    """A proxy's pass met NaN or inf: the proxy reports the failure value."""


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear modules, the layers NASLib's ``get_layer_metric_array`` scores."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class BoxAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` computed as a depthwise convolution with a box kernel divided by the
    window counts: the same averages, but oneDNN runs it, its backward and its double backward
    about 4x faster than the native pooling kernels (a quarter of an NB201 pass with pooling
    edges). Still an ``nn.AvgPool2d``, so FLOP counting and hooks see the module unchanged;
    ceil_mode and divisor_override fall back to the native kernel."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or self.ceil_mode or self.divisor_override is not None:
            return super().forward(x)
        kernel, stride, padding = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)
        box = torch.ones((x.shape[1], 1, *kernel), dtype=x.dtype, device=x.device)
        sums = F.conv2d(x, box, stride=stride, padding=padding, groups=x.shape[1])
        if self.count_include_pad or padding == (0, 0):
            return sums / (kernel[0] * kernel[1])
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        counts = F.conv2d(ones, box[:1], stride=stride, padding=padding)
        return sums / counts


def working_copy(
    net: nn.Module,
    device: torch.device,
    dtype: torch.dtype | None = None,
    batch_norm: bool = True,
    channels_last: bool = True,
) -> nn.Module:
    """A private train-mode copy of ``net`` on ``device``; ``batch_norm=False`` turns every
    BatchNorm into an identity (NASLib's ``get_prunable_copy(bn=False)``, used by synflow).
    Plain ``nn.AvgPool2d`` modules become :class:`BoxAvgPool2d` (same values, faster).
    Channels-last runs oneDNN's convolutions and batch-norm about 1.5x faster on CPU, but
    double backward (grasp) about 1.3x slower (see :data:`MAIN_PASS_CHANNELS_LAST`)."""
    clone = copy.deepcopy(net)
    if not batch_norm:
        for parent in list(clone.modules()):
            for name, child in parent._modules.items():
                if isinstance(child, _BATCH_NORMS):
                    parent._modules[name] = nn.Identity()
    for m in clone.modules():
        if type(m) is nn.AvgPool2d:
            m.__class__ = BoxAvgPool2d
    clone = clone.to(device=device, dtype=dtype) if dtype else clone.to(device=device)
    if channels_last:
        clone = clone.to(memory_format=torch.channels_last)
    for p in clone.parameters():
        p.requires_grad_(True)
    return clone.train()


def to_layout(images: Tensor, channels_last: bool = True) -> Tensor:
    """A fresh copy of a 4-D batch in the layout of :func:`working_copy`."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return images.detach().clone(memory_format=layout)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class ForwardFailed(GpsrError):
    """The network's forward raised; ``value_error`` marks torch's ValueError (a batch-norm
    given one value per channel), which meco's single-image pass reports as a failure."""

    def __init__(self, message: str, value_error: bool) -> None:
        super().__init__(message)
        self.value_error = value_error


def forward(net: nn.Module, x: Tensor) -> Tensor:
    """``net(x)``, with a failing forward turned into a one-line :class:`ForwardFailed`."""
    try:
        out = net(x)
    except (RuntimeError, IndexError, TypeError, ValueError) as exc:
        raise ForwardFailed(
            f"the network's forward failed on an input of shape {tuple(x.shape)}: {_one_line(exc)}",
            value_error=isinstance(exc, ValueError),
        ) from None
    if not isinstance(out, Tensor):
        raise GpsrError(f"the network returned {type(out).__name__}; proxies need a logits tensor")
    return out


def check_logits(logits: Tensor, targets: Tensor) -> None:
    if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
        raise GpsrError(
            f"the network returned shape {tuple(logits.shape)} for a batch of "
            f"{targets.shape[0]}; proxies need logits of shape (batch, classes)"
        )
    if int(targets.max()) >= logits.shape[1]:
        raise GpsrError(
            f"label {int(targets.max())} is out of range for a network with "
            f"{logits.shape[1]} outputs"
        )


def _packing_matrix(n: int, device: torch.device) -> Tensor:
    """(ceil(n/16), n) float32 matrix whose product with 0/1 codes gives 16-bit chunks."""
    rows = -(-n // 16)
    packing = torch.zeros((rows, n), dtype=torch.float32, device=device)
    sample = torch.arange(n, device=device)
    packing[sample // 16, sample] = 2.0 ** (sample % 16).to(torch.float32)
    return packing


def binary_pattern_keys(codes: Tensor) -> Tensor:
    """Pack each column of a 0/1 (samples, units) float32 matrix into int64 words: one row of
    ``ceil(samples / 64)`` words per unit, equal rows iff equal activation patterns."""
    # 16-bit chunks by one float32 matmul stay exact (< 2**24) and run on BLAS, not a bit loop.
    chunks = (_packing_matrix(codes.shape[0], codes.device) @ codes).to(torch.int64)
    words = chunks[0::4].clone()
    for offset in range(1, 4):
        part = chunks[offset::4]
        words[: part.shape[0]] |= part << (16 * offset)
    return words.T


def _layout_order(t: Tensor) -> list[int]:
    """Dimension order that views ``t`` contiguously, batch first (NCHW or channels-last)."""
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return [0, 2, 3, 1]
    return list(range(t.dim()))


class _ReluRecorder:
    """Forward hooks on the ReLU modules that reduce their binary codes as the forward runs.

    nwot (Mellor et al. 2021, v2; NASLib ``nwot.py``) hooks torch's ReLU-family modules
    (NASLib: "ReLU" in the class name, but not NASLib's own classes, which excludes containers
    such as ReLUConvBN whose input is their inner ReLU's) and codes the input as
    ``input > 0``; SWAP (Peng et al. 2024) hooks ``nn.ReLU`` modules with a 4-D input and
    codes ``sign(output)``, the same bits.
    """

    def __init__(self, net: nn.Module, gram: bool, patterns: bool) -> None:
        self.gram: Tensor | None = None
        self.keys: list[Tensor] = []
        self._want_gram, self._want_patterns = gram, patterns
        self._handles = [
            m.register_forward_hook(self._hook)
            for m in net.modules()
            if isinstance(m, _RELU_MODULES)
        ]

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        inp = inputs[0].detach()
        pattern = self._want_patterns and isinstance(module, nn.ReLU) and inp.dim() == 4
        if not (self._want_gram or pattern):
            return
        # One 0/1 float32 copy serves both reductions; flattening follows the memory layout
        # (channels-last included): both are sums over units, so the unit order is free.
        x = (inp > 0).to(torch.float32).permute(_layout_order(inp)).reshape(inp.shape[0], -1)
        if self._want_gram:
            # x x^T + (1-x)(1-x)^T = 2 x x^T - r_i - r_j + units: one matmul instead of two;
            # float32 sums of 0/1 are exact below 2**24 units per sample.
            agree = (x @ x.T).to(torch.float64)
            ones = agree.diagonal()
            k = 2.0 * agree - ones[:, None] - ones[None, :] + x.shape[1]
            self.gram = k if self.gram is None else self.gram + k
        if pattern:
            self.keys.append(binary_pattern_keys(x))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class _LayerOutputs:
    """Forward hooks keeping every Conv2d/Linear output (with its layer index) for fisher."""

    def __init__(self, layers: list[nn.Module]) -> None:
        self.outputs: list[tuple[int, Tensor, int]] = []
        self._handles = [
            layer.register_forward_hook(self._make_hook(i)) for i, layer in enumerate(layers)
        ]

    def _make_hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            self.outputs.append((index, output, output._version))

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@dataclass
class MainPass:
    """What the main pass produced; fields are None unless a proxy asked for them."""

    finite: bool
    logits: Tensor
    layers: list[nn.Module]
    grads: list[Tensor | None] | None = None
    layer_grads: list[tuple[int, Tensor, Tensor]] | None = None
    hvp: list[Tensor | None] | None = None
    input_grad: Tensor | None = None
    relu_gram: Tensor | None = None
    relu_keys: Tensor | None = None
    flops: int | None = None
    params: int | None = None


#: The main pass runs NCHW: grasp's Hessian product, most of a fused pass, is ~1.3x slower
#: channels-last, and one layout for every main pass keeps a proxy's fused and separate
#: values bitwise equal (float32 gradients of a deep net move by ~1e-3 between layouts).
MAIN_PASS_CHANNELS_LAST = False


def run_main_pass(
    net: nn.Module, images: Tensor, targets: Tensor, needs: frozenset[str]
) -> MainPass:
    """One forward of ``images`` through ``net`` (a working copy in the layout
    :data:`MAIN_PASS_CHANNELS_LAST`) and the asked-for backwards."""
    layers = weight_layers(net)
    relus = (
        _ReluRecorder(net, "relu_gram" in needs, "relu_patterns" in needs)
        if needs & {"relu_gram", "relu_patterns"}
        else None
    )
    outs = _LayerOutputs(layers) if "layer_grad" in needs else None
    stats = ModuleStats(net) if "stats" in needs else None
    x = to_layout(images, MAIN_PASS_CHANNELS_LAST).requires_grad_("input_grad" in needs)
    try:
        with torch.set_grad_enabled(bool(needs & _GRAD_NEEDS)):
            logits = forward(net, x)
    finally:
        for hooks in (relus, outs, stats):
            if hooks is not None:
                hooks.remove()
    check_logits(logits, targets)
    result = MainPass(
        finite=bool(torch.isfinite(logits).all()), logits=logits.detach(), layers=layers
    )
    if stats is not None:
        result.flops, result.params = stats.flops_per_sample(), stats.params()
    if not result.finite:
        return result
    if relus is not None:
        result.relu_gram = relus.gram
        if relus.keys:
            result.relu_keys = torch.cat(relus.keys)
    if needs & {"grad", "layer_grad", "hvp"}:
        _loss_backward(result, logits, targets, outs, want_hvp="hvp" in needs)
    if "input_grad" in needs:
        (grad,) = torch.autograd.grad(
            logits.sum(), x, retain_graph="hvp" in needs, allow_unused=True
        )
        result.input_grad = torch.zeros_like(x) if grad is None else grad.detach()
    if "hvp" in needs:
        result.hvp = _hessian_gradient(result.layers, result.grads)
        result.grads = [None if g is None else g.detach() for g in result.grads]
    return result


def _loss_backward(
    result: MainPass, logits: Tensor, targets: Tensor, outs: _LayerOutputs | None, want_hvp: bool
) -> None:
    weights = [layer.weight for layer in result.layers]
    acts = []
    if outs is not None:
        for index, act, version in outs.outputs:
            if act._version != version:
                raise GpsrError(
                    f"fisher: the output of layer {index} ({type(result.layers[index]).__name__})"
                    " is modified in place later in the forward; use a non-inplace op after it"
                )
            acts.append(act)
    inputs = weights + acts
    loss = F.cross_entropy(logits, targets)
    grads = list(
        torch.autograd.grad(
            loss, inputs, create_graph=want_hvp, retain_graph=True, allow_unused=True
        )
        if inputs
        else []
    )
    # grasp differentiates these again, so they keep their graph until the Hessian product.
    result.grads = (
        grads[: len(weights)]
        if want_hvp
        else [None if g is None else g.detach() for g in grads[: len(weights)]]
    )
    if outs is not None:
        result.layer_grads = [
            (index, act.detach(), grad.detach())
            for (index, act, _), grad in zip(outs.outputs, grads[len(weights) :], strict=True)
            if grad is not None
        ]


def _hessian_gradient(layers: list[nn.Module], grads: list[Tensor | None]) -> list[Tensor | None]:
    """``H g`` for the weights, g the loss gradient held constant (GraSP, Wang et al. 2020)."""
    terms = [(g.detach() * g).sum() for g in grads if g is not None and g.requires_grad]
    if not terms:
        return [None] * len(layers)
    z = torch.stack(terms).sum()
    hvp = torch.autograd.grad(z, [layer.weight for layer in layers], allow_unused=True)
    return [None if h is None else h.detach() for h in hvp]
