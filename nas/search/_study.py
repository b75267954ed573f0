"""The study driver: one process asks Optuna for specs, hands trials to an executor, and writes every result.

The driver is the only writer of the study's Optuna storage, its MLflow runs and its folder (``<out>/<name>/``), so
the default SQLite storage is safe with any number of workers. Its parts, each in its own module:

* the store (:class:`~nas.search._store.StudyStore`): the folder, its lock, the study's identity, the Optuna study
  (asked and told in memory, each trial written to the durable storage in one write when it starts and two when it
  ends), recovery of what a killed driver left;
* the trial log (:class:`~nas.search._trial_log.TrialLog`): every MLflow write;
* the policy (:class:`~nas.search._policy.SearchPolicy`): sampler, pruning, retries, when to stop;
* the record (:class:`~nas.search._record.TrialRecord`): what a trial's user attributes hold;
* and here, :class:`_Loop`: ask -> submit -> poll -> finish, with its own counters (nothing is re-read from the
  storage per trial, so the driver's time per trial stays flat over a long study).

Every result is written in this order: the trial's folder (``trials/NNNN/``), then Optuna, then MLflow; a driver
killed at any point (SIGKILL included) loses nothing when the same command runs again: trials Optuna still shows as
running are failed (cause interrupted) and queued again; MLflow runs left open are logged again from the folder or
closed. A second driver on the same study is refused (a lock file held while the driver runs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

from optuna.trial import TrialState

from nas._files import atomic_write, write_json
from nas._logging import get_logger
from nas.errors import NasError, SearchError, faults_named
from nas.evaluate import challenge_score, log2_score
from nas.export import load_target
from nas.latency import load_latency_model
from nas.search._closed_loop import ClosedLoop, loop_model, measured_times
from nas.search._config import SearchConfig
from nas.search.pareto import (FrontPoint, best_point, hypervolume_history, pareto_front, pareto_ranks, write_front,
                               write_hypervolume, zoo_points)
from nas.search._policy import SearchPolicy, dominated_median
from nas.search._record import CONSTRAINTS, RESULT_METRICS, Cause, TrialRecord
from nas.search._objective import Objective, optuna_state
from nas.search._store import REFERENCE_ATTR, StudyInfo, StudyStore, load_optuna_study, open_study
from nas.search._trial import TrialJob, TrialOutcome, load_study_images, load_valid_images, reference_psnr
from nas.search._trial_log import NullTrialLog, TrialLog
from nas.search._trials import FinishedTrial, RunningTrial, TrialTable, front_point
from nas.search.executors import ExecutorFactory, TrainingExecutors
from nas.space import ArchSpec, load_space, zoo_get

__all__ = ["dominated_median", "SearchEvent", "SearchSummary", "StudyInfo", "run_search", "open_study", "study_front",
           "trial_points", "TrialLog", "NullTrialLog", "HypervolumeTrace", "hypervolume_trace"]

log = get_logger("search")


@dataclasses.dataclass(frozen=True)
class SearchEvent:
    """Progress of a study, sent to the callback: ``kind`` is start, submit, finish, measure (the closed latency
    loop timed a trial's INT8 model on the board) or end."""
    kind: str
    done: int
    target: int
    running: int
    complete: int
    pruned: int
    failed: int
    best_log2: float | None = None
    best_trial: int | None = None
    number: int | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    study: StudyInfo
    complete: int
    pruned: int
    failed: int
    best: FrontPoint | None
    front: tuple[FrontPoint, ...]
    files: dict
    executor: str
    seconds: float
    new_trials: int = 0  # trials this run finished (0: the study already held n_trials)
    driver_seconds: dict = dataclasses.field(default_factory=dict)  # this run's trials: the driver's seconds on each

    def to_dict(self) -> dict:
        return {"study": self.study.name, "folder": str(self.study.folder), "storage": self.study.storage,
                "tracking": self.study.tracking, "experiment": self.study.experiment,
                "parent_run_id": self.study.parent_run_id, "complete": self.complete, "pruned": self.pruned,
                "failed": self.failed, "best": self.best.to_dict() if self.best else None,
                "front": [p.to_dict() for p in self.front], "files": {k: str(v) for k, v in self.files.items()},
                "executor": self.executor, "seconds": self.seconds, "new_trials": self.new_trials,
                "driver_seconds": {str(k): v for k, v in self.driver_seconds.items()}}


# ------------------------------------------------------------------------------------------------- points
def _rescored(rec: TrialRecord, model, latency_config, specs: dict[str, ArchSpec]) -> TrialRecord:
    """``rec`` with its latency, constraints and scores predicted again by ``model`` (a closed loop's refit)."""
    if not rec.spec:
        return rec
    spec = specs.get(rec.hash) or specs.setdefault(rec.hash, ArchSpec.from_dict(rec.spec))
    new = rec.predicted(spec, model.predict(spec), latency_config)
    psnr = rec.metrics.get("int8_psnr")
    if psnr is not None and "score" in rec.metrics:
        new = new.with_(metrics={**rec.metrics, "score": challenge_score(psnr, new.latency_ms),
                                 "log2_score": log2_score(psnr, new.latency_ms),
                                 "log2_score_objective": log2_score(psnr, new.latency_objective_ms)})
    return new


def trial_points(study, folder: str | Path | None = None) -> list[FrontPoint]:
    """The completed trials of an Optuna study as front points (log2 score on the pessimistic latency, as the
    search optimised it and as the live line shows it). With the study's ``folder``, a closed-loop study's trials
    are re-scored by its last refitted latency model and carry their measurements."""
    info = _loop_state(folder)
    specs: dict[str, ArchSpec] = {}
    points = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        rec = TrialRecord.from_attrs(t.user_attrs)
        if info is not None:
            rec = _rescored(rec, info[0], info[2], specs)
        p = front_point(t.number, rec, None if info is None else info[1])
        if p is not None:
            points.append(p)
    return points


def _loop_state(folder):
    """(refitted model, measurements, latency config) of a closed-loop study folder, or None."""
    if folder is None:
        return None
    model = loop_model(folder)
    if model is None:
        return None
    return model, measured_times(folder), open_study(folder).config.latency


def _front_title(name: str, latency, points: list[FrontPoint]) -> str:
    return f"study {name}: INT8 PSNR vs predicted {latency.board} latency ({len(points)} trials)"


def _write_latency_table(path: Path, pred) -> None:
    lines = ["op,type,ms,floor_ms,at_floor"]
    lines += [f"{o.name},{o.type},{o.ms:.6f},{o.floor_ms:.6f},{str(o.at_floor).lower()}" for o in pred.per_op]
    lines.append(f"total,,{pred.mean_ms:.6f},,")
    with atomic_write(path) as fh:
        fh.write(("\n".join(lines) + "\n").encode())


# -------------------------------------------------------------------------------------------------- setup
@dataclasses.dataclass(frozen=True)
class _Setup:
    """What the driver checks and loads before it touches the study: space, latency model, data."""
    space: Any
    latency: Any
    input_hw: tuple[int, int]
    train_images: Any
    valid_images: Any
    executors: ExecutorFactory
    config: SearchConfig

    @classmethod
    def load(cls, c: SearchConfig, executors: ExecutorFactory) -> "_Setup":
        """Check and load what the study needs: the training and validation images only when its executors train
        (a table or the synthetic executor needs none)."""
        space = load_space(c.space)
        latency = load_latency_model(c.latency.model)
        load_target(c.export.target)
        for name in c.warm_start:
            zoo_get(name)  # an unknown name stops the run now, not after hours
        input_hw = tuple(c.export.input_size or latency.input_hw)
        executors.check(c, space)
        if not executors.trains:
            return cls(space, latency, input_hw, None, None, executors, c)
        train, valid = load_study_images(c)  # checked here, in the driver, before any trial starts
        log.info("data: %d training and %d validation images", len(train), len(valid))
        return cls(space, latency, input_hw, train, valid, executors, c)

    def references(self) -> dict[str, float]:
        """Baselines drawn on the front: the executors' own (a table's), or bicubic on the validation images."""
        refs = self.executors.references()
        if refs is not None:
            return refs
        return reference_psnr(self.valid_images if self.valid_images is not None else load_valid_images(self.config))


# --------------------------------------------------------------------------------------------------- loop
class _Loop:
    """ask -> submit -> poll -> finish until the study holds ``n_trials`` finished trials (see the module
    docstring). Its collaborators are handed to it; its state is the table of finished trials
    (:class:`~nas.search._trials.TrialTable`, from which counts, evaluated specs, curves, points and the best follow),
    the running trials and the latency model trials are predicted with (a closed loop refits it)."""

    def __init__(self, config: SearchConfig, setup: _Setup, store: StudyStore, trial_log: TrialLog,
                 policy: SearchPolicy, emit: Callable[[SearchEvent], None], closed: ClosedLoop | None):
        self.c, self.setup, self.store, self.log, self.policy = config, setup, store, trial_log, policy
        self.emit, self.closed = emit, closed
        self.objective = Objective.of(config)
        self.table = TrialTable(measured=self._measured())
        self.running: dict[int, RunningTrial] = {}
        # trials whose spec is running in another trial: each takes that trial's result when it finishes (a spec is
        # never trained twice at once); one whose original fails for a reason not the spec's is trained after all
        self.waiting: dict[int, RunningTrial] = {}
        self._ready: list[int] = []  # waiting trials to train after all
        self.latency = setup.latency
        self.driver_seconds: dict[int, float] = {}  # this run's trials: the driver's own seconds on each
        self._specs: dict[str, ArchSpec] = {}  # parsed specs by hash (re-scoring)

    def _measured(self):
        return None if self.closed is None else self.closed.times

    @property
    def finished(self) -> int:
        return self.table.finished

    def load(self, trials) -> None:
        """The table from the study's trials (once, when the driver starts)."""
        for t in trials:
            if t.state.is_finished():
                self.table.add(FinishedTrial(t.number, TrialRecord.from_attrs(t.user_attrs), t.state, t.values))

    def event(self, kind: str, number: int | None = None, message: str = "") -> None:
        b, n = self.table.best, self.table.counts
        self.emit(SearchEvent(kind, self.finished, self.c.n_trials, len(self.running), n["complete"], n["pruned"],
                              n["failed"], None if b is None else b.log2_score, None if b is None else b.number,
                              number, message))

    def run(self, executor, threads: int | None) -> None:
        """Until the study holds its trials: ask while the policy wants more, else finish what ``executor`` returns
        (each job with ``threads`` TensorFlow threads)."""
        self.event("start", message=executor.describe())
        while True:
            while self._ready and len(self.running) < executor.capacity:
                self._submit(executor, threads, self.waiting.pop(self._ready.pop(0)))
            if not self._ready and self.policy.want_more(self.finished + len(self.waiting), len(self.running),
                                                         executor.capacity):
                self.ask(executor, threads)
            elif not self.running and not self._ready:
                return
            else:
                for outcome in executor.poll(timeout=1.0):
                    self.finish(outcome)

    # ------------------------------------------------------------------------------------------------- ask
    def ask(self, executor, threads: int | None) -> None:
        t0 = time.perf_counter()
        trial = self.store.ask()
        before = TrialRecord.from_attrs(trial.user_attrs)  # what was enqueued with it (warm start, requeue)
        try:
            spec = self.setup.space.suggest(trial)
        except NasError as exc:  # the space's own constraint: this parameter set is no network
            rec = before.with_(cause=Cause.INFEASIBLE, reason=str(exc))
            self.store.finish(trial, rec, TrialState.FAIL)
            self.table.add(FinishedTrial(trial.number, rec, TrialState.FAIL))
            return
        pred = self.latency.predict(spec)
        rec = before.predicted(spec, pred, self.c.latency)
        folder = self.store.trial_dir(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "spec.json", spec.to_dict())
        _write_latency_table(folder / "latency.csv", pred)
        rec = rec.with_(mlflow_run_id=self.log.start(trial.number, spec, rec))
        # the samplers (TPE, NSGA-II) steer away from infeasible trials through these
        constraints = dict(zip(CONSTRAINTS, rec.constraints))
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        same = self.table.evaluated(spec.hash)
        if same is not None:
            self._duplicate(trial, rec, same)
            return
        self.store.start(trial, rec, constraints)
        run = RunningTrial(trial, rec, time.perf_counter() - t0)
        original = next((n for n, r in self.running.items() if r.record.hash == spec.hash), None)
        if original is not None:
            self.waiting[trial.number] = run
            self.event("submit", trial.number, f"same spec as running trial {original}: takes its result")
            return
        self._submit(executor, threads, run)

    def _submit(self, executor, threads: int | None, run: RunningTrial) -> None:
        spec = ArchSpec.from_dict(run.record.spec)
        self.running[run.trial.number] = run
        executor.submit(TrialJob(run.trial.number, spec, self.c, self.setup.input_hw, threads))
        self.event("submit", run.trial.number, spec.describe())

    def _duplicate(self, trial, rec: TrialRecord, same: FinishedTrial) -> None:
        """A spec already evaluated in this study: its result is reused, nothing is trained."""
        number, values, orig = same.number, same.values, same.record
        dup = rec.with_(duplicate_of=number, metrics=orig.metrics, curve=orig.curve, cause=orig.cause,
                        reason=orig.reason, forms=orig.forms)
        state = "complete" if values is not None else "pruned" if orig.cause is Cause.PRUNED else "failed"
        ostate = optuna_state(state)
        self.store.finish(trial, dup, ostate, values)
        self.log.duplicate(trial.number, dup, state)
        self.table.add(FinishedTrial(trial.number, dup, ostate, values))
        self.event("finish", trial.number, f"same spec as trial {number}: not trained again")

    def _settle_waiting(self, spec_hash: str) -> None:
        """The trials waiting on a spec that has just finished: its result when it counts as evaluated, else (a crash,
        a lost worker) the first of them is trained and the others wait on it."""
        waiters = [n for n, w in self.waiting.items() if w.record.hash == spec_hash and n not in self._ready]
        if not waiters:
            return
        same = self.table.evaluated(spec_hash)
        if same is None:
            self._ready.append(waiters[0])
            return
        for n in waiters:
            w = self.waiting.pop(n)
            self._duplicate(w.trial, w.record, same)

    def on_report(self, number: int, step: int, psnr: float) -> bool:
        """An intermediate validation PSNR of a running trial: True when the trial should stop."""
        if number not in self.running:
            return False
        run = self.running[number]
        return self.policy.should_prune(run.trial, run.record, step, psnr, self.table.curves)

    # ---------------------------------------------------------------------------------------------- finish
    def finish(self, outcome: TrialOutcome) -> None:
        """A trial's outcome, written in the documented order: its folder (files, then ``outcome.json``, once),
        Optuna, MLflow."""
        t0 = time.perf_counter()
        run = self.running.pop(outcome.number)
        trial, rec = run.trial, run.record
        m = dict(outcome.metrics)
        if outcome.state == "complete":
            m["score"] = challenge_score(m["int8_psnr"], rec.latency_ms)
            m["log2_score"] = log2_score(m["int8_psnr"], rec.latency_ms)
            m["log2_score_objective"] = log2_score(m["int8_psnr"], rec.latency_objective_ms)
        done = rec.with_(metrics={k: v for k, v in m.items() if k in RESULT_METRICS}, curve=tuple(outcome.curve),
                         seconds=outcome.seconds, cause=outcome.cause, reason=outcome.reason, forms=outcome.forms)
        retry = outcome.state == "failed" and self.policy.retry(done)
        if retry:
            done = done.with_(requeued=True)
        # the folder: a rebuild from it needs the metrics and whether the trial runs again as another
        self.store.write_trial_files(outcome.number, outcome.files)
        summary = {**outcome.summary(), "metrics": m, "requeued": retry}
        self.store.write_trial_json(outcome.number, "outcome.json", summary)
        # Optuna
        values = None
        if outcome.state == "complete":
            values = self.objective.values(m["int8_psnr"], rec.latency_objective_ms, m["log2_score_objective"])
        state = optuna_state(outcome.state)
        self.store.finish(trial, done, state, values)
        if retry:
            self.store.enqueue(trial.params, TrialRecord(warm_start=rec.warm_start, requeued_from=outcome.number,
                                                         attempt=rec.attempt + 1))
            log.warning("trial %d failed (%s): queued again (attempt %d)", outcome.number, outcome.cause.value,
                        rec.attempt + 1)
        self.table.add(FinishedTrial(outcome.number, done, state, values))
        self._settle_waiting(done.hash)
        if self.closed is not None and state == TrialState.COMPLETE and self.closed.completed():
            self.close_loop()
        # MLflow, with the driver's own cost of this trial (asking, predicting, writing files, Optuna, MLflow)
        driver = run.ask_seconds + time.perf_counter() - t0
        self.driver_seconds[outcome.number] = driver
        self.log.finished(outcome.number, done, summary, {"driver_seconds": driver})
        self.event("finish", outcome.number, (
            f"complete, {rec.describe}: INT8 {m['int8_psnr']:.2f} dB, {rec.latency_objective_ms:.1f} ms "
            "(mean+k sigma)" if outcome.state == "complete" else outcome.reason + (" (run again)" if retry else "")))

    # ------------------------------------------------------------------------------------------- closed loop
    def close_loop(self) -> None:
        """One round of the closed loop (see :mod:`nas.search._closed_loop`): measure the front's unmeasured members
        (and the least certain trials), refit, re-score; again while a refit brings unmeasured trials onto the
        front."""
        loop = self.closed
        loop.begin_round()
        for round_ in range(len(self.table.points) + 1):  # each pass measures at least one new trial, or stops
            records = self.table.records()
            todo = loop.choose(self.table.points.values(), records, self.latency, uncertain=round_ == 0)
            measured = []
            for p in todo:
                t = loop.measure(p, records[p.number], self.store.trial_dir(p.number) / "model_int8.tflite")
                if t is None:
                    continue
                measured.append(t)
                self.log.measured(records[p.number].mlflow_run_id, t)
                self.event("measure", p.number, f"measured on {t.board}: {t.median_ms:.2f} ms (predicted "
                                                f"{t.predicted_ms:.2f} ms)")
            if not measured:
                return
            model, path = loop.refit()
            self.rescore(model)
            err = loop.error(self.table.points.values())
            self.log.refit(path, {"loop_measured": len(loop.times), **{f"loop_{k}": v for k, v in err.items()}},
                           len(loop.times))
            log.info("closed loop: refitted on %d measurements (measured trials now within %.1f%% on average, "
                     "%.1f%% at most)", len(loop.times), 100 * err.get("mean_rel_error", 0.0),
                     100 * err.get("max_rel_error", 0.0))

    def rescore(self, model) -> None:
        """Every trial predicted again by ``model`` (latency, constraints, scores, objective values): a new table of
        re-scored trials, the running ones re-scored, and the live study replaced by a re-scored copy."""
        self.latency = model
        lat = self.c.latency
        updates = {}

        def again(row: FinishedTrial) -> FinishedTrial:
            new = _rescored(row.record, model, lat, self._specs)
            values = row.values
            if row.state == TrialState.COMPLETE and values is not None and new.latency_objective_ms is not None:
                values = self.objective.values(new.metrics["int8_psnr"], new.latency_objective_ms,
                                               new.metrics["log2_score_objective"])
            updates[row.number] = (new, values, dict(zip(CONSTRAINTS, new.constraints)), _shift(row.record, new))
            return dataclasses.replace(row, record=new, values=values)

        self.table = self.table.rescored(again, self._measured())
        for live in (self.running, self.waiting):
            for number, run in list(live.items()):
                new = _rescored(run.record, model, lat, self._specs)
                live[number] = dataclasses.replace(run, record=new)
                updates[number] = (new, None, dict(zip(CONSTRAINTS, new.constraints)), _shift(run.record, new))
        for number, trial in self.store.relive(updates).items():
            for live in (self.running, self.waiting):
                if number in live:
                    live[number] = dataclasses.replace(live[number], trial=trial)

    # ---------------------------------------------------------------------------------------------- the end
    def conclude(self, info: StudyInfo, executor_name: str, new_trials: int, seconds: float,
                 plots: bool = True) -> SearchSummary:
        c = self.c
        if self.closed is not None:
            self.close_loop()  # the study's end: every member of the front measured
            if self.closed.model is not None:
                self.log.rescored(self.table.records())
        points = pareto_front([self.table.points[n] for n in sorted(self.table.points)])
        front = [p for p in points if p.on_front]
        files = {}
        if points and plots:
            files = write_front(points, self.store.folder / "pareto",
                                title=_front_title(c.name, self.latency, points),
                                zoo=zoo_points(self.latency, c.latency.k), k=c.latency.k,
                                references=self.store.references)
        best = best_point(points)
        n = self.table.counts
        summary = SearchSummary(info, n["complete"], n["pruned"], n["failed"], best, tuple(front), files,
                                executor_name, seconds, new_trials, dict(self.driver_seconds))
        write_json(self.store.folder / "summary.json", summary.to_dict())
        metrics = {"trials_complete": n["complete"], "trials_pruned": n["pruned"], "trials_failed": n["failed"],
                   "front_size": len(front)}
        parent_tags = {}
        if best is not None:
            metrics.update({"best_trial": best.number, "best_int8_psnr": best.psnr, "best_latency_ms": best.latency_ms,
                            # as the trials' metrics: log2_score on the mean latency, _objective on mean + k sigma
                            "best_log2_score": log2_score(best.psnr, best.latency_ms),
                            "best_log2_score_objective": best.log2_score})
            parent_tags = {"nas.best_trial": best.number, "nas.best_spec": best.spec}
        ranks = pareto_ranks(points)
        self.log.conclude(files, {p.number: ranks.get(p.number) for p in points}, self.table.records(), metrics,
                          parent_tags)
        self.event("end", message=str(self.store.folder))
        return summary


def _shift(old: TrialRecord, new: TrialRecord) -> float:
    """How much a re-score moves a trial's intermediate values (the scalar objective reports log2 scores on the
    pessimistic latency: they move by log2(old / new latency); the Pareto objective reports none)."""
    if old.latency_objective_ms and new.latency_objective_ms:
        return math.log2(old.latency_objective_ms / new.latency_objective_ms)
    return 0.0


def run_search(config: SearchConfig, *, callback: Callable[[SearchEvent], None] | None = None,
               executors: ExecutorFactory | None = None, trial_log: TrialLog | None = None,
               plots: bool = True) -> SearchSummary:
    """Run (or resume) the study ``config`` describes until it holds ``config.n_trials`` finished trials.

    ``callback`` receives a :class:`SearchEvent` at every change. ``executors`` says where trials are answered
    (default :class:`~nas.search.executors.TrainingExecutors`: in-process for one worker, Ray otherwise; a config
    that names a benchmark table needs :class:`nas.benchmark.TableExecutors`, which ``nas search`` gives it).
    ``trial_log`` replaces the study's MLflow log (:class:`NullTrialLog`: the driver measured without MLflow).
    ``plots=False`` leaves the front's PNG and HTML unwritten (seconds of plotting that tests of the driver's rules
    and the driver bench do not need; ``nas pareto`` writes them later).
    """
    with faults_named(f"the study folder {config.study_dir}"):  # (a full disk, ...: one line naming it)
        return _run_search(config, callback, executors, trial_log, plots)


def _run_search(config: SearchConfig, callback, executors: ExecutorFactory | None, trial_log: TrialLog | None,
                plots: bool) -> SearchSummary:
    if executors is None:
        if config.table:
            raise SearchError(f"study '{config.name}' names a benchmark table ({config.table}): its trials are "
                              "answered by nas.benchmark.TableExecutors (run_search(config, executors="
                              "TableExecutors()), or `nas search`)")
        executors = TrainingExecutors()
    t_start = time.perf_counter()
    setup = _Setup.load(config, executors)
    store = StudyStore(config)
    policy = SearchPolicy(config)
    tlog = trial_log or TrialLog(config.name, store.tracking_uri, store.folder, Path(config.out) / "mlartifacts")
    with store.locked():
        store.check_identity()
        store.open(setup.references)
        c = config
        params = {"space": c.space, "objective": c.objective, "n_trials": c.n_trials, "workers": c.workers,
                  "proxy_steps": c.proxy.steps, "latency_model": c.latency.model, "latency_k": c.latency.k,
                  "latency_budget_ms": c.latency.budget_ms, "sampler": c.sampler.name, "pruner": policy.pruner_name,
                  "seed": c.seed, "data": c.data.train, "input_size": "x".join(map(str, setup.input_hw)),
                  "target": c.export.target, **({"table": c.table} if c.table else {})}
        parent = tlog.open({"nas.objective": c.objective}, params)
        info = store.write_study_file(parent)
        store.recover()
        trials = store.trials()
        tlog.repair({t.number: TrialRecord.from_attrs(t.user_attrs) for t in trials}, store.outcome)
        if not trials:
            _warm_start(store, setup.space, c.warm_start)
        if c.pruner.name != "none" and not policy.prunes:
            log.info("sampler %s ignores pruned trials: this study prunes nothing", c.sampler.name)
        store.go_live(policy.sampler(len(trials)), policy.pruner())
        closed = ClosedLoop(c, setup.latency, setup.input_hw, store.folder) if c.latency.board is not None else None
        loop = _Loop(c, setup, store, tlog, policy, callback or (lambda ev: None), closed)
        loop.load(trials)
        if loop.closed is not None and loop.closed.load() is not None:
            loop.rescore(loop.closed.model)  # before any trial is asked: what the last run had refitted
        executor, threads = executors.make(c, loop.on_report, (setup.train_images, setup.valid_images)
                                           if executors.trains else None)
        before = loop.finished
        try:
            loop.run(executor, threads)
        finally:
            executor.close()
        return loop.conclude(info, executor.describe(), loop.finished - before, time.perf_counter() - t_start,
                             plots)


def _warm_start(store: StudyStore, space, names) -> None:
    """A new study's first trials: the zoo networks ``names``, projected into the space (each spec once)."""
    seen = set()
    for name in names:
        entry = zoo_get(name)
        spec = space.project(entry.spec)
        if spec.hash not in seen:
            seen.add(spec.hash)
            store.enqueue(space.params_of(spec), TrialRecord(warm_start=entry.name))


def study_front(study: str | Path, out: str | Path = "runs", write: bool = True,
                hv_ref: tuple[float, float] | None = None):
    """The front of a study (all its completed trials with ``on_front`` set), its hypervolume history (reference
    point ``hv_ref``, see :func:`hypervolume_trace`) and, with ``write``, their files."""
    info = open_study(study, out)
    st = load_optuna_study(info)
    points = pareto_front(trial_points(st, info.folder))
    trace = _trace(st, points, hv_ref)
    files = {}
    if write and points:
        lat = loop_model(info.folder) or load_latency_model(info.config.latency.model)
        k = info.config.latency.k
        refs = st.user_attrs.get(REFERENCE_ATTR) or reference_psnr(load_valid_images(info.config))
        files = write_front(points, info.folder / "pareto", title=_front_title(info.name, lat, points),
                            zoo=zoo_points(lat, k), k=k, references=refs)
        files["hypervolume"] = write_hypervolume(trace, info.folder / "pareto",
                                                 f"study {info.name}: hypervolume of the front by finished trial")
    return info, points, best_point(points), files, trace


@dataclasses.dataclass(frozen=True)
class HypervolumeTrace:
    """The hypervolume of a study's front after each finished trial, in the order they finished."""
    ref_psnr: float
    ref_latency_ms: float
    numbers: tuple[int, ...]
    values: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"ref_psnr": self.ref_psnr, "ref_latency_ms": self.ref_latency_ms,
                "history": [{"trial": n, "hypervolume": v} for n, v in zip(self.numbers, self.values)]}


