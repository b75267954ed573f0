"""The study driver: one process asks Optuna for specs, hands trials to an executor, and writes every result.

The driver is the only writer of the study's Optuna storage, its MLflow runs and its folder (``<out>/<name>/``), so
the default SQLite storage is safe with any number of workers. Every result is written in this order: the trial's
folder (``trials/NNNN/``: spec, outcome, INT8 model, weights, NPU check, per-op latency), then Optuna, then MLflow;
a driver killed at any point (SIGKILL included) loses nothing when the same command runs again:

* trials Optuna still shows as running are marked failed (reason: interrupted) and queued again with the same
  parameters; their MLflow runs are closed as failed with that reason;
* a trial Optuna finished but whose MLflow run was left open is logged again from its folder.

A second driver on the same study is refused (a lock file held while the driver runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from nas._files import atomic_write, write_json
from nas._logging import get_logger
from nas.errors import NasError, SearchError
from nas.search._config import IDENTITY_FIELDS, SearchConfig, identity_view
from nas.search._pareto import FrontPoint, pareto_front, write_front, zoo_points
from nas.search._trial import TrialJob, TrialOutcome, _valid_images, reference_psnr
from nas.space import ArchSpec

__all__ = ["dominated_median", "SearchEvent", "SearchSummary", "StudyInfo", "run_search", "open_study", "study_front", "trial_points"]

log = get_logger("search")

STUDY_FILE = "study.json"
LOCK_FILE = "driver.lock"
REFERENCE_ATTR = "reference_psnr"
"""Optuna study attribute: baseline name -> RGB PSNR on the study's validation images (drawn on the front's plots)."""
OBJECTIVE_NAMES = {"pareto": ("INT8 PSNR (dB)", "latency mean+k sigma (ms)"), "score": ("log2 score (mean+k sigma)",)}
"""The study's objective names in Optuna (optuna-dashboard shows them instead of "Objective 0/1")."""
INTERRUPTED = "interrupted: the driver stopped while this trial ran (it is queued again)"


@dataclasses.dataclass(frozen=True)
class SearchEvent:
    """Progress of a study, sent to the callback: ``kind`` is start, submit, finish or end."""

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
class StudyInfo:
    """A study's folder and addresses (what ``study.json`` holds)."""

    name: str
    folder: Path
    config: SearchConfig
    storage: str
    tracking: str
    experiment: str
    parent_run_id: str | None

    def trial_dir(self, number: int) -> Path:
        return self.folder / "trials" / f"{number:04d}"


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

    def to_dict(self) -> dict:
        return {"study": self.study.name, "folder": str(self.study.folder), "storage": self.study.storage,
                "tracking": self.study.tracking, "experiment": self.study.experiment,
                "parent_run_id": self.study.parent_run_id, "complete": self.complete, "pruned": self.pruned,
                "failed": self.failed, "best": self.best.to_dict() if self.best else None,
                "front": [p.to_dict() for p in self.front], "files": {k: str(v) for k, v in self.files.items()},
                "executor": self.executor, "seconds": self.seconds, "new_trials": self.new_trials}


# ------------------------------------------------------------------------------------------------- helpers
def _spec_params(spec: ArchSpec) -> dict[str, Any]:
    d = spec.to_dict()
    blocks = d.get("blocks")
    return {"width": spec.width, "depth": spec.depth,
            "block": blocks if isinstance(blocks, str) else "/".join(blocks) if isinstance(blocks, list) else blocks,
            "skip": spec.skip.value, "clip_where": spec.clip_where.value, "clip_kind": spec.clip_kind.value,
            "tail": "-".join(map(str, spec.tail)) or "none", "expansion": spec.expansion, "hash": spec.hash,
            "describe": spec.describe()}


def _constraints(trial) -> list[float]:
    """The trial's constraints (feasible when every value is <= 0), set when it started."""
    return [float(trial.user_attrs.get("c_budget", 0.0)), float(trial.user_attrs.get("c_range", 0.0))]


