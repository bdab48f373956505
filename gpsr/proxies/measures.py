"""The 16 built-in zero-cost proxies.

The 13 of NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022) follow NASLib's
implementation, branch ``zerocost`` (``naslib/predictors/utils/pruners/measures/*.py`` and
``naslib/predictors/zerocost.py``): each is computed on a train-mode copy of the network with
batch-norm on (synflow excepted), cross-entropy on one real minibatch of 64, summed over the
Conv2d and Linear layers. zico, meco and swap follow their papers and official code, cited in
each docstring with every departure.

Failure: NaN/inf anywhere a proxy depends on, or a failed decomposition, gives -1e8
(:data:`gpsr.proxies.FAILURE`), as NASLib's ``ZeroCost.query`` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpsr.errors import GpsrError
from gpsr.proxies.passes import (
    ForwardFailed,
    NonFiniteForward,
    _ReluRecorder,
    forward,
    to_layout,
    weight_layers,
)
from gpsr.proxies.registry import ProxyContext, register_proxy

#: NASLib's jacov and epe_nas stabiliser.
_K = 1e-5
#: Zen-NAS's mixup amplitude (Lin et al., ICCV 2021; NASLib ``zen.py``).
ZEN_MIXUP_GAMMA = 1e-2
#: ZiCo's number of gradient samples when it is given one batch: the batch is split in halves.
ZICO_SPLITS = 2
#: SWAP's batch and number of re-initialisations (the official ``correlation.py`` defaults
#: ``--input_samples 16 --repeats 32``).
SWAP_SAMPLES = 16
SWAP_REPEATS = 32


def _finite(t: Tensor) -> Tensor:
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteForward
    return t


def _corrcoef(rows: Tensor) -> Tensor:
    """numpy's ``corrcoef`` in float64: rows are variables, clipped to [-1, 1]."""
    return torch.corrcoef(rows.to(torch.float64)).clamp(-1.0, 1.0)


@register_proxy("epe_nas", needs={"input_grad"})
def epe_nas(ctx: ProxyContext) -> float:
    """EPE-NAS (Lopes et al., 2021; NASLib ``epe_nas.py``): per class c, the correlation
    matrix of the input Jacobians (gradient of the summed logits) of the batch's samples of c,
    ``s_c = sum(log(|corr| + 1e-5))``; the score is ``sum_c |s_c|`` for <= 100 classes, and
    for more ``sum_{c,c'} |s_c - s_c'| / #classes`` with each ``s_c`` divided by its class
    count (where NASLib skips classes seen once, as its ``len()`` of a scalar raises)."""
    jac = ctx.main.input_grad.reshape(ctx.images.shape[0], -1)
    n_classes = ctx.main.logits.shape[1]
    scores = []
    for c in torch.unique(ctx.targets):
        rows = jac[ctx.targets == c]
        if rows.shape[0] == 1:
            if n_classes > 100:
                continue
            # numpy's corrcoef of one variable is 1, or NaN when it is constant.
            corr = torch.ones(1, dtype=torch.float64, device=jac.device)
            if float(rows.std()) == 0.0:
                corr = corr * float("nan")
        else:
            corr = _corrcoef(rows)
        s = torch.log(corr.abs() + _K).sum()
        scores.append(s / rows.shape[0] if n_classes > 100 else s)
    if not scores:
        return float("nan")
    s = torch.stack(scores)
    if n_classes <= 100:
        return float(s.abs().sum())
    return float((s[:, None] - s[None, :]).abs().sum() / len(scores))


@register_proxy("fisher", needs={"layer_grad"})
def fisher(ctx: ProxyContext) -> float:
    """Fisher (Theis et al. 2018, via Abdelfattah et al. 2021; NASLib ``fisher.py``): per
    Conv2d/Linear output channel k, ``0.5 * mean_n (sum_spatial act * dL/dact)^2`` with act
    the layer's output (before batch-norm), broadcast over the channel's weights (times
    ``prod(weight.shape[1:])``) and summed."""
    main = ctx.main
    total = torch.zeros((), dtype=torch.float64, device=ctx.device)
    for index, act, grad in main.layer_grads:
        g_nk = act * grad
        if g_nk.dim() > 2:
            g_nk = g_nk.sum(dim=tuple(range(2, g_nk.dim())))
        per_channel = 0.5 * g_nk.pow(2).mean(dim=0)
        fan = math.prod(main.layers[index].weight.shape[1:])
        total = total + per_channel.abs().sum().to(torch.float64) * fan
    return float(total)


