"""Architecture search with a zero-cost metric: Aging Evolution and random search.

A search maximizes a metric gpsr knows (a single proxy, an expression, or the metric of a
``gpsr run`` ``result.json``) over a search space, in one of two modes:

* **lookup** (:class:`LookupObjective`): on a benchmark problem, the metric is computed from
  the problem's logged proxy columns, so the true validation accuracy of whatever the search
  returns can be looked up. The search is restricted to the architectures in the problem
  file (:class:`ProblemDomain`): it samples them uniformly, and a mutation mutates the
  parent in the space and, when the file lacks the child (the NB101 and NB301 files are
  samples of 500 and 725 archs from spaces of 4x10^5 and 10^18 cells, NB201-CF10 keeps 9,445
  of the 15,625 cells, gpsr's mini problems 200 each), replaces it with one of the file's
  archs nearest to the child in the space's encoding, a different network from the parent.
* **live** (:class:`LiveObjective`): every candidate network is built from its arch string,
  initialised with a seed derived from (seed, arch), and scored by computing only the proxies
  the metric names on a real minibatch, fanned out through gpsr's executor; scores are
  journaled so an interrupted search resumes where it stopped.

Aging Evolution follows Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019 (Sec. 2, Algorithm 1): a population of ``population_size``
random architectures; each cycle draws ``sample_size`` members uniformly without replacement,
the best of them is the parent, its child joins the population and the oldest member leaves;
the result is the best architecture ever evaluated. The paper's settings (SR-NAS, appendix D,
table 11) are population 100, probability of mutation 0.5 and 3,000 evaluations; it states no
tournament sample size. gpsr uses 10, a tenth of the population (Real et al.'s large NASNet run
drew 25 of 100; the smaller sample keeps more of the population in play over 3,000
evaluations).

"Probability of mutation 0.5" is read as Real et al.'s *identity mutation*: a child is the
parent with one mutation (a uniform neighbour, :meth:`gpsr.spaces.SearchSpace.mutate`) with
probability ``p_mutation`` and an unchanged copy of it otherwise. A copy still costs one
evaluation of the budget (a live search takes its score from the cache rather than recomputing
it) and renews the parent's place in the population, the aging that Real et al. credit for the
regularization. ``p_mutation=1`` gives the common variant in which every child is mutated.

Random search draws ``max_evaluations`` architectures uniformly with replacement and returns
the best by the metric. Both count every evaluation of the metric, repeats included.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gpsr.data import Problem, finite_or_none
from gpsr.errors import GpsrError
from gpsr.executor import Executor, make_executor
from gpsr.expressions import Expression, parse
from gpsr.metric import Metric
from gpsr.spaces import SearchSpace, get_space

MODES = ("lookup", "live")
ALGORITHMS = ("ae", "random")
#: Called after every batch of evaluations: (evaluations done, budget, best score so far).
Progress = Callable[[int, int, float], None]


def as_expression(metric: Metric | Expression | str) -> Expression:
    """The expression of a metric object, an expression, a proxy name or a result.json."""
    if isinstance(metric, Metric):
        return metric.expression
    if isinstance(metric, Expression):
        return metric
    if not isinstance(metric, str):
        raise GpsrError(f"metric must be a proxy name, expression or result.json, not {metric!r}")
    if metric.endswith(".json"):
        from gpsr.search import read_result

        if not Path(metric).is_file():
            raise GpsrError(f"{metric}: no such result file")
        return parse(read_result(Path(metric))["expression"]["infix"])
    return parse(metric)


def as_metric(metric: Metric | Expression | str) -> Metric:
    """A live :class:`Metric` (its proxies must be computable on a network)."""
    return metric if isinstance(metric, Metric) else Metric(as_expression(metric))


# ---- where architectures come from -------------------------------------------------------
class SpaceDomain:
    """Proposals from a whole search space (live mode): its sampler and its mutation."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def sample(self, n: int, rng: random.Random) -> list[str]:
        return self.space.sample(n, rng.getrandbits(32))

    def mutate(self, arch: str, rng: random.Random) -> str:
        return self.space.mutate(arch, rng)


