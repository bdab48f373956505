"""Methods that turn NAS problems into one scoring rule, gpsr's SR among them, and their
comparison on the same data: on held-out rows of the problems searched over, and on problems
never seen (leave-one-problem-out).

A :class:`Method` takes a :class:`~gpsr.data.Dataset` and fits on its input split only;
the :class:`ScoringRule` it returns scores a problem's architectures from their proxy
columns, and its Kendall tau per problem and split is what every method is judged by.
Methods are registered by name (:data:`METHODS`, :func:`make_method`).

Where a baseline's paper leaves a choice open, or its setting differs from this one, the
class docstring says what gpsr chose.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import norm, rankdata

from gpsr.data import FAILURE_SENTINEL, Dataset, Problem, build_dataset, finite_or_none
from gpsr.errors import GpsrError
from gpsr.executor import Executor
from gpsr.expressions import Expression
from gpsr.genetic import SearchConfig
from gpsr.kernels.kendall import kendall_tau
from gpsr.report import SPLITS, gpsr_commit, taus_by_split

#: Weights, preprocessing and models are fitted on these rows of each problem.
FIT_SPLIT = "input"


# ---- scoring rules -----------------------------------------------------------------------
class ScoringRule:
    """A fitted rule: scores for a set of architectures of one problem, from its proxies.

    Rules built on ranks or per-problem normalization score a pool of architectures
    together (AZ-NAS and RoBoT normalize over the candidates at hand); an expression
    scores each architecture on its own.
    """

    def __init__(self, proxies: Sequence[str], expression: str | None = None,
                 description: str | None = None) -> None:
        self.proxies = tuple(proxies)
        #: An exportable formula, or None for a rule that is a fitted model.
        self.expression = expression
        #: What the rule computes, for reports.
        self.description = description or expression or type(self).__name__

    def score(self, values: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``values`` (architectures x ``self.proxies``)."""
        raise NotImplementedError

    def score_problem(self, problem: Problem) -> np.ndarray:
        missing = [p for p in self.proxies if p not in problem.proxies]
        if missing:
            raise GpsrError(f"problem {problem.name} lacks proxy {missing[0]!r} of this rule")
        return self.score(problem.select(proxies=self.proxies).values)

    def tau(self, problem: Problem) -> float:
        """Kendall tau-b of the rule's scores with accuracy; NaN where undefined."""
        if len(problem) < 2:
            return float("nan")
        return float(kendall_tau(self.score_problem(problem), problem.accuracy))

    def taus(self, dataset: Dataset) -> dict[str, dict[str, float | None]]:
        """``{split: {problem: tau or None}}`` on every split of ``dataset``."""
        return {split: {p.name: finite_or_none(self.tau(p)) for p in dataset.part(split)}
                for split in SPLITS}


class ExpressionRule(ScoringRule):
    """A closed-form expression over proxies (gpsr's protected semantics)."""

    def __init__(self, expression: Expression) -> None:
        super().__init__(sorted(expression.proxies()), expression.infix())
        self.tree = expression

    def score(self, values: np.ndarray) -> np.ndarray:
        columns = {p: values[:, k] for k, p in enumerate(self.proxies)}
        return np.broadcast_to(self.tree.evaluate(columns), (len(values),)).astype(np.float64)

    def taus(self, dataset: Dataset) -> dict[str, dict[str, float | None]]:
        # The search's own tau engine, so a method's taus equal those of `gpsr evaluate`.
        table = taus_by_split([self.tree], dataset)
        return {s: {n: finite_or_none(float(t)) for n, t in zip(dataset.names, table[s][0])}
                for s in SPLITS}


def clean(values: np.ndarray) -> np.ndarray:
    """Failure sentinels (-1e8 or below, NaN, +/-inf) replaced by the column's lowest valid
    value, so a failed proxy computation ranks an architecture last without one number
    dominating a scale; a column with no valid value becomes 0."""
    values = np.array(values, dtype=np.float64)
    bad = ~np.isfinite(values) | (values <= FAILURE_SENTINEL)
    for k in range(values.shape[1]):
        good = values[~bad[:, k], k]
        values[bad[:, k], k] = good.min() if len(good) else 0.0
    return values


