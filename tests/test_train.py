"""gpsr.train and ``gpsr train``: recipes, augmentation, checkpoints and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gpsr.cli.app import app
from gpsr.data import shared_dir
from gpsr.errors import GpsrError
from gpsr.spaces import build_network
from gpsr.train import CHECKPOINT, TrainConfig, TrainData, augment, load_checkpoint, train

NB301_ARCH = "(((0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)), " \
             "((0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)))"  # DARTS V2
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|" \
             "nor_conv_1x1~2|"
MINI_ARCH = "(2, 3, 1, 2, 1, 1)"


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: on a busy 2-core machine a second thread only adds spin-waiting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(size: int = 32, n_train: int = 20, n_val: int = 8, turned: bool = False) -> TrainData:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_val, 3, size, size, generator=gen)
    y = torch.randint(0, 10, (n_train + n_val,), generator=gen)

    def turn(x: torch.Tensor, y: torch.Tensor, g: torch.Generator):
        k = torch.randint(0, 4, (len(x),), generator=g)
        return torch.stack([torch.rot90(im, int(t), (1, 2)) for im, t in zip(x, k)]), k

    return TrainData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], (-1.0, -2.0, -3.0),
                     epoch_inputs=turn if turned else None)


def _darts_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network("nb301", NB301_ARCH, 10, C=4, layers=3, search_ops=False,
                         auxiliary=True)


def _nb201_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network("nb201", NB201_ARCH, 10, C=4, N=1)


# Every random part on: augmentation, drop path, auxiliary head, clipping (DARTS); per-step
# cosine, per-epoch relabelling and batch-norm recalibration (the mini benchmark's loop).
CASES = {
    "darts": (_darts_net, TrainConfig.darts(epochs=3, batch_size=8, cutout=8, random_state=3),
              False),
    "mini": (_nb201_net, TrainConfig.nb201(epochs=3, batch_size=8, recalibrate_bn=True,
                                           eval_batch_size=0, random_state=3), True),
}


class Stop(Exception):
    pass


def _stop_after(epoch: int):
    def hook(record: dict) -> None:
        if record["epoch"] == epoch:
            raise Stop

    return hook


def _same(a: object, b: object) -> bool:
    """Bit-for-bit equality of nested checkpoint contents."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stop", [1, 2])
def test_resume_is_bit_identical_to_an_uninterrupted_run(case: str, stop: int,
                                                         tmp_path: Path) -> None:
    make, config, turned = CASES[case]
    data = _data(turned=turned)
    whole = train(make(0), data, config, out=tmp_path / "whole")
    with pytest.raises(Stop):
        train(make(0), data, config, out=tmp_path / "cut", on_epoch=_stop_after(stop))
    # Another initialisation, so only the checkpoint can make the weights agree.
    resumed = train(make(1), data, config, out=tmp_path / "cut")
    assert resumed.resumed_from == stop
    a = load_checkpoint(tmp_path / "whole" / CHECKPOINT)
    b = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    for part in ("model", "optimizer", "scheduler", "rng", "epoch"):
        assert _same(a[part], b[part]), part
    assert _without_seconds(a["history"]) == _without_seconds(b["history"])
    assert _without_seconds(whole.history) == _without_seconds(resumed.history)
    # The run really moved the weights and the generators.
    assert not _same(a["model"], make(0).state_dict())


def test_finished_run_is_not_retrained(tmp_path: Path) -> None:
    make, config, _ = CASES["darts"]
    config = TrainConfig.darts(epochs=1, batch_size=8, cutout=8)
    first = train(make(0), _data(), config, out=tmp_path)
    again = train(make(1), _data(), config, out=tmp_path)
    assert again.resumed_from == 1 and again.history == first.history
    assert json.loads((tmp_path / "history.json").read_text()) == first.history