@register_proxy("flops", needs={"stats"})
def flops(ctx: ProxyContext) -> float:
    """MFLOPs per image with torchstat's conventions, as NASLib's tensorwatch ``ModelStats``
    counts them (:mod:`gpsr.proxies.stats`)."""
    return ctx.main.flops / 1e6


@register_proxy("grad_norm", needs={"grad"})
def grad_norm(ctx: ProxyContext) -> float:
    """grad_norm (Abdelfattah et al. 2021; NASLib ``grad_norm.py``): sum over Conv2d/Linear
    layers of the Frobenius norm of the cross-entropy gradient of the weight."""
    return float(sum(g.norm() for g in ctx.main.grads if g is not None))


@register_proxy("grasp", needs={"grad", "hvp"})
def grasp(ctx: ProxyContext) -> float:
    """GraSP (Wang et al. 2020; NASLib ``grasp.py``, which keeps the minus sign): sum of
    ``-W * (H g)`` over Conv2d/Linear weights, g the cross-entropy gradient and H the Hessian
    of the loss over those weights, with temperature 1 and one iteration. A network whose loss
    reaches no weight has no Hessian product (NASLib's ``z.backward()`` raises): failure."""
    main = ctx.main
    if all(h is None for h in main.hvp):
        return float("nan")
    return float(
        sum(
            -(layer.weight.detach() * h).sum()
            for layer, h in zip(main.layers, main.hvp, strict=True)
            if h is not None
        )
    )


@register_proxy("jacov", needs={"input_grad"})
def jacov(ctx: ProxyContext) -> float:
    """Jacobian covariance (Mellor et al. 2021 v1; NASLib ``jacov.py``, Ru's variant): the
    correlation matrix of the per-sample input Jacobians (gradient of the summed logits), with
    eigenvalues v, scores ``-sum(log(v + 1e-5) + 1 / (v + 1e-5))``. Eigenvalues come from
    ``eigvalsh`` (the matrix is symmetric) where NASLib calls ``eig``."""
    jac = ctx.main.input_grad.reshape(ctx.images.shape[0], -1)
    corr = _finite(_corrcoef(jac))
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + _K) + 1.0 / (v + _K)).sum())


@register_proxy("l2_norm")
def l2_norm(ctx: ProxyContext) -> float:
    """l2_norm (NASLib ``l2_norm.py``): sum over Conv2d/Linear layers of the Frobenius norm
    of the weight. Reads the weights only; no pass."""
    return float(sum(layer.weight.detach().norm() for layer in weight_layers(ctx.net)))


@register_proxy("nwot", needs={"relu_gram"})
def nwot(ctx: ProxyContext) -> float:
    """NASWOT (Mellor et al. 2021 v2; NASLib ``nwot.py``): ``log|det K|`` with
    ``K = sum over ReLU modules of c c^T + (1-c)(1-c)^T``, c the binary codes ``input > 0``
    of each sample at every torch ReLU-family module (ReLU, ReLU6, LeakyReLU, PReLU, RReLU:
    NASLib's "ReLU in the class name, not a NASLib class"; a functional relu is not seen).
    Departure: a forward with NaN scores -1e8 where NASLib would code NaN as 0 and report a
    finite value."""
    gram = ctx.main.relu_gram
    if gram is None:
        raise GpsrError("nwot: the network has no ReLU modules (functional relu is not seen)")
    return float(torch.linalg.slogdet(gram).logabsdet)


@register_proxy("params", needs={"stats"})
def params(ctx: ProxyContext) -> float:
    """Millions of parameters of the leaf modules the forward calls (torchstat's count, as in
    NASLib's ``ModelStats``); for a network that uses all its modules, all its parameters."""
    return ctx.main.params / 1e6


@register_proxy("plain", needs={"grad"})
def plain(ctx: ProxyContext) -> float:
    """plain (Abdelfattah et al. 2021; NASLib ``plain.py``): sum of ``W * dL/dW`` over
    Conv2d/Linear weights, signed."""
    main = ctx.main
    return float(
        sum(
            (layer.weight.detach() * g).sum()
            for layer, g in zip(main.layers, main.grads, strict=True)
            if g is not None
        )
    )


