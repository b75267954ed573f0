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


def test_a_driver_killed_while_mlflow_creates_its_store_leaves_none_or_a_whole_one(tmp_path):
    """The chaos bench's first kill landed while MLflow built a new SQLite store (its schema migrations run one by
    one, for seconds), and every later run of the study failed with a traceback: "table trace_info already
    exists". The store is now built beside its path and linked into place when complete."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "mlflow.db"
    code = ("import sys; from nas.search._tracking import Tracker; "
            f"Tracker('sqlite:///{db.as_posix()}', 'nas-k', None); print('done', flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    for line in proc.stderr:  # MLflow says so when its migrations start
        if "Creating initial MLflow database tables" in line or time.monotonic() - t0 > 120:
            break
    time.sleep(1.0)  # in the middle of the migrations (they take seconds)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed, "the store was created before the kill: nothing was tested"
    assert not db.exists()  # nothing half-made at the store's path
    assert list(tmp_path.glob(".mlflow.db.*.creating"))  # (the killed process's own file, beside it)
    again = Tracker(f"sqlite:///{db.as_posix()}", "nas-k", tmp_path / "mlartifacts")  # the same command again
    assert again.client.get_experiment_by_name("nas-k") is not None
    assert not list(tmp_path.glob(".mlflow.db.*.creating"))  # the dead process's file is cleared
