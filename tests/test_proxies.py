"""Live zero-cost proxies (gpsr.proxies) on tiny hand-made networks.

Values are checked against independent computations (numpy, by hand, or closed forms from the
definitions) and against invariants the definitions imply.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from gpsr.data import shared_dir
from gpsr.errors import GpsrError
from gpsr.proxies import (
    FAILURE,
    PROXIES,
    as_batch,
    batch_from_npz,
    compute_proxies,
    default_batch,
    register_proxy,
    regularised_swap,
)
from gpsr.proxies import registry as proxy_registry
from gpsr.proxies.measures import SWAP_REPEATS, SWAP_SAMPLES, distinct_patterns
from gpsr.proxies.passes import BoxAvgPool2d, binary_pattern_keys

ALL16 = [
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacov",
    "l2_norm",
    "nwot",
    "params",
    "plain",
    "snip",
    "synflow",
    "zen",
    "zico",
    "meco",
    "swap",
]
CPU = "cpu"


def tiny_net(seed: int = 0) -> nn.Module:
    """conv(3->4, 3x3, bias)-BN-ReLU-GAP-Linear(4->10): 170 parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


def bn_only_net(seed: int = 0) -> nn.Module:
    """One bias-free conv straight into batch-norm: the loss is invariant to scaling it."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 10, 3, padding=1, bias=False),
        nn.BatchNorm2d(10),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def random_batch(n: int = 16, seed: int = 0, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn((n, 3, size, size), generator=g)
    labels = torch.arange(n) % 10
    return images, labels[torch.randperm(n, generator=g)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and on a loaded machine each OpenMP region
    waits for a descheduled thread (tens of ms per batch-norm call)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference() -> dict[str, float]:
    return compute_proxies(tiny_net(), random_batch(), device=CPU)


# --- registry and API ------------------------------------------------------------------


def test_the_16_proxies_are_registered_under_their_names() -> None:
    assert sorted(PROXIES) == sorted(ALL16)


def test_every_proxy_is_finite_on_a_tiny_net(reference: dict[str, float]) -> None:
    assert list(reference) == PROXIES
    bad = {k: v for k, v in reference.items() if not math.isfinite(v) or v == FAILURE}
    assert not bad


def test_fused_path_equals_separate_path(reference: dict[str, float]) -> None:
    # Bitwise: every pass runs the same computation whether or not it is shared.
    assert compute_proxies(tiny_net(), random_batch(), device=CPU, fused=False) == reference


def test_a_subset_and_its_order_are_kept(reference: dict[str, float]) -> None:
    got = compute_proxies(tiny_net(), random_batch(), ["swap", "grasp"], device=CPU)
    assert list(got) == ["swap", "grasp"]
    assert got["grasp"] == pytest.approx(reference["grasp"], rel=1e-6)


def test_the_callers_network_is_left_untouched() -> None:
    net = tiny_net().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    compute_proxies(net, random_batch(), device=CPU)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_values_do_not_depend_on_the_thread_count() -> None:
    from gpsr.spaces import build_network

    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    torch.manual_seed(0)
    net = build_network("nb201", arch, C=8, N=1)
    batch = random_batch(n=16, size=16)
    values = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        values[threads] = compute_proxies(net, batch, device=CPU)
        assert torch.get_num_threads() == threads  # the caller's setting is restored
    torch.set_num_threads(1)
    assert values[1] == values[2]


def test_reproducible_sets_and_restores_the_determinism_flags() -> None:
    cuda = proxy_registry.determinism_settings(torch.device("cuda"))
    assert cuda == {
        "cudnn.deterministic": True,
        "cudnn.benchmark": False,
        "cudnn.allow_tf32": False,
        "cuda.matmul.allow_tf32": False,
    }
    assert proxy_registry.determinism_settings(torch.device("cpu")) == {
        "threads": proxy_registry.PROXY_THREADS
    }
    # The flags are plain settings, so the CUDA branch runs (and restores) on a CPU build.
    flags = ["cudnn.deterministic", "cudnn.benchmark", "cudnn.allow_tf32", "cuda.matmul.allow_tf32"]
    getters = {name: proxy_registry._SETTINGS[name][0] for name in flags}
    before = {name: get() for name, get in getters.items()}
    proxy_registry._SETTINGS["cudnn.benchmark"][1](True)
    try:
        with proxy_registry.reproducible(torch.device("cuda")):
            assert {name: get() for name, get in getters.items()} == cuda
        assert getters["cudnn.benchmark"]() is True
    finally:
        proxy_registry._SETTINGS["cudnn.benchmark"][1](before["cudnn.benchmark"])
    torch.set_num_threads(2)
    with proxy_registry.reproducible(torch.device("cpu")):
        assert torch.get_num_threads() == proxy_registry.PROXY_THREADS
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)


def test_a_user_proxy_registers_with_one_decorator() -> None:
    @register_proxy("grad_l1_test", needs={"grad"})
    def grad_l1(ctx: proxy_registry.ProxyContext) -> float:
        return sum(float(g.abs().sum()) for g in ctx.main.grads if g is not None)

    try:
        got = compute_proxies(tiny_net(), random_batch(), ["grad_l1_test", "grad_norm"], device=CPU)
        assert got["grad_l1_test"] >= got["grad_norm"] > 0
        with pytest.raises(GpsrError, match="already registered"):
            register_proxy("grad_l1_test")(grad_l1)
    finally:
        del proxy_registry._REGISTRY["grad_l1_test"]
        proxy_registry.PROXIES.remove("grad_l1_test")
    with pytest.raises(GpsrError, match="unknown needs"):
        register_proxy("x", needs={"telepathy"})


# --- hand-worked values -----------------------------------------------------------------


def test_params_flops_and_l2_norm_by_hand(reference: dict[str, float]) -> None:
    # conv 3*4*9 + 4 bias, BN 2*4, linear 4*10 + 10.
    assert reference["params"] == pytest.approx(170 / 1e6, abs=0)
    # On 8x8 (torchstat rules): conv 9*3*4*64 + bias 4*64; BN 2*4*64; ReLU 4*64;
    # adaptive pool 4 planes * (8+1)*(8+1); linear 4*10 (bias not counted).
    assert reference["flops"] == pytest.approx((6912 + 256 + 512 + 256 + 324 + 40) / 1e6, abs=0)
    net = tiny_net()
    w1 = net[0].weight.detach().numpy().ravel()
    w2 = net[5].weight.detach().numpy().ravel()
    expected = math.sqrt(float(np.sum(w1.astype(np.float64) ** 2))) + math.sqrt(
        float(np.sum(w2.astype(np.float64) ** 2))
    )
    assert reference["l2_norm"] == pytest.approx(expected, rel=1e-6)


class TwiceAndUnused(nn.Module):
    """A conv called twice and a linear never called: torchstat counts the conv's last call
    once and leaves the unused layer out of the parameter count."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        self.unused = nn.Linear(100, 100)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(self.conv(x))).flatten(1))


