"""``gpsr train``: train a found network with its benchmark's recipe, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gpsr.cli.common import console, err_console, friendly


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@friendly
def train(
    space: Annotated[str, typer.Option(help="nb301 (DARTS), nb201, or a mini space "
                                            "(mini201, minimacro, minimicro).")],
    arch: Annotated[str, typer.Option(help="Architecture string of the space.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint.pt and history.json; "
                                           "a folder with a checkpoint is resumed.")],
    epochs: Annotated[int | None, typer.Option(
        help="Epochs (default: the recipe's: 600 DARTS, 200 NB201, 2 mini).")] = None,
    task: Annotated[str | None, typer.Option(
        help="Mini spaces: digits-class or digits-rotation.")] = None,
    images: Annotated[Path | None, typer.Option(
        help="CIFAR spaces: .npz with uint8 images and labels (default: the shared "
             "CIFAR-10 sample).")] = None,
    val_images: Annotated[Path | None, typer.Option(
        help="Validation .npz (default: a seeded third of --images).")] = None,
    channels: Annotated[int | None, typer.Option(
        help="Initial channels C (default 36 for nb301, 16 for nb201).")] = None,
    layers: Annotated[int | None, typer.Option(
        help="Cells (nb301, default 20) or cells per stage (nb201, default 5).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Images per step (default: the recipe's, 96 for nb301, 256 for nb201).")] = None,
    learning_rate: Annotated[float | None, typer.Option(
        "--lr", help="Initial learning rate (default: the recipe's).")] = None,
    weight_decay: Annotated[float | None, typer.Option(
        help="SGD weight decay (default: the recipe's).")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="0: no clipping.")] = None,
    cutout: Annotated[int | None, typer.Option(help="Cutout side; 0: none.")] = None,
    aux_weight: Annotated[float | None, typer.Option(
        help="Auxiliary-head loss weight (nb301); 0: no auxiliary head.")] = None,
    drop_path: Annotated[float | None, typer.Option(
        help="Final drop-path probability (nb301); 0: none.")] = None,
    seed: Annotated[int, typer.Option(
        help="Seed of initial weights, order and augmentation (mini spaces: the build's "
             "--train-seed).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Train an architecture with its benchmark's recipe (DARTS, NAS-Bench-201 or the mini
    benchmark's), checkpointing every epoch; run it again to resume after an interruption.

    The recipes are documented in gpsr.train (python -c 'help("gpsr.train")').
    """
    from gpsr.train import CHECKPOINT, train_arch

    resuming = (out / CHECKPOINT).exists()
    with Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), console=err_console, transient=True) as progress:
        bar = progress.add_task("train", total=None, epoch="-")

        def step(epoch: int, done: int, steps: int) -> None:
            progress.update(bar, completed=done, total=steps, epoch=epoch)

        def epoch_done(r: dict) -> None:
            progress.console.print(
                f"epoch {r['epoch']:>4}  lr {r['lr']:.4g}  train loss {r['train_loss']:.4f} "
                f"acc {r['train_accuracy']:6.2f}  val loss {_fmt(r['val_loss'], '.4f')} "
                f"acc {_fmt(r['val_accuracy'], '6.2f')}  {r['seconds']:.1f} s", highlight=False)

        result = train_arch(
            space, arch, out, task=task, images=images, val_images=val_images,
            channels=channels, layers=layers, seed=seed, device=device, on_step=step,
            on_epoch=epoch_done, epochs=epochs, batch_size=batch_size,
            learning_rate=learning_rate, weight_decay=weight_decay, grad_clip=grad_clip,
            cutout=cutout, auxiliary_weight=aux_weight, drop_path=drop_path,
        )
    last = result.history[-1]
    if resuming and result.resumed_from == last["epoch"]:
        console.print(f"{out}: already trained ({last['epoch']} epochs)")
    elif result.resumed_from:
        console.print(f"resumed after epoch {result.resumed_from}")
    console.print(f"validation accuracy {last['val_accuracy']:.2f} % after {last['epoch']} "
                  f"epochs; checkpoint and history in {out}")