def test_resume_refuses_other_options(tmp_path: Path) -> None:
    config = TrainConfig.darts(epochs=1, batch_size=8)
    train(_darts_net(0), _data(), config, out=tmp_path, meta={"arch": "a"})
    with pytest.raises(GpsrError, match="learning_rate=0.025, not 0.1"):
        train(_darts_net(0), _data(), TrainConfig.darts(epochs=1, batch_size=8,
                                                        learning_rate=0.1), out=tmp_path,
              meta={"arch": "a"})
    with pytest.raises(GpsrError, match="arch='a', not 'b'"):
        train(_darts_net(0), _data(), config, out=tmp_path, meta={"arch": "b"})


def test_corrupted_checkpoint_says_which_file_to_delete(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT
    path.write_bytes(b"\x00not a checkpoint")
    config = TrainConfig.darts(epochs=1, batch_size=8)
    with pytest.raises(GpsrError, match=f"{path}: not a readable checkpoint.*delete {path}"):
        train(_darts_net(0), _data(), config, out=tmp_path)
    torch.save({"something": 1}, path)
    with pytest.raises(GpsrError, match=f"not a gpsr training checkpoint; delete {path}"):
        train(_darts_net(0), _data(), config, out=tmp_path)


def test_network_must_have_what_the_recipe_uses() -> None:
    with pytest.raises(GpsrError, match="no auxiliary head"):
        train(_nb201_net(0), _data(), TrainConfig.darts(epochs=1))
    with pytest.raises(GpsrError, match="no drop path"):
        train(_nb201_net(0), _data(), TrainConfig.darts(epochs=1, auxiliary_weight=0))
    with pytest.raises(GpsrError, match="drop_path must be in"):
        train(_darts_net(0), _data(), TrainConfig.darts(epochs=1, drop_path=1.5))


def test_recipes_match_their_papers() -> None:
    darts, nb201 = TrainConfig.darts(), TrainConfig.nb201()
    assert (darts.epochs, darts.batch_size, darts.learning_rate, darts.weight_decay,
            darts.grad_clip, darts.cutout, darts.auxiliary_weight, darts.drop_path,
            darts.nesterov, darts.schedule) == (600, 96, 0.025, 3e-4, 5.0, 16, 0.4, 0.2,
                                                False, "epoch")
    assert (nb201.epochs, nb201.batch_size, nb201.learning_rate, nb201.weight_decay,
            nb201.nesterov, nb201.cutout, nb201.auxiliary_weight, nb201.drop_path,
            nb201.schedule) == (200, 256, 0.1, 5e-4, True, 0, 0.0, 0.0, "step")
    # DARTS (second order) reports 3.3M parameters for its CIFAR-10 network, auxiliary
    # head excluded (Liu et al. 2019, table 1).
    net = build_network("nb301", NB301_ARCH, 10, C=36, layers=20, search_ops=False,
                        auxiliary=True)
    params = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
    assert round(params / 1e6, 1) == 3.3


def test_drop_path_and_auxiliary_head_only_act_in_training() -> None:
    net = _darts_net(0)
    x = torch.randn(4, 3, 32, 32)
    net.eval()
    plain = net(x)
    net.drop_path_prob = 0.5
    logits, aux = net.forward_with_aux(x)
    assert torch.equal(logits, plain) and aux is None
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert aux.shape == (4, 10)
    torch.manual_seed(0)
    dropped = net(x)
    net.drop_path_prob = 0.0
    assert not torch.allclose(dropped, net(x))


def test_augment_crop_flip_and_cutout() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    pad = (-1.0, -2.0, -3.0)
    crop = TrainConfig(crop_padding=2, flip=False, cutout=0)
    gen = torch.Generator().manual_seed(0)
    out = augment(x, crop, gen, pad)
    padded = torch.stack([torch.nn.functional.pad(x[:, c], (2, 2, 2, 2), value=pad[c])
                          for c in range(3)], 1)
    for i in range(2):  # every output is an 8x8 window of the padded image
        assert any(torch.equal(out[i], padded[i, :, r:r + 8, c:c + 8])
                   for r in range(5) for c in range(5))
    flipped = augment(x, TrainConfig(crop_padding=0, flip=True, cutout=0),
                      torch.Generator().manual_seed(1), pad)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    ones = torch.ones(64, 1, 16, 16)
    cut = augment(ones, TrainConfig(crop_padding=0, flip=False, cutout=4),
                  torch.Generator().manual_seed(2))
    zeros = (cut == 0).sum((1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # 4x4, clipped at the border
    assert set(cut.unique().tolist()) == {0.0, 1.0}


def test_minibench_loop_reproduces_a_shipped_score() -> None:
    """The shared loop gives the shipped recipe's score of a shipped architecture."""
    from gpsr.minibench import SPACES, arch_seed, shipped_problems, train_and_score

    problem = shipped_problems(["MINIMACRO-DIGITS-CLASS"])[0]
    expected = float(problem.accuracy[list(problem.archs).index(MINI_ARCH)])
    seed = arch_seed(0, MINI_ARCH)
    torch.manual_seed(seed)
    net = build_network(SPACES["minimacro"].base, MINI_ARCH, 10, **SPACES["minimacro"].options)
    assert train_and_score(net, "digits-class", 2, seed) == expected


# ---- the command line ------------------------------------------------------------
runner = CliRunner()


def test_cli_trains_a_mini_network_and_resumes(tmp_path: Path) -> None:
    args = ["train", "--space", "minimicro", "--task", "digits-class", "--arch",
            "(1, 1, 1, 1, 1, 1)", "--epochs", "1", "--out", str(tmp_path)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "validation accuracy" in first.output
    again = runner.invoke(app, args)
    said = " ".join(again.output.split())
    assert again.exit_code == 0 and "already trained (1 epochs)" in said
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 1 and f"{history[0]['val_accuracy']:.2f}" in said


@pytest.mark.parametrize("args, message", [
    (["--space", "nb999", "--arch", "x"], "cannot train space 'nb999'"),
    (["--space", "minimicro", "--arch", "(1, 1, 1, 1, 1, 1)"], "give a task"),
    (["--space", "minimicro", "--task", "digits-class", "--arch", "(9,)"], "arch"),
    (["--space", "nb201", "--arch", NB201_ARCH, "--aux-weight", "0.4",
      "--images", "IMAGES"], "no auxiliary head"),
    (["--space", "nb201", "--arch", NB201_ARCH, "--images", "missing.npz"],
     "missing.npz: no such file"),
    (["--space", "nb201", "--arch", NB201_ARCH, "--images", "IMAGES", "--device", "tpu9"],
     "unknown device"),
    (["--space", "nb201", "--arch", NB201_ARCH, "--images", "IMAGES", "--epochs", "0"],
     "epochs must be >= 1"),
])
def test_cli_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    images = tmp_path / "cifar10-tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(images, images=rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
             labels=rng.integers(0, 10, 12))
    args = [str(images) if a == "IMAGES" else a for a in args]
    result = runner.invoke(app, ["train", *args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_corrupted_checkpoint(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT).write_bytes(b"torn")
    result = runner.invoke(app, ["train", "--space", "minimicro", "--task", "digits-class",
                                 "--arch", "(1, 1, 1, 1, 1, 1)", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert f"delete {tmp_path / CHECKPOINT}" in " ".join(result.output.split())


@pytest.mark.skipif(shared_dir() is None, reason="needs ../shared (the CIFAR-10 sample)")
def test_cifar_sample_split() -> None:
    from gpsr.train import image_data

    data = image_data(shared_dir() / "data" / "images" / "cifar10-sample.npz")
    assert (len(data.train_x), len(data.val_x)) == (198, 99)
    assert data.train_x.shape[1:] == (3, 32, 32)
    assert np.allclose(data.pad_value, [-0.4914 / 0.2470, -0.4822 / 0.2435, -0.4465 / 0.2616],
                       atol=1e-3)
