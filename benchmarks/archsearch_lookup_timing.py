"""Re-times archsearch_lookup.py's serial pass alone (no fan-out running beside it) on the
three CIFAR-10 problems: the one-time set-up, then 10 seeded Aging Evolution searches of
3,000 evaluations each with the metric of results/paper-31-runs. Prints JSON.

    python benchmarks/archsearch_lookup_timing.py
"""

import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path

import gpsr
from gpsr.data import shared_dir

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ("NB101-CF10", "NB201-CF10", "NB301-CF10")


def _lookup_benchmark():
    spec = importlib.util.spec_from_file_location("archsearch_lookup",
                                                  ROOT / "benchmarks" / "archsearch_lookup.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def main() -> None:
    lookup = _lookup_benchmark()
    result = json.loads((ROOT / "results" / "paper-31-runs" / "result.json").read_text())
    expression = result["expression"]["infix"]
    load_before = os.getloadavg()
    rows = {}
    for name in PROBLEMS:
        problem = gpsr.load_problems(shared_dir() / "data" / "nas-bench-suite-zero", [name])[0]
        rows[name] = lookup.serial_timing(problem, expression, 10, 3000)
    every = [s for row in rows.values() for s in row["searches"]]
    print(json.dumps({
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "problems": {name: {k: round(row[k], 3) for k in ("setup", "median", "max")}
                     for name, row in rows.items()},
        "median": round(statistics.median(every), 3), "max": round(max(every), 3),
    }, indent=1))


if __name__ == "__main__":
    main()
