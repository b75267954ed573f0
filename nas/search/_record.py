"""What a study knows about one trial, as one typed record: the only module that names Optuna user attributes.

A :class:`TrialRecord` is one Optuna user attribute, ``nas`` (a JSON object), written twice per trial (what the
driver predicted when it asked for the trial, then its result) and read back from any trial, this version's or an
earlier one's (which wrote each field as its own attribute; records written before causes existed carry
``infeasible``: they are read as infeasible or crashed).

Why a trial did not complete is a :class:`Cause`. Only an *infeasible* spec (it diverged, could not be converted,
failed the NPU check) or a *pruned* one counts as evaluated: the driver does not train it again. A *crash* (a bug or
an environment fault in the worker), a *lost worker* and an *interrupted* trial say nothing about the spec: the
driver runs them again under its retry policy.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Mapping

__all__ = ["Cause", "TrialRecord", "RESULT_METRICS", "RECORD_KEY", "CONSTRAINTS"]

RECORD_KEY = "nas"
"""The Optuna user attribute that holds a trial's record."""


class Cause(str, enum.Enum):
    """Why a trial did not complete."""

    INFEASIBLE = "infeasible"  # the spec cannot work here: diverged, not convertible, fails the NPU check
    PRUNED = "pruned"  # stopped early by the pruner: its curve was below its peers'
    CRASH = "crash"  # a bug or an environment fault in the worker
    WORKER_LOST = "worker_lost"  # the worker process died (after the executor's own retries)
    INTERRUPTED = "interrupted"  # the driver stopped while it ran

    @property
    def final(self) -> bool:
        """Whether the spec counts as evaluated (never trained again in this study)."""
        return self in (Cause.INFEASIBLE, Cause.PRUNED)


RESULT_METRICS = ("int8_psnr", "int8_ssim", "fp32_psnr", "fp32_ssim", "int8_drop_db", "score", "log2_score",
                  "log2_score_objective")
"""The result metrics a record keeps (a trial's MLflow run has more; its outcome.json all of them)."""

CONSTRAINTS = ("latency_budget", "latency_model_range")
"""The trial's Optuna constraint names, in the order of :attr:`TrialRecord.constraints`."""

