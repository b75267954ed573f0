"""The study's store: its folder (``<out>/<name>/``), the lock that keeps one driver on it, its identity, and its
Optuna study (storage, recovery of what a killed driver left, enqueued trials).

The driver asks and tells a *live* copy of the study held in memory (:meth:`StudyStore.go_live`): the sampler and
the pruner read it there, and each of Optuna's per-value writes (every parameter, attribute and constraint is its own
commit in an SQL storage) costs microseconds instead of milliseconds. The durable storage gets each trial in as few
writes as it can take: one when the trial starts (created as running with its parameters, record and constraints),
two when it ends (its record, then its state and values). Both copies give a trial the same number (checked on
every write: another writer on the same study stops the driver). Enqueued trials are written to both at once.

The folder is self-contained: ``study.json`` (name, config, addresses), ``optuna.db`` (the default storage, found
next to ``study.json`` wherever the folder is copied or moved), ``trials/NNNN/`` (spec, outcome, INT8 model, weights,
NPU check, per-op latency), ``pareto/``. Every result is written to the folder first, then to Optuna, then to MLflow.

Only Optuna's public API is used: a study's trials are reached through :class:`optuna.Study` and, for a trial a
killed driver left running, through the storage's own interface (:class:`optuna.storages.BaseStorage`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import TrialState
from pydantic import ValidationError
from sqlalchemy import event

from nas._files import atomic_write, write_json
from nas._logging import get_logger
from nas.errors import SearchError, environment_fault, first_line
from nas.search._config import IDENTITY_FIELDS, SearchConfig, identity_view
from nas.search._objective import Objective
from nas.search._record import Cause, TrialRecord

__all__ = ["StudyInfo", "StudyStore", "open_study", "load_optuna_study", "optuna_storage", "INTERRUPTED",
           "REFERENCE_ATTR"]

log = get_logger("search")

STUDY_FILE = "study.json"
LOCK_FILE = "driver.lock"
JOURNAL = "journal:///"  # journal:///runs/x/optuna.log (relative), journal:////abs/optuna.log
REFERENCE_ATTR = "reference_psnr"
"""Optuna study attribute: baseline name -> RGB PSNR on the study's validation images (drawn on the front's plots)."""
INTERRUPTED = "interrupted: the driver stopped while this trial ran (it is queued again)"
_LIVE = "live"  # the name of the live copy in its in-memory storage


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


def open_study(study: str | Path, out: str | Path = "runs") -> StudyInfo:
    """A study by its folder (``runs/NAME``) or its name (looked up in ``out``)."""
    folder = Path(study)
    if not (folder / STUDY_FILE).exists():
        folder = Path(out) / str(study)
    path = folder / STUDY_FILE
    if not path.exists():
        raise SearchError(f"no study at {study} (no {STUDY_FILE} in {Path(study)} or {folder})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        config = SearchConfig.model_validate(data["config"])
        storage, tracking = config.addresses(folder)
        return StudyInfo(data["name"], folder, config, storage, tracking, data["experiment"],
                         data.get("parent_run_id"))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise SearchError(f"{path}: not a readable study file ({str(exc).splitlines()[0]})") from None


def optuna_storage(url: str):
    """An Optuna storage for ``url``: ``sqlite:///FILE`` (waits up to 60 s for a lock instead of failing at once),
    ``journal:///FILE`` (Optuna's append-only journal file: no database, a few times cheaper per call than SQLite,
    for long studies), or any SQLAlchemy URL (``postgresql://...``)."""
    try:
        if url.startswith(JOURNAL):
            path = Path(url.removeprefix(JOURNAL))
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            storage = _rdb_storage(url, engine_kwargs={"connect_args": {"timeout": 60}})
            _fast_sqlite(storage.engine)
            return storage
        return _rdb_storage(url)
    except Exception as exc:  # a damaged file, a database that does not answer, a missing driver
        raise SearchError(f"Optuna storage {url} is unusable: {first_line(exc)}") from None


def _rdb_storage(url: str, attempts: int = 5, **kwargs):
    """Optuna's RDBStorage for ``url``, tolerating another process that creates the same new database at the same
    moment. RDBStorage checks for each table and then creates it, so a second opener (``nas pareto``,
    optuna-dashboard, a test polling the study) racing the driver's first open fails with "table studies already
    exists" or a duplicate schema version; the tables are complete a moment later, and opening again succeeds."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (OperationalError, IntegrityError) as exc:
            if not (isinstance(exc, IntegrityError) or "already exists" in str(exc)):
                raise
            time.sleep(0.2 * (attempt + 1))
    return optuna.storages.RDBStorage(url, **kwargs)


def _fast_sqlite(engine) -> None:
    """SQLite in write-ahead-log mode with ``synchronous=NORMAL``: a commit no longer waits for the disk (Optuna
    commits every parameter and attribute on its own: 4 ms each with the default rollback journal, which made the
    driver's own time per trial 0.5 s). A killed process loses nothing committed; a power cut may lose the last
    commits, which the study folder still holds. Readers (``nas pareto``, optuna-dashboard) no longer block the
    driver. Write-ahead logs need a local file system (not NFS)."""
    def on_connect(dbapi_connection, _record) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections made before the listener reconnect with it


def load_optuna_study(info: StudyInfo):
    """The Optuna study of ``info`` (read-only use: the front, retraining)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(info.storage)
    try:
        return optuna.load_study(study_name=info.name, storage=storage)
    except KeyError:
        raise SearchError(f"Optuna storage {info.storage} has no study '{info.name}'") from None
    except Exception as exc:
        raise SearchError(f"Optuna storage {info.storage} is unusable: {first_line(exc)}") from None


class _Lock:
    """An exclusive lock on the study folder for as long as the driver runs (released by the OS if it dies)."""
    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self.fh = None

    def __enter__(self) -> "_Lock":
        import fcntl

        try:
            self.fh = open(self.path, "a+")
        except OSError as exc:  # a read-only disk, a permission: the line every environment fault gets
            fault = environment_fault(exc, where=f"the study folder {self.path.parent}")
            if fault is not None:
                raise fault from None
            raise SearchError(f"study folder {self.path.parent} is not writable ({exc.strerror})") from None
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


class StudyStore:
    """One study's folder and Optuna study, written by one driver (see the module docstring)."""
    def __init__(self, config: SearchConfig):
        self.config = config
        self.folder = config.study_dir
        self.storage_url, self.tracking_uri = config.addresses(self.folder)
        self.study = None  # the durable optuna.Study, once opened
        self.live = None  # its copy in memory that the driver asks and tells (go_live)
        self._memory = None  # the live copy's in-memory storage
        self._storage = None
        self._study_id: int | None = None
        self._waiting: set[int] = set()  # enqueued trials not yet asked (in both copies)
        self._tids: dict[int, int] = {}  # trial number -> durable trial id, for the trials started in this run

    # ---------------------------------------------------------------------------------------------- folder
    @contextlib.contextmanager
    def locked(self) -> Iterator["StudyStore"]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchError(f"cannot create the study folder {self.folder} ({exc.strerror})") from None
        with _Lock(self.folder):
            yield self

    def trial_dir(self, number: int) -> Path:
        return self.folder / "trials" / f"{number:04d}"

    def write_trial_files(self, number: int, files: dict[str, bytes]) -> Path:
        folder = self.trial_dir(number)
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            with atomic_write(folder / name) as fh:
                fh.write(blob)
        return folder

    def write_trial_json(self, number: int, name: str, data: Any) -> None:
        folder = self.trial_dir(number)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / name, data)

    def outcome(self, number: int) -> dict | None:
        path = self.trial_dir(number) / "outcome.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def info(self, parent_run_id: str | None) -> StudyInfo:
        c = self.config
        return StudyInfo(c.name, self.folder, c, self.storage_url, self.tracking_uri, f"nas-{c.name}",
                         parent_run_id)

    def write_study_file(self, parent_run_id: str | None) -> StudyInfo:
        info = self.info(parent_run_id)
        c = self.config
        write_json(self.folder / STUDY_FILE, {
            "format": "npu-nas/study", "version": 1, "name": info.name, "identity": c.identity_hash,
            "config": c.model_dump(mode="json"), "storage": info.storage, "tracking": info.tracking,
            "experiment": info.experiment, "parent_run_id": info.parent_run_id,
            "updated": _dt.datetime.now().isoformat(timespec="seconds")})
        write_json(self.folder / "config.json", c.model_dump(mode="json"))
        return info

    def check_identity(self) -> None:
        """A study is resumed only with the config fields its trials' values depend on."""
        path = self.folder / STUDY_FILE
        if not path.exists():
            return
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            old_config = old.get("config", {})
            before = identity_view(old_config)
        except (ValueError, AttributeError):
            raise SearchError(f"{path} is unreadable; move it away to start the study over") from None
        if old.get("identity") == self.config.identity_hash:
            return
        now = identity_view(self.config.model_dump(mode="json"))
        if before == now:  # the same fields, read by this version's identity (which may leave out more than before)
            return
        diff = [k for k in IDENTITY_FIELDS if before[k] != now[k]]
        if "loss" not in (before.get("proxy") or {}):
            raise SearchError(
                f"study '{self.config.name}' in {self.folder} was made by an earlier npu-nas whose "
                "proxy trained every network another way (exact L1, training form 1, on which wide, deep and "
                "re-parameterised nets stayed on their anchor): its trials cannot be ranked with this version's. "
                "Start the study again under another name; its folder and MLflow runs keep the old results")
        raise SearchError(
            f"study '{self.config.name}' in {self.folder} was started with a different "
            f"{', '.join(diff) or 'config'}: resume it with its own config, or give this one another name")

    # ----------------------------------------------------------------------------------------------- Optuna
    def open(self, references) -> None:
        """Create or load the durable Optuna study; ``references()`` gives the baselines' PSNR the first time
        (stored as a study attribute)."""

        c = self.config
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        hint = (f"Every finished trial is also in {self.folder / 'trials'}: `nas rebuild {self.folder}` rebuilds the "
                "study from there")
        try:
            self._storage = optuna_storage(self.storage_url)
        except SearchError as exc:
            raise SearchError(f"{exc}. {hint}") from None
        directions = Objective.of(c).directions
        try:
            # never asked (the live copy is): the cheapest sampler to make
            self.study = optuna.create_study(storage=self._storage, study_name=c.name, directions=directions,
                                             sampler=optuna.samplers.RandomSampler(), load_if_exists=True)
            self._study_id = self._storage.get_study_id_from_name(c.name)
        except Exception as exc:
            raise SearchError(f"cannot open Optuna study '{c.name}' in {self.storage_url}: {first_line(exc)}. "
                              f"{hint}") from None
        have = [d.name.lower() for d in self.study.directions]
        if have != directions:
            raise SearchError(f"Optuna study '{c.name}' in {self.storage_url} optimises {have}, this config "
                              f"{directions}: use another study name")
        if REFERENCE_ATTR not in self.study.user_attrs:  # the baselines the plots draw, on the same images
            self.study.set_user_attr(REFERENCE_ATTR, references())
        names = list(Objective.of(c).names)
        if self.study.metric_names != names:  # optuna-dashboard shows these instead of "Objective 0/1"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(names)

    @property
    def references(self) -> dict:
        return dict(self.study.user_attrs.get(REFERENCE_ATTR, {}))

    def trials(self) -> list:
        """Every trial of the study (FrozenTrial, not copied): read once when the driver starts."""
        return self.study.get_trials(deepcopy=False)

    def enqueue(self, params: dict, record: TrialRecord) -> None:
        """Queue a trial with ``params`` (asked before any new one), in the durable study and the live one."""
        self.study.enqueue_trial(params, user_attrs=record.attrs())
        if self.live is not None:
            self.live.enqueue_trial(params, user_attrs=record.attrs())
            self._waiting.add(self.live.get_trials(deepcopy=False)[-1].number)

    # ------------------------------------------------------------------------------------------ live study
    def go_live(self, sampler, pruner) -> None:
        """Copy the durable study (after :meth:`recover`: nothing is running) into memory, with ``sampler`` and
        ``pruner``; from now on the driver asks and tells :attr:`live` through :meth:`ask`, :meth:`start` and
        :meth:`finish`."""
        trials = self.study.get_trials(deepcopy=False)
        if [t.number for t in trials] != list(range(len(trials))):
            raise SearchError(f"Optuna study '{self.config.name}' in {self.storage_url} has gaps in its trial "
                              f"numbers: `nas rebuild {self.folder} --force` rebuilds it from the study folder")
        self.live = self._memory_study(sampler, pruner)
        self.live.add_trials(trials)
        self._waiting = {t.number for t in trials if t.state == TrialState.WAITING}

    def relive(self, updates: dict[int, tuple[TrialRecord, Any, dict[str, float], float]]) -> dict[int, Any]:
        """Replace the live study by a copy whose trials carry ``updates`` (number -> record, values, constraints,
        and the shift of its intermediate values): the closed latency loop re-scores every trial after a refit, and
        Optuna cannot change a finished trial in place. The durable study keeps the values each trial finished
        with. Returns number -> the new live ``optuna.Trial`` of each running trial (the driver swaps them in)."""
        old = self.live
        trials = old.get_trials(deepcopy=True)
        for t in trials:
            if t.number not in updates:
                continue
            record, values, constraints, shift = updates[t.number]
            t.user_attrs = {**t.user_attrs, **record.attrs()}
            t.system_attrs = {**t.system_attrs, **{f"constraints:{k}": float(v) for k, v in constraints.items()}}
            if t.state == TrialState.COMPLETE and values is not None:
                t.values = list(values) if isinstance(values, (list, tuple)) else [values]
            if shift:
                t.intermediate_values = {step: v + shift for step, v in t.intermediate_values.items()}
        self.live = self._memory_study(old.sampler, old.pruner)
        self.live.add_trials(trials)
        # the running trials, as trials of the new copy (what Study.ask hands out: Trial(study, trial_id), the id
        # from the storage's own interface)
        mem, sid = self._memory, self._memory.get_study_id_from_name(_LIVE)
        return {t.number: optuna.trial.Trial(self.live, mem.get_trial_id_from_study_id_trial_number(sid, t.number))
                for t in self.live.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}

    def _memory_study(self, sampler, pruner):
        """A new in-memory study for the live copy, on a storage this store holds (its trial ids are then reached
        through the storage's public interface)."""
        self._memory = optuna.storages.InMemoryStorage()
        return optuna.create_study(storage=self._memory, study_name=_LIVE, directions=Objective.of(self.config).directions,
                                   sampler=sampler, pruner=pruner)

    def ask(self):
        """The next trial (an enqueued one first), from the live study."""
        return self.live.ask()

    def start(self, trial, record: TrialRecord, constraints: dict[str, float]) -> None:
        """A trial that goes to a worker (its constraints already set on the live trial): its record on the live
        trial, and a running copy in the durable study (one write for a new trial)."""
        self.write(trial, record)
        if trial.number in self._waiting:
            self._tids[trial.number] = self._start_waiting(trial, record, constraints)
            return
        template = optuna.trial.create_trial(state=TrialState.RUNNING, params=trial.params,
                                             distributions=trial.distributions, user_attrs=record.attrs(),
                                             constraints=constraints)
        self._tids[trial.number] = self._create(trial.number, template)

    def finish(self, trial, record: TrialRecord, state, values=None) -> None:
        """Tell the live study how ``trial`` ended, with its final ``record``; then the durable one (two writes for
        a started trial, one for a trial that never went to a worker)."""
        self.write(trial, record)
        frozen = self.live.tell(trial, values, state=state)
        tid = self._tids.pop(trial.number, None)
        if tid is None and trial.number not in self._waiting:
            self._create(trial.number, frozen)
            return
        if tid is None:  # an enqueued trial that finished without a worker (a duplicate, an infeasible spec)
            tid = self._start_waiting(trial, record, frozen.constraints)
        for step, value in frozen.intermediate_values.items():  # what the pruner saw (the scalar objective)
            self._storage.set_trial_intermediate_value(tid, step, value)
        self._write_durable(tid, record)
        self._storage.set_trial_state_values(tid, state, frozen.values)

    def _create(self, number: int, template) -> int:
        tid = self._storage.create_new_trial(self._study_id, template_trial=template)
        if self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number) != tid:
            raise SearchError(f"Optuna study '{self.config.name}' in {self.storage_url} was written by another "
                              f"process (trial {number} of this driver got another number there): one driver per "
                              "study")
        return tid

    def _start_waiting(self, trial, record: TrialRecord, constraints: dict[str, float]) -> int:
        """The durable copy of an enqueued trial the live study has just handed out: running, with its values."""
        s = self._storage
        self._waiting.discard(trial.number)
        tid = s.get_trial_id_from_study_id_trial_number(self._study_id, trial.number)
        if not s.set_trial_state_values(tid, TrialState.RUNNING):
            raise SearchError(f"Optuna study '{self.config.name}' in {self.storage_url}: enqueued trial "
                              f"{trial.number} was taken by another process: one driver per study")
        for name, value in trial.params.items():
            dist = trial.distributions[name]
            s.set_trial_param(tid, name, dist.to_internal_repr(value), dist)
        self._write_durable(tid, record)
        for name, value in constraints.items():  # where Trial.set_constraint keeps them (the samplers read them)
            s.set_trial_system_attr(tid, f"constraints:{name}", float(value))
        return tid

    def recover(self) -> list[int]:
        """Trials a killed driver left running: failed (cause interrupted) and queued again with the same
        parameters; and trials marked to run again whose re-run was never queued (a driver killed between the two
        writes). Returns their numbers. Each trial is queued again once, however often the driver was killed."""
        out = []
        trials = self.study.get_trials(deepcopy=False)
        records = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in trials}
        queued = {r.requeued_from for r in records.values() if r.requeued_from is not None}
        for t in trials:
            rec = records[t.number]
            if t.state == TrialState.RUNNING:
                self.set_record(t.number, rec.with_(cause=Cause.INTERRUPTED, reason=INTERRUPTED, requeued=True))
                self.study.tell(t.number, state=TrialState.FAIL)
                log.warning("trial %d was running when the driver stopped: failed and queued again", t.number)
            elif not (t.state == TrialState.FAIL and rec.requeued):
                continue
            if t.number not in queued:
                # an enqueued trial killed as it started holds its parameters in fixed_params only (Optuna fills
                # params as they are drawn): without them its re-run would draw the missing ones afresh
                params = {**t.system_attrs.get("fixed_params", {}), **t.params}
                self.enqueue(params, TrialRecord(warm_start=rec.warm_start, requeued_from=t.number,
                                                   attempt=rec.attempt if rec.cause is Cause.INTERRUPTED
                                                   or t.state == TrialState.RUNNING else rec.attempt + 1))
                out.append(t.number)
        return out

    def set_record(self, number: int, record: TrialRecord) -> None:
        """Write ``record`` on trial ``number`` through the storage's interface: for a trial this process did not
        ask for (a killed driver's)."""
        self._write_durable(self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number), record)

    def _write_durable(self, tid: int, record: TrialRecord) -> None:
        """Write ``record`` on the durable trial ``tid`` through the storage's interface."""
        for key, value in record.attrs().items():
            self._storage.set_trial_user_attr(tid, key, value)

    @staticmethod
    def write(trial, record: TrialRecord) -> None:
        """Write ``record`` on a trial this driver asked for."""
        for key, value in record.attrs().items():
            trial.set_user_attr(key, value)