def test_flops_and_params_follow_torchstat_call_rules() -> None:
    got = compute_proxies(TwiceAndUnused(), random_batch(), ["flops", "params"], device=CPU)
    assert got["params"] == pytest.approx((9 + 30) / 1e6, abs=0)
    assert got["flops"] == pytest.approx((3 * 3 * 64 + 3 * 81 + 30) / 1e6, abs=0)


def test_synflow_has_its_closed_form_on_a_homogeneous_net() -> None:
    # Bias-free ReLU net without batch-norm after it is removed: R is homogeneous of degree 1
    # in each layer's weights, so sum |W dR/dW| = R per layer and synflow = log(2 R).
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1, bias=False),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 10, bias=False),
    )
    w1 = net[0].weight.detach().double().abs()
    w2 = net[5].weight.detach().double().abs()
    ones = torch.ones((1, 3, 8, 8), dtype=torch.float64)
    hidden = torch.nn.functional.conv2d(ones, w1, padding=1).relu().mean(dim=(2, 3))
    r = float((hidden @ w2.T).sum())
    got = compute_proxies(net, random_batch(), ["synflow"], device=CPU)["synflow"]
    assert got == pytest.approx(math.log(2 * r), rel=1e-9)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    scaled = compute_proxies(net, random_batch(), ["synflow"], device=CPU)["synflow"]
    assert scaled == pytest.approx(got + math.log(3.0), rel=1e-9)


