"""The trial record: one typed object per trial, its round trip through Optuna, and the attributes of earlier
versions read back (so their studies resume)."""

from __future__ import annotations

import optuna
import pytest

from nas.search._record import RECORD_KEY, Cause, TrialRecord
from nas.search._trial import TrialOutcome


def test_a_record_round_trips_through_an_optuna_trial():
    rec = TrialRecord(spec={"width": 32}, hash="abc", describe="w32", latency_ms=10.0, latency_sigma_ms=1.0,
                      latency_objective_ms=11.0, outside=("macs",), outside_range=True, c_budget=1.0,
                      warm_start="abpn", mlflow_run_id="r1", metrics={"int8_psnr": 29.5}, curve=((100, 28.0),),
                      seconds={"train": 3.0})
    study = optuna.create_study()
    trial = study.ask()
    for k, v in rec.attrs().items():
        trial.set_user_attr(k, v)
    study.tell(trial, 1.0)
    back = TrialRecord.from_attrs(study.trials[0].user_attrs)
    assert back == rec and set(study.trials[0].user_attrs) == {RECORD_KEY}
    assert not back.feasible and back.evaluated(complete=True)


def test_causes_decide_what_is_final():
    assert Cause.INFEASIBLE.final and Cause.PRUNED.final
    assert not (Cause.CRASH.final or Cause.WORKER_LOST.final or Cause.INTERRUPTED.final)
    crash = TrialRecord(hash="h", cause=Cause.CRASH, reason="ValueError at x.py:1")
    assert not crash.evaluated(complete=False)
    assert TrialRecord(hash="h", cause="infeasible", reason="CheckError").evaluated(complete=False)
    with pytest.raises(ValueError, match="needs its reason"):
        TrialRecord(cause=Cause.CRASH)
    with pytest.raises(ValueError, match="unknown result metrics"):
        TrialRecord(metrics={"psnr": 1.0})


def test_the_attributes_of_earlier_versions_are_read_back():
    """Studies made before the record wrote each fact as its own attribute, and a failure's kind only as
    ``infeasible`` or a prefix of its reason."""
    old = {"spec": {"width": 16}, "hash": "h", "describe": "w16", "latency_ms": 5, "latency_sigma_ms": 1,
           "latency_objective_ms": 6, "outside_range": False, "outside": [], "c_budget": 0.0, "c_range": 0.0,
           "mlflow_run_id": "r", "int8_psnr": 29.0, "curve": [[10, 28.0]], "seconds": {"train": 1.0}}
    rec = TrialRecord.from_attrs(old)
    assert rec.latency_objective_ms == 6.0 and rec.metrics == {"int8_psnr": 29.0} and rec.curve == ((10, 28.0),)
    assert rec.cause is None and rec.mlflow_run_id == "r"
    infeasible = TrialRecord.from_attrs({"fail_reason": "CheckError: fails", "infeasible": True})
    assert infeasible.cause is Cause.INFEASIBLE
    lost = TrialRecord.from_attrs({"fail_reason": "worker lost (RayTaskError): x", "infeasible": False})
    assert lost.cause is Cause.WORKER_LOST
    interrupted = TrialRecord.from_attrs({"fail_reason": "interrupted: the driver stopped", "requeued": True})
    assert interrupted.cause is Cause.INTERRUPTED and interrupted.superseded
    pruned = TrialRecord.from_attrs({"prune_reason": "pruned at step 100"})
    assert pruned.cause is Cause.PRUNED and pruned.reason == "pruned at step 100"


def test_an_outcome_carries_its_cause():
    assert TrialOutcome(1, "failed", "boom").cause is Cause.CRASH  # unknown: retried, not final
    assert TrialOutcome(1, "pruned", "pruned at step 1").cause is Cause.PRUNED
    assert TrialOutcome(1, "failed", "CheckError", cause="infeasible").cause is Cause.INFEASIBLE
    assert TrialOutcome(1, "complete").cause is None
    with pytest.raises(ValueError, match="cannot have cause"):
        TrialOutcome(1, "failed", "x", cause=Cause.PRUNED)
