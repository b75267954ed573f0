"""The closed latency loop: a real study measures its own INT8 models on this machine's CPU while it runs."""

from __future__ import annotations

import csv

import optuna
import pytest
from mlflow import MlflowClient

from nas.errors import SearchError
from nas.latency import load_latency_model
from nas.search import load_search_config, run_search, study_front
from nas.search._config import SearchConfig
from nas.search._record import TrialRecord
from nas.search._store import StudyStore
from nas.space import ArchSpec

LOOP = """\
latency: {board: litert-cpu, measure: {runs: 5, warmup: 1}}
"""


def _measurements(folder):
    with open(folder / "latency" / "measurements.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_closed_loop_study_measures_its_front_refits_and_rescores(small_config):
    f = small_config("cl", n=3, extra=LOOP)
    events = []
    summary = run_search(load_search_config(f), callback=events.append)
    folder = summary.study.folder
    rows = _measurements(folder)
    measured = {r["hash"]: float(r["median_ms"]) for r in rows}
    assert len(measured) == len(rows) and rows[0]["board"] == "litert-cpu-1t"  # each model measured once
    assert [e.number for e in events if e.kind == "measure"] == [int(r["number"]) for r in rows]
    # every member of the front has been measured, and the refitted model predicts each within +-5%
    model = load_latency_model(folder / "latency" / "current.json")
    assert model.board == "litert-cpu-1t" and model.input_hw == (48, 64) and model.residuals is not None
    assert summary.front and all(p.hash in measured for p in summary.front)
    for p in summary.front:
        assert p.measured_ms == pytest.approx(measured[p.hash])
        assert abs(p.latency_ms / measured[p.hash] - 1) <= 0.05, (p, measured[p.hash])
        spec = ArchSpec.from_json((summary.study.trial_dir(p.number) / "spec.json").read_text())
        assert model.predict(spec).mean_ms == pytest.approx(p.latency_ms)  # re-scored by the last refit
    refits = sorted((folder / "latency").glob("refit-*.json"))
    assert refits and refits[-1].name == f"refit-{len(rows):03d}.json"
    # nas pareto's front (from the storage and the folder) is the driver's: re-scored, measured points marked
    _, points, best, files, _ = study_front(folder)
    assert [(p.number, p.measured_ms) for p in points if p.on_front] == [(p.number, p.measured_ms)
                                                                        for p in summary.front]
    assert [p.latency_ms for p in points if p.on_front] == pytest.approx([p.latency_ms for p in summary.front])
    assert "measured on the board" in files["html"].read_text()
    # Optuna keeps the values a trial finished with; the trial's MLflow run has both latencies
    c = MlflowClient(tracking_uri=summary.study.tracking)
    parent = c.get_run(summary.study.parent_run_id)
    assert {a.path for a in c.list_artifacts(parent.info.run_id, "latency")} >= {f"latency/{refits[-1].name}"}
    assert parent.data.metrics["loop_measured"] == len(rows)
    st = optuna.load_study(study_name="cl", storage=summary.study.storage)
    first = TrialRecord.from_attrs(st.trials[int(rows[0]["number"])].user_attrs)  # the first trial measured
    run = c.get_run(first.mlflow_run_id)
    assert run.data.metrics["latency_measured_ms"] == pytest.approx(measured[first.hash])
    assert run.data.tags["nas.measured"] == "true"
    assert run.data.metrics["latency_ms"] == pytest.approx(model.predict(ArchSpec.from_dict(first.spec)).mean_ms)
    # resumed: the refit comes back from the measurements, nothing is measured twice, new trials use it
    more = run_search(load_search_config(f, n_trials=4))
    again = _measurements(folder)
    assert [r["hash"] for r in again[:len(rows)]] == [r["hash"] for r in rows]
    assert len({r["hash"] for r in again}) == len(again)
    assert all(p.hash in {r["hash"] for r in again} for p in more.front)
    latest = load_latency_model(folder / "latency" / "current.json")  # the resumed run's last refit re-scored all
    for p in more.front:
        spec = ArchSpec.from_json((summary.study.trial_dir(p.number) / "spec.json").read_text())
        assert latest.predict(spec).mean_ms == pytest.approx(p.latency_ms)


def test_the_live_study_is_rescored_with_running_trials_carried_over(tmp_path):
    """A refit replaces the live study (a finished trial cannot change in Optuna): finished trials get their new
    values, constraints and records, and a trial that was running is told through its new copy."""
    cfg = SearchConfig(name="r", out=str(tmp_path), warm_start=(), sampler={"name": "random"})
    store = StudyStore(cfg)
    with store.locked():
        store.open(lambda: {"bicubic x3": 20.0})
        store.go_live(optuna.samplers.RandomSampler(seed=0), optuna.pruners.NopPruner())
        a, b = store.ask(), store.ask()
        for t in (a, b):
            t.suggest_int("x", 0, 9)
            store.start(t, TrialRecord(hash=f"h{t.number}"), {"latency_budget": 0.0})
        store.finish(a, TrialRecord(hash="h0"), optuna.trial.TrialState.COMPLETE, [25.0, 10.0])
        new = store.relive({0: (TrialRecord(hash="h0", latency_ms=5.0), [25.0, 5.0], {"latency_budget": -1.0}, 0.0),
                            1: (TrialRecord(hash="h1", latency_ms=7.0), None, {"latency_budget": 2.0}, 0.0)})
        assert set(new) == {1}
        live = store.live.get_trials()
        assert live[0].values == [25.0, 5.0] and live[0].constraints == {"latency_budget": -1.0}
        assert TrialRecord.from_attrs(live[1].user_attrs).latency_ms == 7.0 and live[1].constraints == {"latency_budget": 2.0}
        store.finish(new[1], TrialRecord(hash="h1", latency_ms=7.0), optuna.trial.TrialState.COMPLETE, [24.0, 7.0])
        assert [t.values for t in store.live.get_trials()] == [[25.0, 5.0], [24.0, 7.0]]
        durable = store.study.get_trials()  # the durable study keeps the values each trial finished with
        assert [t.values for t in durable] == [[25.0, 10.0], [24.0, 7.0]]


@pytest.mark.parametrize("latency, table, match", [
    ({"board": "farm.csv"}, None, "cannot time the study's new ones"),
    ({"board": "pixel7"}, None, "not a board the closed loop can measure on"),
    ({"board": "litert-cpu"}, "t.csv", "has no INT8 models to measure"),
])
def test_closed_loop_config_is_refused_where_it_cannot_work(latency, table, match):
    with pytest.raises(SearchError, match=match):
        load_search_config(None, latency=latency, table=table)


def test_a_study_without_the_loop_keeps_its_identity():
    """Studies made before the closed loop existed resume: an unset board is not part of the identity."""
    plain = SearchConfig()
    assert plain.identity_hash == SearchConfig(latency={"measure": {"runs": 3}}).identity_hash
    loop = SearchConfig(latency={"board": "litert-cpu"})
    assert plain.identity_hash != loop.identity_hash
    assert loop.identity_hash == SearchConfig(latency={"board": "litert-cpu", "measure": {"every": 4}}).identity_hash


@pytest.mark.slow
def test_the_board_can_be_measured_on_the_ray_node_that_holds_it(small_config):
    """``measure.resource``: models are measured by a Ray task on the node with that resource (a local Ray started for
    the study gives it to this machine), and a cluster without it is refused before any trial runs."""
    f = small_config("rl", n=3, workers=2, extra="latency: {board: litert-cpu, measure: {runs: 5, resource: "
                                                  "'board:host'}}\nresources: {threads: 1}\n")
    summary = run_search(load_search_config(f))
    rows = _measurements(summary.study.folder)
    assert rows and all(p.hash in {r["hash"] for r in rows} for p in summary.front)
    assert all(float(r["median_ms"]) > 0 for r in rows)
    with pytest.raises(SearchError, match="needs Ray"):
        load_search_config(f, workers=1)


def test_a_study_whose_identity_formula_changed_but_not_its_fields_resumes(tmp_path):
    """study.json keeps the identity digest it was written with; a later version that leaves more out of the digest
    (the closed loop's measuring cadence) still resumes a study whose identity fields are the same, and refuses one
    whose fields differ."""
    import json

    cfg = SearchConfig(name="i", out=str(tmp_path), latency={"board": "litert-cpu"})
    store = StudyStore(cfg)
    with store.locked():
        store.write_study_file(None)
    path = cfg.study_dir / "study.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "identity": "0123456789ab"}))  # what an earlier formula wrote
    store.check_identity()
    other = StudyStore(cfg.with_overrides(latency={"board": "litert-builtin"}))
    with pytest.raises(SearchError, match="different latency"):
        other.check_identity()
