"""The study's trial log: every MLflow write the driver makes (the parent run, one run per trial, the front).

MLflow failing mid-study stops the study cleanly: whatever :class:`TrialLog` was writing raises one
:class:`~nas.errors.SearchError` that says nothing finished is lost (it is in the study folder and in Optuna) and
that the next run logs it. :class:`NullTrialLog` writes nothing: the driver measured alone (``bench/driver.py``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping

from nas.errors import SearchError, environment_fault, first_line
from nas.search._record import CONSTRAINTS, TrialRecord
from nas.search._store import INTERRUPTED
from nas.search._tracking import Tracker
from nas.space import ArchSpec

__all__ = ["TrialLog", "NullTrialLog", "spec_params"]

TRIAL_FILES = ("spec.json", "outcome.json", "latency.csv", "npu_check.json", "model_int8.tflite")


def spec_params(spec: ArchSpec) -> dict[str, Any]:
    """A spec as MLflow run parameters (one per choice of the space)."""
    d = spec.to_dict()
    blocks = d.get("blocks")
    return {"width": spec.width, "depth": spec.depth,
            "block": blocks if isinstance(blocks, str) else "/".join(blocks) if isinstance(blocks, list) else blocks,
            "skip": spec.skip.value, "clip_where": spec.clip_where.value, "clip_kind": spec.clip_kind.value,
            "tail": "-".join(map(str, spec.tail)) or "none", "expansion": spec.expansion, "hash": spec.hash,
            "describe": spec.describe(), **({"widths": "-".join(map(str, spec.widths))} if spec.widths else {})}


def constraint_metrics(record: TrialRecord) -> dict[str, float]:
    """A trial's feasibility (1 or 0) and each of its Optuna constraints' values (feasible when <= 0) as metrics."""
    return {"feasible": float(record.feasible),
            **{f"constraint_{name}": float(v) for name, v in zip(CONSTRAINTS, record.constraints)}}


class TrialLog:
    """The MLflow side of one study (experiment ``nas-<study>`` in ``tracking``)."""

    def __init__(self, study: str, tracking: str, folder: Path, artifact_root: Path):
        self.study, self.tracking, self.folder = study, tracking, Path(folder)
        self.artifact_root = artifact_root
        self.tracker = None
        self.parent: str | None = None

    @contextlib.contextmanager
    def guard(self, what: str):
        try:
            yield
        except SearchError:
            raise
        except Exception as exc:
            fault = environment_fault(exc, where=f"the MLflow store {self.tracking}")
            if fault is not None:  # (finished trials are in the folder and in Optuna: the same command goes on)
                raise fault from None
            raise SearchError(
                f"MLflow tracking store {self.tracking} failed while {what} ({type(exc).__name__}: "
                f"{first_line(exc)}); the study stopped. Finished trials are kept in {self.folder} and in Optuna "
                "and are logged to MLflow when the same command runs again") from None

    def open(self, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """Connect (an MLflow server that does not answer stops the run now) and open the study's parent run."""
        self.tracker = Tracker(self.tracking, f"nas-{self.study}", self.artifact_root)
        with self.guard("opening the study's parent run"):
            self.parent = self.tracker.parent_run(self.study, tags, params)
        return self.parent

    def start(self, number: int, spec: ArchSpec, record: TrialRecord) -> str:
        """A trial's run, opened when it is asked for: its spec and predicted latency."""
        tags = {"nas.spec_hash": spec.hash, "nas.outside_range": str(record.outside_range).lower(),
                "nas.warm_start": record.warm_start, "nas.state": "running",
                "nas.feasible": str(record.feasible).lower()}
        with self.guard(f"starting trial {number}'s run"):
            run_id = self.tracker.start_trial(self.parent, self.study, number, spec_params(spec), tags)
            self.tracker.log_metrics(run_id, {"latency_ms": record.latency_ms,
                                              "latency_sigma_ms": record.latency_sigma_ms,
                                              "latency_objective_ms": record.latency_objective_ms,
                                              **constraint_metrics(record)})
        return run_id

    def duplicate(self, number: int, record: TrialRecord, state: str) -> None:
        reason = f"same spec as trial {record.duplicate_of}: not trained again"
        with self.guard(f"logging trial {number}"):
            self.tracker.set_tags(record.mlflow_run_id, {"nas.duplicate_of": record.duplicate_of,
                                                         "nas.state": state, "nas.reason": reason})
            self.tracker.log_metrics(record.mlflow_run_id, dict(record.metrics))
            self.tracker.end(record.mlflow_run_id, state)

    def finished(self, number: int, record: TrialRecord, summary: dict,
                 extra: Mapping[str, float] | None = None) -> None:
        """A finished trial's metrics, curve, files and state (``summary``: its outcome.json)."""
        with self.guard(f"logging trial {number}"):
            m = dict(summary.get("metrics", {}))
            m.update({f"{k}_seconds": v for k, v in summary.get("seconds", {}).items()})
            m.update({"latency_ms": record.latency_ms, "latency_sigma_ms": record.latency_sigma_ms,
                      "latency_objective_ms": record.latency_objective_ms, **(extra or {})})
            t, run_id = self.tracker, record.mlflow_run_id
            t.log_metrics(run_id, m)
            t.log_curve(run_id, "val_psnr", summary.get("curve", []))
            trial_dir = self.folder / "trials" / f"{number:04d}"
            t.log_files(run_id, [trial_dir / n for n in TRIAL_FILES if (trial_dir / n).exists()])
            state = summary["state"]
            tags = {"nas.state": state, "nas.reason": summary.get("reason", ""), "nas.pareto": "false",
                    "nas.worker": summary.get("worker", "")}
            if summary.get("cause"):
                tags["nas.cause"] = summary["cause"]
            t.set_tags(run_id, tags)
            t.end(run_id, state)

    def metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        with self.guard("logging metrics"):
            self.tracker.log_metrics(run_id, metrics)

    def measured(self, run_id: str, t) -> None:
        """A trial's INT8 model measured on the study's board (closed loop): metric ``latency_measured_ms`` beside
        the predicted ``latency_ms``, and the tag ``nas.measured``."""
        if not run_id:
            return
        with self.guard("logging a board measurement"):
            self.tracker.log_metrics(run_id, {"latency_measured_ms": t.median_ms,
                                              "latency_predicted_before_ms": t.predicted_ms})
            self.tracker.set_tags(run_id, {"nas.measured": "true", "nas.measured_on": t.board})

    def refit(self, path: Path, metrics: Mapping[str, float], step: int) -> None:
        """A closed loop's refitted latency model, an artifact of the parent run (``latency/``), with its accuracy
        on the measured trials as metrics at ``step`` (the number of measurements)."""
        with self.guard("logging a refitted latency model"):
            self.tracker.log_files(self.parent, [path], "latency")
            self.tracker.log_metrics(self.parent, metrics, step=step)

    def rescored(self, records: Mapping[int, TrialRecord]) -> None:
        """Every trial's latency and scores as the closed loop's last refit predicts them (logged again over the
        values the trial finished with)."""
        with self.guard("logging the re-scored trials"):
            for rec in records.values():
                if not rec.mlflow_run_id or rec.latency_ms is None:
                    continue
                self.tracker.log_metrics(rec.mlflow_run_id, {
                    "latency_ms": rec.latency_ms, "latency_sigma_ms": rec.latency_sigma_ms,
                    "latency_objective_ms": rec.latency_objective_ms, **dict(rec.metrics),
                    **constraint_metrics(rec)}, step=1)

    def repair(self, records: Mapping[int, TrialRecord], outcome) -> None:
        """Runs a killed driver left open: logged again from the trial's folder where it finished (``outcome(n)``:
        its outcome.json, or None), closed as failed (interrupted) otherwise."""
        with self.guard("repairing the runs a stopped driver left open"):
            for run in self.tracker.find(**{"nas.study": self.study, "nas.kind": "trial"}):
                if run.info.status != "RUNNING":
                    continue
                number = int(run.data.tags.get("nas.trial", -1))
                rec = records.get(number)
                summary = outcome(number) if rec is not None and not rec.requeued else None
                if summary is not None:
                    self.finished(number, rec.with_(mlflow_run_id=run.info.run_id), summary)
                else:
                    self.tracker.set_tags(run.info.run_id, {"nas.state": "failed", "nas.reason": INTERRUPTED,
                                                            "nas.cause": "interrupted"})
                    self.tracker.end(run.info.run_id, "failed")

    def conclude(self, files: Mapping[str, Path], ranks: Mapping[int, int | None], records: Mapping[int, TrialRecord],
                 metrics: Mapping[str, float], parent_tags: Mapping[str, Any]) -> None:
        """The front's files on the parent run; on every completed trial in ``ranks`` (number -> Pareto rank, 1 on
        the front, None when infeasible) the tags ``nas.pareto`` and ``nas.pareto_rank`` and the metric
        ``pareto_rank``; the study's metrics; and the parent run ended."""
        with self.guard("logging the study's Pareto front"):
            if files:
                self.tracker.log_files(self.parent, files.values(), "pareto")
            for number, rank in ranks.items():
                rid = records[number].mlflow_run_id if number in records else ""
                if rid:
                    self.tracker.set_tags(rid, {"nas.pareto": str(rank == 1).lower(),
                                                "nas.pareto_rank": "infeasible" if rank is None else str(rank)})
                    if rank is not None:
                        self.tracker.log_metrics(rid, {"pareto_rank": rank})
            if parent_tags:
                self.tracker.set_tags(self.parent, parent_tags)
            self.tracker.log_metrics(self.parent, metrics)
            self.tracker.end(self.parent, "complete")


class NullTrialLog(TrialLog):
    """A trial log that writes nothing (the driver's own cost, measured without MLflow)."""

    def __init__(self, *args, **kwargs):
        super().__init__("", "none", Path("."), Path("."))

    def open(self, tags, params) -> str:
        self.parent = "none"
        return self.parent

    def start(self, number, spec, record) -> str:
        return ""

    def duplicate(self, number, record, state) -> None:
        pass

    def finished(self, number, record, summary, extra=None) -> None:
        pass

    def metrics(self, run_id, metrics) -> None:
        pass

    def repair(self, records, outcome) -> None:
        pass

    def measured(self, run_id, t) -> None:
        pass

    def refit(self, path, metrics, step) -> None:
        pass

    def rescored(self, records) -> None:
        pass

    def conclude(self, files, ranks, records, metrics, parent_tags) -> None:
        pass
