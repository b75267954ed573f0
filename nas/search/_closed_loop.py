"""The closed latency loop: a study measures its own INT8 models on a real board while it runs, and re-scores.

With ``latency.board`` set, after every ``latency.measure.every`` completed trials (and once more at the study's
end) the driver measures on the board the INT8 models of the current Pareto front that it has not measured yet,
and the ``latency.measure.uncertain`` trials the model is least sure of (extrapolated outside its fitted range
first, then the farthest, in the model's features, from everything measured). It then refits the latency model
from every measurement so far, with the study's own ``latency.model`` as the prior (scaled to the first
measurements; from five on fitted with the prior's pull, see :func:`~nas.latency.fit_model`) and corrected by a
Gaussian process on its residuals (measured graphs predicted to within about 2%, graphs near them better, far ones
as before, see :meth:`~nas.latency.LatencyModel.with_residuals`), and re-scores every trial with it: predicted
latency, score, constraints, the front, and the values the sampler sees. A refit can move the front; its new
members are measured in the same round, until every member has been measured.

The study folder keeps the loop: ``latency/measurements.csv`` (one row per measured trial, appended as it is
measured), ``latency/refit-NNN.json`` (the model after each refit, NNN measurements) and ``latency/current.json``.
A resumed study refits from the measurements before it asks for a trial, and measures nothing twice. Optuna keeps
each trial's values as they were when it finished (a finished trial cannot change there); the driver's live copy
of the study, the front (``nas pareto`` too), its plots and MLflow carry the re-scored ones.

The board is measured between trials, one model at a time (never two at once): from the driver's process, or with
``latency.measure.resource`` (e.g. ``board:pixel7``) as a Ray task on the node that holds one unit of that resource
(the model's bytes travel with the task; a local Ray started for the study gives the driver's machine the unit).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from nas._logging import get_logger
from nas.errors import LatencyError, NasError
from nas.latency import Sample, load_latency_model, make_board, refit_model
from nas.search.pareto import FrontPoint, pareto_front
from nas.search._record import TrialRecord
from nas.space import ArchSpec, deploy_ops

__all__ = ["BoardTime", "ClosedLoop", "loop_model", "MEASUREMENTS"]

log = get_logger("search")

FOLDER = "latency"
MEASUREMENTS = "measurements.csv"
CURRENT = "current.json"
_COLUMNS = ("number", "hash", "board", "median_ms", "q1_ms", "q3_ms", "runs", "predicted_ms", "spec")


@dataclasses.dataclass(frozen=True)
class BoardTime:
    """One trial's INT8 model measured on the study's board (``predicted_ms``: what the model said just before)."""

    number: int
    hash: str
    board: str
    median_ms: float
    q1_ms: float | None
    q3_ms: float | None
    runs: int
    predicted_ms: float
    spec: str  # the spec's JSON: the fit needs its graph

    def row(self) -> list:
        return [self.number, self.hash, self.board, repr(self.median_ms), "" if self.q1_ms is None else
                repr(self.q1_ms), "" if self.q3_ms is None else repr(self.q3_ms), self.runs, repr(self.predicted_ms),
                self.spec]

    @classmethod
    def from_row(cls, row: Mapping[str, str], where: str) -> "BoardTime":
        try:
            opt = lambda k: float(row[k]) if row.get(k) else None  # noqa: E731
            return cls(int(row["number"]), row["hash"], row["board"], float(row["median_ms"]), opt("q1_ms"),
                       opt("q3_ms"), int(row["runs"]), float(row["predicted_ms"]), row["spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NasError(f"{where}: unreadable measurement row ({exc}); move the file away to measure again") \
                from None


def loop_model(folder: str | Path):
    """The latency model a closed-loop study last refitted (``<study>/latency/current.json``), or None."""
    path = Path(folder) / FOLDER / CURRENT
    return load_latency_model(path) if path.exists() else None


def measured_times(folder: str | Path) -> dict[str, BoardTime]:
    """Spec hash -> its measurement, from a study folder (empty without a closed loop)."""
    path = Path(folder) / FOLDER / MEASUREMENTS
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {t.hash: t for t in (BoardTime.from_row(r, str(path)) for r in csv.DictReader(fh))}


class ClosedLoop:
    """One study's closed loop (see the module docstring): what was measured, the current model, and the choice of
    what to measure next. The driver calls :meth:`choose`, :meth:`measure` and :meth:`refit`."""

    def __init__(self, config, prior, input_hw: tuple[int, int], folder: str | Path, board=None):
        self.c = config
        self.prior = prior
        self.input_hw = tuple(int(v) for v in input_hw)
        self.folder = Path(folder) / FOLDER
        m = config.latency.measure
        # how the board is made, here or on the Ray node that holds it (_measure_on_node)
        self.board_kwargs = dict(board=config.latency.board, threads=m.threads, runs=m.runs, warmup=m.warmup,
                                 serial=m.serial, delegate=m.delegate)
        self.board = board or make_board(**self.board_kwargs)
        self.times: dict[str, BoardTime] = {}
        self.unmeasurable: set[str] = set()  # hashes whose measurement failed this run (not tried again)
        self.model = None  # the last refit (None: the prior)
        self.since = 0  # completed trials since the last round

    # ------------------------------------------------------------------------------------------------ state
    def load(self):
        """The measurements a previous run of the study made, and the model refitted from them (None: none)."""
        self.times = measured_times(self.folder.parent)
        if self.times:
            boards = {t.board for t in self.times.values()}
            if boards != {self.board.name}:
                raise NasError(f"{self.folder / MEASUREMENTS} holds measurements on {', '.join(sorted(boards))}, "
                               f"not on {self.board.name}: resume the study with its own board")
            self.model = self._fit()
            self.model.save(self.folder / CURRENT)  # what this run predicts with (this version's fit)
            log.info("closed loop: %d measurements on %s, model refitted", len(self.times), self.board.name)
        return self.model

    @property
    def due(self) -> bool:
        return self.since >= self.c.latency.measure.every

    def completed(self) -> bool:
        """Count a completed trial; whether a round of measuring is due."""
        self.since += 1
        return self.due

    def begin_round(self) -> None:
        """A round of measuring starts: the completed trials are counted from here."""
        self.since = 0

    # ---------------------------------------------------------------------------------------------- choose
    def choose(self, points: Iterable[FrontPoint], records: Mapping[int, TrialRecord], model,
               uncertain: bool) -> list[FrontPoint]:
        """What to measure now: the front's members not measured yet, then (``uncertain``) the
        ``measure.uncertain`` trials ``model`` is least sure of."""
        pts = pareto_front(list(points))
        todo = [p for p in pts if p.on_front and self._open(p)]
        n = self.c.latency.measure.uncertain if uncertain else 0
        rest = [p for p in pts if not p.on_front and self._open(p)]
        if n and rest:
            seen = [self._features(ArchSpec.from_json(t.spec), model) for t in self.times.values()]
            todo += sorted(rest, key=lambda p: self._doubt(p, records[p.number], model, seen), reverse=True)[:n]
        return todo

    def _open(self, p: FrontPoint) -> bool:
        return p.hash not in self.times and p.hash not in self.unmeasurable

    def _doubt(self, p: FrontPoint, rec: TrialRecord, model, seen: list[np.ndarray]) -> tuple[float, float]:
        """(relative stddev, distance in log features to the nearest measured graph, ``seen``): larger is less
        certain."""
        rel = p.latency_sigma_ms / p.latency_ms if p.latency_ms else math.inf
        x = self._features(ArchSpec.from_dict(rec.spec), model)
        far = min((float(np.linalg.norm(x - s)) for s in seen), default=math.inf)
        return rel, far

    def _features(self, spec: ArchSpec, model) -> np.ndarray:
        return np.log1p(np.array(model.feature_sums(deploy_ops(spec, *self.input_hw)), float))

    # ------------------------------------------------------------------------------------------- measure
    def measure(self, point: FrontPoint, rec: TrialRecord, tflite: Path) -> BoardTime | None:
        """Time trial ``point``'s INT8 model on the board and append it to the study's measurements; None (and a
        warning) when the board cannot measure it: the study goes on with the model it has."""
        try:
            if not tflite.exists():
                raise LatencyError(f"{tflite} is missing")
            m = self._remote(tflite) if self.c.latency.measure.resource else self.board.measure(tflite)
        except NasError as exc:
            log.warning("closed loop: trial %d could not be measured on %s (%s); the study goes on without it",
                        point.number, self.board.name, exc)
            self.unmeasurable.add(point.hash)
            return None
        t = BoardTime(point.number, point.hash, self.board.name, m.median_ms, m.q1_ms, m.q3_ms, m.runs,
                      point.latency_ms, ArchSpec.from_dict(rec.spec).to_json())
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MEASUREMENTS
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as fh:  # appended as measured: a kill loses nothing
            w = csv.writer(fh)
            if new:
                w.writerow(_COLUMNS)
            w.writerow(t.row())
        self.times[t.hash] = t
        return t

    def _remote(self, tflite: Path):
        """Measure on the Ray node that holds the board (one unit of ``measure.resource``: one model at a time)."""
        import ray

        m = self.c.latency.measure
        task = ray.remote(num_cpus=0, resources={m.resource: 1}, max_retries=0)(_measure_on_node)
        try:
            return ray.get(task.remote(self.board_kwargs, tflite.read_bytes(), tflite.name))
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            raise LatencyError(f"on the node with {m.resource}: {cause}") from None

    # ---------------------------------------------------------------------------------------------- refit
    def refit(self):
        """The model refitted from every measurement so far, saved as ``refit-NNN.json`` and ``current.json``."""
        self.model = self._fit()
        n = len(self.times)
        path = self.model.save(self.folder / f"refit-{n:03d}.json")
        self.model.save(self.folder / CURRENT)
        self.since = 0
        return self.model, path

    def _fit(self):
        samples = [Sample(t.hash, deploy_ops(ArchSpec.from_json(t.spec), *self.input_hw), t.median_ms)
                   for t in sorted(self.times.values(), key=lambda t: t.number)]
        source = (f"closed loop of study '{self.c.name}': {len(samples)} of its trials measured on {self.board.name}, "
                  f"from the model of {self.prior.board}")
        model = refit_model(self.prior, samples, board=self.board.name, input_hw=self.input_hw, source=source,
                            seed=self.c.seed)
        model.meta["study"] = self.c.name
        return model

    def error(self, points: Iterable[FrontPoint]) -> dict[str, float]:
        """How far the current predictions of the measured ``points`` are from their measurements (relative)."""
        errs = [abs(p.latency_ms - self.times[p.hash].median_ms) / self.times[p.hash].median_ms
                for p in points if p.hash in self.times]
        if not errs:
            return {}
        return {"max_rel_error": max(errs), "mean_rel_error": float(np.mean(errs)), "n": float(len(errs))}


def _measure_on_node(board_kwargs: dict, blob: bytes, name: str):
    """A Ray task on the board's node: the model's bytes written to a temporary file there and measured."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nas-measure-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(blob)
        return make_board(**board_kwargs).measure(path)