@register_proxy("snip", needs={"grad"})
def snip(ctx: ProxyContext) -> float:
    """SNIP (Lee et al. 2019; NASLib ``snip.py``): sum of ``|dL/dmask|`` for a unit mask on
    every Conv2d/Linear weight, which is ``|W * dL/dW|``."""
    main = ctx.main
    return float(
        sum(
            (layer.weight.detach() * g).abs().sum()
            for layer, g in zip(main.layers, main.grads, strict=True)
            if g is not None
        )
    )


@register_proxy("synflow")
def synflow(ctx: ProxyContext) -> float:
    """SynFlow (Tanaka et al. 2020; NASLib ``synflow.py`` and ``zerocost.py``): on a float64
    copy with batch-norm turned into identity and every parameter and buffer replaced by its
    absolute value, one all-ones input (batch 1) and ``R = sum(output)``; the score is
    ``sum |W * dR/dW|`` over Conv2d/Linear weights, then ``log`` as ``ZeroCost.query`` does
    (0 stays 0). Independent of the batch's values. Departure: an overflow or NaN scores
    -1e8 where NASLib would log the sentinel to -18.4."""
    net = ctx.copy(dtype=torch.float64, batch_norm=False)
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point():
                t.abs_()
    x = torch.ones((1, *ctx.images.shape[1:]), dtype=torch.float64, device=ctx.device)
    out = _finite(forward(net, x))
    layers = weight_layers(net)
    grads = torch.autograd.grad(out.sum(), [m.weight for m in layers], allow_unused=True)
    score = sum(
        float((m.weight.detach() * g).abs().sum())
        for m, g in zip(layers, grads, strict=True)
        if g is not None
    )
    return 0.0 if score == 0.0 else math.log(score)


def _gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's ``network_weight_gaussian_init``: N(0, 1) Conv2d/Linear weights, zero
    biases, unit/zero affine batch- and group-norm (running statistics untouched)."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()


class _PreGapFeatures:
    """The input of the last ``nn.AdaptiveAvgPool2d`` call: NASLib's
    ``forward_before_global_avg_pool`` hooks the same place for NB201/NB301/TNB101."""

    def __init__(self, net: nn.Module) -> None:
        self.features: Tensor | None = None
        self._handles = [
            m.register_forward_hook(self._hook)
            for m in net.modules()
            if isinstance(m, nn.AdaptiveAvgPool2d)
        ]
        if not self._handles:
            raise GpsrError("zen needs the network's global pooling as an nn.AdaptiveAvgPool2d")

    def _hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        self.features = inputs[0]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class _BatchVariance:
    """Batch variance of the inputs of batch-norms that keep no running statistics."""

    def __init__(self, net: nn.Module) -> None:
        self.variance: dict[nn.Module, Tensor] = {}
        self._handles = [
            m.register_forward_hook(self._hook)
            for m in net.modules()
            if isinstance(m, nn.BatchNorm2d) and m.running_var is None
        ]

    def _hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        self.variance[module] = inputs[0].var(dim=(0, 2, 3))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@register_proxy("zen")
def zen(ctx: ProxyContext) -> float:
    """Zen-score (Lin et al., ICCV 2021; NASLib ``zen.py``, repeat 1): on a copy with
    Gaussian weights (:func:`_gaussian_init`), Gaussian inputs x, e of the batch's shape and
    ``x' = x + 0.01 e``, ``log mean_n sum_chw |f(x) - f(x')|`` for f the features entering the
    global average pool, plus ``sum over BatchNorm2d of log sqrt(mean(running_var))`` after
    those two train-mode forwards. Weights and inputs are drawn from a CPU generator seeded
    with ``seed``, so CPU and CUDA agree. For a batch-norm without running statistics the
    unbiased batch variance of the second forward stands in (what running_var would hold
    with momentum 1)."""
    net = ctx.copy()
    generator = torch.Generator().manual_seed(ctx.seed)
    _gaussian_init(net, generator)
    shape = tuple(ctx.images.shape)
    x = torch.randn(shape, generator=generator)
    mixed = x + ZEN_MIXUP_GAMMA * torch.randn(shape, generator=generator)
    x, mixed = (to_layout(t.to(ctx.device, ctx.images.dtype)) for t in (x, mixed))
    pre_gap, batch_var = _PreGapFeatures(net), _BatchVariance(net)
    try:
        with torch.no_grad():
            forward(net, x)
            f1 = pre_gap.features
            forward(net, mixed)
            f2 = pre_gap.features
    finally:
        pre_gap.remove()
        batch_var.remove()
    if f1 is None or f2 is None:
        raise GpsrError("zen: the network's forward never called its nn.AdaptiveAvgPool2d")
    score = _finite(f1 - f2).abs().flatten(1).sum(dim=1).mean().to(torch.float64).log()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            var = m.running_var if m.running_var is not None else batch_var.variance.get(m)
            if var is not None:
                score = score + var.mean().to(torch.float64).sqrt().log()
    return float(score)


