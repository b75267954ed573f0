"""A real small study in one process: Optuna storage, MLflow runs and artifacts, the front, re-use, refusals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import optuna
import pytest
from mlflow import MlflowClient

from nas.errors import SearchError
from nas.evaluate import challenge_score
from nas.latency import load_latency_model
from nas.search import load_search_config, run_search
from nas.search.pareto import hypervolume
from nas.search._record import TrialRecord
from nas.search._store import _Lock
from nas.space import ArchSpec
from tests.search.conftest import serve


def test_trials_are_trained_exported_checked_and_scored(study):
    f, summary, events = study
    assert (summary.complete, summary.pruned, summary.failed) == (3, 0, 0)
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "end" and events[-1].done == 3
    st = optuna.load_study(study_name="s", storage=summary.study.storage)
    trials = st.get_trials()
    assert len(trials) == 3 and TrialRecord.from_attrs(trials[0].user_attrs).warm_start == "abpn-baseline"
    vs680 = load_latency_model("vs680")
    for t in trials:
        folder = summary.study.trial_dir(t.number)
        spec = ArchSpec.from_json((folder / "spec.json").read_text())
        check = json.loads((folder / "npu_check.json").read_text())
        assert check["passed"] and (folder / "model_int8.tflite").read_bytes()[4:8] == b"TFL3"
        pred = vs680.predict(spec)
        u = TrialRecord.from_attrs(t.user_attrs)
        assert u.spec == spec.to_dict() and u.hash == spec.hash
        assert u.latency_ms == pytest.approx(pred.mean_ms)
        assert u.latency_objective_ms == pytest.approx(pred.mean_ms + pred.stddev_ms)  # k = 1
        assert t.values == pytest.approx([u.metrics["int8_psnr"], u.latency_objective_ms])
        assert u.metrics["score"] == pytest.approx(challenge_score(u.metrics["int8_psnr"], pred.mean_ms))
        assert u.outside_range == (not pred.in_range)
        assert [s for s, _ in u.curve] == [10, 20]


def test_mlflow_holds_the_study_its_trials_and_the_front(study):
    _, summary, _ = study
    c = MlflowClient(tracking_uri=summary.study.tracking)
    exp = c.get_experiment_by_name("nas-s")
    runs = c.search_runs([exp.experiment_id], max_results=100)
    parent = [r for r in runs if r.data.tags.get("nas.kind") == "study"]
    trials = [r for r in runs if r.data.tags.get("nas.kind") == "trial"]
    assert len(parent) == 1 and len(trials) == 3
    pid = parent[0].info.run_id
    assert {a.path for a in c.list_artifacts(pid, "pareto")} == {
        "pareto/pareto.csv", "pareto/pareto.html", "pareto/pareto.png", "pareto/trials.csv"}
    assert parent[0].data.metrics["trials_complete"] == 3
    for r in trials:
        assert r.data.tags["mlflow.parentRunId"] == pid and r.info.status == "FINISHED"
        assert {"width", "depth", "block", "skip", "clip_where", "clip_kind", "tail"} <= set(r.data.params)
        assert {"int8_psnr", "int8_ssim", "fp32_psnr", "latency_ms", "score", "log2_score",
                "train_seconds"} <= set(r.data.metrics)
        names = {a.path for a in c.list_artifacts(r.info.run_id)}
        assert {"spec.json", "model_int8.tflite", "npu_check.json", "latency.csv", "outcome.json"} <= names
    tagged = sorted(int(r.data.tags["nas.trial"]) for r in trials if r.data.tags["nas.pareto"] == "true")
    assert tagged == sorted(p.number for p in summary.front)
    for r in trials:  # what Optuna's own MLflow callback does not log: rank, feasibility, each constraint's value
        on = r.data.tags["nas.pareto"] == "true"
        assert (r.data.metrics["pareto_rank"] == 1) == on and r.data.tags["nas.pareto_rank"] == str(
            int(r.data.metrics["pareto_rank"]))
        assert r.data.metrics["feasible"] == 1.0 and r.data.tags["nas.feasible"] == "true"
        assert r.data.metrics["constraint_latency_budget"] <= 0 and "constraint_latency_model_range" in r.data.metrics
    if len(summary.front) < 3:  # a dominated trial is on a later layer
        assert max(r.data.metrics["pareto_rank"] for r in trials) >= 2


@pytest.mark.slow  # the driver's rule is tested fast in test_driver.py; this is the same through real training
def test_a_spec_already_evaluated_is_not_trained_again(study):
    f, summary, _ = study
    st = optuna.load_study(study_name="s", storage=summary.study.storage)
    first = st.trials[1]
    st.enqueue_trial(first.params)  # e.g. a user's own enqueue: the same spec again
    more = run_search(load_search_config(f, n_trials=4))
    st = optuna.load_study(study_name="s", storage=summary.study.storage)
    dup = st.trials[3]
    assert TrialRecord.from_attrs(dup.user_attrs).duplicate_of == 1 and dup.values == first.values
    assert not (summary.study.trial_dir(3) / "outcome.json").exists()  # nothing trained
    assert more.complete == 4


def test_a_resume_with_another_config_is_refused(study):
    f, _, _ = study
    with pytest.raises(SearchError, match="was started with a different proxy"):
        run_search(load_search_config(f, proxy={"steps": 30, "eval_every": 10}))


def test_a_study_made_by_the_earlier_proxy_is_refused_with_the_reason(tmp_path):
    """A study whose config predates the proxy's loss field was measured by the old proxy (exact L1, training form
    1): resuming it would rank two proxies' results together. Refused before any training, saying what to do."""
    import json

    from nas.search import SearchConfig

    cfg = SearchConfig(name="old", out=str(tmp_path))
    old = cfg.model_dump(mode="json")
    del old["proxy"]["loss"]
    cfg.study_dir.mkdir(parents=True)
    (cfg.study_dir / "study.json").write_text(json.dumps({"format": "npu-nas/study", "version": 1, "name": "old",
                                                          "identity": "0123456789ab", "config": old}))
    with pytest.raises(SearchError, match="earlier npu-nas .* Start the study again under another name"):
        run_search(cfg)
    assert not (cfg.study_dir / "trials").exists()


