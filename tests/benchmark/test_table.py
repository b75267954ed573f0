"""Benchmark tables: made from a real study, written and read back exactly, and a study whose trials look their
results up in one (the same driver on a simulated clock); the space-filling sampler; the sampler registry."""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import json
import subprocess
import sys

import optuna
import pytest

from nas.errors import SearchError
from nas.benchmark import BenchTable, TableExecutor, TableExecutors, make_table, table_config
from nas.search import SearchConfig, load_search_config, run_search
from nas.latency import load_latency_model
from nas.search._config import identity_view
from nas.search._record import Cause
from nas.search._store import REFERENCE_ATTR, load_optuna_study, open_study
from nas.search._study import NullTrialLog
from nas.benchmark import TableRow, spec_distance, table_from_study
from nas.search._trial import TrialJob
from nas.space import ArchSpec, load_space, zoo_entries
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def table_csv(study, tmp_path_factory):
    """The shared real study's trials as a table file."""
    f, summary, _ = study
    info = open_study(summary.study.folder)
    st = load_optuna_study(info)
    table = table_from_study(info.config, st.trials, (48, 64), st.user_attrs.get(REFERENCE_ATTR), info.name)
    return table.write_csv(tmp_path_factory.mktemp("table") / "t.csv"), table, st


def test_a_table_holds_each_trained_spec_once_and_reads_back_exactly(table_csv):
    path, table, st = table_csv
    done = {t.user_attrs["nas"]["hash"]: t for t in st.trials if t.state.name == "COMPLETE"}
    assert {r.hash for r in table.rows} == set(done) and len(table) >= 3
    for r in table.rows:  # the study's own numbers, not a copy that drifted
        assert r.int8_psnr == done[r.hash].values[0] and r.state == "complete" and r.train_s > 0
        assert r.macs > 0 and r.params > 0 and len(r.curve) == 2 and r.curve[-1][0] == 20
    back = BenchTable.read_csv(path)
    assert {r.hash: r for r in back.rows} == {r.hash: r for r in table.rows} and back.digest == table.digest
    m = back.meta
    assert m["space"] == "mai2022" and m["proxy"]["steps"] == 20 and m["nas_version"] and len(m["space_digest"]) == 12
    assert m["references"]["bicubic x3"] > 20  # bicubic on the study's validation photograph


def test_a_table_study_answers_from_the_table_on_a_simulated_clock(table_csv, tmp_path):
    path, table, _ = table_csv
    cfg = SearchConfig.model_validate({"name": "t", "out": str(tmp_path), "n_trials": 10, "workers": 3,
                                       "table": str(path), "sampler": {"name": "random"}, "pruner": {"name": "none"},
                                       "warm_start": ["abpn"], "export": {"input_size": "48x64"}})
    with pytest.raises(SearchError, match="names a benchmark table .*TableExecutors"):
        run_search(cfg, trial_log=NullTrialLog(), plots=False)  # the search alone does not know where tables are
    s = run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)
    assert s.complete == 10 and s.executor.startswith(f"benchmark table of {len(table)} specs (3 simulated")
    st = optuna.load_study(study_name="t", storage=s.study.storage)
    exact, lat = 0, load_latency_model("vs680")
    for t in st.trials:
        rec = t.user_attrs["nas"]
        out = json.loads((tmp_path / "t" / "trials" / f"{t.number:04d}" / "outcome.json").read_text())
        spec = ArchSpec.from_dict(rec["spec"])
        row, dist = table.nearest(spec)
        assert out["metrics"]["table_distance"] == dist == spec_distance(spec, row.spec)
        assert t.values[0] == row.int8_psnr  # the row's own number (the spec's, when the table has it)
        assert rec["latency_ms"] == pytest.approx(lat.predict(spec).mean_ms)  # always the spec's own prediction
        exact += dist == 0
    assert exact >= 1  # the warm-start ABPN was trained in the table's study


