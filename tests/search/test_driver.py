"""The study driver through the synthetic executor (nothing trained: canned outcomes in milliseconds): counting,
duplicates, recovery after a kill, identity, constraints, pruning, retries, a moved study folder."""

from __future__ import annotations

import hashlib
import shutil

import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import SearchError
from nas.search import SearchConfig, run_search
from nas.search._record import Cause, TrialRecord
from nas.search._store import load_optuna_study
from nas.search._study import NullTrialLog, open_study, study_front, trial_points
from nas.benchmark import SyntheticExecutors, synthetic_psnr
from nas.space import ArchSpec


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> str:
    """One MLflow store for the module's studies (creating one costs seconds; each test's study has its own name,
    so its own experiment)."""
    return f"sqlite:///{(tmp_path_factory.mktemp('mlflow') / 'mlflow.db').as_posix()}"


@pytest.fixture
def make(tmp_path, image_cache, tracking, request):
    default = "d" + hashlib.sha1(request.node.name.encode()).hexdigest()[:6]

    def config(name: str = default, n: int = 12, **kw) -> SearchConfig:
        # Optuna's journal file unless a test says otherwise (storage=None: the default SQLite database): a third of
        # the cost per trial, and no database to create (about a second); the SQLite path has its own tests here
        journal = f"journal:///{(tmp_path / 'runs' / name / 'optuna.log').as_posix()}"
        base = {"name": name, "out": str(tmp_path / "runs"), "n_trials": n, "sampler": {"name": "random"},
                "data": {"limit": 1, "valid_limit": 1, "cache": str(image_cache)}, "storage": journal,
                "tracking": tracking}
        for key, value in kw.items():
            base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        return SearchConfig.model_validate(base)

    return config


def _run(cfg, capacity=4, behaviour=None, log=True, events=None):
    executors = SyntheticExecutors(capacity=capacity, behaviour=behaviour)
    summary = run_search(cfg, executors=executors, trial_log=None if log else NullTrialLog(),
                         callback=None if events is None else events.append, plots=False)
    return summary, executors.made[-1]


def _trials(summary):
    st = load_optuna_study(summary.study)
    return st, [(t, TrialRecord.from_attrs(t.user_attrs)) for t in st.trials]


def test_a_study_counts_records_and_fronts_its_trials(make):
    events = []
    summary, ex = _run(make(n=12), log=False, events=events)
    st, trials = _trials(summary)
    assert summary.complete + summary.pruned + summary.failed == 12 == summary.new_trials
    assert len(ex.submitted) == len({t.number for t, r in trials if r.duplicate_of is None})
    assert trials[0][1].warm_start == "abpn-baseline"
    for t, rec in trials:
        spec = ArchSpec.from_dict(rec.spec)
        assert rec.hash == spec.hash and (summary.study.trial_dir(t.number) / "spec.json").exists()
        if t.state == TrialState.COMPLETE:
            assert rec.metrics["int8_psnr"] == pytest.approx(synthetic_psnr(spec))
            assert t.values == pytest.approx([rec.metrics["int8_psnr"], rec.latency_objective_ms])
    # the driver's own counters agree with what Optuna holds, and the front with a fresh read of it
    states = [t.state for t, _ in trials]
    assert summary.complete == states.count(TrialState.COMPLETE) and summary.pruned == states.count(TrialState.PRUNED)
    fresh = {p.number for p in trial_points(st)}
    assert {p.number for p in summary.front} <= fresh and summary.best.number in fresh
    assert events[-1].kind == "end" and events[-1].done == 12
    assert events[-1].best_trial == summary.best.number
    assert summary.files == {} and not (summary.study.folder / "pareto").exists()  # plots=False: no plotting


