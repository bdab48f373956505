"""Training a found network: one loop for the DARTS and NAS-Bench-201 CIFAR recipes and for
gpsr's mini benchmark, checkpointed every epoch and resumed exactly.

:class:`TrainConfig` holds every hyperparameter. Its two CIFAR-10 presets:

* :meth:`TrainConfig.darts`, the DARTS evaluation recipe (Liu et al., "DARTS", ICLR 2019,
  Sec. 3 "architecture evaluation" and App. A.2; reference code ``quark0/darts``
  ``cnn/train.py`` argument defaults and ``cnn/utils.py``): 600 epochs, batch 96, SGD
  momentum 0.9 (no Nesterov), learning rate 0.025 annealed to 0 on a cosine stepped once per
  epoch, weight decay 3e-4, gradient norm clipped at 5, random 32x32 crop of the image padded
  by 4 black pixels, horizontal flip, cutout 16 (after normalisation), auxiliary head with
  loss weight 0.4, drop path whose probability grows linearly from 0 to 0.2 over the epochs
  (``0.2 * epoch / epochs`` at the start of epoch ``epoch``, counted from 0). DARTS trained
  its evaluation network with 36 channels and 20 cells (:func:`gpsr.spaces.nb301.build` with
  ``search_ops=False, auxiliary=True``; :func:`train_arch` builds it); table 4 of the SR-NAS
  paper reports test errors after this recipe on the full CIFAR-10 training set.
* :meth:`TrainConfig.nb201`, NAS-Bench-201's (Dong & Yang, ICLR 2020, Sec. 2; reference code
  ``D-X-Y/AutoDL-Projects`` ``configs/nas-benchmark/hyper-opts/200E.config``, whose cosine
  the training procedure updates every iteration): 200 epochs, batch 256, SGD
  with Nesterov momentum 0.9, learning rate 0.1 annealed to 0 on a cosine stepped every
  iteration, weight decay 5e-4, random crop (padding 4) and flip, no cutout, auxiliary head
  or drop path.

gpsr's mini benchmark trains with the same loop (:func:`gpsr.minibench.recipe`).

Order of one step, shared by every recipe: the epoch's inputs (a hook may relabel them, e.g.
the rotation task turns every image afresh), a permutation of the training set, then per
batch: augmentation (crop, flip, cutout, drawn in that order), forward, cross-entropy (plus the
weighted auxiliary loss), backward, gradient clipping, an SGD step, and the learning-rate
step when it is per iteration. Every random draw of the loop comes from one
``torch.Generator`` seeded with ``random_state``; drop path draws from torch's global generator
(as DARTS does), which the caller seeds before building the network.

A checkpoint (``<out>/checkpoint.pt``) is written atomically after every epoch: the network's
weights and buffers, the optimizer and scheduler states, both generators (and CUDA's), the
epoch and the history. :func:`train` on a folder that holds one continues after its epoch,
so an interrupted run ends with the weights an uninterrupted one would have had (bit for bit
on the CPU; on a GPU as far as its kernels are deterministic).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpsr.errors import GpsrError

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CHECKPOINT_FORMAT = "gpsr-train-checkpoint-1"
SCHEDULES = ("epoch", "step")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a training run (defaults: the DARTS CIFAR-10 recipe)."""

    epochs: int = 600
    batch_size: int = 96
    learning_rate: float = 0.025
    #: The cosine's floor.
    learning_rate_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    #: The cosine steps once per "epoch" or once per "step" (iteration).
    schedule: str = "epoch"
    #: Largest global gradient norm; 0 turns clipping off.
    grad_clip: float = 5.0
    #: Weight of the auxiliary head's loss; 0 trains without one.
    auxiliary_weight: float = 0.4
    #: Drop-path probability reached at the last epoch (linear from 0); 0 turns it off.
    drop_path: float = 0.2
    #: Random crop back to the input size after padding by this many pixels; 0: no crop.
    crop_padding: int = 4
    flip: bool = True
    #: Side of the square cutout; 0: none.
    cutout: int = 16
    #: After the last step, re-estimate batch-norm statistics on the training inputs.
    recalibrate_bn: bool = False
    recalibration_batch_size: int = 256
    #: Validation batch size; 0: the whole validation set at once.
    eval_batch_size: int = 256
    #: Validate after every epoch (False: after the last only).
    evaluate_every_epoch: bool = True
    random_state: int = 0

    @classmethod
    def darts(cls, **changes: Any) -> TrainConfig:
        """The DARTS CIFAR-10 evaluation recipe (see the module docstring)."""
        return cls(**changes)

    @classmethod
    def nb201(cls, **changes: Any) -> TrainConfig:
        """NAS-Bench-201's CIFAR recipe (see the module docstring)."""
        base = {"epochs": 200, "batch_size": 256, "learning_rate": 0.1, "nesterov": True,
                "weight_decay": 5e-4, "schedule": "step", "grad_clip": 0.0,
                "auxiliary_weight": 0.0, "drop_path": 0.0, "cutout": 0}
        return cls(**(base | changes))

    def check(self) -> None:
        """Raise :class:`GpsrError` naming the first value out of range."""
        positive = ("epochs", "batch_size", "recalibration_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise GpsrError(f"{name} must be >= 1, got {getattr(self, name)}")
        non_negative = ("learning_rate", "learning_rate_min", "momentum", "weight_decay",
                        "grad_clip", "auxiliary_weight", "crop_padding", "cutout",
                        "eval_batch_size")
        for name in non_negative:
            value = getattr(self, name)
            if not value >= 0 or not math.isfinite(value):
                raise GpsrError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.drop_path < 1:
            raise GpsrError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.schedule not in SCHEDULES:
            raise GpsrError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                            f"got {self.schedule!r}")
        if self.nesterov and self.momentum == 0:
            raise GpsrError("nesterov needs momentum > 0")