def test_grasp_matches_an_independent_hessian_vector_product() -> None:
    net, (x, y) = tiny_net(), random_batch()
    layers = [net[0], net[5]]
    shapes = [m.weight.shape for m in layers]
    flat = torch.cat([m.weight.detach().ravel() for m in layers])

    def loss_of(w: torch.Tensor) -> torch.Tensor:
        w1, w2 = w[: shapes[0].numel()].view(shapes[0]), w[shapes[0].numel() :].view(shapes[1])
        h = torch.nn.functional.conv2d(x, w1, net[0].bias.detach(), padding=1)
        h = torch.nn.functional.batch_norm(
            h, None, None, net[1].weight.detach(), net[1].bias.detach(), training=True
        )
        h = h.relu().mean(dim=(2, 3))
        return torch.nn.functional.cross_entropy(h @ w2.T + net[5].bias.detach(), y)

    g = torch.autograd.functional.jacobian(loss_of, flat)
    _, hg = torch.autograd.functional.hvp(loss_of, flat, g)
    expected = -float((flat * hg).sum())
    got = compute_proxies(net, (x, y), ["grasp"], device=CPU)["grasp"]
    assert got == pytest.approx(expected, rel=1e-4)


def _relu_codes(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    codes = []
    handle = net[2].register_forward_hook(
        lambda m, i, o: codes.append((i[0] > 0).reshape(len(x), -1).numpy())
    )
    with torch.no_grad():
        net.train()(x)
    handle.remove()
    return codes[0].astype(np.float64)


def test_nwot_matches_numpy() -> None:
    net, (x, y) = tiny_net(), random_batch()
    c = _relu_codes(tiny_net(), x)
    k = c @ c.T + (1 - c) @ (1 - c).T
    got = compute_proxies(net, (x, y), ["nwot"], device=CPU)
    assert got["nwot"] == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


def test_swap_follows_the_authors_protocol() -> None:
    # 20 images: swap reads the first 16, on SWAP_REPEATS Gaussian re-initialisations.
    (x, y), net = random_batch(n=20), tiny_net()
    g = torch.Generator().manual_seed(3)
    probe = tiny_net().train()
    counts = []
    for _ in range(SWAP_REPEATS):
        with torch.no_grad():
            for m in probe.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                    m.bias.zero_()
        c = _relu_codes(probe, x[:SWAP_SAMPLES])
        counts.append(len(np.unique(c.T, axis=0)))
    got = compute_proxies(net, (x, y), ["swap"], device=CPU, seed=3)["swap"]
    assert got == pytest.approx(np.mean(counts), rel=1e-12)
    x[SWAP_SAMPLES:] = 0.0
    assert compute_proxies(net, (x, y), ["swap"], device=CPU, seed=3)["swap"] == got
    assert compute_proxies(net, (x, y), ["swap"], device=CPU, seed=4)["swap"] != got


def test_distinct_patterns_marks_and_sorts_alike() -> None:
    g = torch.Generator().manual_seed(2)
    for samples in (5, 16, 17):
        codes = (torch.rand((samples, 300), generator=g) > 0.3).float()
        codes[:, 150:] = codes[:, :150]
        keys = binary_pattern_keys(codes)
        assert distinct_patterns(keys, samples) == len(np.unique(codes.numpy().T, axis=0))


class ReLUConvBN(nn.Sequential):
    """A container whose name contains "ReLU": nwot must hook its inner ReLU only."""

    def __init__(self) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))