class _Lock:
    """An exclusive lock on the study folder for as long as the driver runs (released by the OS if it dies)."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self.fh = None

    def __enter__(self) -> "_Lock":
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            who = self.fh.read().strip() or "another process"
            self.fh.close()
            raise SearchError(f"study {self.path.parent} is being run by {who}; wait for it to end or stop it "
                              "(two drivers on one study would both write it)") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} since {_dt.datetime.now().isoformat(timespec='seconds')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.fh is not None:
            self.fh.close()


def _optuna_storage(url: str):
    import optuna

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:
        raise SearchError(f"Optuna storage {url} is unusable: {str(exc).splitlines()[0]}") from None


def _write_study_file(info: StudyInfo, identity: str) -> None:
    write_json(info.folder / STUDY_FILE, {
        "format": "npu-nas/study", "version": 1, "name": info.name, "identity": identity,
        "config": info.config.model_dump(mode="json"), "storage": info.storage, "tracking": info.tracking,
        "experiment": info.experiment, "parent_run_id": info.parent_run_id,
        "updated": _dt.datetime.now().isoformat(timespec="seconds")})


def open_study(study: str | Path, out: str | Path = "runs") -> StudyInfo:
    """A study by its folder (``runs/NAME``) or its name (looked up in ``out``)."""
    from pydantic import ValidationError

    folder = Path(study)
    if not (folder / STUDY_FILE).exists():
        folder = Path(out) / str(study)
    path = folder / STUDY_FILE
    if not path.exists():
        raise SearchError(f"no study at {study} (no {STUDY_FILE} in {Path(study)} or {folder})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = SearchConfig.model_validate(data["config"])
        return StudyInfo(data["name"], folder, config, data["storage"], data["tracking"], data["experiment"],
                         data.get("parent_run_id"))
    except (ValueError, KeyError, ValidationError) as exc:
        raise SearchError(f"{path}: not a readable study file ({str(exc).splitlines()[0]})") from None


def trial_points(study) -> list[FrontPoint]:
    """The completed trials of an Optuna study as front points (log2 score on the pessimistic latency, as the
    search optimised it and as the live line shows it)."""
    from optuna.trial import TrialState

    from nas.evaluate import log2_score

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        u = t.user_attrs
        if "int8_psnr" not in u or "duplicate_of" in u:  # a duplicate is its original's point
            continue
        out.append(FrontPoint(
            number=t.number, spec=u.get("describe", ""), hash=u.get("hash", ""), psnr=float(u["int8_psnr"]),
            latency_ms=float(u["latency_ms"]), latency_sigma_ms=float(u["latency_sigma_ms"]),
            latency_objective_ms=float(u["latency_objective_ms"]),
            log2_score=log2_score(float(u["int8_psnr"]), float(u["latency_objective_ms"])),
            outside_range=bool(u.get("outside_range", False)), warm_start=str(u.get("warm_start", "")),
            feasible=all(c <= 0 for c in _constraints(t))))
    return out


def _front_title(name: str, latency, points: list[FrontPoint]) -> str:
    return f"study {name}: INT8 PSNR vs predicted {latency.board} latency ({len(points)} trials)"


def _best(points: list[FrontPoint]) -> FrontPoint | None:
    """The feasible point with the highest log2 score on the latency the search optimised."""
    feas = [p for p in points if p.feasible]
    return max(feas, key=lambda p: p.log2_score) if feas else None


# ------------------------------------------------------------------------------------------------- driver
class _Driver:
    def __init__(self, config: SearchConfig, callback: Callable[[SearchEvent], None] | None,
                 executor_factory: Callable[..., Any] | None):
        self.config = config
        self.callback = callback or (lambda ev: None)
        self.executor_factory = executor_factory
        self.t0 = time.perf_counter()
        self.running: dict[int, Any] = {}  # trial number -> the optuna Trial running it
        self._ask_seconds: dict[int, float] = {}  # the driver's time asking for each running trial

    @contextlib.contextmanager
    def _tracking(self, what: str):
        """MLflow failing mid-study stops the study cleanly: nothing finished is lost (it is in the study folder and
        in Optuna, and the next run logs it), and the message says so."""
        try:
            yield
        except SearchError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise SearchError(
                f"MLflow tracking store {self.config.tracking_uri} failed while {what} ({type(exc).__name__}: "
                f"{first}); the study stopped. Finished trials are kept in {self.config.study_dir} and in Optuna "
                "and are logged to MLflow when the same command runs again") from None

    # ----------------------------------------------------------------------------------------- preparing
    def prepare(self) -> None:
        from nas.export import load_target
        from nas.latency import load_latency_model
        from nas.search._trial import _images
        from nas.space import load_space

        c = self.config
        self.space = load_space(c.space)
        self.latency = load_latency_model(c.latency.model)
        self.input_hw = tuple(c.export.input_size or self.latency.input_hw)
        load_target(c.export.target)
        for name in c.warm_start:
            from nas.space import zoo_get

            zoo_get(name)  # an unknown name stops the run now, not after hours
        # the data is checked here, in the driver, before any trial starts
        self.train_images, self.valid_images = _images(c)
        log.info("data: %d training and %d validation images", len(self.train_images), len(self.valid_images))

    def _study_info(self, parent_run_id: str | None) -> StudyInfo:
        c = self.config
        return StudyInfo(c.name, c.study_dir, c, c.storage_url, c.tracking_uri, f"nas-{c.name}", parent_run_id)

    def _check_identity(self) -> None:
        path = self.config.study_dir / STUDY_FILE
        if not path.exists():
            return
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise SearchError(f"{path} is unreadable; move it away to start the study over") from None
        if old.get("identity") != self.config.identity_hash:
            before = identity_view(old.get("config", {}))
            now = identity_view(self.config.model_dump(mode="json"))
            diff = [k for k in IDENTITY_FIELDS if before[k] != now[k]]
            if "loss" not in (before.get("proxy") or {}):
                raise SearchError(
                    f"study '{self.config.name}' in {self.config.study_dir} was made by an earlier npu-nas whose "
                    "proxy trained every network another way (exact L1, training form 1, on which wide, deep and "
                    "re-parameterised nets stayed on their anchor): its trials cannot be ranked with this version's. "
                    "Start the study again under another name; its folder and MLflow runs keep the old results")
            raise SearchError(
                f"study '{self.config.name}' in {self.config.study_dir} was started with a different "
                f"{', '.join(diff) or 'config'}: resume it with its own config, or give this one another name")

    def open(self) -> None:
        import optuna

        from nas.search._tracking import Tracker

        c = self.config
        self._check_identity()
        self.tracker = Tracker(c.tracking_uri, f"nas-{c.name}", Path(c.out) / "mlartifacts")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = _optuna_storage(c.storage_url)
        directions = ["maximize", "minimize"] if c.objective == "pareto" else ["maximize"]
        try:
            self.study = optuna.create_study(storage=storage, study_name=c.name, directions=directions,
                                             sampler=self._sampler(), pruner=self._pruner(), load_if_exists=True)
        except Exception as exc:
            raise SearchError(f"cannot open Optuna study '{c.name}' in {c.storage_url}: "
                              f"{str(exc).splitlines()[0]}") from None
        have = [d.name.lower() for d in self.study.directions]
        if have != directions:
            raise SearchError(f"Optuna study '{c.name}' in {c.storage_url} optimises {have}, this config "
                              f"{directions}: use another study name")
        if REFERENCE_ATTR not in self.study.user_attrs:  # the baselines the plots draw, on the same images
            self.study.set_user_attr(REFERENCE_ATTR, reference_psnr(self.valid_images))
        names = list(OBJECTIVE_NAMES[c.objective])
        if self.study.metric_names != names:  # optuna-dashboard shows these instead of "Objective 0/1"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(names)
        params = {"space": c.space, "objective": c.objective, "n_trials": c.n_trials, "workers": c.workers,
                  "proxy_steps": c.proxy.steps, "latency_model": c.latency.model, "latency_k": c.latency.k,
                  "latency_budget_ms": c.latency.budget_ms, "sampler": c.sampler.name, "pruner": c.pruner.name,
                  "seed": c.seed, "data": c.data.train, "input_size": "x".join(map(str, self.input_hw)),
                  "target": c.export.target}
        with self._tracking("opening the study's parent run"):
            self.parent = self.tracker.parent_run(c.name, {"nas.objective": c.objective}, params)
        self.info = self._study_info(self.parent)
        _write_study_file(self.info, c.identity_hash)
        (c.study_dir / "config.json").write_text(json.dumps(c.model_dump(mode="json"), indent=2), encoding="utf-8")

    def _sampler(self):
        import optuna

        s, c = self.config.sampler, self.config
        if s.name == "random":
            return optuna.samplers.RandomSampler(seed=c.seed)
        if s.name == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=c.seed)
        return optuna.samplers.TPESampler(n_startup_trials=s.n_startup_trials, seed=c.seed, multivariate=True)

    def _pruner(self):
        import optuna

        p = self.config.pruner
        if p.name == "none" or self.config.objective == "pareto":  # Optuna prunes single-objective studies only
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)

    # ------------------------------------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Repair what a killed driver left: running trials failed and queued again; open MLflow runs closed."""
        from optuna.trial import TrialState

        st = self.study._storage
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            st.set_trial_user_attr(t._trial_id, "fail_reason", INTERRUPTED)
            st.set_trial_user_attr(t._trial_id, "requeued", True)
            st.set_trial_state_values(t._trial_id, TrialState.FAIL)
            attrs = {"requeued_from": t.number}
            if t.user_attrs.get("warm_start"):
                attrs["warm_start"] = t.user_attrs["warm_start"]
            self.study.enqueue_trial(t.params, user_attrs=attrs)
            log.warning("trial %d was running when the driver stopped: failed and queued again", t.number)
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        with self._tracking("repairing the runs a stopped driver left open"):
            for run in self.tracker.find(**{"nas.study": self.config.name, "nas.kind": "trial"}):
                if run.info.status != "RUNNING":
                    continue
                number = int(run.data.tags.get("nas.trial", -1))
                t = by_number.get(number)
                outcome = self.info.trial_dir(number) / "outcome.json"
                if t is not None and not t.user_attrs.get("requeued") and outcome.exists():
                    self._log_trial(run.info.run_id, t, json.loads(outcome.read_text(encoding="utf-8")))
                    log.warning("trial %d finished but its MLflow run was open: logged it again", number)
                else:
                    self.tracker.set_tags(run.info.run_id, {"nas.state": "failed", "nas.reason": INTERRUPTED})
                    self.tracker.end(run.info.run_id, "failed")

    def warm_start(self) -> None:
        from nas.space import zoo_get

        if self.study.get_trials(deepcopy=False) or not self.config.warm_start:
            return
        seen = set()
        for name in self.config.warm_start:
            entry = zoo_get(name)
            spec = self.space.project(entry.spec)
            if spec.hash in seen:
                continue
            seen.add(spec.hash)
            self.study.enqueue_trial(self.space.params_of(spec), user_attrs={"warm_start": entry.name})

    # ------------------------------------------------------------------------------------------- counting
    def counts(self) -> dict[str, int]:
        from optuna.trial import TrialState

        n = {"complete": 0, "pruned": 0, "failed": 0}
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE:
                n["complete"] += 1
            elif t.state == TrialState.PRUNED:
                n["pruned"] += 1
            elif t.state == TrialState.FAIL and not t.user_attrs.get("requeued"):
                n["failed"] += 1
        return n

    def event(self, kind: str, number: int | None = None, message: str = "") -> None:
        n = self.counts()
        best = _best(trial_points(self.study))
        self.callback(SearchEvent(
            kind, self.finished(), self.config.n_trials, len(self.running), n["complete"], n["pruned"], n["failed"],
            None if best is None else best.log2_score, None if best is None else best.number, number, message))

    # ---------------------------------------------------------------------------------------------- trials
    def _done_specs(self) -> dict[str, Any]:
        """Spec hash -> the finished trial that evaluated it (complete, pruned, or infeasible)."""
        from optuna.trial import TrialState

        out = {}
        for t in self.study.get_trials(deepcopy=False):
            h = t.user_attrs.get("hash")
            if not h or "duplicate_of" in t.user_attrs:
                continue
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                    t.state == TrialState.FAIL and t.user_attrs.get("infeasible")):
                out.setdefault(h, t)
        return out

    def ask(self, executor) -> None:
        from optuna.trial import TrialState

        t_ask = time.perf_counter()
        trial = self.study.ask()
        try:
            spec = self.space.suggest(trial)
        except NasError as exc:
            trial.set_user_attr("fail_reason", str(exc))
            trial.set_user_attr("infeasible", True)
            self.study.tell(trial, state=TrialState.FAIL)
            return
        k = self.config.latency.k
        pred = self.latency.predict(spec)
        lat_obj = pred.pessimistic(k)
        budget = self.config.latency.budget_ms
        attrs = {
            "spec": spec.to_dict(), "hash": spec.hash, "describe": spec.describe(),
            "latency_ms": pred.mean_ms, "latency_sigma_ms": pred.stddev_ms, "latency_objective_ms": lat_obj,
            "outside_range": not pred.in_range, "outside": list(pred.outside),
            "c_budget": 0.0 if budget is None else lat_obj - budget,
            "c_range": 1.0 if (self.config.latency.outside_range == "constrain" and not pred.in_range) else 0.0,
        }
        for key, val in attrs.items():
            trial.set_user_attr(key, val)
        # the samplers (TPE, NSGA-II) steer away from infeasible trials through these
        trial.set_constraint("latency_budget", attrs["c_budget"])
        trial.set_constraint("latency_model_range", attrs["c_range"])
        folder = self.info.trial_dir(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "spec.json", spec.to_dict())
        _write_latency_table(folder / "latency.csv", pred)
        warm = trial.user_attrs.get("warm_start", "")
        tags = {"nas.spec_hash": spec.hash, "nas.outside_range": str(not pred.in_range).lower(),
                "nas.warm_start": warm, "nas.state": "running"}
        with self._tracking(f"starting trial {trial.number}'s run"):
            run_id = self.tracker.start_trial(self.parent, self.config.name, trial.number, _spec_params(spec), tags)
            trial.set_user_attr("mlflow_run_id", run_id)
            self.tracker.log_metrics(run_id, {"latency_ms": pred.mean_ms, "latency_sigma_ms": pred.stddev_ms,
                                              "latency_objective_ms": lat_obj})
        same = self._done_specs().get(spec.hash)
        if same is not None:
            self._duplicate(trial, same, run_id)
            return
        self.running[trial.number] = trial
        self._ask_seconds[trial.number] = time.perf_counter() - t_ask
        executor.submit(TrialJob(trial.number, spec, self.config, self.input_hw, self.job_threads))
        self.event("submit", trial.number, spec.describe())

    def _duplicate(self, trial, same, run_id: str) -> None:
        """A spec already evaluated in this study: its result is reused, nothing is trained."""
        from optuna.trial import TrialState

        trial.set_user_attr("duplicate_of", same.number)
        keep = ("int8_psnr", "int8_ssim", "fp32_psnr", "fp32_ssim", "score", "log2_score", "log2_score_objective",
                "curve", "fail_reason", "infeasible", "prune_reason")
        for key in keep:
            if key in same.user_attrs:
                trial.set_user_attr(key, same.user_attrs[key])
        state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(same.state, "failed")
        reason = f"same spec as trial {same.number}: not trained again"
        with self._tracking(f"logging trial {trial.number}"):
            self.tracker.set_tags(run_id, {"nas.duplicate_of": same.number, "nas.state": state, "nas.reason": reason})
            self.tracker.log_metrics(run_id, {k: same.user_attrs[k] for k in keep[:7] if k in same.user_attrs})
            self.tracker.end(run_id, state)
        if same.state == TrialState.COMPLETE:
            self.study.tell(trial, same.values)
        elif same.state == TrialState.PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        self.event("finish", trial.number, reason)

    def on_report(self, number: int, step: int, psnr: float) -> bool:
        """An intermediate validation PSNR of a running trial: record it; True when the trial should stop."""
        from nas.evaluate import log2_score

        trial = self.running.get(number)
        if trial is None or not math.isfinite(psnr):
            return False
        value = log2_score(max(psnr, 1e-3), trial.user_attrs["latency_objective_ms"])
        if self.config.pruner.name == "none":
            return False
        if self.config.objective == "score":
            trial.report(value, step)
            return trial.should_prune()
        return self._dominated_median(trial, step, psnr)

    def _dominated_median(self, trial, step: int, psnr: float) -> bool:
        from optuna.trial import TrialState

        p = self.config.pruner
        others = [(t.user_attrs.get("latency_objective_ms", math.inf), t.user_attrs.get("curve", []))
                  for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                  if "duplicate_of" not in t.user_attrs]
        return dominated_median(step, psnr, trial.user_attrs["latency_objective_ms"], others, p.n_startup_trials,
                                p.n_warmup_steps)

    def finish(self, outcome: TrialOutcome) -> None:
        from optuna.trial import TrialState

        from nas.evaluate import challenge_score, log2_score

        t_driver = time.perf_counter()
        trial = self.running.pop(outcome.number)
        u = trial.user_attrs
        folder = self.info.trial_dir(outcome.number)
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in outcome.files.items():
            with atomic_write(folder / name) as fh:
                fh.write(blob)
        summary = outcome.summary()
        m = dict(outcome.metrics)
        if outcome.state == "complete":
            m["score"] = challenge_score(m["int8_psnr"], u["latency_ms"])
            m["log2_score"] = log2_score(m["int8_psnr"], u["latency_ms"])
            m["log2_score_objective"] = log2_score(m["int8_psnr"], u["latency_objective_ms"])
        summary["metrics"] = m
        write_json(folder / "outcome.json", summary)
        # Optuna
        for key in ("int8_psnr", "int8_ssim", "fp32_psnr", "fp32_ssim", "int8_drop_db", "score", "log2_score",
                    "log2_score_objective"):
            if key in m:
                trial.set_user_attr(key, m[key])
        trial.set_user_attr("curve", [list(c) for c in outcome.curve])
        trial.set_user_attr("seconds", outcome.seconds)
        if outcome.state == "complete":
            values = ([m["int8_psnr"], u["latency_objective_ms"]] if self.config.objective == "pareto"
                      else m["log2_score_objective"])
            frozen = self.study.tell(trial, values)
        elif outcome.state == "pruned":
            trial.set_user_attr("prune_reason", outcome.reason)
            frozen = self.study.tell(trial, state=TrialState.PRUNED)
        else:
            trial.set_user_attr("fail_reason", outcome.reason)
            trial.set_user_attr("infeasible", not outcome.reason.startswith("worker lost"))
            frozen = self.study.tell(trial, state=TrialState.FAIL)
        # MLflow
        with self._tracking(f"logging trial {outcome.number}"):
            self._log_trial(u["mlflow_run_id"], frozen, summary)
            # the driver's own cost of this trial (asking, predicting, writing files, Optuna, MLflow)
            driver = self._ask_seconds.pop(outcome.number, 0.0) + time.perf_counter() - t_driver
            self.tracker.log_metrics(u["mlflow_run_id"], {"driver_seconds": driver})
        summary["seconds"] = {**summary["seconds"], "driver": driver}
        write_json(folder / "outcome.json", summary)
        self.event("finish", outcome.number, (
            f"complete, {u['describe']}: INT8 {m['int8_psnr']:.2f} dB, "
            f"{u['latency_objective_ms']:.1f} ms (mean+k sigma)"
            if outcome.state == "complete" else outcome.reason))

    def _log_trial(self, run_id: str, frozen, summary: dict) -> None:
        folder = self.info.trial_dir(frozen.number)
        m = dict(summary.get("metrics", {}))
        secs = summary.get("seconds", {})
        m.update({f"{k}_seconds": v for k, v in secs.items()})
        u = frozen.user_attrs
        m.update({"latency_ms": u.get("latency_ms"), "latency_sigma_ms": u.get("latency_sigma_ms"),
                  "latency_objective_ms": u.get("latency_objective_ms")})
        t = self.tracker
        t.log_metrics(run_id, m)
        t.log_curve(run_id, "val_psnr", summary.get("curve", []))
        files = [folder / n for n in ("spec.json", "outcome.json", "latency.csv", "npu_check.json",
                                      "model_int8.tflite") if (folder / n).exists()]
        t.log_files(run_id, files)
        state = summary["state"]
        t.set_tags(run_id, {"nas.state": state, "nas.reason": summary.get("reason", ""),
                            "nas.pareto": "false", "nas.worker": summary.get("worker", "")})
        t.end(run_id, state)

    # ------------------------------------------------------------------------------------------------ run
    def _executor(self):
        from nas.search._executor import make_executor

        if self.executor_factory is not None:
            self.job_threads = self.config.resources.tf_threads
            return self.executor_factory(self.on_report)
        executor, self.job_threads = make_executor(self.config, self.on_report,
                                                   (self.train_images, self.valid_images))
        return executor

    def finished(self) -> int:
        n = self.counts()
        return n["complete"] + n["pruned"] + n["failed"]

    def loop(self, executor) -> None:
        self.event("start", message=executor.describe())
        while True:
            if self.finished() + len(self.running) < self.config.n_trials and len(self.running) < executor.capacity:
                self.ask(executor)
                continue
            if not self.running:
                break
            for outcome in executor.poll(timeout=1.0):
                self.finish(outcome)

    def conclude(self, executor_name: str, new_trials: int) -> SearchSummary:
        from nas.evaluate import log2_score

        c = self.config
        points = pareto_front(trial_points(self.study))
        front = [p for p in points if p.on_front]
        files = {}
        if points:
            files = write_front(points, c.study_dir / "pareto", title=_front_title(c.name, self.latency, points),
                                zoo=zoo_points(self.latency, c.latency.k), k=c.latency.k,
                                references=self.study.user_attrs[REFERENCE_ATTR])
        best = _best(points)
        n = self.counts()
        summary = SearchSummary(self.info, n["complete"], n["pruned"], n["failed"], best, tuple(front), files,
                                executor_name, time.perf_counter() - self.t0, new_trials)
        write_json(c.study_dir / "summary.json", summary.to_dict())
        metrics = {"trials_complete": n["complete"], "trials_pruned": n["pruned"], "trials_failed": n["failed"],
                   "front_size": len(front)}
        with self._tracking("logging the study's Pareto front"):
            if files:
                self.tracker.log_files(self.parent, files.values(), "pareto")
            on = {p.number for p in front}
            numbers = {p.number for p in points}
            for t in self.study.get_trials(deepcopy=False):
                rid = t.user_attrs.get("mlflow_run_id")
                if rid and t.number in numbers:
                    self.tracker.set_tags(rid, {"nas.pareto": str(t.number in on).lower()})
            if best is not None:
                metrics.update({"best_trial": best.number, "best_int8_psnr": best.psnr,
                                "best_latency_ms": best.latency_ms,
                                # as the trials' metrics: log2_score on the mean latency, _objective on mean + k sigma
                                "best_log2_score": log2_score(best.psnr, best.latency_ms),
                                "best_log2_score_objective": best.log2_score})
                self.tracker.set_tags(self.parent, {"nas.best_trial": best.number, "nas.best_spec": best.spec})
            self.tracker.log_metrics(self.parent, metrics)
            self.tracker.end(self.parent, "complete")
        self.event("end", message=str(c.study_dir))
        return summary


