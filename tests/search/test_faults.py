"""Faults a long search meets, injected for real: a model that fails the NPU check, a conversion that times out,
a training that diverges, an MLflow server that is down at the start or goes away mid-study. Each costs at most
its own trial; nothing finished is lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

from nas.errors import SearchError
from nas.search import load_search_config, run_search
from nas.search._record import Cause, TrialRecord
from tests.conftest import ROOT


def _trials(summary):
    return optuna.load_study(study_name=summary.study.name, storage=summary.study.storage).trials


@pytest.mark.slow
def test_a_model_that_fails_the_npu_check_fails_its_trial_and_the_study_goes_on(small_config, tmp_path):
    # a profile without MINIMUM: every spec clipped with MINIMUM+RELU fails the check, ReLU-clipped ones pass
    profile = yaml.safe_load((ROOT / "nas" / "export" / "targets" / "vs680.yaml").read_text())
    profile["name"] = "no-minimum"
    profile["ops"].pop("MINIMUM")
    (tmp_path / "no-minimum.yaml").write_text(yaml.safe_dump(profile))
    cfg = small_config(name="npu", n=4, extra=f"""
        export: {{input_size: 48x64, target: {tmp_path / 'no-minimum.yaml'}}}
        """)
    summary = run_search(load_search_config(cfg))
    trials = _trials(summary)
    assert summary.complete + summary.failed == 4 and summary.failed >= 1  # the ABPN warm start clips with MINIMUM
    abpn, rec = trials[0], TrialRecord.from_attrs(trials[0].user_attrs)
    assert abpn.state == TrialState.FAIL and "fails the no-minimum check" in rec.reason
    assert rec.cause is Cause.INFEASIBLE  # final: the spec is not tried again
    for t in trials:
        spec = TrialRecord.from_attrs(t.user_attrs).spec
        assert (t.state == TrialState.COMPLETE) == (spec["clip_kind"] == "relu")
    run = MlflowClient(summary.study.tracking).get_run(rec.mlflow_run_id)
    assert run.info.status == "FAILED" and "MINIMUM" in run.data.tags["nas.reason"]


def test_a_conversion_that_times_out_fails_its_trial(small_config):
    cfg = small_config(name="slowconv", n=2, extra="""
        export: {input_size: 48x64, timeout_s: 0.05}
        """)
    summary = run_search(load_search_config(cfg))
    assert summary.failed == 2 and summary.complete == 0
    for t in _trials(summary):
        rec = TrialRecord.from_attrs(t.user_attrs)
        assert t.state == TrialState.FAIL and "timed out after 0 s" in rec.reason and rec.cause is Cause.INFEASIBLE


def test_a_diverging_training_fails_its_trial_with_the_step():
    """Training on images whose HR side is NaN diverges at step 1: the trial fails with the trainer's reason."""
    import numpy as np

    from nas.data import ImagePair, ImageSet, load_images
    from nas.search import SearchConfig, TrialJob, run_trial
    from nas.space import zoo_get

    valid = load_images(None, "valid", limit=1)
    hr = np.full_like(np.asarray(valid.pairs[0].hr, np.float32), np.nan)
    nan = ImageSet("nan", "train", 3, (ImagePair("nan", hr, np.asarray(valid.pairs[0].lr)),))
    cfg = SearchConfig(proxy={"steps": 10, "batch_size": 2, "patch_size": 16})
    out = run_trial(TrialJob(5, zoo_get("abpn").spec, cfg, (48, 64), 1), images=(nan, valid))
    assert out.state == "failed" and out.number == 5 and out.files == {}
    assert out.reason.startswith("DivergedError: training of") and "diverged at step 1" in out.reason


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_server_down_at_start_stops_before_any_training(small_config, tmp_path):
    port = _free_port()
    cfg = small_config(name="nomlflow", n=1, extra=f"tracking: http://127.0.0.1:{port}\n")
    with pytest.raises(SearchError, match=f"MLflow tracking server http://127.0.0.1:{port} is unreachable"):
        run_search(load_search_config(cfg))
    assert not (tmp_path / "runs" / "nomlflow" / "trials").exists()


def _mlflow_server(store, port):
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
                             "--artifacts-destination", str(store.parent / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)


def _stop(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_mlflow_server_lost_mid_study_stops_cleanly_and_the_rerun_logs_everything(small_config, tmp_path):
    port = _free_port()
    store = tmp_path / "mlflow" / "store.db"
    store.parent.mkdir()
    cfg = small_config(name="outage", n=3, extra=f"tracking: http://127.0.0.1:{port}\n")
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    server = _mlflow_server(store, port)
    trials = tmp_path / "runs" / "outage" / "trials"
    proc = subprocess.Popen([sys.executable, "-m", "nas", "search", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not (trials / "0000" / "outcome.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        _stop(server)  # MLflow goes away while trial 1 trains
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert "the study stopped. Finished trials are kept in" in err
    st = optuna.load_study(study_name="outage", storage=f"sqlite:///{tmp_path / 'runs' / 'outage' / 'optuna.db'}")
    finished = [t for t in st.trials if t.state == TrialState.COMPLETE]
    assert finished and all((trials / f"{t.number:04d}" / "outcome.json").exists() for t in finished)

    server = _mlflow_server(store, port)  # back again: the same command finishes the study and logs what waited
    try:
        again = subprocess.run([sys.executable, "-m", "nas", "search", str(cfg), "--json"], capture_output=True,
                               text=True, timeout=600, env=env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert json.loads(again.stdout)["complete"] == 3
        c = MlflowClient(f"http://127.0.0.1:{port}")
        exp = c.get_experiment_by_name("nas-outage")
        runs = c.search_runs([exp.experiment_id], "tags.`nas.kind` = 'trial'")
        done = {int(r.data.tags["nas.trial"]) for r in runs if r.info.status == "FINISHED"}
        assert {t.number for t in finished} <= done and len(done) == 3
        assert all("int8_psnr" in r.data.metrics for r in runs if r.info.status == "FINISHED")
        assert not [r for r in runs if r.info.status == "RUNNING"]
    finally:
        _stop(server)