def signed_log(values: np.ndarray) -> np.ndarray:
    """``sign(x) log(1 + |x|)``: proxies such as synflow span tens of orders of magnitude,
    so a linear rule over raw values would see only their largest few."""
    return np.sign(values) * np.log1p(np.abs(values))


class LinearRule(ScoringRule):
    """``sum_k w_k z_k`` over proxies normalized within the scored pool of architectures."""

    def __init__(self, proxies: Sequence[str], weights: np.ndarray, normalize: str,
                 log: bool) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.normalize, self.log = normalize, log
        terms = " ".join(f"{w:+.3g}*{normalize}({'slog ' if log else ''}{p})"
                         for p, w in zip(proxies, self.weights) if w != 0)
        super().__init__(proxies, None, terms)

    def features(self, values: np.ndarray) -> np.ndarray:
        x = clean(values)
        if self.log:
            x = signed_log(x)
        if self.normalize == "zscore":
            spread = x.std(axis=0)
            return (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        low, span = x.min(axis=0), np.ptp(x, axis=0)
        return (x - low) / np.where(span > 0, span, 1.0)

    def score(self, values: np.ndarray) -> np.ndarray:
        return self.features(values) @ self.weights


class RankAggregationRule(ScoringRule):
    """AZ-NAS's non-linear rank aggregation: ``sum_k log(rank_k / m)`` over the chosen
    proxies, rank 1 the worst and ``m`` (the pool size) the best of each proxy (Lee & Ham,
    CVPR 2024, eq. 9). ``signs`` orient each proxy so that larger is better."""

    def __init__(self, proxies: Sequence[str], signs: Sequence[float]) -> None:
        self.signs = np.asarray(signs, dtype=np.float64)
        super().__init__(proxies, None, " + ".join(
            f"log(rank({'-' if s < 0 else ''}{p})/m)" for p, s in zip(proxies, self.signs)))

    def score(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        failed = ~np.isfinite(values) | (values <= FAILURE_SENTINEL)
        # A failed computation ranks below every valid value whatever the proxy's
        # orientation; failed rows tie with each other and share their average rank.
        x = np.where(failed, -np.inf, values * self.signs)
        ranks = np.column_stack([rankdata(x[:, k]) for k in range(x.shape[1])])
        return np.log(ranks / len(x)).sum(axis=1)


class RegressorRule(ScoringRule):
    """A fitted scikit-learn regressor's predicted accuracy."""

    def __init__(self, proxies: Sequence[str], model) -> None:
        super().__init__(proxies, None, f"{type(model).__name__} over {', '.join(proxies)}")
        self.model = model

    def score(self, values: np.ndarray) -> np.ndarray:
        return self.model.predict(clean(values))


# ---- methods -------------------------------------------------------------------------------
class Method:
    """Problems in (a :class:`Dataset`, fitted on its input split), one scoring rule out."""

    #: Registry name.
    name = ""
    #: The paper the method follows.
    follows = ""

    def fit(self, dataset: Dataset) -> ScoringRule:
        raise NotImplementedError


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def make_method(name: str, **settings) -> Method:
    """A registered method by name; ``settings`` go to its constructor."""
    if name not in METHODS:
        raise GpsrError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    accepted = inspect.signature(METHODS[name]).parameters
    unknown = [key for key in settings if key not in accepted]
    if unknown:
        raise GpsrError(f"method {name!r} has no setting {unknown[0]!r} "
                        f"(it has: {', '.join(accepted) or 'none'})")
    return METHODS[name](**settings)


def _fit_problems(dataset: Dataset) -> list[Problem]:
    return dataset.part(FIT_SPLIT)


def _mean_tau(scores: Sequence[np.ndarray], problems: Sequence[Problem]) -> float:
    """Mean Kendall tau over problems, an undefined tau counting as 0 (as in equation 1)."""
    taus = [kendall_tau(s, p.accuracy) for s, p in zip(scores, problems)]
    return float(np.mean(np.nan_to_num(np.asarray(taus, dtype=np.float64), nan=0.0)))


def _orientations(problems: Sequence[Problem], proxies: Sequence[str]) -> np.ndarray:
    """+1 or -1 per proxy: the sign of its mean tau over ``problems`` (plain is negative)."""
    mean = np.array([_mean_tau([p.column(x) for p in problems], problems) for x in proxies])
    return np.where(mean < 0, -1.0, 1.0)


@register_method
class BestSingleProxy(Method):
    """(a) The one proxy (or its negation) with the highest mean input tau over the problems.

    One proxy for all problems, as the SR search returns one expression for all: the
    per-problem best proxy, chosen on each problem's own input split, is in every
    ``gpsr run`` report instead.
    """

    name = "best-single"
    follows = "the hand-crafted baseline of every ZC-proxy paper (e.g. NAS-Bench-Suite-Zero)"

    def fit(self, dataset: Dataset) -> ScoringRule:
        problems = _fit_problems(dataset)
        best, best_tau = None, -np.inf
        for proxy in dataset.proxies:
            for tree in (Expression(proxy), Expression("neg", [Expression(proxy)])):
                rule = ExpressionRule(tree)
                tau = _mean_tau([rule.score_problem(p) for p in problems], problems)
                if tau > best_tau:
                    best, best_tau = rule, tau
        return best


@register_method
class RankAggregation(Method):
    """(b) AZ-NAS rank aggregation (Lee & Ham, CVPR 2024): the sum of the logs of each
    proxy's normalized rank.

    AZ-NAS aggregates its own four proxies (expressivity, progressivity, trainability,
    complexity), which NAS-Bench-Suite-Zero does not log. gpsr chooses the set from the
    given proxies by forward selection on the input split: add, one at a time, the proxy
    that most raises the mean input tau (or least lowers it) until all are in, and keep the
    best set met on the way; each proxy is oriented by the sign of its mean input tau, and
    ``max_proxies`` bounds the set.
    """

    name = "az-nas"
    follows = "AZ-NAS, Lee & Ham, CVPR 2024 (non-linear rank aggregation)"

    def __init__(self, max_proxies: int | None = None) -> None:
        self.max_proxies = max_proxies

    def fit(self, dataset: Dataset) -> ScoringRule:
        problems = _fit_problems(dataset)
        proxies = list(dataset.proxies)
        signs = dict(zip(proxies, _orientations(problems, proxies)))
        chosen: list[str] = []
        best, best_tau = [], -np.inf
        limit = min(self.max_proxies or len(proxies), len(proxies))
        while len(chosen) < limit:
            trials = []
            for proxy in proxies:
                if proxy in chosen:
                    continue
                rule = RankAggregationRule(chosen + [proxy], [signs[p] for p in chosen + [proxy]])
                trials.append((_mean_tau([rule.score_problem(p) for p in problems], problems),
                               proxy))
            tau, proxy = max(trials)
            chosen.append(proxy)
            if tau > best_tau:
                best, best_tau = list(chosen), tau
        return RankAggregationRule(best, [signs[p] for p in best])


def _stacked_features(problems: Sequence[Problem], normalize: str, log: bool,
                      proxies: Sequence[str]) -> list[np.ndarray]:
    probe = LinearRule(proxies, np.zeros(len(proxies)), normalize, log)
    return [probe.features(p.select(proxies=proxies).values) for p in problems]


@register_method
class LinearWeights(Method):
    """(c) UP-NAS-style learned linear weights over standardized proxies (Huang et al.,
    CVPRW 2024, which learns the weights of a weighted sum of proxy scores).

    gpsr's choices: proxies are cleaned of sentinels, put through ``sign(x) log(1 + |x|)``
    (``log``) and z-scored within each problem; the weights are a ridge regression (``alpha``)
    of each problem's z-scored accuracy on them, pooled over the input splits with each
    problem weighing the same in total (as in the SR fitness; unweighted, the largest
    problem would decide the weights alone). UP-NAS learns
    its weights by gradient descent inside a predictor and searches in its embedding space;
    only the linear combination is kept here.
    """

    name = "up-nas"
    follows = "UP-NAS, Huang et al., CVPR workshops 2024 (learned linear proxy weights)"

    def __init__(self, alpha: float = 1.0, log: bool = True) -> None:
        self.alpha, self.log = alpha, log

    def fit(self, dataset: Dataset) -> ScoringRule:
        problems = _fit_problems(dataset)
        x = np.vstack(_stacked_features(problems, "zscore", self.log, dataset.proxies))
        y = np.concatenate([(p.accuracy - p.accuracy.mean()) / (p.accuracy.std() or 1.0)
                            for p in problems])
        share = np.concatenate([np.full(len(p), len(x) / (len(problems) * len(p)))
                                for p in problems])
        gram = (x * share[:, None]).T @ x + self.alpha * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, (x * share[:, None]).T @ y)
        return LinearRule(dataset.proxies, weights, "zscore", self.log)


@register_method
class BayesianWeights(Method):
    """(d) RoBoT-style Bayesian optimization of linear weights (He et al., ICLR 2024).

    RoBoT scores an architecture by ``sum_k w_k`` times its min-max-normalized proxy
    ``k``, with ``w`` in ``[-1, 1]^K`` found by Bayesian optimization of the ensemble's
    Kendall tau on queried architectures, and keeps the best weights queried. Here the BO
    objective is the mean Kendall tau over the input splits; the surrogate is a Gaussian
    process (Matern 5/2 plus noise, scikit-learn), the acquisition expected improvement,
    maximized over ``candidates`` uniform random points plus Gaussian steps around the best
    so far; ``initial`` random points start it and ``iterations`` more follow. As for (c),
    proxies are cleaned of sentinels and put through ``sign(x) log(1 + |x|)`` (``log``)
    before normalization: RoBoT's own proxies do not span the orders of magnitude synflow
    does. RoBoT's second stage (greedy search of the ranked architectures) is a search
    strategy, not a scoring rule, and is left out.
    """

    name = "robot"
    follows = "RoBoT, He et al., ICLR 2024 (BO over proxy weights in [-1, 1])"

    def __init__(self, initial: int = 10, iterations: int = 50, candidates: int = 2000,
                 log: bool = True, random_state: int = 0) -> None:
        self.initial, self.iterations, self.candidates = initial, iterations, candidates
        self.log, self.random_state = log, random_state

    def fit(self, dataset: Dataset) -> ScoringRule:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        problems = _fit_problems(dataset)
        features = _stacked_features(problems, "minmax", self.log, dataset.proxies)
        rng = np.random.default_rng(self.random_state)
        dim = len(dataset.proxies)

        def objective(w: np.ndarray) -> float:
            return _mean_tau([f @ w for f in features], problems)

        xs = list(rng.uniform(-1, 1, (self.initial, dim)))
        ys = [objective(w) for w in xs]
        kernel = ConstantKernel() * Matern(nu=2.5) + WhiteKernel(1e-4)
        for _ in range(self.iterations):
            gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0,
                                          random_state=int(rng.integers(2**31)))
            with warnings.catch_warnings():
                # A noise level at its bound is expected: the objective is deterministic.
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(np.array(xs), np.array(ys))
            best = xs[int(np.argmax(ys))]
            pool = np.vstack([rng.uniform(-1, 1, (self.candidates, dim)),
                              np.clip(best + rng.normal(0, 0.1, (self.candidates // 4, dim)),
                                      -1, 1)])
            mean, std = gp.predict(pool, return_std=True)
            gain = mean - max(ys)
            z = gain / np.maximum(std, 1e-12)
            expected = gain * norm.cdf(z) + std * norm.pdf(z)
            w = pool[int(np.argmax(expected))]
            xs.append(w)
            ys.append(objective(w))
        return LinearRule(dataset.proxies, xs[int(np.argmax(ys))], "minmax", self.log)


@register_method
class ForestRegressor(Method):
    """(g) A learned regressor over the same proxies, GreenFactory-style (a random forest
    predicting accuracy from zero-cost proxies, trained on the input split).

    The features are the proxies as released (sentinels replaced by the column's lowest
    valid value; trees need no scaling), the target the released accuracy, pooled over
    the input splits of every problem. Every hyperparameter of the forest is here.
    """

    name = "forest"
    follows = "GreenFactory (random forest over zero-cost proxies predicting accuracy)"

    def __init__(self, n_estimators: int = 100, min_samples_leaf: int = 1,
                 max_features: float | str = 1.0, random_state: int = 0) -> None:
        self.n_estimators, self.min_samples_leaf = n_estimators, min_samples_leaf
        self.max_features, self.random_state = max_features, random_state

    def fit(self, dataset: Dataset) -> ScoringRule:
        from sklearn.ensemble import RandomForestRegressor

        problems = _fit_problems(dataset)
        model = RandomForestRegressor(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, random_state=self.random_state, n_jobs=1)
        model.fit(np.vstack([clean(p.values) for p in problems]),
                  np.concatenate([p.accuracy for p in problems]))
        return RegressorRule(dataset.proxies, model)


@register_method
class SymbolicRegression(Method):
    """gpsr's SR search (:func:`gpsr.search.synthesize`): ``runs`` seeded runs and the
    paper's choice among their winners. ``config`` holds every search setting."""

    name = "sr"
    follows = "SR-ZC-NAS (this project's paper: equation 1, elitist survival)"

    def __init__(self, config: SearchConfig | None = None, runs: int = 1,
                 executor: Executor | None = None) -> None:
        self.config = config or SearchConfig()
        self.runs, self.executor = runs, executor

    def search_config(self, dataset: Dataset) -> SearchConfig:
        return self.config

    def fit(self, dataset: Dataset) -> ScoringRule:
        from gpsr.search import synthesize

        result = synthesize(dataset, self.search_config(dataset), self.runs, self.executor)
        return ExpressionRule(result.expression)


@register_method
class Generational(SymbolicRegression):
    """(e) EZNAS's non-elitist generational procedure (Akhauri et al., NeurIPS 2022: each
    generation's offspring replace the parents), everything else as gpsr's SR."""

    name = "eznas"
    follows = "EZNAS, Akhauri et al., NeurIPS 2022 (generational, non-elitist survival)"

    def search_config(self, dataset: Dataset) -> SearchConfig:
        return replace(self.config, survival="generational")


@register_method
class MeanTau(SymbolicRegression):
    """(f) SR whose fitness is the plain mean tau over problems instead of equation 1."""

    name = "mean-tau"
    follows = "the unnormalized alternative to equation 1 (plain mean of taus)"

    def search_config(self, dataset: Dataset) -> SearchConfig:
        return replace(self.config, fitness="mean")


@register_method
class FixedWeightedTau(SymbolicRegression):
    """(f) SR with Auto-Prox's kind of fitness, a fixed weighted sum of per-problem taus
    (Wei et al., AAAI 2024, weight correlations on several datasets by hand).

    Auto-Prox's weights belong to its ViT datasets; gpsr fixes them before the search from
    the input split: each problem weighs ``1 / |tau|`` of its best single proxy, normalized
    to sum to 1, so a problem where proxies rank poorly counts more (equation 1 does so with
    bounds that move during the run; here they do not move). ``weights`` overrides this.
    """

    name = "auto-prox"
    follows = "Auto-Prox, Wei et al., AAAI 2024 (fixed weighted sum of per-problem taus)"

    def __init__(self, config: SearchConfig | None = None, runs: int = 1,
                 executor: Executor | None = None,
                 weights: Sequence[float] | None = None) -> None:
        super().__init__(config, runs, executor)
        self.weights = weights

    def search_config(self, dataset: Dataset) -> SearchConfig:
        weights = self.weights
        if weights is None:
            problems = _fit_problems(dataset)
            best = np.array([max(abs(np.nan_to_num(kendall_tau(p.column(x), p.accuracy)))
                                 for x in dataset.proxies) for p in problems])
            inverse = 1.0 / np.maximum(best, 1e-3)
            weights = inverse / inverse.sum()
        return replace(self.config, fitness="weighted", fitness_weights=tuple(weights))


# ---- comparison ----------------------------------------------------------------------------
#: The methods ``gpsr compare --methods all`` runs, in table order.
ALL_METHODS = ("sr", "best-single", "az-nas", "up-nas", "robot", "eznas", "auto-prox",
               "mean-tau", "forest")


def build_method(name: str, runs: int, seed: int, config: SearchConfig | None = None) -> Method:
    """A registered method with the comparison's shared settings: SR variants get ``runs``
    seeded runs from ``seed`` (one process each), stochastic baselines ``random_state=seed``."""
    cls = METHODS.get(name)
    if cls is None:
        raise GpsrError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    if issubclass(cls, SymbolicRegression):
        return cls(config=replace(config or SearchConfig(), random_state=seed), runs=runs)
    if cls in (BayesianWeights, ForestRegressor):
        return cls(random_state=seed)
    return cls()


@dataclass
class CompareTask:
    """One fit of the comparison: ``method`` on ``train``, scored on its splits or, given
    one, on the ``held_out`` problem."""

    method: str
    train: Dataset
    held_out: Problem | None
    runs: int
    seed: int
    config: SearchConfig | None = None

    @property
    def key(self) -> str:
        return f"{self.method}|{self.held_out.name if self.held_out else '-'}"


def run_compare_task(task: CompareTask) -> dict:
    """Fit and score one task; picklable for any executor."""
    method = build_method(task.method, task.runs, task.seed, task.config)
    start = time.perf_counter()
    rule = method.fit(task.train)
    record = {"key": task.key, "method": task.method,
              "seconds": time.perf_counter() - start,
              "expression": rule.expression, "rule": rule.description,
              "proxies": list(rule.proxies)}
    if task.held_out is None:
        record["taus"] = rule.taus(task.train)
    else:
        record["held_out"] = task.held_out.name
        record["tau"] = finite_or_none(rule.tau(task.held_out.select(proxies=task.train.proxies)))
    return record


def leave_one_out_splits(problems: Sequence[Problem], dataset: Dataset
                         ) -> list[tuple[Dataset, Problem]]:
    """For each problem, a dataset of the others over ``dataset``'s terminal set, split
    and sentinel policy as ``dataset``, and the held-out problem."""
    if len(problems) < 2:
        raise GpsrError("leave-one-problem-out needs at least two problems")
    out = []
    for k, held in enumerate(problems):
        others = [p for j, p in enumerate(problems) if j != k]
        train = build_dataset(others, dataset.proxies, dataset.sentinel_policy,
                              dataset.split_seed, dataset.input_fraction)
        out.append((train, held))
    return out


def compare(
    problems: Sequence[Problem],
    methods: Sequence[str] = ALL_METHODS,
    runs: int = 31,
    seed: int = 0,
    leave_one_out: bool = True,
    executor: Executor | None = None,
    journal: str | Path | None = None,
    config: SearchConfig | None = None,
    dataset: Dataset | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    loo_runs: int | None = None,
) -> dict:
    """Every method in ``methods`` fitted on the input splits of ``problems`` and measured on
    every split, and, with ``leave_one_out``, fitted on all problems but one and measured
    on all of the one left out, for each problem in turn.

    ``dataset`` (default: :func:`build_dataset` of ``problems``) fixes the terminal set,
    split and sentinel policy. With ``journal`` (a JSON-lines file) every finished fit is
    kept, and the same call continues an interrupted comparison. ``loo_runs`` (default
    ``runs``) is the number of SR runs of each leave-one-out fit. Returns the comparison in
    the schema ``gpsr report`` reads (README.md, "Comparing with other ways to combine
    proxies").
    """
    from gpsr.executor import LocalExecutor
    from gpsr.journal import read_journal, run_journaled

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise GpsrError(f"unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
    for option, value in (("--runs", runs), ("--loo-runs", loo_runs)):
        if value is not None and value < 1:
            raise GpsrError(f"{option} must be >= 1, got {value}")
    dataset = dataset or build_dataset(problems)
    executor = executor or LocalExecutor(1)
    tasks = [CompareTask(m, dataset, None, runs, seed, config) for m in methods]
    if leave_one_out:
        splits = leave_one_out_splits(dataset.problems, dataset)
        loo_runs = loo_runs or runs
        tasks += [CompareTask(m, train, held, loo_runs, seed, config)
                  for m in methods for train, held in splits]
    if journal is None:
        records = {}
        for done, (_, record) in enumerate(executor.map(run_compare_task, tasks), start=1):
            records[record["key"]] = record
            if on_progress:
                on_progress(done, len(tasks))
    else:
        journal = Path(journal)
        settings = {"problems": dataset.names, "proxies": list(dataset.proxies),
                    "split_seed": dataset.split_seed, "runs": runs,
                    "loo_runs": loo_runs or runs, "seed": seed,
                    "sentinel_policy": dataset.sentinel_policy,
                    "config": (config or SearchConfig()).to_dict()}
        done = read_journal(journal, settings, "key") if journal.exists() else {}
        records = run_journaled(journal, settings, tasks, lambda t: t.key, run_compare_task,
                                executor, "key", done, on_progress)
    return _comparison(dataset, methods, records, runs, seed, leave_one_out, loo_runs or runs,
                       config or SearchConfig())


def _comparison(dataset: Dataset, methods: Sequence[str], records: dict[str, dict],
                runs: int, seed: int, leave_one_out: bool, loo_runs: int,
                config: SearchConfig) -> dict:
    rows = []
    for name in methods:
        r = records[f"{name}|-"]
        rows.append({"name": name, "follows": METHODS[name].follows, "taus": r["taus"],
                     "seconds": r["seconds"], "expression": r["expression"],
                     "rule": r["rule"], "proxies": r["proxies"]})
    out = {"problems": dataset.names, "split": "test", "methods": rows}
    if leave_one_out:
        out["leave_one_out"] = {
            name: {held: records[f"{name}|{held}"]["tau"] for held in dataset.names}
            for name in methods}
        out["leave_one_out_seconds"] = {
            name: {held: records[f"{name}|{held}"]["seconds"] for held in dataset.names}
            for name in methods}
    sr_methods = [m for m in methods if issubclass(METHODS[m], SymbolicRegression)]
    out |= {"gpsr_commit": gpsr_commit(),
            "seeds": list(range(seed, seed + runs)) if sr_methods else [seed],
            "runs": runs, "proxies": list(dataset.proxies), "data": dataset.describe(),
            "search_config": config.to_dict()}
    if leave_one_out:
        out["leave_one_out_runs"] = loo_runs
    return out


def mean_taus(comparison: dict, split: str = "test") -> dict[str, dict[str, float | None]]:
    """Per method, the mean tau over the comparison's problems on ``split`` and, where
    measured, leave-one-problem-out (an undefined tau counts as 0, as in equation 1)."""
    out = {}
    loo = comparison.get("leave_one_out", {})
    for row in comparison["methods"]:
        taus = [row["taus"][split].get(p) for p in comparison["problems"]]
        held = [loo[row["name"]].get(p) for p in comparison["problems"]] if loo else []
        out[row["name"]] = {
            split: float(np.mean([t or 0.0 for t in taus])),
            "leave_one_out": float(np.mean([t or 0.0 for t in held])) if held else None,
        }
    return out