def test_a_second_driver_on_the_same_study_is_refused(study):
    _, summary, _ = study
    with _Lock(summary.study.folder):
        with pytest.raises(SearchError, match=r"is being run by pid \d+"):
            with _Lock(summary.study.folder):
                pass


def test_pareto_command_reads_the_front_back(study):
    _, summary, _ = study
    proc = subprocess.run([sys.executable, "-m", "nas", "pareto", str(summary.study.folder), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["study"] == "s" and data["trials"] == 3  # the duplicate is its original's point
    assert sorted(p["number"] for p in data["front"]) == sorted(p.number for p in summary.front)
    table = subprocess.run([sys.executable, "-m", "nas", "pareto", str(summary.study.folder)],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "Pareto front of s" in table.stdout  # results on stdout: they can be piped
    # piped, the table keeps whole values (Rich's default of 80 columns cut them: "clip:bef…")
    assert "…" not in table.stdout and all(p["spec"] in table.stdout for p in data["front"]), table.stdout
    assert "log2 score (mean+k sigma)" in table.stdout
    # the hypervolume history, at a reference point below and beyond every trial: it ends at the front's own area
    proc = subprocess.run([sys.executable, "-m", "nas", "pareto", str(summary.study.folder), "--json",
                           "--hv-ref", "20,1000"], capture_output=True, text=True, timeout=120)
    hv = json.loads(proc.stdout)["hypervolume"]
    values = [h["hypervolume"] for h in hv["history"]]
    assert len(values) >= 3 and values == sorted(values) and values[0] > 0
    assert values[-1] == pytest.approx(hypervolume([(p["psnr"], p["latency_objective_ms"]) for p in data["front"]],
                                                   20.0, 1000.0))
    assert (summary.study.folder / "pareto" / "hypervolume.png").stat().st_size > 5000
    assert "hypervolume (reference" in table.stdout


def test_running_a_finished_study_again_says_there_is_nothing_left(study):
    f, summary, _ = study
    proc = subprocess.run([sys.executable, "-m", "nas", "search", str(f)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"already holds \d finished trials \(n_trials 3\): nothing left to run", proc.stderr), proc.stderr
    assert "Pareto front of s" in proc.stdout
    assert summary.new_trials == 3
    assert json.loads((summary.study.folder / "summary.json").read_text())["new_trials"] == 0  # the rerun's


def test_the_live_line_and_the_table_show_one_log2_score(study):
    """The live line's best and the table's column both use the latency the search optimised (mean + k sigma);
    they used to differ (1.18 vs 1.36 for one trial: pessimistic vs mean)."""
    from nas.evaluate import log2_score

    _, summary, events = study
    last = [e for e in events if e.best_log2 is not None][-1]
    assert last.best_trial == summary.best.number
    assert last.best_log2 == pytest.approx(summary.best.log2_score)
    for p in summary.front:
        assert p.log2_score == pytest.approx(log2_score(p.psnr, p.latency_objective_ms))
        assert p.latency_objective_ms > p.latency_ms  # k = 1: the two definitions differ here


def test_ui_serves_the_study_store_on_localhost(study):
    _, summary, _ = study
    with serve("ui", summary.study.folder, "/health", "the MLflow UI") as (port, (status, _)):
        assert status == 200
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=nas-s"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert json.loads(r.read())["experiment"]["name"] == "nas-s"


def test_the_study_opens_in_optuna_dashboard(study):
    _, summary, _ = study
    with serve("dashboard", summary.study.folder, "/api/studies", "optuna-dashboard",
               signal.SIGINT) as (port, (_, body)):
        (s,) = [s for s in json.loads(body)["study_summaries"] if s["study_name"] == "s"]
        assert s["directions"] == ["maximize", "minimize"]
        assert optuna.load_study(study_name="s", storage=summary.study.storage).metric_names == [
            "INT8 PSNR (dB)", "latency mean+k sigma (ms)"]  # not "Objective 0/1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{s['study_id']}?after=0", timeout=10) as r:
            trials = json.loads(r.read())["trials"]
        st = optuna.load_study(study_name="s", storage=summary.study.storage)
        assert [t["number"] for t in trials] == [t.number for t in st.trials]
        assert {t["state"] for t in trials} <= {"Complete", "Pruned", "Fail"}
        assert {p["name"] for p in trials[0]["params"]} >= {"width", "depth", "skip"}


def test_a_search_piped_to_a_log_file_reports_every_finished_trial(small_config):
    """Without a terminal there is no live bar: the log gets one line per finished trial with its result and the
    study's progress (it used to stay silent until the end)."""
    cfg = small_config(name="piped", n=1, extra="warm_start: []\n")
    proc = subprocess.run([sys.executable, "-m", "nas", "search", str(cfg)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"trial 0: complete, w\d+ d\d+ .*: INT8 \d+\.\d\d dB, \d+\.\d ms \(mean\+k sigma\); 1/1 done, "
                     r"best log2 score \(mean\+k sigma\) -?\d+\.\d\d \(trial 0\)", proc.stderr), proc.stderr[-2000:]
    assert "Creating initial MLflow database tables" not in proc.stderr