class ProblemDomain:
    """Proposals restricted to the architectures of a problem file (lookup mode).

    Sampling is uniform over the file's rows. A mutation mutates the parent in the space
    (:meth:`SearchSpace.mutate`) and, when the file lacks the child's network, snaps it to
    the file: uniformly among the file's archs nearest to the child by
    :meth:`SearchSpace.encode` (fewest differing positions), other than the parent's own
    network. On a file that holds the whole space this is the plain mutation.
    """

    def __init__(self, problem: Problem, space: SearchSpace) -> None:
        self.space = space
        self.archs = list(problem.archs)
        self.keys = [space.key(a) for a in self.archs]
        self.by_key = dict(zip(self.keys, self.archs))
        if len(self.by_key) < 2:
            raise GpsrError(f"problem {problem.name} holds a single network: a search needs more")
        self.row = {a: i for i, a in enumerate(self.archs)}
        self._encoded: np.ndarray | None = None
        self._keys = np.array(self.keys)
        self._snapped: dict[tuple[str, str], list[str]] = {}

    def sample(self, n: int, rng: random.Random) -> list[str]:
        return rng.choices(self.archs, k=n)

    def mutate(self, arch: str, rng: random.Random) -> str:
        parent = self.keys[self.row[arch]]
        child = self.space.mutate(arch, rng)
        key = self.space.key(child)
        if key in self.by_key:
            return self.by_key[key]
        return rng.choice(self.nearest(child, parent))

    def nearest(self, arch: str, parent: str) -> list[str]:
        """The file's archs nearest to ``arch`` (any arch of the space) by encoding, leaving
        out those that are the network ``parent`` (a key)."""
        if (arch, parent) not in self._snapped:
            if self._encoded is None:
                self._encoded = np.array([self.space.encode(a) for a in self.archs],
                                         dtype=np.int16)
            dist = (self._encoded != np.array(self.space.encode(arch))).sum(axis=1)
            dist[self._keys == parent] = np.iinfo(dist.dtype).max
            self._snapped[(arch, parent)] = [self.archs[i]
                                             for i in np.flatnonzero(dist == dist.min())]
        return self._snapped[(arch, parent)]


# ---- what a search maximizes ---------------------------------------------------------------
class LookupObjective:
    """A metric computed from a problem's logged proxies; accuracies looked up."""

    def __init__(self, problem: Problem, metric: Metric | Expression | str) -> None:
        self.expression = as_expression(metric)
        names = sorted(self.expression.proxies())
        missing = [p for p in names if p not in problem.proxies]
        if missing:
            raise GpsrError(
                f"metric {self.expression.infix()!r} names proxy {missing[0]!r}, which "
                f"problem {problem.name} lacks (it has: {', '.join(problem.proxies)})"
            )
        self.problem = problem
        with np.errstate(all="ignore"):
            scores = self.expression.evaluate({p: problem.column(p) for p in names})
        scores = np.broadcast_to(np.asarray(scores, dtype=np.float64), (len(problem),))
        # An undefined score (NaN) never wins: maximization ranks it below everything.
        self.scores = np.where(np.isnan(scores), -np.inf, scores)
        self.score_of = dict(zip(problem.archs, self.scores.tolist()))
        self.accuracy_of = dict(zip(problem.archs, problem.accuracy.tolist()))

    def evaluate(self, archs: Sequence[str]) -> list[float]:
        return [self.score_of[a] for a in archs]

    def top_pick(self) -> str:
        """The arch the metric ranks first over the whole problem (first row on ties)."""
        return self.problem.archs[int(np.argmax(self.scores))]


@dataclass(frozen=True)
class LiveJob:
    """One network to score: picklable, so any executor can run :func:`score_network`."""

    space: str
    arch: str
    expression: str
    batch: Any  # (images, labels) tensors
    num_classes: int
    device: str | None
    seed: int


