"""Smoke demonstration of ``gpsr train`` on real CIFAR-10 images: a DARTS and an NB201 network
found by Aging Evolution with the paper-data metric, trained a few epochs with their recipes.

There is no CIFAR-10 training set here, only the shared sample of 297 CIFAR-10 *test*
images: ``gpsr train`` trains on a seeded two thirds of it (198 images) and validates on the
other third (99). Accuracies after a few epochs on 198 images say that the loop runs, not
how good the networks are; table 4's protocol (the DARTS network of 36 channels and 20 cells,
600 epochs on the 50,000 training images, tested on the 10,000 test images) needs a GPU and
the full data set (``gpsr train --images train.npz --val-images test.npz``).

Steps:

1. the architectures: ``gpsr.archsearch.search_architectures`` in lookup mode (Aging
   Evolution, the paper's table 11: population 100, probability of mutation 0.5, 3,000
   evaluations, seed 0) with the metric of ``results/paper-31-runs/result.json`` (synthesized
   on NB101/201/301 CIFAR-10) over NB301-CF10 and NB201-CF10 of NAS-Bench-Suite-Zero;
2. ``gpsr train`` on the DARTS pick with the full DARTS recipe (auxiliary head, drop path,
   cutout, clipping) at a reduced size and epoch count, interrupted (SIGINT) once the first
   epoch's checkpoint is written and run again to finish, which resumes it;
3. ``gpsr train`` on the NB201 pick with NAS-Bench-201's recipe at the benchmark's size.

Run from the repository root:

    nice -n 10 python benchmarks/train_cifar_sample.py --work runs/train-cifar-sample

It writes results/train-cifar-sample.json and results/train-cifar-sample.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METRIC = ROOT / "results" / "paper-31-runs" / "result.json"


def find(problem: str) -> dict:
    from gpsr.archsearch import search_architectures

    result = search_architectures(str(METRIC), mode="lookup", problem=problem, algorithm="ae",
                                  max_evaluations=3000, population_size=100, p_mutation=0.5,
                                  random_state=0)
    return {"problem": problem, "arch": result.run.best_arch,
            "benchmark_accuracy": result.best_accuracy,
            "benchmark_optimum": result.optimum_accuracy}


def gpsr_train(args: list[str], interrupt_after_first_epoch: bool = False) -> dict:
    """Run ``gpsr train``; optionally SIGINT it once its first checkpoint exists."""
    gpsr = shutil.which("gpsr", path=str(Path(sys.executable).parent)) or "gpsr"
    out = Path(args[args.index("--out") + 1])
    start = time.perf_counter()
    # One thread: on a shared, loaded CPU a second one mostly spin-waits.
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([gpsr, "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    interrupted = False
    if interrupt_after_first_epoch:
        while proc.poll() is None and not (out / "checkpoint.pt").exists():
            time.sleep(0.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            interrupted = True
    output, _ = proc.communicate()
    return {"returncode": proc.returncode, "output": output.strip().splitlines()[-3:],
            "wall_seconds": time.perf_counter() - start, "interrupted": interrupted}


def run(space: str, arch: str, work: Path, epochs: int, size: list[str],
        interrupt: bool) -> dict:
    out = work / space
    args = ["--space", space, "--arch", arch, "--epochs", str(epochs), "--out", str(out),
            "--device", "cpu", *size]
    calls = []
    if interrupt and not (out / "checkpoint.pt").exists():
        calls.append(gpsr_train(args, interrupt_after_first_epoch=True))
    calls.append(gpsr_train(args))
    history = json.loads((out / "history.json").read_text())
    return {"space": space, "arch": arch, "args": ["gpsr", "train", *args], "calls": calls,
            "history": history,
            "seconds_per_epoch_median": float(np.median([r["seconds"] for r in history])),
            "final_val_accuracy": history[-1]["val_accuracy"]}


def params_of(space: str, arch: str, size: dict) -> int:
    from gpsr.spaces import build_network

    if space == "nb301":
        net = build_network("nb301", arch, 10, C=size["channels"], layers=size["layers"],
                            search_ops=False, auxiliary=True)
    else:
        net = build_network("nb201", arch, 10, C=size["channels"], N=size["layers"])
    return sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/train-cifar-sample"))
    parser.add_argument("--darts-epochs", type=int, default=4)
    parser.add_argument("--darts-channels", type=int, default=16)
    parser.add_argument("--darts-layers", type=int, default=8)
    parser.add_argument("--nb201-epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "train-cifar-sample")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    found = {space: find(problem) for space, problem in (("nb301", "NB301-CF10"),
                                                         ("nb201", "NB201-CF10"))}
    darts_size = {"channels": args.darts_channels, "layers": args.darts_layers}
    runs = {
        "nb301": run("nb301", found["nb301"]["arch"], work, args.darts_epochs,
                     ["--channels", str(args.darts_channels), "--layers",
                      str(args.darts_layers)], interrupt=True),
        "nb201": run("nb201", found["nb201"]["arch"], work, args.nb201_epochs, [],
                     interrupt=False),
    }
    sizes = {"nb301": darts_size, "nb201": {"channels": 16, "layers": 5}}
    for space in runs:
        runs[space]["found"] = found[space]
        runs[space]["params"] = params_of(space, runs[space]["arch"], sizes[space])
        runs[space]["size"] = sizes[space]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    report = {"command": "nice -n 10 python benchmarks/train_cifar_sample.py "
                         + " ".join(sys.argv[1:]),
              "commit": commit, "runs": runs,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other work "
                         f"(load average {load[0]:.1f} at the end), torch "
                         f"{__import__('torch').__version__} CPU, one thread (OMP_NUM_THREADS=1)"}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [
        "# `gpsr train` on the CIFAR-10 sample: a smoke demonstration, not a table-4 run",
        "",
        "Made by `benchmarks/train_cifar_sample.py` (its docstring says every step):",
        "", "```bash", report["command"], "```", "",
        f"gpsr commit `{commit}`. {report['machine']}.",
        "",
        "**What this is.** The only CIFAR-10 images here are the shared sample of 297 *test* "
        "images. `gpsr train` trained on a seeded 198 of them and validated on the other 99. "
        "A few epochs on 198 images show that the recipes run end to end, checkpoint, and "
        "resume. They say nothing about how good the networks are. Table 4 of the paper "
        "trains the 36-channel, 20-cell DARTS network for 600 epochs on the 50,000 training "
        "images and needs a GPU.",
        "",
        "| network | found by (lookup AE, seed 0) | its benchmark accuracy | size | params | "
        "recipe | epochs | s per epoch (median) | final train acc | final val acc (99 images) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for space, r in runs.items():
        f = r["found"]
        recipe = "DARTS (aux 0.4, drop path 0.2, cutout 16, clip 5)" if space == "nb301" \
            else "NAS-Bench-201"
        lines.append(
            f"| {space} `{r['arch']}` | {f['problem']} | {f['benchmark_accuracy']:.2f} "
            f"(file's best {f['benchmark_optimum']:.2f}) | C={r['size']['channels']}, "
            f"{r['size']['layers']} {'cells' if space == 'nb301' else 'cells per stage'} | "
            f"{r['params'] / 1e6:.2f} M | {recipe} | {len(r['history'])} | "
            f"{r['seconds_per_epoch_median']:.1f} | {r['history'][-1]['train_accuracy']:.1f} | "
            f"{r['final_val_accuracy']:.1f} |")
    lines += ["", "Per epoch (val accuracy on 99 images; chance is about 10 %):", ""]
    for space, r in runs.items():
        lines.append(f"* {space}: " + ", ".join(
            f"{h['epoch']}: loss {h['train_loss']:.3f}, val {h['val_accuracy']:.1f} "
            f"({h['seconds']:.0f} s)" for h in r["history"]))
    d = runs["nb301"]["calls"]
    if len(d) == 2 and d[0]["interrupted"]:
        lines += ["", f"The DARTS run was interrupted with SIGINT after its first checkpoint "
                  f"(exit status {d[0]['returncode']}); the same command then resumed it: "
                  f"\"{' '.join(d[1]['output'][:1])}\"."]
    lines.append("")
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