@register_proxy("zico")
def zico(ctx: ProxyContext) -> float:
    """ZiCo (Li et al., ICLR 2023, eq. 4; official ``ZeroShotProxy/compute_zico.py``): per
    Conv2d/Linear layer, ``log sum_theta mean|g_theta| / std(g_theta)`` over the weights whose
    gradient varies, summed over layers (a layer whose sum is 0 adds nothing); std is the
    population std. As in the official ``getzico``, the gradient samples are read from
    ``weight.grad`` after each batch's ``loss.backward()`` without zeroing it in between, so
    sample k is the running sum of the first k batches' gradients (the paper's equations
    reset them). Departure: the official script feeds two batches of the loader; gpsr's
    proxies share one batch, so ZiCo's ``ZICO_SPLITS`` (2) batches are the halves of it."""
    net = ctx.shared_copy()
    layers = weight_layers(net)
    weights = [m.weight for m in layers]
    samples: list[list[Tensor]] = []
    for images, targets in zip(
        ctx.images.chunk(ZICO_SPLITS), ctx.targets.chunk(ZICO_SPLITS), strict=True
    ):
        logits = _finite(forward(net, to_layout(images)))
        loss = F.cross_entropy(logits, targets)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        fresh = [
            g if g is not None else torch.zeros_like(w)
            for g, w in zip(grads, weights, strict=True)
        ]
        # float32 sums, as backward() accumulates them into .grad.
        if samples:
            fresh = [a + b for a, b in zip(samples[-1], fresh, strict=True)]
        samples.append(fresh)
    total = 0.0
    for i in range(len(weights)):
        g = _finite(torch.stack([s[i] for s in samples]).flatten(1).to(torch.float64))
        std = g.std(dim=0, unbiased=False)
        varying = std > 0
        ratio_sum = float((g.abs().mean(dim=0)[varying] / std[varying]).sum())
        if ratio_sum != 0.0:
            total += math.log(ratio_sum)
    return total