def score_network(job: LiveJob) -> dict[str, Any]:
    """Build one network (torch seed from ``(seed, arch)``), compute the metric's proxies on
    it and evaluate the metric; returns the score and the seconds of each step."""
    import torch

    from gpsr.proxies.table import network_seed

    metric = Metric(job.expression)
    start = time.perf_counter()
    torch.manual_seed(network_seed(job.seed, job.arch))
    net = get_space(job.space).build(job.arch, job.num_classes)
    built = time.perf_counter()
    values = metric.proxy_values(net, job.batch, job.device, job.seed)
    proxied = time.perf_counter()
    score = metric.score_values(values)
    done = time.perf_counter()
    return {
        "key": get_space(job.space).key(job.arch),
        "arch": job.arch,
        # JSON has no NaN; an undefined score is stored as null and never wins.
        "score": None if math.isnan(score) else score,
        "proxies": values,
        "seconds_build": built - start,
        "seconds_proxies": proxied - built,
        "seconds_metric": done - proxied,
    }


class LiveObjective:
    """A metric computed on live networks of a space, fanned out through an executor.

    Each distinct network (by :meth:`SearchSpace.key`) is scored once; repeats are read from
    the cache. With ``journal``, every score is appended to that JSON-lines file as it
    finishes and read back when the same search runs again (:mod:`gpsr.journal`), so an
    interrupted search replays its finished evaluations and goes on (the search is
    deterministic given its seed and the scores).
    """

    def __init__(
        self,
        space: SearchSpace | str,
        metric: Metric | Expression | str,
        batch: Any,
        num_classes: int = 10,
        device: str | None = None,
        seed: int = 0,
        executor: Executor | None = None,
        journal: str | Path | None = None,
    ) -> None:
        from gpsr.journal import read_journal
        from gpsr.proxies import check_batch

        self.space = get_space(space) if isinstance(space, str) else space
        self.metric = as_metric(metric)
        self.batch = check_batch(batch)
        self.num_classes = num_classes
        self.device = device
        self.seed = seed
        self.executor = executor or make_executor("local", 1)
        self.journal = Path(journal) if journal else None
        self.config = {
            "space": self.space.name,
            "metric": self.metric.expression.infix(),
            "num_classes": num_classes,
            "seed": seed,
            "batch_shape": list(self.batch[0].shape),
            "batch_checksum": float(self.batch[0].double().sum()),
        }
        self.records: dict[str, dict] = {}
        if self.journal and self.journal.exists():
            self.records = read_journal(self.journal, self.config, "key")
        self.resumed = len(self.records)
        self.seconds = {"build": 0.0, "proxies": 0.0, "metric": 0.0, "waiting": 0.0}
        self.networks_scored = 0

    def evaluate(self, archs: Sequence[str]) -> list[float]:
        from gpsr.journal import run_journaled

        keys = [self.space.key(a) for a in archs]
        todo = list({k: a for k, a in zip(keys, archs) if k not in self.records}.values())
        if todo:
            jobs = [
                LiveJob(self.space.name, a, self.metric.expression.infix(), self.batch,
                        self.num_classes, self.device, self.seed)
                for a in todo
            ]
            start = time.perf_counter()
            before = set(self.records)
            if self.journal:
                self.records = run_journaled(
                    self.journal, self.config, jobs, lambda j: self.space.key(j.arch),
                    score_network, self.executor, "key", done=self.records,
                )
            else:
                for _, record in self.executor.map(score_network, jobs):
                    self.records[record["key"]] = record
            self.seconds["waiting"] += time.perf_counter() - start
            for key in set(self.records) - before:
                record = self.records[key]
                self.networks_scored += 1
                for step in ("build", "proxies", "metric"):
                    self.seconds[step] += record[f"seconds_{step}"]
        return [_as_score(self.records[k]["score"]) for k in keys]


def _as_score(value: float | None) -> float:
    return -math.inf if value is None else float(value)


# ---- the algorithms ----------------------------------------------------------------------------
@dataclass
class SearchRun:
    """What one search did: every evaluation in order, the best, and where the time went."""

    algorithm: dict[str, Any]
    archs: list[str]
    scores: list[float]
    best_arch: str
    best_score: float
    best_at: int  # 1-based evaluation at which the best was first evaluated
    seconds_total: float
    seconds_objective: float  # inside the objective: lookups, or waiting for networks

    @property
    def evaluations(self) -> int:
        return len(self.scores)

    @property
    def seconds_search(self) -> float:
        """The search loop's own time: sampling, tournaments, mutation, bookkeeping."""
        return self.seconds_total - self.seconds_objective


