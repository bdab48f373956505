"""gpsr: synthesize zero-cost NAS proxies with GPU-vectorized genetic-programming SR.

The public surface::

    import gpsr
    problems = gpsr.load_problems("path/to/nas-bench-suite-zero", ["NB201-CF10", "NB101-CF10"])
    dataset = gpsr.build_dataset(problems)
    result = gpsr.synthesize(dataset, gpsr.SearchConfig(random_state=0), runs=4)
    print(result.expression, result.report["taus"]["test"])
    gpsr.evaluate(gpsr.parse("log(flops) * snip"), dataset)
    found = gpsr.search_architectures("result.json", problem="NB201-CF10")  # or mode="live"
"""

__version__ = "0.1.0"

# First: fixes numba's cache folder before any kernel is defined (see gpsr/cache.py).
from gpsr.cache import numba_cache_dir

# isort: split
from gpsr.archsearch import (
    AgingEvolution,
    ArchSearchResult,
    RandomSearch,
    search_architectures,
)
from gpsr.data import Dataset, Problem, build_dataset, load_csv, load_naslib_json, load_problems
from gpsr.errors import GpsrError
from gpsr.executor import Executor, LocalExecutor, RayExecutor, make_executor
from gpsr.expressions import Expression, parse
from gpsr.genetic import SearchConfig
from gpsr.metric import Metric
from gpsr.report import taus_by_split as evaluate_many
from gpsr.search import SynthesisResult, synthesize

# Subpackages the README uses as gpsr.spaces / gpsr.proxies after a plain `import gpsr`.
from gpsr import proxies, spaces  # isort: skip


def evaluate(expression: Expression | str, dataset: Dataset, device: str = "auto") -> dict:
    """Kendall tau of one expression on every problem of ``dataset``, per split."""
    from gpsr.report import SPLITS, tau_dict

    if isinstance(expression, str):
        expression = parse(expression, dataset.proxies)
    table = evaluate_many([expression], dataset, device)
    return {split: tau_dict(table[split][0], dataset.names) for split in SPLITS}


__all__ = [
    "AgingEvolution",
    "ArchSearchResult",
    "RandomSearch",
    "search_architectures",
    "Dataset",
    "Executor",
    "Expression",
    "GpsrError",
    "LocalExecutor",
    "Problem",
    "RayExecutor",
    "SearchConfig",
    "SynthesisResult",
    "build_dataset",
    "evaluate",
    "evaluate_many",
    "load_csv",
    "load_naslib_json",
    "load_problems",
    "make_executor",
    "Metric",
    "numba_cache_dir",
    "parse",
    "proxies",
    "spaces",
    "synthesize",
]