@dataclass(frozen=True)
class TrainData:
    """Normalised float NCHW tensors with int64 labels.

    ``pad_value`` is the per-channel value of a black pixel after normalisation (what the
    random crop pads with); ``epoch_inputs(x, y, generator)`` may replace the training
    inputs and labels at the start of every epoch.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    pad_value: tuple[float, ...] | None = None
    epoch_inputs: Callable[[Tensor, Tensor, torch.Generator], tuple[Tensor, Tensor]] | None = \
        field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name, x, y in (("training", self.train_x, self.train_y),
                           ("validation", self.val_x, self.val_y)):
            if x.dim() != 4 or not x.is_floating_point():
                raise GpsrError(f"{name} images must be float NCHW, got {x.dtype} "
                                f"{tuple(x.shape)}")
            if y.shape != (len(x),):
                raise GpsrError(f"{len(x)} {name} images but labels of shape {tuple(y.shape)}")
            if len(x) < 1:
                raise GpsrError(f"no {name} images")


@dataclass
class TrainResult:
    history: list[dict[str, Any]]
    #: The epoch a checkpoint resumed from (0: a fresh start).
    resumed_from: int
    seconds: float

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy (%) after the last epoch."""
        return self.history[-1]["val_accuracy"]


# ---- augmentation -------------------------------------------------------------
def augment(x: Tensor, config: TrainConfig, generator: torch.Generator,
            pad_value: tuple[float, ...] | None = None) -> Tensor:
    """Random crop, horizontal flip and cutout of a batch, drawn from ``generator``.

    Per image, as torchvision's ``RandomCrop(size, padding)`` and ``RandomHorizontalFlip``
    and DARTS's ``Cutout`` (centre uniform over the image, the square clipped at the border,
    zeroed after normalisation) do.
    """
    n, c, h, w = x.shape
    dev = x.device
    if config.crop_padding:
        p = config.crop_padding
        fill = torch.zeros(c) if pad_value is None else torch.tensor(pad_value)
        padded = fill.to(x).view(1, c, 1, 1).repeat(n, 1, h + 2 * p, w + 2 * p)
        padded[:, :, p:p + h, p:p + w] = x
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)).to(dev)
        cols = (dx[:, None] + torch.arange(w)).to(dev)
        x = padded[torch.arange(n, device=dev)[:, None, None, None],
                   torch.arange(c, device=dev)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    if config.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    if config.cutout:
        half = config.cutout // 2
        cy = torch.randint(0, h, (n,), generator=generator)
        cx = torch.randint(0, w, (n,), generator=generator)
        ys, xs = torch.arange(h), torch.arange(w)
        in_y = (ys >= (cy - half).clamp(0, h)[:, None]) & (ys < (cy + half).clamp(0, h)[:, None])
        in_x = (xs >= (cx - half).clamp(0, w)[:, None]) & (xs < (cx + half).clamp(0, w)[:, None])
        keep = ~(in_y[:, :, None] & in_x[:, None, :])
        x = x * keep[:, None].to(device=dev, dtype=x.dtype)
    return x


# ---- the loop -----------------------------------------------------------------
def _check_network(net: nn.Module, config: TrainConfig) -> None:
    if config.auxiliary_weight > 0 and getattr(net, "auxiliary_head", None) is None:
        raise GpsrError("this network has no auxiliary head: set the auxiliary weight to 0 "
                        "(only DARTS/NB301 networks built with auxiliary=True have one)")
    if config.drop_path > 0 and not hasattr(net, "drop_path_prob"):
        raise GpsrError("this network has no drop path: set drop_path to 0 "
                        "(only DARTS/NB301 networks have it)")


def evaluate(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 0) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of ``net`` in eval mode; ``batch_size`` 0: at once."""
    net.eval()
    size = batch_size or len(x)
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), size):
            logits = net(x[start:start + size])
            target = y[start:start + size]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    return loss / len(y), 100.0 * correct / len(y)


def recalibrate_bn(net: nn.Module, x: Tensor, batch_size: int) -> None:
    """Re-estimate every batch-norm's running statistics over ``x`` (cumulative average)."""
    # After a few dozen steps the running averages lag far behind the weights, and scoring
    # with them makes the result hinge on the last few batches.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None
        net.train()
        for start in range(0, len(x), batch_size):
            net(x[start:start + batch_size])


def _rng_states(generator: torch.Generator) -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}