class _Recorder:
    def __init__(self, objective: Any, budget: int, on_progress: Progress | None) -> None:
        self.objective = objective
        self.budget = budget
        self.on_progress = on_progress
        self.archs: list[str] = []
        self.scores: list[float] = []
        self.best = -math.inf
        self.seconds_objective = 0.0
        self.start = time.perf_counter()

    def evaluate(self, archs: list[str]) -> list[float]:
        start = time.perf_counter()
        scores = self.objective.evaluate(archs)
        self.seconds_objective += time.perf_counter() - start
        self.archs += archs
        self.scores += scores
        self.best = max(self.best, *scores)
        if self.on_progress:
            self.on_progress(len(self.scores), self.budget, self.best)
        return scores

    def finish(self, algorithm: dict[str, Any]) -> SearchRun:
        best = int(np.argmax(self.scores)) if not all(map(math.isinf, self.scores)) else 0
        return SearchRun(algorithm, self.archs, self.scores, self.archs[best],
                         self.scores[best], best + 1, time.perf_counter() - self.start,
                         self.seconds_objective)


@dataclass
class AgingEvolution:
    """Aging (regularized) evolution, Real et al. AAAI 2019 (see the module docstring).

    ``batch_size`` children are made (each by its own tournament on the current population)
    before they are evaluated together, so a live search can fan them out; 1 is the
    sequential algorithm, and the first population is always evaluated as one batch.
    """

    population_size: int = 100
    sample_size: int = 10
    p_mutation: float = 0.5
    max_evaluations: int = 3000
    batch_size: int = 1
    random_state: int | None = 0

    def __post_init__(self) -> None:
        if self.population_size < 2:
            raise GpsrError(f"population size must be >= 2, got {self.population_size}")
        if not 1 <= self.sample_size <= self.population_size:
            raise GpsrError(f"sample size must be in 1..{self.population_size} (the population "
                            f"size), got {self.sample_size}")
        if not 0.0 <= self.p_mutation <= 1.0:
            raise GpsrError(f"probability of mutation must be in [0, 1], got {self.p_mutation}")
        if self.max_evaluations < self.population_size:
            raise GpsrError(
                f"evaluation budget {self.max_evaluations} is below the population size "
                f"{self.population_size}: Aging Evolution evaluates a whole first population"
            )
        if self.batch_size < 1:
            raise GpsrError(f"batch size must be >= 1, got {self.batch_size}")

    def run(self, domain: SpaceDomain | ProblemDomain, objective: Any,
            on_progress: Progress | None = None) -> SearchRun:
        """Search ``domain`` for the arch maximizing ``objective``."""
        rng = random.Random(self.random_state)
        rec = _Recorder(objective, self.max_evaluations, on_progress)
        first = domain.sample(self.population_size, rng)
        population = deque(zip(first, rec.evaluate(first)))
        while len(rec.scores) < self.max_evaluations:
            children = []
            for _ in range(min(self.batch_size, self.max_evaluations - len(rec.scores))):
                contenders = rng.sample(range(len(population)), self.sample_size)
                parent = population[max(contenders, key=lambda i: population[i][1])][0]
                mutated = rng.random() < self.p_mutation
                children.append(domain.mutate(parent, rng) if mutated else parent)
            for child, score in zip(children, rec.evaluate(children)):
                population.append((child, score))
                population.popleft()
        return rec.finish({"name": "aging-evolution"} | asdict(self))


@dataclass
class RandomSearch:
    """Uniform random search: ``max_evaluations`` draws with replacement, best by the metric."""

    max_evaluations: int = 3000
    batch_size: int = 100
    random_state: int | None = 0

    def __post_init__(self) -> None:
        if self.max_evaluations < 1:
            raise GpsrError(f"evaluation budget must be >= 1, got {self.max_evaluations}")
        if self.batch_size < 1:
            raise GpsrError(f"batch size must be >= 1, got {self.batch_size}")

    def run(self, domain: SpaceDomain | ProblemDomain, objective: Any,
            on_progress: Progress | None = None) -> SearchRun:
        rng = random.Random(self.random_state)
        rec = _Recorder(objective, self.max_evaluations, on_progress)
        while len(rec.scores) < self.max_evaluations:
            n = min(self.batch_size, self.max_evaluations - len(rec.scores))
            rec.evaluate(domain.sample(n, rng))
        return rec.finish({"name": "random-search"} | asdict(self))