def test_nwot_counts_relu_modules_not_containers_named_relu() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(ReLUConvBN(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    x, y = random_batch()
    c = (x > 0).reshape(len(x), -1).numpy().astype(np.float64)
    k = c @ c.T + (1 - c) @ (1 - c).T
    got = compute_proxies(net, (x, y), ["nwot"], device=CPU)["nwot"]
    assert got == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


@pytest.mark.parametrize(
    "pool",
    [
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.AvgPool2d(3, stride=1, padding=1),
        nn.AvgPool2d(2, stride=2),
        nn.AvgPool2d((3, 2), stride=(2, 1), padding=(1, 0), count_include_pad=False),
    ],
)
def test_box_average_pool_equals_native_pooling(pool: nn.AvgPool2d) -> None:
    x = torch.randn((4, 5, 9, 8), generator=torch.Generator().manual_seed(0))
    box = BoxAvgPool2d(
        pool.kernel_size, pool.stride, pool.padding, count_include_pad=pool.count_include_pad
    )
    assert torch.allclose(box(x), pool(x), rtol=1e-6, atol=1e-6)


def test_pattern_keys_beyond_64_samples() -> None:
    g = torch.Generator().manual_seed(1)
    codes = (torch.rand((70, 400), generator=g) > 0.5).float()
    codes[:, 200:] = codes[:, :200]  # every pattern twice
    keys = binary_pattern_keys(codes)
    assert keys.shape == (400, 2)
    assert torch.unique(keys, dim=0).shape[0] == len(np.unique(codes.numpy().T, axis=0))


def test_jacov_matches_numpy() -> None:
    net, (x, y) = tiny_net(), random_batch()
    xx = x.clone().requires_grad_(True)
    tiny_net().train()(xx).sum().backward()
    jac = xx.grad.reshape(len(x), -1).numpy().astype(np.float64)
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    got = compute_proxies(net, (x, y), ["jacov"], device=CPU)["jacov"]
    assert got == pytest.approx(expected, rel=1e-6)


def test_meco_matches_numpy_on_the_first_image() -> None:
    net, (x, y) = tiny_net(), random_batch()
    outputs = []
    probe = tiny_net().train()
    handles = [
        m.register_forward_hook(lambda m, i, o: outputs.append(o.detach())) for m in probe.modules()
    ]
    probe(x[:1])
    for h in handles:
        h.remove()
    expected = 0.0
    for o in outputs:
        fea = o[0].reshape(o.shape[1], -1).numpy().astype(np.float64)
        if fea.shape[1] > 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.nan_to_num(np.corrcoef(fea), nan=0.0, posinf=0.0, neginf=0.0)
            expected += np.linalg.eigvalsh(corr).min()
    got = compute_proxies(net, (x, y), ["meco"], device=CPU)["meco"]
    assert got == pytest.approx(expected, rel=1e-6)


def _meco_term(output: torch.Tensor) -> float:
    fea = output[0].detach().reshape(output.shape[1], -1).numpy().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(fea), nan=0.0, posinf=0.0, neginf=0.0)
    return float(np.linalg.eigvalsh(corr).min())


def test_meco_counts_a_wrapper_modules_output_again() -> None:
    # MeCo hooks every module call, so the module tree is part of its definition.
    (x, y), net = random_batch(), tiny_net()
    wrapped = tiny_net()
    wrapped[1] = nn.Sequential(wrapped[1])
    plain = compute_proxies(net, (x, y), ["meco"], device=CPU)["meco"]
    got = compute_proxies(wrapped, (x, y), ["meco"], device=CPU)["meco"]
    with torch.no_grad():
        bn_out = tiny_net().train()[:2](x[:1])
    assert got - plain == pytest.approx(_meco_term(bn_out), rel=1e-6, abs=1e-9)
    assert abs(_meco_term(bn_out)) > 1e-3


def test_zico_accumulates_gradients_over_two_halves() -> None:
    net, (x, y) = tiny_net(), random_batch()
    probe = tiny_net().train()
    samples = []
    for xs, ys in zip(x.chunk(2), y.chunk(2), strict=True):
        torch.nn.functional.cross_entropy(probe(xs), ys).backward()
        # The authors' script reads .grad after each backward without zeroing it.
        samples.append([probe[0].weight.grad.clone(), probe[5].weight.grad.clone()])
    expected = 0.0
    for layer in range(2):
        g = np.stack([s[layer].numpy().ravel() for s in samples]).astype(np.float64)
        std, mean_abs = g.std(axis=0), np.abs(g).mean(axis=0)
        expected += math.log(np.sum(mean_abs[std > 0] / std[std > 0]))
    got = compute_proxies(net, (x, y), ["zico"], device=CPU)["zico"]
    # mean|g|/std amplifies float32 rounding (gpsr's pass runs channels-last).
    assert got == pytest.approx(expected, rel=1e-4)


def test_regularised_swap_factor() -> None:
    assert regularised_swap(100.0, params_m=0.5, mu=500.0, sigma=10.0) == 100.0
    assert regularised_swap(100.0, params_m=0.6, mu=500.0, sigma=1e4) == pytest.approx(
        100.0 * math.exp(-1.0)
    )


# --- invariants from the definitions ----------------------------------------------------

BATCH_FREE = ["params", "flops", "synflow", "l2_norm", "zen"]
LABEL_FREE = ["nwot", "swap", "jacov", "meco", "params", "flops", "l2_norm", "synflow", "zen"]
PERMUTATION_FREE = [n for n in ALL16 if n not in ("meco", "zico")]


def test_data_free_proxies_ignore_the_batch_values(reference: dict[str, float]) -> None:
    other = compute_proxies(tiny_net(), random_batch(seed=7), BATCH_FREE, device=CPU)
    for name in BATCH_FREE:
        assert other[name] == pytest.approx(reference[name], rel=1e-6), name


def test_label_free_proxies_ignore_labels(reference: dict[str, float]) -> None:
    x, y = random_batch()
    got = compute_proxies(tiny_net(), (x, (y + 3) % 10), LABEL_FREE, device=CPU)
    for name in LABEL_FREE:
        assert got[name] == pytest.approx(reference[name], rel=1e-6), name


def test_sample_order_does_not_matter_except_for_meco_and_zico(
    reference: dict[str, float],
) -> None:
    x, y = random_batch()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(5))
    got = compute_proxies(tiny_net(), (x[perm], y[perm]), PERMUTATION_FREE, device=CPU)
    for name in PERMUTATION_FREE:
        assert got[name] == pytest.approx(reference[name], rel=1e-4), name