def test_simulated_workers_finish_in_the_order_of_their_training_time_and_can_be_pruned():
    specs = [ArchSpec(width=w, depth=2, blocks="conv") for w in (16, 32, 48)]
    rows = [TableRow(s, "complete", int8_psnr=28.0 + i, train_s=t, curve=((10, 27.0), (20, 28.0 + i)))
            for i, (s, t) in enumerate(zip(specs, (30.0, 10.0, 24.0)))]
    table = BenchTable(tuple(rows), {})
    reports = []

    def on_report(number, step, value):
        reports.append((number, step))
        return number == 2 and step == 10  # the third trial stops at its first report

    ex = TableExecutor(table, on_report, capacity=3)
    for i, s in enumerate(specs):
        ex.submit(TrialJob(i, s, None, (48, 64)))
    order = [(o.number, o.state, round(ex.clock, 6)) for o in (ex.poll(0)[0] for _ in range(3))]
    # trial 1 (10 s) ends first, trial 2 is stopped at half its 24 s, trial 0 (30 s) ends last
    assert order == [(1, "complete", 10.0), (2, "pruned", 12.0), (0, "complete", 30.0)]
    assert ex.poll(0) == [] and not ex.running()
    assert (2, 20) not in reports and (0, 20) in reports  # the final validation is reported too, as in training
    with pytest.raises(SearchError, match="already run on 1 workers"):
        one = TableExecutor(table, capacity=1)
        one.submit(TrialJob(0, specs[0], None, (48, 64)))
        one.submit(TrialJob(1, specs[1], None, (48, 64)))
    strict = TableExecutor(table, missing="fail")
    strict.submit(TrialJob(7, ArchSpec(width=64, depth=2, blocks="conv"), None, (48, 64)))
    (out,) = strict.poll(0)
    assert out.state == "failed" and "not in the benchmark table" in out.reason and out.cause is Cause.INFEASIBLE
    # which row answered each trial: its own, the nearest (w64 is not in the table: w48 is), none when it failed
    near = TableExecutor(table)
    near.submit(TrialJob(5, ArchSpec(width=64, depth=2, blocks="conv"), None, (48, 64)))
    assert ex.answered == {0: rows[0], 1: rows[1], 2: rows[2]} and near.answered == {5: rows[2]} and not strict.answered


def test_make_table_runs_the_zoo_first_then_a_space_filling_design_until_n_distinct_specs(table_csv, tmp_path):
    path, _, _ = table_csv
    base = load_search_config(None, name="mk", out=str(tmp_path), table=str(path))
    cfg = table_config(base)
    assert cfg.sampler.name == "balanced" and cfg.pruner.name == "none" and cfg.table == str(path)
    zoo = list(dict.fromkeys(e.name for e in zoo_entries()))
    assert list(cfg.warm_start) == zoo
    n = len({load_space("mai2022").project(e.spec).hash for e in zoo_entries()}) + 12
    made = make_table(cfg, n, trial_log=NullTrialLog())
    assert len(made) == n  # duplicate draws were run again until n distinct specs
    by_trial = sorted(made.rows, key=lambda r: r.trial)
    first = {load_space("mai2022").project(e.spec).hash for e in zoo_entries()}
    assert {r.hash for r in by_trial[:len(first)]} == first


def test_a_table_goes_on_from_its_csv_where_its_study_is_not(table_csv, tmp_path):
    """The CSV is rewritten after every finished trial; a fresh folder (another machine, a fresh clone) given the
    same CSV answers its specs from it and trains only the rest; a CSV made with another proxy is refused."""
    path, _, _ = table_csv
    csv = tmp_path / "t.csv"
    first = table_config(load_search_config(None, name="mk", out=str(tmp_path / "here"), table=str(path)))
    rows_seen = []

    def seen(ev):
        if ev.kind == "finish":
            rows_seen.append(len(BenchTable.read_csv(csv)))

    zoo = len({load_space("mai2022").project(e.spec).hash for e in zoo_entries()})
    made = make_table(first, zoo + 3, trial_log=NullTrialLog(), callback=seen, csv=csv)
    assert len(BenchTable.read_csv(csv)) == len(made) == zoo + 3
    assert rows_seen[0] == 1 and rows_seen == sorted(rows_seen) and rows_seen[-1] == zoo + 3  # written as it goes

    again = first.model_copy(update={"out": str(tmp_path / "elsewhere")})
    more = make_table(again, zoo + 6, trial_log=NullTrialLog(), csv=csv)
    workers = collections.Counter(json.loads(f.read_text())["worker"]
                                  for f in (again.study_dir / "trials").glob("*/outcome.json"))
    assert workers == {"table (replayed)": zoo + 3, "table": 3}  # only the 3 new specs ran
    assert len(more) == zoo + 6 and len(BenchTable.read_csv(csv)) == zoo + 6
    for r in made.rows:
        assert more.get(r.spec).int8_psnr == r.int8_psnr

    other = tmp_path / "other.csv"
    BenchTable(made.rows, {**made.meta, "proxy": {**made.meta["proxy"], "steps": 999}}).write_csv(other)
    refused = r"other\.csv was made with another proxy \(steps: 999 in the file, 300 in this config\)"
    with pytest.raises(SearchError, match=refused):
        make_table(first.model_copy(update={"out": str(tmp_path / "third")}), zoo + 1, trial_log=NullTrialLog(),
                   csv=other)