def make_algorithm(
    algorithm: str = "ae",
    max_evaluations: int = 3000,
    population_size: int = 100,
    sample_size: int = 10,
    p_mutation: float = 0.5,
    batch_size: int = 1,
    random_state: int | None = 0,
) -> AgingEvolution | RandomSearch:
    """``"ae"`` (Aging Evolution) or ``"random"`` with the given settings."""
    if random_state is not None and random_state < 0:
        raise GpsrError(f"seed must be >= 0, got {random_state}")
    if algorithm == "ae":
        return AgingEvolution(population_size, sample_size, p_mutation, max_evaluations,
                              batch_size, random_state)
    if algorithm == "random":
        return RandomSearch(max_evaluations, max(batch_size, 1), random_state)
    raise GpsrError(f"unknown search algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")


# ---- the whole search, as the CLI and the API run it ------------------------------------------
@dataclass
class ArchSearchResult:
    """The outcome of :func:`search_architectures`, ready for JSON (:meth:`to_dict`)."""

    mode: str
    space: str
    metric: str
    run: SearchRun
    problem: str | None = None
    #: Lookup mode: the true accuracy of the returned arch, the problem's best, and the gap.
    best_accuracy: float | None = None
    optimum_accuracy: float | None = None
    optimum_arch: str | None = None
    regret: float | None = None
    #: Live mode: networks built and scored (repeats come from the cache), and seconds.
    networks_scored: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        improvements = []
        best = -math.inf
        for i, (arch, score) in enumerate(zip(run.archs, run.scores), start=1):
            if score > best:
                best = score
                improvements.append({"evaluation": i, "score": finite_or_none(score),
                                     "arch": arch})
        return {
            "mode": self.mode,
            "space": self.space,
            "problem": self.problem,
            "metric": self.metric,
            "algorithm": run.algorithm,
            "best_arch": run.best_arch,
            "best_score": finite_or_none(run.best_score),
            "best_found_at_evaluation": run.best_at,
            "evaluations": run.evaluations,
            "distinct_archs": len(set(run.archs)),
            "best_accuracy": self.best_accuracy,
            "optimum_accuracy": self.optimum_accuracy,
            "optimum_arch": self.optimum_arch,
            "regret": self.regret,
            "networks_scored": self.networks_scored,
            "seconds": self.seconds,
            "improvements": improvements,
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        run = self.run
        lines = [
            f"{run.algorithm['name']} over {self.space} ({self.mode}"
            + (f", problem {self.problem}" if self.problem else "") + ")",
            f"metric: {self.metric}",
            f"evaluations: {run.evaluations} ({len(set(run.archs))} distinct archs)",
            f"best arch: {run.best_arch}",
            f"best score: {run.best_score:.6g} (first evaluated at {run.best_at})",
        ]
        if self.best_accuracy is not None:
            lines.append(f"its true accuracy: {self.best_accuracy:.4g}; benchmark optimum "
                         f"{self.optimum_accuracy:.4g}; regret {self.regret:.4g}")
        if self.networks_scored is not None:
            lines.append(f"networks scored: {self.networks_scored}")
        lines.append("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def lookup_problem(problem: Problem | str, data: str | Path | Sequence[str | Path] | None = None,
                   ) -> Problem:
    """A problem object, or one by name from ``data`` (default: the shared
    NAS-Bench-Suite-Zero folder when present, and the problems that ship with gpsr)."""
    from gpsr.data import load_problems, shared_dir
    from gpsr.minibench import SHIPPED_DIR

    if isinstance(problem, Problem):
        return problem
    if data is None:
        sources: list[Path] = [SHIPPED_DIR]
        root = shared_dir()
        if root is not None and (root / "data" / "nas-bench-suite-zero").is_dir():
            sources.insert(0, root / "data" / "nas-bench-suite-zero")
    else:
        sources = [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]
    return load_problems(sources, [problem])[0]


def search_architectures(
    metric: Metric | Expression | str,
    space: str | None = None,
    *,
    mode: str = "lookup",
    problem: Problem | str | None = None,
    data: str | Path | Sequence[str | Path] | None = None,
    algorithm: str = "ae",
    max_evaluations: int = 3000,
    population_size: int = 100,
    sample_size: int = 10,
    p_mutation: float = 0.5,
    random_state: int | None = 0,
    executor: Executor | None = None,
    batch: Any = None,
    num_classes: int = 10,
    device: str | None = None,
    journal: str | Path | None = None,
    on_progress: Progress | None = None,
) -> ArchSearchResult:
    """Search for the architecture that maximizes ``metric``.

    ``mode="lookup"``: over the archs of benchmark ``problem`` (a :class:`Problem` or a name
    loaded from ``data``), the metric from its logged proxies; reports the true accuracy of
    the pick and its regret. ``space`` may be given as a check. ``mode="live"``: over
    ``space``, scoring live networks on ``batch`` (default: the shared CIFAR-10 sample) with
    ``executor``; with ``journal`` an interrupted search resumes. ``algorithm`` is ``"ae"``
    (:class:`AgingEvolution`) or ``"random"`` (:class:`RandomSearch`); ``random_state``
    makes the search reproducible.
    """
    if mode not in MODES:
        raise GpsrError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    if mode == "lookup":
        if problem is None:
            raise GpsrError("lookup mode needs a problem (e.g. NB201-CF10)")
        prob = lookup_problem(problem, data)
        the_space = get_space(prob.space)
        if space is not None and get_space(space).name != the_space.name:
            raise GpsrError(f"problem {prob.name} is in space {the_space.name}, not {space}")
        objective: Any = LookupObjective(prob, metric)
        search = make_algorithm(algorithm, max_evaluations, population_size, sample_size,
                                p_mutation, 1, random_state)
        run = search.run(ProblemDomain(prob, the_space), objective, on_progress)
        best = objective.accuracy_of[run.best_arch]
        optimum = int(np.argmax(prob.accuracy))
        return ArchSearchResult(
            "lookup", the_space.name, objective.expression.infix(), run, prob.name,
            best_accuracy=best, optimum_accuracy=float(prob.accuracy[optimum]),
            optimum_arch=prob.archs[optimum], regret=float(prob.accuracy[optimum]) - best,
            seconds={"total": run.seconds_total, "objective": run.seconds_objective,
                     "search": run.seconds_search},
        )
    if space is None:
        raise GpsrError(f"live mode needs a space (known: {', '.join(_space_names())})")
    the_space = get_space(space)
    chosen = as_metric(metric)
    if batch is None:
        from gpsr.proxies import default_batch

        batch = default_batch()
        if batch is None:
            raise GpsrError("no batch given and no shared CIFAR-10 sample found (set GPSR_SHARED)")
    executor = executor or make_executor("local", 1)
    jobs = getattr(executor, "jobs", 1)
    objective = LiveObjective(the_space, chosen, batch, num_classes, device,
                              0 if random_state is None else random_state, executor, journal)
    search = make_algorithm(algorithm, max_evaluations, population_size, sample_size,
                            p_mutation, jobs, random_state)
    run = search.run(SpaceDomain(the_space), objective, on_progress)
    return ArchSearchResult(
        "live", the_space.name, chosen.expression.infix(), run,
        networks_scored=objective.networks_scored,
        seconds={"total": run.seconds_total, "search": run.seconds_search,
                 "waiting_for_networks": objective.seconds["waiting"],
                 "build": objective.seconds["build"], "proxies": objective.seconds["proxies"],
                 "metric": objective.seconds["metric"]},
    )


def _space_names() -> tuple[str, ...]:
    from gpsr.spaces import SPACES

    return SPACES


def top_picks(problem: Problem, metrics: dict[str, Metric | Expression | str]) -> dict[str, Any]:
    """SR-NAS appendix F: for every metric, the arch it ranks first over the whole problem
    and that arch's true accuracy, beside the problem's optimum."""
    optimum = int(np.argmax(problem.accuracy))
    picks = {}
    for name, metric in metrics.items():
        arch = LookupObjective(problem, metric).top_pick()
        picks[name] = {"arch": arch, "accuracy": float(problem.accuracy[problem.archs.index(arch)])}
    return {"problem": problem.name, "optimum": {"arch": problem.archs[optimum],
                                                "accuracy": float(problem.accuracy[optimum])},
            "picks": picks}