def dominated_median(step: int, psnr: float, latency_ms: float, completed, n_startup: int, n_warmup: int) -> bool:
    """The Pareto objective's pruning rule: stop a trial whose validation PSNR at ``step`` is below the median PSNR,
    at the same step, of the completed trials predicted at most as slow (``completed``: (latency, curve) pairs,
    a curve being (step, PSNR) pairs). Needs ``max(1, n_startup)`` such trials; never before ``n_warmup`` steps."""
    if step < n_warmup:
        return False
    values = []
    for latency, curve in completed:
        if latency > latency_ms:
            continue
        at = {int(s): float(v) for s, v in curve}
        if step in at:
            values.append(at[step])
    if len(values) < max(1, n_startup):
        return False
    return psnr < statistics.median(values)


def _write_latency_table(path: Path, pred) -> None:
    lines = ["op,type,ms,floor_ms,at_floor"]
    lines += [f"{o.name},{o.type},{o.ms:.6f},{o.floor_ms:.6f},{str(o.at_floor).lower()}" for o in pred.per_op]
    lines.append(f"total,,{pred.mean_ms:.6f},,")
    with atomic_write(path) as fh:
        fh.write(("\n".join(lines) + "\n").encode())


def run_search(config: SearchConfig, *, callback: Callable[[SearchEvent], None] | None = None,
               executor_factory: Callable[..., Any] | None = None) -> SearchSummary:
    """Run (or resume) the study ``config`` describes until it holds ``config.n_trials`` finished trials.

    ``callback`` receives a :class:`SearchEvent` at every change. ``executor_factory(on_report)`` replaces the
    default executor (in-process for one worker, Ray otherwise).
    """
    d = _Driver(config, callback, executor_factory)
    d.prepare()
    config.study_dir.mkdir(parents=True, exist_ok=True)
    with _Lock(config.study_dir):
        d.open()
        d.recover()
        d.warm_start()
        executor = d._executor()
        before = d.finished()
        try:
            d.loop(executor)
        finally:
            executor.close()
        return d.conclude(executor.describe(), new_trials=d.finished() - before)


def study_front(study: str | Path, out: str | Path = "runs", write: bool = True):
    """The front of a study (all its completed trials with ``on_front`` set) and, with ``write``, its files."""
    import optuna

    from nas.latency import load_latency_model

    info = open_study(study, out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        st = optuna.load_study(study_name=info.name, storage=_optuna_storage(info.storage))
    except KeyError:
        raise SearchError(f"Optuna storage {info.storage} has no study '{info.name}'") from None
    points = pareto_front(trial_points(st))
    files = {}
    if write and points:
        lat = load_latency_model(info.config.latency.model)
        k = info.config.latency.k
        files = write_front(points, info.folder / "pareto", title=_front_title(info.name, lat, points),
                            zoo=zoo_points(lat, k), k=k,
                            references=st.user_attrs.get(REFERENCE_ATTR) or reference_psnr(_valid_images(info.config)))
    return info, points, _best(points), files