# field -> user attribute key, where they differ
_KEYS = {"reason_fail": "fail_reason", "reason_prune": "prune_reason"}


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial's facts. Prediction (set when the trial is asked): the spec and its predicted latency. Result (set
    when it finishes): metrics, validation curve, seconds, or the cause and reason it did not complete."""

    spec: Mapping[str, Any] | None = None
    hash: str = ""
    describe: str = ""
    latency_ms: float | None = None
    latency_sigma_ms: float | None = None
    latency_objective_ms: float | None = None
    outside_range: bool = False
    outside: tuple[str, ...] = ()
    c_budget: float = 0.0  # constraints: feasible when both are <= 0
    c_range: float = 0.0
    mlflow_run_id: str = ""
    # where the trial came from
    warm_start: str = ""  # the zoo network it started from
    requeued_from: int | None = None  # the interrupted or crashed trial it runs again
    attempt: int = 1  # 1, then 2, ... for a spec run again after a crash
    # the result
    metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)
    curve: tuple[tuple[int, float], ...] = ()
    seconds: Mapping[str, float] | None = None  # where the trial's time went (train, export, ...)
    cause: Cause | None = None
    reason: str = ""
    duplicate_of: int | None = None  # a spec already evaluated: this trial reuses that one's result
    requeued: bool = False  # this (interrupted or crashed) trial was queued again as another trial
    forms: str = ""  # a completed trial: the training form and INT8 export it was measured with (result_forms)

    def __post_init__(self) -> None:
        if self.cause is not None and not isinstance(self.cause, Cause):
            object.__setattr__(self, "cause", Cause(self.cause))
        if self.cause is not None and not self.reason:
            raise ValueError(f"a trial that did not complete ({self.cause.value}) needs its reason")
        if self.attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {self.attempt}")
        bad = set(self.metrics) - set(RESULT_METRICS)
        if bad:
            raise ValueError(f"unknown result metrics {sorted(bad)}")

    # ------------------------------------------------------------------------------------------------ views
    @property
    def constraints(self) -> tuple[float, float]:
        return (self.c_budget, self.c_range)

    @property
    def feasible(self) -> bool:
        return all(c <= 0 for c in self.constraints)

    @property
    def superseded(self) -> bool:
        """Run again as another trial: not counted among the study's finished trials."""
        return self.requeued

    def evaluated(self, complete: bool) -> bool:
        """Whether this trial's spec counts as evaluated (``complete``: the trial's Optuna state is COMPLETE)."""
        if self.duplicate_of is not None or not self.hash:
            return False
        return complete or (self.cause is not None and self.cause.final)

    def with_(self, **changes) -> "TrialRecord":
        return dataclasses.replace(self, **changes)

    def predicted(self, spec, pred, latency) -> "TrialRecord":
        """This record with ``spec`` and its latency prediction ``pred`` (a :class:`~nas.latency.LatencyPrediction`) under
        the study's latency config ``latency`` (``k``, ``budget_ms``, ``outside_range``): the objective's
        pessimistic latency and the constraints."""
        objective = pred.pessimistic(latency.k)
        return self.with_(
            spec=spec.to_dict(), hash=spec.hash, describe=spec.describe(), latency_ms=pred.mean_ms,
            latency_sigma_ms=pred.stddev_ms, latency_objective_ms=objective, outside_range=not pred.in_range,
            outside=tuple(pred.outside), c_budget=0.0 if latency.budget_ms is None else objective - latency.budget_ms,
            c_range=1.0 if (latency.outside_range == "constrain" and not pred.in_range) else 0.0)

    # --------------------------------------------------------------------------------------- user attributes
    def attrs(self) -> dict[str, Any]:
        """The Optuna user attributes that hold this record: one, ``nas``, a JSON object (one write per change:
        Optuna commits every attribute on its own)."""
        return {RECORD_KEY: self.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values (fields at their default are left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("metrics", "cause", "reason"):
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if value == default:
                continue
            if f.name == "curve":
                value = [list(c) for c in value]
            elif f.name == "outside":
                value = list(value)
            elif f.name in ("spec", "seconds"):
                value = dict(value)
            out[f.name] = value
        out.update(self.metrics)
        if self.cause is not None:
            out["cause"] = self.cause.value
            if self.cause is Cause.PRUNED:
                out[_KEYS["reason_prune"]] = self.reason
            else:
                out[_KEYS["reason_fail"]] = self.reason
                out["infeasible"] = self.cause is Cause.INFEASIBLE  # what records before causes carried
        return out

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "TrialRecord":
        """The record a trial's user attributes hold: this version's ``nas`` object, or the separate attributes
        earlier versions wrote (unknown keys are ignored)."""
        return cls.from_dict(attrs[RECORD_KEY] if RECORD_KEY in attrs else attrs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialRecord":
        a = dict(data)
        cause = a.get("cause")
        reason = a.get(_KEYS["reason_prune"]) or a.get(_KEYS["reason_fail"]) or ""
        if cause is None and _KEYS["reason_prune"] in a:
            cause = Cause.PRUNED
        elif cause is None and _KEYS["reason_fail"] in a:  # written before causes: infeasible, or what it said
            if a.get("infeasible"):
                cause = Cause.INFEASIBLE
            elif reason.startswith("interrupted"):
                cause = Cause.INTERRUPTED
            elif reason.startswith("worker lost"):
                cause = Cause.WORKER_LOST
            else:
                cause = Cause.CRASH
        names = {f.name for f in dataclasses.fields(cls)} - {"metrics", "cause", "reason"}
        kw: dict[str, Any] = {k: a[k] for k in names if k in a}
        if "curve" in kw:
            kw["curve"] = tuple((int(s), float(v)) for s, v in kw["curve"])
        if "outside" in kw:
            kw["outside"] = tuple(kw["outside"])
        for k in ("latency_ms", "latency_sigma_ms", "latency_objective_ms", "c_budget", "c_range"):
            if kw.get(k) is not None:
                kw[k] = float(kw[k])
        metrics = {k: float(a[k]) for k in RESULT_METRICS if a.get(k) is not None}
        return cls(**kw, metrics=metrics, cause=cause, reason=reason if cause is not None else "")