def test_a_spec_already_evaluated_reuses_its_result(make):
    cfg = make(n=3)
    first, _ = _run(cfg)
    st, trials = _trials(first)
    done = next(t for t, r in trials if t.state == TrialState.COMPLETE)
    st.enqueue_trial(done.params)
    more, ex = _run(cfg.with_overrides(n_trials=4))
    st, trials = _trials(more)
    dup_t, dup = trials[3]
    assert dup.duplicate_of == done.number and dup_t.values == done.values and ex.submitted == []
    assert not (more.study.trial_dir(3) / "outcome.json").exists()
    from mlflow import MlflowClient

    run = MlflowClient(more.study.tracking).get_run(dup.mlflow_run_id)
    assert run.data.tags["nas.duplicate_of"] == str(done.number) and run.info.status == "FINISHED"


class _Killed(BaseException):
    pass


def test_a_killed_driver_requeues_what_ran_and_loses_nothing(make):
    cfg = make(n=6, storage=None)
    polls = []

    def behaviour(job, attempt):
        polls.append(job.number)
        if len(polls) == 3:
            raise _Killed  # the driver dies while trials 2.. run (as SIGKILL would leave them: RUNNING)
        return None

    with pytest.raises(_Killed):
        _run(cfg, capacity=3, behaviour=behaviour)
    st = load_optuna_study(open_study(cfg.study_dir))
    running = [t.number for t in st.trials if t.state == TrialState.RUNNING]
    assert running
    summary, _ = _run(cfg, capacity=3)
    st, trials = _trials(summary)
    rec = dict((t.number, r) for t, r in trials)
    for n in running:
        assert rec[n].cause is Cause.INTERRUPTED and rec[n].requeued
        again = [t for t, r in trials if r.requeued_from == n]
        assert len(again) == 1 and again[0].params == st.trials[n].params and again[0].state.is_finished()
    assert summary.complete + summary.pruned + summary.failed == 6 and summary.failed == 0


def test_a_resume_with_another_config_is_refused_before_any_trial(make):
    cfg = make(n=2)
    _run(cfg, log=False)
    with pytest.raises(SearchError, match="was started with a different proxy"):
        _run(make(n=3, proxy={"steps": 30}), log=False)


def test_a_latency_budget_makes_slow_trials_infeasible(make):
    summary, _ = _run(make(n=8, latency={"budget_ms": 20.0}), log=False)
    _, trials = _trials(summary)
    for t, rec in trials:
        assert rec.c_budget == pytest.approx(rec.latency_objective_ms - 20.0)
        assert rec.feasible == (rec.latency_objective_ms <= 20.0)
    if summary.best is not None:
        assert summary.best.latency_objective_ms <= 20.0


def test_pruning_stops_trials_below_their_peers(make):
    summary, _ = _run(make(n=16, pruner={"n_startup_trials": 2}), capacity=1, log=False)
    _, trials = _trials(summary)
    pruned = [r for t, r in trials if t.state == TrialState.PRUNED]
    assert summary.pruned == len(pruned) > 0
    assert all(r.cause is Cause.PRUNED and r.reason.startswith("pruned at step") for r in pruned)
    score, _ = _run(make(name="sc", n=16, objective="score", pruner={"n_startup_trials": 2}), capacity=1, log=False)
    assert score.pruned > 0  # Optuna's median pruner, on the log2 score