def hypervolume_trace(study, ref: tuple[float, float] | None = None,
                      folder: str | Path | None = None) -> HypervolumeTrace:
    """The hypervolume history of an Optuna ``study`` of this driver (INT8 PSNR up, pessimistic latency down; only
    completed feasible trials add points). ``ref`` (PSNR dB, latency ms) defaults to 1 dB below the study's bicubic
    reference and 10% above its slowest completed trial: give it explicitly to compare studies. With the study's
    ``folder``, a closed-loop study is traced on its last refitted latency model."""
    return _trace(study, trial_points(study, folder), ref)


def _trace(study, trial_pts: list[FrontPoint], ref: tuple[float, float] | None) -> HypervolumeTrace:
    """:func:`hypervolume_trace` from the study's front points ``trial_pts`` (read once by the caller)."""
    finished = sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished()),
                      key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
    points = {p.number: p for p in trial_pts}
    if ref is None:
        bicubic = (study.user_attrs.get(REFERENCE_ATTR) or {}).get("bicubic x3")
        lowest = min((p.psnr for p in points.values()), default=0.0)
        ref = (bicubic - 1.0 if bicubic is not None else lowest - 0.1,
               1.1 * max((p.latency_objective_ms for p in points.values()), default=1.0))
    seq = [(points[t.number].psnr, points[t.number].latency_objective_ms)
           if t.number in points and points[t.number].feasible else None for t in finished]
    return HypervolumeTrace(float(ref[0]), float(ref[1]), tuple(t.number for t in finished),
                            tuple(hypervolume_history(seq, *ref)))