@register_proxy("meco")
def meco(ctx: ProxyContext) -> float:
    """MeCo (Jiang et al., NeurIPS 2023; official ``correlation/NAS_Bench_201.py``, measure
    ``meco``): one forward of a single image (the batch's first, as the official NB201 runs
    use batch size 1) through a train-mode copy with a hook on every module, the root
    included; for each output, the Pearson correlation matrix between the channels of the
    first sample (``output[0]`` reshaped to (channels, -1)), NaN/inf entries set to 0, and its
    minimum eigenvalue; the score sums them, skipping NaN/inf. Not the ``meco_opt`` variant
    (8 random channels rescaled by channels/8). Eigenvalues come from float64 ``eigvalsh``
    where the official code calls float32 ``eig``. A network that cannot run one image in
    train mode (batch-norm after global pooling raises ValueError) scores -1e8.

    The value depends on the module tree, not only on the function: every module call adds
    a term, so a wrapper module adds its output's term again. On NB201, gpsr's network
    (:mod:`gpsr.spaces.nb201`, after NAS-Bench-201's ``xautodl`` model) has fewer wrappers
    than the model MeCo's NB201 script scores (``foresight/models/nasbench2.py``): there
    ReLU-conv-BN edges are a module holding a Sequential (the BN output counts three times,
    here twice), the stem likewise, average pooling is wrapped (twice, here once), and each
    of the three stages is its own Sequential (here one Sequential holds all cells). Its
    cells' batch-norms are also non-affine without running statistics, with conv biases.
    gpsr keeps the benchmark's own model, which every other proxy scores too."""
    net = ctx.shared_copy()
    matrices: list[Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        if not isinstance(output, Tensor) or output.dim() < 2:
            return
        fea = output[0].detach().reshape(output.shape[1], -1)
        # One value per channel (logits, pooled features) correlates to all-NaN, zeroed to a
        # zero matrix whose minimum eigenvalue, 0, adds nothing: skip it.
        if fea.shape[1] > 1:
            corr = torch.corrcoef(fea.to(torch.float64))
            matrices.append(torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            _finite(forward(net, to_layout(ctx.images[:1])))
    except ForwardFailed as exc:
        if exc.value_error:
            return float("nan")
        raise
    finally:
        for handle in handles:
            handle.remove()
    if not matrices:
        return 0.0
    by_size: dict[int, list[Tensor]] = {}
    for corr in matrices:
        by_size.setdefault(corr.shape[0], []).append(corr)
    # One batched eigensolve per matrix size instead of one call per module.
    minima = torch.cat(
        [torch.linalg.eigvalsh(torch.stack(group))[:, 0] for group in by_size.values()]
    )
    return float(minima[torch.isfinite(minima)].sum())


def distinct_patterns(keys: Tensor, samples: int) -> int:
    """Distinct rows of :func:`~gpsr.proxies.passes.binary_pattern_keys`' output for
    ``samples`` samples."""
    if samples <= 16:
        # At most 2**16 patterns: marking them is linear, a sort (unique) is not.
        seen = torch.zeros(1 << samples, dtype=torch.bool, device=keys.device)
        seen[keys[:, 0]] = True
        return int(seen.sum())
    if keys.shape[1] == 1:
        return int(torch.unique(keys[:, 0]).numel())
    return int(torch.unique(keys, dim=0).shape[0])


@register_proxy("swap")
def swap(ctx: ProxyContext) -> float:
    """SWAP (Peng et al., ICLR 2024; official ``src/metrics/swap.py`` and the protocol of its
    ``correlation.py``): the number of distinct sample-wise activation patterns, i.e. of
    distinct columns of the (samples, neurons) matrix of ``sign(output)`` of every ``nn.ReLU``
    with a 4-D input, on the first ``SWAP_SAMPLES`` (16) images of the batch, averaged over
    ``SWAP_REPEATS`` (32) re-initialisations of a train-mode copy with N(0, 1) Conv2d/Linear
    weights, zero biases and unit/zero batch-norm affines (:func:`_gaussian_init`, SWAP's
    ``network_weight_gaussian_init``), drawn from a CPU generator seeded with ``seed``. With
    few samples the count measures how many patterns the units can tell apart; with 64 nearly
    every unit has a pattern of its own and the count approaches the number of ReLU units.
    This is the unregularised SWAP; the paper's regularised variant multiplies it by a
    parameter-count factor whose mu and sigma are chosen per search space: see
    :func:`regularised_swap`."""
    net = ctx.copy()
    generator = torch.Generator().manual_seed(ctx.seed)
    images = to_layout(ctx.images[:SWAP_SAMPLES])
    total = 0
    for _ in range(SWAP_REPEATS):
        _gaussian_init(net, generator)
        recorder = _ReluRecorder(net, gram=False, patterns=True)
        try:
            with torch.no_grad():
                _finite(forward(net, images))
        finally:
            recorder.remove()
        if not recorder.keys:
            raise GpsrError("swap: the network has no nn.ReLU module with a 4-D input")
        total += distinct_patterns(torch.cat(recorder.keys), images.shape[0])
    return total / SWAP_REPEATS


def regularised_swap(swap_value: float, params_m: float, mu: float, sigma: float) -> float:
    """Regularised SWAP (Peng et al. 2024, eq. 6 as coded in ``cal_regular_factor``):
    ``swap * exp(-(P - mu)^2 / sigma)`` with P the parameter count in thousands
    (``params_m * 1e3``) and mu, sigma the search space's hyper-parameters, in thousands."""
    return swap_value * math.exp(-((params_m * 1e3 - mu) ** 2) / sigma)