def test_a_crashed_trial_runs_again_and_an_infeasible_one_never(make):
    # the first attempt of every spec crashes (a bug, an environment fault): each runs once more and completes
    summary, ex = _run(make(n=4, pruner={"name": "none"}), behaviour=lambda job, n: Cause.CRASH if n == 1 else None,
                       log=False)
    st, trials = _trials(summary)
    assert (summary.complete, summary.failed) == (4, 0)
    crashed = [(t, r) for t, r in trials if r.cause is Cause.CRASH]
    assert len(crashed) == 4 and all(r.requeued for _, r in crashed)
    for t, r in crashed:
        (again,) = [(u, s) for u, s in trials if s.requeued_from == t.number]
        assert again[1].attempt == 2 and again[0].state == TrialState.COMPLETE and again[0].params == t.params

    # crashing every time: retried trial_retries (1) times, then failed, and its spec is not counted as evaluated
    always, _ = _run(make(name="always", n=2, pruner={"name": "none"}), behaviour=lambda job, n: Cause.CRASH,
                     log=False)
    assert always.failed == 2 and always.complete == 0
    _, trials = _trials(always)
    assert [r.attempt for _, r in trials].count(2) == 2 and not any(r.evaluated(False) for _, r in trials)

    # infeasible: final at once, and the same spec asked again is not run
    cfg = make(name="inf", n=2, pruner={"name": "none"})
    inf, ex = _run(cfg, behaviour=lambda job, n: Cause.INFEASIBLE, log=False)
    assert inf.failed == 2 and len(ex.submitted) == 2
    st, trials = _trials(inf)
    st.enqueue_trial(trials[0][0].params)
    more, ex = _run(cfg.with_overrides(n_trials=3), behaviour=lambda job, n: Cause.INFEASIBLE, log=False)
    _, trials = _trials(more)
    assert ex.submitted == [] and trials[2][1].duplicate_of == 0 and trials[2][1].cause is Cause.INFEASIBLE


def test_a_moved_study_folder_finds_its_own_storage(make, tmp_path):
    cfg = make(n=3, storage=None)
    _run(cfg, log=False)
    moved = tmp_path / "elsewhere" / "d"
    shutil.copytree(cfg.study_dir, moved)
    shutil.rmtree(cfg.study_dir)
    info, points, best, _, _ = study_front(moved, write=False)
    assert info.storage == f"sqlite:///{(moved / 'optuna.db').as_posix()}"
    assert len(points) >= 1 and best is not None


