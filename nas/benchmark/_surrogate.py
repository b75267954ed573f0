"""A surrogate benchmark: a regression of INT8 PSNR on the spec, fitted to a benchmark table, that answers any spec
of the space in milliseconds (NAS-Bench-301's answer to spaces no CPU can train exhaustively).

The spec is encoded by its choices (:func:`spec_features`; in a per-layer space also each position's width and
block). Kinds (:data:`KINDS`): ``forest`` (a random forest), ``boosting`` (gradient-boosted trees),
``gp`` (a Gaussian process with a noise term), ``ensemble`` (the mean of the three); :func:`cross_validate`
ranks them on a table's rows and :func:`held_out` on rows kept out of every fit, by Kendall tau overall and within
the top quartile (where a search lives) and mean absolute error.

A fitted surrogate is never written to disk (no pickles: it is fitted again from the CSV, in about a second).
:class:`SurrogateExecutors` answers a study's trials from one, on the table executor's simulated clock, with the
proxy's own seed noise drawn per spec (seeded by its hash: the same spec always gets the same answer).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Sequence

import numpy as np

from nas.benchmark._executors import TableExecutor
from nas.benchmark._table import BenchTable, TableRow
from nas.errors import SearchError
from nas.search.executors import Executor, ExecutorFactory, OnReport
from nas.space import ArchSpec, Block, SearchSpace, load_space

__all__ = ["KINDS", "Surrogate", "spec_features", "fit_surrogate", "cross_validate", "held_out", "SurrogateScore",
           "SurrogateExecutor", "SurrogateExecutors"]

KINDS = ("forest", "boosting", "gp", "ensemble")


def spec_features(spec: ArchSpec, space: SearchSpace) -> np.ndarray:
    """``spec`` as a fixed-length vector for ``space`` (see the module docstring): the choices (mean width, depth,
    the share of each block type, skip, clip, tail, expansion), and in a per-layer space each position's width and
    block too."""
    ws = np.asarray(spec.feature_widths, float) / space.width.max
    threes = [b for b, slot in zip(spec.blocks, spec.convs()) if slot.kernel == 3]
    x = [float(ws.mean()), spec.depth / max(1, space.depth.max), float(spec.expansion)]
    x += [threes.count(b) / max(1, len(threes)) for b in Block]
    for field in ("skip", "clip_where", "clip_kind"):
        x += [float(getattr(spec, field) is c) for c in getattr(space, field).choices]
    x += [float(spec.tail == tuple(t)) for t in space.tail.choices]
    if space.width.per_layer:
        widths = np.zeros(space.depth.max + 1)
        widths[:len(ws)] = ws[:len(widths)]
        x += [float(ws.std()), *widths]
    if space.blocks.per_layer:
        n_conv = space.depth.max + 2 + max((len(t) for t in space.tail.choices), default=0)
        blocks = np.zeros((n_conv, len(Block)))
        for i, b in enumerate(spec.blocks[:n_conv]):
            blocks[i, list(Block).index(b)] = 1.0
        x += list(blocks.ravel())
    return np.asarray(x, float)


class Surrogate:
    """A fitted surrogate of INT8 PSNR (dB) on ``space``; :meth:`predict` gives the mean of each spec."""

    def __init__(self, kind: str, models: list, space: SearchSpace, noise_db: float, n: int):
        self.kind, self.models, self.space, self.noise_db, self.n = kind, models, space, noise_db, n

    def predict(self, specs: Sequence[ArchSpec]) -> np.ndarray:
        x = np.stack([spec_features(s, self.space) for s in specs])
        return np.mean([m.predict(x) for m in self.models], axis=0)

    def answer(self, spec: ArchSpec) -> float:
        """The INT8 PSNR a trial of ``spec`` gets: the mean plus the proxy's seed noise, drawn from the spec's hash
        (one spec, one answer)."""
        mean = float(self.predict([spec])[0])
        if self.noise_db <= 0:
            return mean
        seed = int(hashlib.sha256(spec.hash.encode()).hexdigest()[:8], 16)
        return mean + self.noise_db * float(np.random.default_rng(seed).standard_normal())


def _models(kind: str, seed: int) -> list:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def forest():
        return RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=1)

    def boosting():
        return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                             min_samples_leaf=5, l2_regularization=1.0, random_state=seed)

    def gp():
        kernel = ConstantKernel(1.0) * RBF(length_scale=3.0) + WhiteKernel(0.1)
        return make_pipeline(StandardScaler(), GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed,
                                                                        n_restarts_optimizer=1))

    made = {"forest": [forest], "boosting": [boosting], "gp": [gp], "ensemble": [forest, boosting, gp]}
    if kind not in made:
        raise SearchError(f"unknown surrogate kind {kind!r} (one of {', '.join(KINDS)})")
    return [f() for f in made[kind]]


def _complete(rows: Sequence[TableRow]) -> list[TableRow]:
    return [r for r in rows if r.state == "complete" and r.int8_psnr is not None]


def fit_surrogate(rows: Sequence[TableRow], space: SearchSpace, kind: str = "forest", noise_db: float = 0.0,
                  seed: int = 0) -> Surrogate:
    """A surrogate of ``kind`` fitted to the completed ``rows`` (at least 10); ``noise_db``: the proxy's seed-to-seed
    standard deviation, added to the answers."""
    done = _complete(rows)
    if len(done) < 10:
        raise SearchError(f"a surrogate needs at least 10 completed rows, the table has {len(done)}")
    x = np.stack([spec_features(r.spec, space) for r in done])
    y = np.array([r.int8_psnr for r in done])
    models = _models(kind, seed)
    for m in models:
        m.fit(x, y)
    return Surrogate(kind, models, space, noise_db, len(done))


@dataclasses.dataclass(frozen=True)
class SurrogateScore:
    """How a surrogate ranks specs it was not fitted on: Kendall tau overall and within the top quartile (of the
    true values), mean absolute error (dB)."""

    kind: str
    n: int
    kendall_tau: float
    top_quartile_kendall_tau: float
    mae_db: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _score(kind: str, pred: np.ndarray, true: np.ndarray) -> SurrogateScore:
    from scipy.stats import kendalltau

    top = true >= np.quantile(true, 0.75)
    return SurrogateScore(kind, len(true), float(kendalltau(pred, true).statistic),
                          float(kendalltau(pred[top], true[top]).statistic) if top.sum() >= 3 else float("nan"),
                          float(np.mean(np.abs(pred - true))))


def cross_validate(rows: Sequence[TableRow], space: SearchSpace, kind: str, folds: int = 5,
                   seed: int = 0) -> SurrogateScore:
    """``folds``-fold cross-validation over the completed ``rows`` (seeded folds): each row predicted by a fit on
    the others."""
    done = _complete(rows)
    order = np.random.default_rng(seed).permutation(len(done))
    pred = np.empty(len(done))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        model = fit_surrogate([done[i] for i in train], space, kind, seed=seed)
        pred[test] = model.predict([done[i].spec for i in test])
    return _score(kind, pred, np.array([r.int8_psnr for r in done]))


def held_out(fit_rows: Sequence[TableRow], test_rows: Sequence[TableRow], space: SearchSpace, kind: str,
             seed: int = 0) -> SurrogateScore:
    """A surrogate fitted on ``fit_rows``, scored on ``test_rows`` (kept out of every fit)."""
    test = _complete(test_rows)
    model = fit_surrogate(fit_rows, space, kind, seed=seed)
    return _score(kind, model.predict([r.spec for r in test]), np.array([r.int8_psnr for r in test]))


class SurrogateExecutor(TableExecutor):
    """Trials answered by a :class:`Surrogate` on the table executor's simulated clock: a spec the table holds gets
    its row (the measured result), any other a row made by the surrogate (its INT8 PSNR, the table's mean INT8 drop
    for FP32, the table's median training seconds, no validation curve: nothing is pruned)."""

    def __init__(self, table: BenchTable, surrogate: Surrogate, on_report: OnReport | None = None, capacity: int = 1):
        super().__init__(table, on_report, capacity=capacity, missing="nearest")
        self.surrogate = surrogate
        done = _complete(table.rows)
        drops = [r.fp32_psnr - r.int8_psnr for r in done if r.fp32_psnr is not None]
        self._drop = float(np.mean(drops)) if drops else 0.0
        secs = [r.train_s for r in done if r.train_s]
        self.default_s = float(np.median(secs)) if secs else self.default_s
        self.lookups["surrogate"] = 0

    def _lookup(self, spec: ArchSpec) -> tuple[TableRow | None, float]:
        row = self.table.get(spec)
        if row is not None:
            return row, 0.0
        self.lookups["surrogate"] += 1
        psnr = self.surrogate.answer(spec)
        return TableRow(spec, "complete", int8_psnr=psnr, fp32_psnr=psnr + self._drop, train_s=self.default_s), 0.0

    def describe(self) -> str:
        return (f"surrogate ({self.surrogate.kind}, fitted to {self.surrogate.n} rows; {self.capacity} simulated "
                "workers)")


class SurrogateExecutors(ExecutorFactory):
    """A study whose trials are answered by a surrogate fitted to the config's ``table`` (or ``table``)."""

    trains = False

    def __init__(self, table: BenchTable | None = None, kind: str = "forest", noise_db: float = 0.0, seed: int = 0):
        self.table, self.kind, self.noise_db, self.seed = table, kind, noise_db, seed
        self.made: list[SurrogateExecutor] = []
        self._surrogate: Surrogate | None = None

    def _fit(self, config) -> Surrogate:
        if self.table is None:
            if not config.table:
                raise SearchError("a surrogate study needs a benchmark table to fit: set 'table' in the config")
            self.table = BenchTable.read_csv(config.table)
        if self._surrogate is None:
            self._surrogate = fit_surrogate(self.table.rows, load_space(config.space), self.kind, self.noise_db,
                                            self.seed)
        return self._surrogate

    def check(self, config, space) -> None:
        from nas.benchmark._executors import TableExecutors

        TableExecutors(self.table).check(config, space)  # made on the study's space
        self._fit(config)

    def references(self) -> dict[str, float] | None:
        return dict(self.table.meta.get("references") or {}) if self.table is not None else None

    def make(self, config, on_report: OnReport, images: Any) -> tuple[Executor, int | None]:
        self.made.append(SurrogateExecutor(self.table, self._fit(config), on_report, capacity=config.workers))
        return self.made[-1], None