def test_zen_ignores_the_weights_but_not_the_seed(reference: dict[str, float]) -> None:
    assert compute_proxies(tiny_net(seed=9), random_batch(), ["zen"], device=CPU)["zen"] == (
        pytest.approx(reference["zen"], rel=1e-6)
    )
    other_seed = compute_proxies(tiny_net(), random_batch(), ["zen"], device=CPU, seed=1)
    assert other_seed["zen"] != pytest.approx(reference["zen"], rel=1e-6)


def test_scaling_a_conv_before_batch_norm() -> None:
    # The forward is unchanged (up to BN's eps), the conv's gradient scales by 1/alpha:
    # grad_norm scales by 1/alpha; snip, fisher and the activation/input-gradient proxies
    # are unchanged; plain = W . dL/dW is 0 for a scale-invariant loss (Euler).
    names = ["grad_norm", "snip", "fisher", "jacov", "nwot", "swap", "epe_nas", "plain"]
    batch = random_batch()
    base = compute_proxies(bn_only_net(), batch, names, device=CPU)
    net = bn_only_net()
    with torch.no_grad():
        net[0].weight.mul_(4.0)
    scaled = compute_proxies(net, batch, names, device=CPU)
    assert scaled["grad_norm"] == pytest.approx(base["grad_norm"] / 4.0, rel=1e-4)
    for name in names[1:-1]:
        assert scaled[name] == pytest.approx(base[name], rel=1e-4), name
    for got in (base, scaled):
        assert abs(got["plain"]) < 1e-5 * got["snip"]


# --- failures and bad input -------------------------------------------------------------


class NaNLayer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


