"""Rebuild a study's Optuna storage from its folder: every finished trial is in ``trials/NNNN/`` first, so a lost or
damaged ``optuna.db`` costs nothing.

Each trial folder gives its spec (``spec.json``) and its outcome (``outcome.json``); the spec's parameters and their
distributions come from the study's search space, its predicted latency from the study's latency model (both
deterministic), its MLflow run from the tracking store where it answers. Trial numbers are kept: a number without a
folder (a parameter set that was no network) becomes a failed placeholder, and a trial without an outcome (it was
running, or it reused an earlier trial's result) is failed as interrupted and queued again, as after a killed driver.
A damaged database is moved aside (``optuna.db.damaged-<time>``), never deleted.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path

import optuna
from optuna.trial import TrialState, create_trial

from nas._logging import get_logger
from nas.errors import NasError, SearchError
from nas.latency import load_latency_model
from nas.search._record import CONSTRAINTS, RESULT_METRICS, Cause, TrialRecord
from nas.search._config import DB_FILE
from nas.search._objective import Objective, optuna_state
from nas.search._store import REFERENCE_ATTR, load_optuna_study, open_study, optuna_storage
from nas.search._tracking import Tracker
from nas.search.samplers import optuna_distributions
from nas.search._trial import load_valid_images, reference_psnr
from nas.space import ArchSpec, load_space

__all__ = ["rebuild_study", "RebuildReport"]

log = get_logger("search")

NO_FILES = "rebuilt from the study folder: this trial left no files (its parameters were no network, or it was lost)"


@dataclasses.dataclass(frozen=True)
class RebuildReport:
    study: str
    storage: str
    trials: int
    complete: int
    pruned: int
    failed: int
    requeued: int
    moved_aside: Path | None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["moved_aside"] = None if self.moved_aside is None else str(self.moved_aside)
        return d


def _healthy(info) -> int | None:
    """Trials of the study ``info`` in its storage, or None where the storage or the study is unusable."""
    try:
        return len(load_optuna_study(info).get_trials(deepcopy=False))
    except Exception:  # noqa: BLE001 (a damaged file raises whatever its driver raises, reading trials too)
        return None


def _run_ids(info) -> dict[int, str]:
    try:
        runs = Tracker(info.tracking, info.experiment).find(**{"nas.study": info.name, "nas.kind": "trial"})
        return {int(r.data.tags["nas.trial"]): r.info.run_id for r in runs}
    except Exception as exc:  # noqa: BLE001 (MLflow is optional here: the records just lose their run link)
        log.warning("MLflow store %s not read (%s): trials are rebuilt without their run ids", info.tracking, exc)
        return {}


def _cause(outcome: dict, reason: str) -> Cause:
    """An outcome's cause; outcomes written before causes existed: pruned, a lost worker, or (as their studies
    recorded every other failure) infeasible."""
    if outcome.get("cause"):
        return Cause(outcome["cause"])
    if outcome.get("state") == "pruned":
        return Cause.PRUNED
    return Cause.WORKER_LOST if reason.startswith("worker lost") else Cause.INFEASIBLE


def rebuild_study(study: str | Path, out: str | Path = "runs", force: bool = False) -> RebuildReport:
    """Rebuild the Optuna study of ``study`` (a folder or name) from its trial folders; see the module docstring.
    A storage that still holds the study is left alone unless ``force``."""
    info = open_study(study, out)
    c = info.config
    have = _healthy(info)
    if have is not None and not force:
        raise SearchError(f"{info.storage} holds study '{info.name}' with {have} trials and opens fine: nothing to "
                          "rebuild (--force rebuilds it anyway, moving the database aside)")
    moved = None
    db = info.folder / DB_FILE
    if info.storage == f"sqlite:///{db.as_posix()}" and db.exists():
        moved = db.with_name(f"{DB_FILE}.damaged-{_dt.datetime.now():%Y%m%d-%H%M%S}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                Path(f"{db}{suffix}").rename(f"{moved}{suffix}")
    elif have is not None or info.storage != f"sqlite:///{db.as_posix()}":
        try:  # a server database: the study goes, the database stays
            optuna.delete_study(study_name=info.name, storage=optuna_storage(info.storage))
        except KeyError:
            pass
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(info.storage)
    try:
        st = optuna.create_study(storage=storage, study_name=info.name, directions=Objective.of(c).directions)
    except Exception as exc:
        raise SearchError(f"cannot create study '{info.name}' in {info.storage}: {str(exc).splitlines()[0]}") from None
    st.set_metric_names(list(Objective.of(c).names))
    st.set_user_attr(REFERENCE_ATTR, reference_psnr(load_valid_images(c)))
    space, latency = load_space(c.space), load_latency_model(c.latency.model)
    runs = _run_ids(info)
    folders = sorted(int(p.name) for p in (info.folder / "trials").glob("[0-9]" * 4) if p.is_dir())
    counts = {"complete": 0, "pruned": 0, "failed": 0}
    requeue = []
    for number in range(max(folders, default=-1) + 1):
        folder = info.trial_dir(number)
        try:
            spec = ArchSpec.from_json((folder / "spec.json").read_text(encoding="utf-8"))
            params = space.params_of(spec)
        except (OSError, ValueError, NasError):
            st.add_trial(create_trial(state=TrialState.FAIL, user_attrs=TrialRecord(
                cause=Cause.CRASH, reason=NO_FILES, requeued=True).attrs()))
            continue
        _, drawn = space.replay(params)
        rec = TrialRecord(mlflow_run_id=runs.get(number, "")).predicted(spec, latency.predict(spec), c.latency)
        lat_obj = rec.latency_objective_ms
        try:
            outcome = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            outcome = None
        kw = dict(params=params, distributions=optuna_distributions(drawn),
                  constraints=dict(zip(CONSTRAINTS, rec.constraints)))
        if outcome is None:  # it was running when the store was lost, or it reused another trial's result
            rec = rec.with_(cause=Cause.INTERRUPTED, reason="interrupted: rebuilt from the study folder without an "
                                                            "outcome (it is queued again)", requeued=True)
            st.add_trial(create_trial(state=TrialState.FAIL, user_attrs=rec.attrs(), **kw))
            requeue.append((number, params))
            continue
        m = outcome.get("metrics", {})
        rec = rec.with_(metrics={k: float(m[k]) for k in RESULT_METRICS if k in m},
                        curve=tuple((int(s), float(v)) for s, v in outcome.get("curve", [])),
                        seconds=outcome.get("seconds") or None, forms=str(outcome.get("forms") or ""))
        state = outcome.get("state")
        if state == "complete":
            values = [m["int8_psnr"], lat_obj] if c.objective == "pareto" else [m["log2_score_objective"]]
            st.add_trial(create_trial(state=TrialState.COMPLETE, values=values, user_attrs=rec.attrs(), **kw))
            counts["complete"] += 1
            continue
        reason = outcome.get("reason") or state
        rec = rec.with_(cause=_cause(outcome, reason), reason=reason, requeued=bool(outcome.get("requeued")))
        told = "pruned" if state == "pruned" else "failed"
        st.add_trial(create_trial(state=optuna_state(told), user_attrs=rec.attrs(), **kw))
        if not rec.requeued:  # a crashed trial run again is counted by its rerun
            counts[told] += 1
    for number, params in requeue:
        st.enqueue_trial(params, user_attrs=TrialRecord(requeued_from=number).attrs())
    log.info("rebuilt study %s in %s from %d trial folders", info.name, info.storage, len(folders))
    return RebuildReport(info.name, info.storage, len(st.get_trials(deepcopy=False)), counts["complete"],
                         counts["pruned"], counts["failed"], len(requeue), moved)