def test_nas_table_make_goes_on_from_the_csv_in_another_folder(table_csv, tmp_path):
    """The command line: `nas table make` writes the CSV; the same command with another --out (nothing of the first
    study there) takes the CSV's specs from it and adds the rest."""
    path, _, _ = table_csv
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"name: tcli\ntable: {path}\n")
    csv = tmp_path / "made.csv"

    def make(n: int, out: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "nas", "table", "make", str(cfg), "--n", str(n), "--csv", str(csv),
                               "--out", str(tmp_path / out), "--json"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    zoo = len({load_space("mai2022").project(e.spec).hash for e in zoo_entries()})
    assert make(zoo + 1, "a")["rows"] == zoo + 1
    again = make(zoo + 2, "b")
    assert again["rows"] == zoo + 2 and again["file"] == str(csv)
    runs = [json.loads(f.read_text())["worker"] for f in (tmp_path / "b" / "tcli" / "trials").glob("*/outcome.json")]
    assert sorted(runs).count("table (replayed)") == zoo + 1 and len(runs) == zoo + 2


def test_a_bad_table_is_refused_with_what_is_wrong(table_csv, tmp_path):
    path, table, _ = table_csv
    text = path.read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace(",train_s,", ",seconds,"))
    with pytest.raises(SearchError, match=r"columns \['train_s'\] are missing"):
        BenchTable.read_csv(bad)
    bad.write_text("hash,spec\n")
    with pytest.raises(SearchError, match="is not a benchmark table"):
        BenchTable.read_csv(bad)
    with pytest.raises(SearchError, match="benchmark table not found"):
        BenchTable.read_csv(tmp_path / "none.csv")
    other = tmp_path / "other.csv"
    BenchTable(table.rows, {**table.meta, "space_digest": "000000000000", "space": "mine"}).write_csv(other)
    cfg = SearchConfig.model_validate({"name": "o", "out": str(tmp_path), "table": str(other), "n_trials": 2})
    with pytest.raises(SearchError, match="made on space 'mine' .*not on this study's space 'mai2022'"):
        run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)


def test_the_table_is_part_of_a_study_identity_only_when_set():
    plain = SearchConfig()
    assert "table" not in identity_view(plain.model_dump(mode="json"))  # studies made before tables still resume
    assert SearchConfig(table="a.csv").identity_hash != plain.identity_hash


