"""MLflow tracking of a study (nas.search._tracking) on a real local store: the experiment, runs found again by
their tags, states, and the errors that stop a study before any training."""

from __future__ import annotations

import socket

import pytest

from nas.errors import SearchError
from nas.search._tracking import Tracker, check_tracking_uri


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}", "nas-t", tmp_path / "mlartifacts")


def test_a_resumed_study_finds_its_parent_run_and_trial_runs_end_in_their_state(tracker, tmp_path):
    exp = tracker.client.get_experiment(tracker.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the runs table, not the GenAI view
    assert exp.artifact_location == (tmp_path / "mlartifacts" / "nas-t").resolve().as_uri()
    parent = tracker.parent_run("t", {"nas.objective": "pareto"}, {"n_trials": 3})
    tracker.end(parent, "complete")
    again = Tracker(tracker.uri, "nas-t")  # a resumed study, a new process
    assert again.parent_run("t", {}, {}) == parent
    assert again.client.get_run(parent).info.status == "RUNNING"  # continued
    ids = {state: again.start_trial(parent, "t", n, {"width": 16, "long": "x" * 7000}, {})
           for n, state in enumerate(("complete", "pruned", "failed"))}
    for state, run_id in ids.items():
        again.end(run_id, state)
    runs = {r.info.run_id: r for r in again.find(**{"nas.kind": "trial"})}
    assert {runs[i].info.status for i in ids.values()} == {"FINISHED", "KILLED", "FAILED"}
    r = runs[ids["complete"]]
    assert r.data.tags["mlflow.parentRunId"] == parent and r.data.tags["nas.trial"] == "0"
    assert len(r.data.params["long"]) == 6000  # (MLflow's limit: a longer value is cut, not refused)


def test_a_deleted_experiment_and_an_unreachable_server_stop_the_study_with_one_line(tracker):
    tracker.client.delete_experiment(tracker.experiment_id)
    with pytest.raises(SearchError, match="experiment 'nas-t' is deleted.*restore it"):
        Tracker(tracker.uri, "nas-t")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SearchError) as err:
        check_tracking_uri(f"http://127.0.0.1:{port}", timeout=2.0)
    assert f"127.0.0.1:{port}" in str(err.value) and "\n" not in str(err.value)