def test_a_network_that_yields_nan_fails_every_value_proxy() -> None:
    net = tiny_net()
    net.insert(3, NaNLayer())
    for fused in (True, False):
        got = compute_proxies(net, random_batch(), device=CPU, fused=fused)
        static = {"params", "flops", "l2_norm"}
        assert all(got[n] == FAILURE for n in ALL16 if n not in static), got
        assert all(math.isfinite(got[n]) and got[n] != FAILURE for n in static)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ((torch.zeros(4, 3, 8), torch.zeros(4, dtype=torch.long)), "NCHW"),
        (
            (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)),
            "normalised floats",
        ),
        ((torch.zeros(4, 8, 8, 3), torch.zeros(4, dtype=torch.long)), "NHWC"),
        ((torch.zeros(4, 3, 8, 8), torch.zeros(4)), "integer"),
        ((torch.zeros(4, 3, 8, 8), torch.zeros(5, dtype=torch.long)), "4 images but 5"),
        ((torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long)), "at least 2"),
        ((torch.full((4, 3, 8, 8), float("nan")), torch.zeros(4, dtype=torch.long)), "NaN"),
        ((torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)), "forward failed"),
        ((torch.zeros(4, 3, 8, 8), torch.full((4,), 10)), "out of range"),
        (torch.zeros(4, 3, 8, 8), "pair"),
        ((np.zeros((4, 3, 8, 8)), np.zeros(4)), "torch tensors"),
    ],
)
def test_bad_batches_raise_one_line_errors(batch: object, message: str) -> None:
    with pytest.raises(GpsrError, match=message) as info:
        compute_proxies(tiny_net(), batch, ["grad_norm", "nwot"], device=CPU)
    assert "\n" not in str(info.value)


def test_unknown_proxy_and_device_raise() -> None:
    with pytest.raises(GpsrError, match="unknown proxies"):
        compute_proxies(tiny_net(), random_batch(), ["synflowz"], device=CPU)
    with pytest.raises(GpsrError, match="bad device"):
        compute_proxies(tiny_net(), random_batch(), ["params"], device="gpu:x")


# --- inputs -------------------------------------------------------------------------------


def test_as_batch_normalises_uint8_arrays_and_reads_datasets() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(6)
    x, y = as_batch((images, labels))
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected = (images[2, 1, 4, 0] / 255.0 - 0.49139968) / 0.24703233
    assert float(x[2, 0, 1, 4]) == pytest.approx(expected, rel=1e-6)
    dataset = [(images[i], int(labels[i])) for i in range(6)]
    xd, yd = as_batch(dataset, size=6, seed=3)
    order = [int(v) for v in yd]
    assert torch.allclose(xd, x[order])
    xi, yi = as_batch(iter(dataset), size=4)
    assert torch.equal(yi, torch.arange(4)) and torch.allclose(xi, x[:4])
    with pytest.raises(GpsrError, match="fewer"):
        as_batch(dataset, size=7)


needs_shared = pytest.mark.skipif(
    shared_dir() is None, reason="shared data folder (../shared or $GPSR_SHARED) not found"
)


@needs_shared
def test_batch_from_the_cifar10_sample() -> None:
    x, y = default_batch()
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 9
    assert abs(float(x.mean())) < 0.5 and 0.5 < float(x.std()) < 1.5
    path = shared_dir() / "data" / "images" / "cifar10-sample.npz"
    x2, y2 = batch_from_npz(path, size=64, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(batch_from_npz(path, size=64, seed=1)[1], y)
    with pytest.raises(GpsrError, match="cannot draw"):
        batch_from_npz(path, size=1000)


@needs_shared
def test_nb201_flops_and_params_equal_the_released_values() -> None:
    spaces = pytest.importorskip("gpsr.spaces")
    table = shared_dir() / "data" / "nas-bench-suite-zero" / "nb201-cifar10.csv"
    with table.open() as f:
        rows = [row for _, row in zip(range(3), csv.DictReader(f))]
    x, y = default_batch(size=2)
    for row in rows:
        net = spaces.build_network("nb201", row["arch"])
        got = compute_proxies(net, (x, y), ["flops", "params"], device=CPU)
        assert got["flops"] == pytest.approx(float(row["flops"]), abs=1e-9), row["arch"]
        assert got["params"] == pytest.approx(float(row["params"]), abs=1e-9), row["arch"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_cuda_agrees_with_cpu(reference: dict[str, float]) -> None:
    got = compute_proxies(tiny_net(), random_batch(), device="cuda")
    for name in ALL16:
        assert got[name] == pytest.approx(reference[name], rel=1e-3, abs=1e-6), name