def test_balanced_sampler_gives_every_value_of_every_parameter_equally_often():
    space = load_space("mai2022")
    cfg = SearchConfig(sampler={"name": "balanced"}, seed=3)
    from nas.search.samplers import make_sampler

    st = optuna.create_study(sampler=make_sampler(cfg))
    specs = []
    for _ in range(80):  # 80: a multiple of every parameter's number of values (4, 8, 4, 5, 2, 2, 2)
        t = st.ask()
        specs.append(space.suggest(t))
        st.tell(t, 0.0)
    for field, k in (("width", 4), ("depth", 8), ("skip", 5), ("clip_where", 2), ("clip_kind", 2), ("tail", 2)):
        counts = collections.Counter(str(getattr(s, field)) for s in specs)
        assert len(counts) == k and set(counts.values()) == {80 // k}, (field, counts)
    assert set(collections.Counter(s.blocks[0] for s in specs).values()) == {20}
    again = optuna.create_study(sampler=make_sampler(cfg))
    t = again.ask()
    assert space.suggest(t) == specs[0]  # stateless: the same seed and trial number give the same spec


def test_samplers_come_from_the_registry():
    from nas.search import SAMPLERS, register_sampler

    with pytest.raises(SearchError, match=r"field 'sampler.name': 'cmaes' is not a registered sampler \(balanced, evolution, gp"):
        load_search_config(None, sampler={"name": "cmaes"})

    @register_sampler("cmaes", "CMA-ES")
    def _cmaes(config):
        return optuna.samplers.CmaEsSampler(seed=config.seed)

    try:
        assert SearchConfig(sampler={"name": "cmaes"}).sampler.name == "cmaes"
    finally:
        del SAMPLERS["cmaes"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_the_gp_sampler_without_pytorch_says_how_to_get_it():
    from nas.search.samplers import make_sampler

    with pytest.raises(SearchError, match=r"needs PyTorch.*pip install 'npu-nas\[gp\]'"):
        make_sampler(SearchConfig(sampler={"name": "gp"}))


def test_a_sampler_that_ignores_pruned_trials_gets_a_study_that_prunes_nothing(table_csv, tmp_path, monkeypatch):
    """Optuna's GPSampler learns from completed trials only: a spec the pruner stopped would be proposed again and
    again (seen on the benchmark table: 24 of 40 trials the same pruned spec). Such a sampler's study prunes
    nothing; the same study with a sampler that learns from pruned trials does prune."""
    from nas.search import SAMPLERS, register_sampler
    from nas.search._policy import SearchPolicy

    monkeypatch.setitem(SAMPLERS, "blind", SAMPLERS["random"])  # restored after the test
    register_sampler("blind", "random, ignoring pruned trials", learns_from_pruned=False)(SAMPLERS["random"].factory)
    path, table, _ = table_csv
    pruned = {}
    for name in ("random", "blind"):
        cfg = SearchConfig.model_validate({
            "name": name, "out": str(tmp_path), "n_trials": 12, "objective": "score", "table": str(path),
            "sampler": {"name": name}, "pruner": {"name": "median", "n_startup_trials": 1}, "warm_start": [],
            "export": {"input_size": "48x64"}})
        policy = SearchPolicy(cfg)
        assert policy.prunes == (name == "random") and policy.pruner_name == ("median" if name == "random" else "none")
        s = run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)
        pruned[name] = s.pruned
    assert pruned["random"] >= 1 and pruned["blind"] == 0, pruned


def test_a_spec_without_an_anchor_is_answered_from_a_row_without_one_and_leave_one_out_measures_it():
    def row(width, skip, psnr):
        s = ArchSpec(width=width, depth=2, blocks="conv", skip=skip)
        return TableRow(s, "complete", int8_psnr=psnr, train_s=1.0, curve=((20, psnr),))

    a, b = row(16, "carry", 29.0), row(32, "carry", 29.2)
    c, d = row(16, "none", 25.0), row(48, "none", 25.4)
    table = BenchTable((a, b, c, d), {})
    # c is one choice from a (the skip) but two width steps from d: the anchor term sends it to d
    assert spec_distance(c.spec, a.spec) == 3 and spec_distance(c.spec, d.spec) == 2
    near, dist = table.nearest(ArchSpec(width=32, depth=2, blocks="conv", skip="none"))
    assert near in (c, d) and dist == 1  # not b, the same width but anchored (3 away)
    fid = table.leave_one_out()
    # a<-b 0.2, b<-a 0.2, c<-d 0.4, d<-c 0.4; the mean (27.15) alone is 1.95 dB off on average
    assert fid.n == 4 and fid.mae_db == pytest.approx(0.3) and fid.mean_only_mae_db == pytest.approx(1.95)
    from scipy.stats import kendalltau

    assert fid.tau == pytest.approx(kendalltau([29.2, 29.0, 25.4, 25.0], [29.0, 29.2, 25.0, 25.4]).statistic)
    with pytest.raises(SearchError, match="2 completed rows; leave-one-out needs 3"):
        BenchTable((a, b), {}).leave_one_out()

def test_rows_measured_before_todays_forms_are_measured_again_when_the_table_is_made_on(table_csv, tmp_path):
    """A table keeps, per row, the training form and INT8 export it was measured with. The committed 200-row table
    was made before they were recorded (and before the INT8 fix), so each of its rows is stale; a table made on from
    such a CSV trains those specs again instead of answering from them, and its CSV ends with their new figures. A
    CSV without the column reads as before, with the same digest (so studies on it keep their identity)."""
    from nas.model import result_forms

    committed = BenchTable.read_csv(ROOT / "bench" / "tables" / "mai2022-300.csv")
    assert len(committed.stale) == len(committed) == 200 and committed.digest == "2def01e0afed"
    path, table, _ = table_csv
    assert table.rows and all(r.current and r.forms == result_forms(r.spec) for r in table.rows if r.state == "complete")
    first = table_config(load_search_config(None, name="mk", out=str(tmp_path / "here"), table=str(path)))
    zoo = len({load_space("mai2022").project(e.spec).hash for e in zoo_entries()})
    made = make_table(first, zoo + 3, trial_log=NullTrialLog(), csv=tmp_path / "t.csv")
    assert {r.hash: r.forms for r in BenchTable.read_csv(tmp_path / "t.csv").rows} == {r.hash: r.forms
                                                                                      for r in made.rows}
    done = [r for r in made.rows if r.state == "complete"]
    old = {r.hash for r in done[:2]}
    rows = tuple(dataclasses.replace(r, forms="", int8_psnr=1.0) if r.hash in old else r for r in made.rows)
    BenchTable(rows, made.meta).write_csv(tmp_path / "old.csv")
    assert {r.hash for r in BenchTable.read_csv(tmp_path / "old.csv").stale} == old

    again = make_table(first.model_copy(update={"out": str(tmp_path / "there")}), zoo + 3, trial_log=NullTrialLog(),
                       csv=tmp_path / "old.csv")
    outcomes = [json.loads(f.read_text()) for f in (tmp_path / "there" / "mk" / "trials").glob("*/outcome.json")]
    measured = {o["metrics"]["int8_psnr"] for o in outcomes if o["worker"] == "table"}
    assert sum(o["worker"] == "table" for o in outcomes) == 2 and 1.0 not in measured  # the two stale rows only
    remade = BenchTable.read_csv(tmp_path / "old.csv")
    assert not remade.stale and len(remade) == len(again) == zoo + 3
    for r in made.rows:
        assert remade.get(r.spec).int8_psnr == r.int8_psnr
