"""kill -9 the driver mid-study, run the same command again: nothing completed is lost, the running trial reruns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from nas.search._record import Cause, TrialRecord


def _has_run(storage: str, number: int) -> bool:
    """Whether trial ``number`` of study "r" has started its MLflow run (killed before that, the trial has no run
    to mark failed: a kill between writing its spec and opening its run made this test flaky)."""
    if not storage.startswith("sqlite:///") or not os.path.exists(storage.removeprefix("sqlite:///")):
        return False
    try:
        trials = optuna.load_study(study_name="r", storage=storage).get_trials(deepcopy=False)
    except Exception:  # the study is not created yet, or the database is busy for a moment
        return False
    return len(trials) > number and bool(TrialRecord.from_attrs(trials[number].user_attrs).mlflow_run_id)


@pytest.mark.slow
def test_killed_driver_resumes_without_losing_a_trial(small_config, tmp_path):
    cfg = small_config(name="r", n=4)
    runs = tmp_path / "runs"
    trials = runs / "r" / "trials"
    cmd = [sys.executable, "-m", "nas", "search", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = f"sqlite:///{runs / 'r' / 'optuna.db'}"
    deadline = time.monotonic() + 300
    while not _has_run(storage, 2):  # trials 0 and 1 done, trial 2 started (its MLflow run opened)
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the study did not reach trial 2"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = {n: (trials / n / "outcome.json").read_bytes() for n in ("0000", "0001")}
    st = optuna.load_study(study_name="r", storage=storage)
    assert [t.state for t in st.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]

    again = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["complete"] == 4 and summary["failed"] == 0

    st = optuna.load_study(study_name="r", storage=storage)
    states = [t.state for t in st.trials]
    assert states.count(TrialState.COMPLETE) == 4 and states[2] == TrialState.FAIL
    rec = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in st.trials}
    assert rec[2].requeued is True and rec[2].cause is Cause.INTERRUPTED
    rerun = [t for t in st.trials if rec[t.number].requeued_from == 2]
    assert len(rerun) == 1 and rerun[0].params == st.trials[2].params and rerun[0].state == TrialState.COMPLETE
    # completed work untouched
    assert {n: (trials / n / "outcome.json").read_bytes() for n in before} == before

    c = MlflowClient(tracking_uri=f"sqlite:///{runs / 'mlflow.db'}")
    exp = c.get_experiment_by_name("nas-r")
    by_trial = {int(r.data.tags["nas.trial"]): r for r in c.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial'")}
    assert by_trial[2].info.status == "FAILED" and by_trial[2].data.tags["nas.reason"].startswith("interrupted")
    finished = [r for r in by_trial.values() if r.info.status == "FINISHED"]
    assert len(finished) == 4 and all("int8_psnr" in r.data.metrics for r in finished)
    parents = c.search_runs([exp.experiment_id], "tags.`nas.kind` = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_a_second_driver_on_a_running_study_is_refused(small_config, tmp_path):
    cfg = small_config(name="two", n=2)
    cfg.write_text(cfg.read_text().replace("steps: 20,", "steps: 3000,"))  # still running when the second comes
    cmd = [sys.executable, "-m", "nas", "search", str(cfg)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "runs" / "two" / "trials" / "0000" / "spec.json").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert f"is being run by pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_ctrl_c_stops_the_study_with_one_line_and_the_same_command_continues(small_config, tmp_path):
    """SIGINT (Ctrl-C) mid-trial: the command says it was interrupted and exits 130, no traceback; run again, the
    interrupted trial is failed as interrupted and queued again, and the study completes."""
    cfg = small_config(name="r", n=1)
    cfg.write_text(cfg.read_text().replace("steps: 20,", "steps: 600,"))  # a trial the signal surely lands in
    storage = f"sqlite:///{tmp_path / 'runs' / 'r' / 'optuna.db'}"
    cmd = [sys.executable, "-m", "nas", "search", str(cfg)]
    # as typed at a terminal: a test run started in the background (`pytest &` in a script) ignores SIGINT, and its
    # children inherit that, so Python would never turn the signal into KeyboardInterrupt (the study ran to its end)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not _has_run(storage, 0):  # trial 0 asked and started
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the study did not start its first trial"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out[-2000:], err[-2000:])
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err, err[-2000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = optuna.load_study(study_name="r", storage=storage).trials
    first = TrialRecord.from_attrs(trials[0].user_attrs)
    assert trials[0].state == TrialState.FAIL and first.cause is Cause.INTERRUPTED and first.requeued
    assert trials[1].state == TrialState.COMPLETE and TrialRecord.from_attrs(trials[1].user_attrs).requeued_from == 0