def test_a_damaged_optuna_database_is_rebuilt_from_the_study_folder(make):
    """Every finished trial is in the folder first: a damaged optuna.db stops the search with one line that says
    how to rebuild it, `nas rebuild` rebuilds it (the damaged file kept aside), and the study goes on."""
    import json
    import subprocess
    import sys

    cfg = make(n=10, pruner={"n_startup_trials": 2}, storage=None)
    crash_once = lambda job, n: Cause.CRASH if job.number == 3 and n == 1 else None  # noqa: E731
    before, _ = _run(cfg, capacity=2, behaviour=crash_once, log=False)
    st, trials = _trials(before)
    st.enqueue_trial(trials[1][0].params)  # a duplicate too
    before, _ = _run(cfg.with_overrides(n_trials=11), capacity=2, log=False)
    _, trials = _trials(before)
    was = [(t.number, t.state, t.values, r.metrics, r.hash, r.cause) for t, r in trials if r.duplicate_of is None]
    db = cfg.study_dir / "optuna.db"
    db.write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (cfg.study_dir / f"optuna.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(SearchError, match=r"is unusable: .*`nas rebuild .*` rebuilds the study"):
        _run(cfg.with_overrides(n_trials=12), log=False)

    proc = subprocess.run([sys.executable, "-m", "nas", "rebuild", str(cfg.study_dir), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    dups = sum(1 for _, r in trials if r.duplicate_of is not None)
    assert dups == 1 and report["requeued"] == dups  # a duplicate left no outcome of its own: it is queued again
    assert report["complete"] == before.complete - dups and report["pruned"] == before.pruned
    assert (cfg.study_dir / report["moved_aside"]).read_bytes().startswith(b"not a database")
    st, trials = _trials(before)
    again = {t.number: (t.number, t.state, t.values, r.metrics, r.hash, r.cause) for t, r in trials}
    for number, state, values, metrics, h, cause in was:  # every trial that ran: the same state, values, record
        assert again[number] == (number, state, values, metrics, h, cause)
    # the duplicate (no outcome of its own) is queued again; the rebuilt study runs on
    after, ex = _run(cfg.with_overrides(n_trials=12), capacity=2, log=False)
    assert after.complete + after.pruned + after.failed == 12
    again = subprocess.run([sys.executable, "-m", "nas", "rebuild", str(cfg.study_dir)], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 1 and "opens fine: nothing to rebuild" in again.stderr


def test_a_study_on_a_journal_file_resumes(make, tmp_path):
    """Optuna's journal file (storage journal:///FILE), the cheaper storage for long studies."""
    url = f"journal:///{(tmp_path / 'j' / 'optuna.log').as_posix()}"
    first, _ = _run(make(name="j", n=6, storage=url), log=False)
    more, _ = _run(make(name="j", n=9, storage=url), log=False)
    assert more.new_trials == 3 and more.complete + more.pruned + more.failed == 9
    info, points, best, _, _ = study_front(more.study.folder, write=False)
    assert info.storage == url and {p.number for p in points} >= {p.number for p in first.front}


def test_the_durable_storage_holds_each_trial_as_the_live_study_runs_it(make):
    """The driver asks and tells a copy in memory; the durable storage gets each trial when it starts (running,
    with its parameters, record and constraints: what optuna-dashboard shows) and when it ends, with the same
    number. The pruner's intermediate values reach it too (the scalar objective)."""
    cfg = make(name="m", n=8, objective="score", pruner={"n_startup_trials": 2})
    seen = []

    def behaviour(job, attempt):
        st = load_optuna_study(open_study(cfg.study_dir))
        t = st.trials[job.number]
        rec = TrialRecord.from_attrs(t.user_attrs)
        seen.append((t.state, rec.hash == job.spec.hash, bool(t.params), len(t.constraints)))
        return None

    summary, _ = _run(cfg, capacity=2, behaviour=behaviour, log=False)
    assert seen and all(s == (TrialState.RUNNING, True, True, 2) for s in seen)
    st, trials = _trials(summary)
    assert [t.number for t, _ in trials] == list(range(8)) and all(t.state.is_finished() for t, _ in trials)
    assert any(t.intermediate_values for t, _ in trials if t.state == TrialState.PRUNED)


def test_another_writer_on_the_study_stops_the_driver(make):
    """Trial numbers must agree between the live copy and the storage: a second writer is an error, not a mix-up."""
    cfg = make(name="w", n=6)

    def behaviour(job, attempt):
        if job.number == 1:
            st = load_optuna_study(open_study(cfg.study_dir))
            st.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
        return None

    with pytest.raises(SearchError, match="written by another process"):
        _run(cfg, capacity=1, behaviour=behaviour, log=False)


def test_a_resumed_study_does_not_draw_its_first_run_again(make):
    """A sampler's random stream restarts with the process: the seed moves on by the trials the study holds, so the
    second run draws new specs (before, a resumed random study asked its first run's specs again, each a duplicate
    that used up a trial), and the same history still gives the same draws."""
    first, _ = _run(make(n=6), log=False)
    more, _ = _run(make(n=11), log=False)
    _, trials = _trials(more)
    params = [t.params for t, _ in trials]
    assert params[6:11] != params[1:6]
    assert not any(r.duplicate_of is not None for _, r in trials[6:])


def test_a_spec_running_in_one_trial_is_not_trained_again_in_another(make, monkeypatch):
    """With several workers, a spec asked again while its first trial ran was trained twice at once (the chaos
    bench: 5 of 1,000 table trials on 16 workers). A trial whose spec is running now waits and takes its result."""
    import optuna

    from nas.search import SAMPLERS, register_sampler

    class Same(optuna.samplers.RandomSampler):  # every trial the same spec
        def sample_independent(self, study, trial, name, dist):
            return dist.to_external_repr(0) if hasattr(dist, "choices") else dist.low

    monkeypatch.setitem(SAMPLERS, "same", SAMPLERS["random"])
    register_sampler("same", "one spec, always")(lambda c: Same(seed=c.seed))
    summary, ex = _run(make(n=6, sampler={"name": "same"}, pruner={"name": "none"}, warm_start=[]), capacity=4,
                       log=False)
    _, trials = _trials(summary)
    assert len(ex.submitted) == 1 and summary.complete == 6  # trained once
    assert sorted(r.duplicate_of for _, r in trials if r.duplicate_of is not None) == [0] * 5