def _set_rng_states(generator: torch.Generator, states: dict[str, Any]) -> None:
    generator.set_state(states["generator"].cpu())
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def _save(path: Path, state: dict[str, Any], history: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    tmp = path.with_name(HISTORY + ".tmp")
    tmp.write_text(json.dumps(history, indent=1))
    os.replace(tmp, path.with_name(HISTORY))


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint written by :func:`train`; :class:`GpsrError` when it cannot be read."""
    path = Path(path)
    hint = f"delete {path} to start over"
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a torn or foreign file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GpsrError(f"{path}: not a readable checkpoint ({reason[:120]}); {hint}") from None
    keys = {"format", "epoch", "config", "meta", "model", "optimizer", "scheduler", "rng",
            "history"}
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or \
            keys - set(state):
        raise GpsrError(f"{path}: not a gpsr training checkpoint; {hint}")
    return state


def _check_same_run(path: Path, state: dict[str, Any], config: TrainConfig,
                    meta: dict[str, Any]) -> None:
    theirs, ours = state["meta"] | state["config"], meta | asdict(config)
    for name in sorted(set(theirs) | set(ours)):
        if theirs.get(name) != ours.get(name):
            raise GpsrError(
                f"{path}: was made with {name}={theirs.get(name)!r}, not {ours.get(name)!r} "
                "(use the same options, another output folder, or delete it to start over)"
            )


def train(
    net: nn.Module,
    data: TrainData,
    config: TrainConfig,
    *,
    out: str | Path | None = None,
    meta: dict[str, Any] | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``net`` in place on the device its parameters are on; see the module docstring.

    With ``out``, a checkpoint is written there after every epoch and an existing one is
    resumed; ``meta`` (e.g. space, arch, network options) is stored with it and must match on
    resume, like ``config``. ``on_step(epoch, step, steps)`` follows every iteration and
    ``on_epoch(record)`` every epoch (epochs count from 1).
    """
    config.check()
    _check_network(net, config)
    meta = dict(meta or {})
    device = next(net.parameters()).device
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    val_x, val_y = data.val_x.to(device), data.val_y.to(device)
    n = len(train_x)
    steps = math.ceil(n / config.batch_size)
    generator = torch.Generator().manual_seed(config.random_state)
    optimizer = torch.optim.SGD(net.parameters(), lr=config.learning_rate,
                                momentum=config.momentum, nesterov=config.nesterov,
                                weight_decay=config.weight_decay)
    horizon = config.epochs * (steps if config.schedule == "step" else 1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=horizon,
                                                           eta_min=config.learning_rate_min)
    history: list[dict[str, Any]] = []
    first = 0
    checkpoint = None
    if out is not None:
        checkpoint = Path(out) / CHECKPOINT
        if checkpoint.parent.exists() and not checkpoint.parent.is_dir():
            raise GpsrError(f"{out}: exists and is not a folder")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if checkpoint.exists():
            state = load_checkpoint(checkpoint, device)
            _check_same_run(checkpoint, state, config, meta)
            try:
                net.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as exc:
                raise GpsrError(f"{checkpoint}: does not fit this network ({str(exc)[:80]}); "
                                f"delete it to start over") from None
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_states(generator, state["rng"])
            history, first = list(state["history"]), int(state["epoch"])
    start = time.perf_counter()
    for epoch in range(first, config.epochs):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        if hasattr(net, "drop_path_prob"):
            net.drop_path_prob = config.drop_path * epoch / config.epochs
        x, y = train_x, train_y
        if data.epoch_inputs is not None:
            x, y = data.epoch_inputs(x, y, generator)
        order = torch.randperm(n, generator=generator).to(device)
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for step, begin in enumerate(range(0, n, config.batch_size)):
            idx = order[begin:begin + config.batch_size]
            xb, yb = x[idx], y[idx]
            if config.crop_padding or config.flip or config.cutout:
                xb = augment(xb, config, generator, data.pad_value)
            if config.auxiliary_weight > 0:
                logits, aux = net.forward_with_aux(xb)
            else:
                logits, aux = net(xb), None
            loss = F.cross_entropy(logits, yb)
            if aux is not None:
                loss = loss + config.auxiliary_weight * F.cross_entropy(aux, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            if config.schedule == "step":
                scheduler.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            if on_step:
                on_step(epoch + 1, step + 1, steps)
        if config.schedule == "epoch":
            scheduler.step()
        last = epoch + 1 == config.epochs
        if last and config.recalibrate_bn:
            recalibrate_bn(net, x, config.recalibration_batch_size)
        record: dict[str, Any] = {
            "epoch": epoch + 1, "lr": lr,
            "drop_path": getattr(net, "drop_path_prob", 0.0),
            "train_loss": loss_sum.item() / n, "train_accuracy": 100.0 * correct.item() / n,
            "val_loss": None, "val_accuracy": None,
        }
        if last or config.evaluate_every_epoch:
            record["val_loss"], record["val_accuracy"] = evaluate(net, val_x, val_y,
                                                                  config.eval_batch_size)
        record["seconds"] = round(time.perf_counter() - began, 3)
        history.append(record)
        if checkpoint is not None:
            _save(checkpoint, {
                "format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "config": asdict(config),
                "meta": meta, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": _rng_states(generator),
                "history": history,
            }, history)
        if on_epoch:
            on_epoch(record)
    return TrainResult(history, first, time.perf_counter() - start)


def config_from(base: TrainConfig, **changes: Any) -> TrainConfig:
    """``base`` with the given fields changed, ignoring those given as None."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise GpsrError(f"unknown training option(s): {', '.join(unknown)}")
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


# ---- a found architecture, end to end -------------------------------------------
#: CIFAR spaces: default recipe and the network DARTS / NAS-Bench-201 trained
#: (``channels`` is ``C``; ``layers`` is the number of cells for nb301, cells per stage for nb201).
CIFAR_SPACES: dict[str, tuple[Callable[..., TrainConfig], dict[str, int]]] = {
    "nb301": (TrainConfig.darts, {"channels": 36, "layers": 20}),
    "nb201": (TrainConfig.nb201, {"channels": 16, "layers": 5}),
}
#: Validation images split off a single image file when no separate one is given.
VAL_FRACTION = 1 / 3
SPLIT_SEED = 0


def _load_npz(path: Path) -> tuple[Tensor, Tensor, tuple[float, ...]]:
    """Normalised images, labels and the normalised black pixel of an image file."""
    import numpy as np

    from gpsr.proxies.inputs import NORMALISATION, _dataset_of, normalise

    if not path.is_file():
        raise GpsrError(f"{path}: no such file")
    try:
        with np.load(path) as archive:
            if "images" not in archive.files or "labels" not in archive.files:
                raise GpsrError(f"{path}: needs arrays 'images' and 'labels', has {archive.files}")
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, GpsrError):
            raise
        raise GpsrError(f"{path}: not a readable .npz file ({exc})") from None
    if len(images) != len(labels) or len(images) < 2:
        raise GpsrError(f"{path}: {len(images)} images and {len(labels)} labels")
    dataset = _dataset_of(path)
    mean, std = NORMALISATION[dataset]
    x = normalise(images, dataset)
    y = torch.as_tensor(labels, dtype=torch.int64)
    if int(y.min()) < 0:
        raise GpsrError(f"{path}: labels must be class indices >= 0, got {int(y.min())}")
    return x, y, tuple(-m / s for m, s in zip(mean, std))


def image_data(images: str | Path, val_images: str | Path | None = None,
               val_fraction: float = VAL_FRACTION, split_seed: int = SPLIT_SEED) -> TrainData:
    """Training data from an ``.npz`` of uint8 ``images`` and ``labels`` (the shared CIFAR
    samples' layout); without ``val_images``, a seeded ``val_fraction`` of it validates."""
    import numpy as np

    x, y, pad = _load_npz(Path(images))
    if val_images is not None:
        vx, vy, _ = _load_npz(Path(val_images))
        return TrainData(x, y, vx, vy, pad)
    if not 0 < val_fraction < 1:
        raise GpsrError(f"the validation fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, round(len(x) * val_fraction))
    if n_val >= len(x):
        raise GpsrError(f"{images}: {len(x)} images are too few to split off a validation set")
    order = torch.as_tensor(np.random.default_rng(split_seed).permutation(len(x)))
    val, tr = order[:n_val], order[n_val:]
    return TrainData(x[tr], y[tr], x[val], y[val], pad)


def _device(name: str | None) -> torch.device:
    """``name``, or CUDA when present and the CPU otherwise."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise GpsrError(f"unknown device {name!r} (cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GpsrError(f"device {name!r}: no CUDA device is available here")
    return dev


def train_arch(
    space: str,
    arch: str,
    out: str | Path,
    *,
    task: str | None = None,
    images: str | Path | None = None,
    val_images: str | Path | None = None,
    channels: int | None = None,
    layers: int | None = None,
    seed: int = 0,
    device: str | None = None,
    on_step: Callable[[int, int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    **changes: Any,
) -> TrainResult:
    """Build ``arch`` of ``space`` and train it into the folder ``out`` (resuming it).

    CIFAR spaces (:data:`CIFAR_SPACES`) train with their benchmark's recipe on ``images``
    (default: the shared CIFAR-10 sample); the mini spaces of :mod:`gpsr.minibench` train on
    ``task`` with the shipped recipe, initial weights and order seeded as the build seeded
    them (:func:`gpsr.minibench.arch_seed` of ``seed``), on one CPU thread as the build ran.
    ``changes`` override :class:`TrainConfig` fields (None keeps the recipe's).
    """
    from gpsr import minibench
    from gpsr.spaces import build_network

    if space in minibench.SPACES:
        if task is None:
            raise GpsrError(f"{space} is a mini benchmark space: give a task "
                            f"({', '.join(minibench.TASKS)})")
        if images is not None or val_images is not None or channels or layers:
            raise GpsrError(f"{space} trains on its task's digits with the shipped network "
                            "size: images, channels and layers do not apply")
        minibench.training_data(task)  # checks the task before anything is built
        spec = minibench.SPACES[space]
        torch_seed = minibench.arch_seed(seed, arch)
        epochs = changes.pop("epochs", None)
        config = config_from(minibench.recipe(2 if epochs is None else epochs, torch_seed),
                             **changes)
        torch.set_num_threads(1)
        torch.manual_seed(torch_seed)
        net = build_network(spec.base, arch, minibench.TASKS[task], **spec.options)
        data = minibench.training_data(task)
        meta = {"space": space, "arch": arch, "task": task, "seed": seed}
    elif space in CIFAR_SPACES:
        if task is not None:
            raise GpsrError(f"{space} trains on images (--images), not on a digits task")
        base, sizes = CIFAR_SPACES[space]
        config = config_from(base(random_state=seed), **changes)
        if images is None:
            from gpsr.data import shared_dir

            root = shared_dir()
            if root is None:
                raise GpsrError("no --images given and no shared CIFAR-10 sample found "
                                "(set GPSR_SHARED)")
            images = root / "data" / "images" / "cifar10-sample.npz"
        data = image_data(images, val_images)
        classes = int(max(data.train_y.max(), data.val_y.max())) + 1
        size = {"channels": channels or sizes["channels"], "layers": layers or sizes["layers"]}
        if min(size.values()) < 1:
            raise GpsrError(f"channels and layers must be >= 1, got {size}")
        torch.manual_seed(seed)
        if space == "nb301":
            net = build_network("nb301", arch, classes, C=size["channels"],
                                layers=size["layers"], search_ops=False,
                                auxiliary=config.auxiliary_weight > 0)
        else:
            net = build_network("nb201", arch, classes, C=size["channels"], N=size["layers"])
        meta = {"space": space, "arch": arch, "seed": seed, "classes": classes,
                "images": Path(images).name,
                "val_images": None if val_images is None else Path(val_images).name,
                "train_size": len(data.train_x), "val_size": len(data.val_x)} | size
    else:
        known = [*CIFAR_SPACES, *minibench.SPACES]
        raise GpsrError(f"cannot train space {space!r}; known: {', '.join(known)}")
    dev = _device(device)
    return train(net.to(dev), data, config, out=out, meta=meta, on_step=on_step,
                 on_epoch=on_epoch)
