"""Kills at the worst moments, and at scale: what a killed driver leaves is recovered once, and a study its driver
was killed in ends where an uninterrupted one ends."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.benchmark import TableExecutors
from nas.search import Cause, SearchConfig, TrialRecord, open_study, run_search
from nas.search._store import load_optuna_study
from nas.search._study import NullTrialLog
from nas.search.samplers._balanced import BalancedSampler

TABLE = Path(__file__).resolve().parents[2] / "bench" / "tables" / "mai2022-300.csv"


def test_a_rerun_lost_between_two_writes_is_queued_at_the_next_start(tmp_path):
    """A trial to run again is marked in Optuna (failed, requeued) and then its re-run is queued: two writes. A
    driver killed between them left a trial marked requeued with no re-run, and nothing ever ran its spec again (the
    chaos bench found it: one spec of 120 missing after 4 kills). The next start queues it."""
    cfg = SearchConfig.model_validate({"name": "gap", "out": str(tmp_path), "n_trials": 6, "table": str(TABLE),
                                       "sampler": {"name": "balanced"}, "pruner": {"name": "none"}})
    summary = run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)
    st = load_optuna_study(summary.study)
    donor = st.trials[3]
    rec = TrialRecord.from_attrs(donor.user_attrs).with_(cause=Cause.INTERRUPTED, reason="interrupted",
                                                         requeued=True, metrics={})
    st.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params=donor.params,
                                           distributions=donor.distributions, user_attrs=rec.attrs()))
    lost = len(st.trials) - 1
    again = run_search(cfg.model_copy(update={"n_trials": 7}), executors=TableExecutors(), trial_log=NullTrialLog(),
                       plots=False)
    trials = load_optuna_study(again.study).trials
    reruns = [t for t in trials if TrialRecord.from_attrs(t.user_attrs).requeued_from == lost]
    assert len(reruns) == 1 and reruns[0].state == TrialState.COMPLETE and reruns[0].params == donor.params
    run_search(cfg.model_copy(update={"n_trials": 8}), executors=TableExecutors(), trial_log=NullTrialLog(),
               plots=False)  # started once more: queued once, not again
    trials = load_optuna_study(again.study).trials
    assert sum(TrialRecord.from_attrs(t.user_attrs).requeued_from == lost for t in trials) == 1


def test_the_space_filling_sampler_skips_the_reruns_of_a_killed_study():
    """Reruns repeat a spec already drawn: the design goes on after them as if they had not been there."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plain = optuna.create_study(sampler=BalancedSampler(seed=3))
    want = [plain.ask().suggest_categorical("x", list("abcdefg")) for _ in range(5)]
    killed = optuna.create_study(sampler=BalancedSampler(seed=3))
    got = [killed.ask().suggest_categorical("x", list("abcdefg")) for _ in range(3)]
    killed.enqueue_trial({"x": got[1]}, user_attrs=TrialRecord(requeued_from=1).attrs())
    rerun = killed.ask()
    assert rerun.suggest_categorical("x", list("abcdefg")) == got[1]
    got += [killed.ask().suggest_categorical("x", list("abcdefg")) for _ in range(2)]
    assert got == want


@pytest.mark.slow
def test_a_study_killed_six_times_ends_as_an_uninterrupted_one(tmp_path):
    from bench.reliability import chaos_at_scale

    r = chaos_at_scale(tmp_path, trials=120, workers=16, kills=6, seed=1, loss=0.1)
    assert r["kills"] == 6 and r["numbers_contiguous"] and r["requeued"] > 0
    assert r["workers_lost"] > 0 and r["workers_lost"] == r["reference_workers_lost"]
    assert r["evaluated_twice"] == 0 and r["open_mlflow_runs"] == 0
    assert r["same_specs_as_uninterrupted"] and r["same_front"]


def test_a_queued_trial_killed_as_it_started_runs_again_with_all_its_parameters(tmp_path):
    """Optuna fills a queued trial's parameters as they are drawn, so one the driver was killed on as it started
    holds them in fixed_params only. Its re-run was queued with the (empty) params and drew a new spec (the chaos
    bench at 1,000 trials: 3 re-runs of 363 ran another spec than the one they repeat)."""
    cfg = SearchConfig.model_validate({"name": "half", "out": str(tmp_path), "n_trials": 6, "table": str(TABLE),
                                       "sampler": {"name": "balanced"}, "pruner": {"name": "none"}})
    summary = run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)
    st = load_optuna_study(summary.study)
    want = dict(st.trials[2].params)
    st.enqueue_trial(want, user_attrs=TrialRecord(requeued_from=2).attrs())
    started = st.trials[-1]
    st._storage.set_trial_state_values(started._trial_id, TrialState.RUNNING)  # as the driver starts it
    assert started.params == {} and load_optuna_study(summary.study).trials[-1].state == TrialState.RUNNING
    again = run_search(cfg.model_copy(update={"n_trials": 8}), executors=TableExecutors(), trial_log=NullTrialLog(),
                       plots=False)
    trials = load_optuna_study(again.study).trials
    (rerun,) = [t for t in trials if TrialRecord.from_attrs(t.user_attrs).requeued_from == started.number]
    assert rerun.params == want and rerun.state == TrialState.COMPLETE


def test_a_lost_worker_costs_its_trial_one_retry_and_the_spec_is_evaluated_once(tmp_path):
    """The chaos bench's simulated workers die (bench._chaos): a trial whose worker is lost comes back failed with
    cause worker_lost, runs again as a new trial with the same parameters while ``trial_retries`` allows, and a spec
    that loses its worker twice fails for good; no spec is answered twice."""
    from bench._chaos import LosingWorkers

    cfg = SearchConfig.model_validate({"name": "lossy", "out": str(tmp_path), "n_trials": 40, "workers": 4,
                                       "table": str(TABLE), "sampler": {"name": "balanced"},
                                       "pruner": {"name": "none"}, "trial_retries": 1})
    ledger = tmp_path / "lost.json"
    run_search(cfg, executors=LosingWorkers(0.3, ledger, seed=3), trial_log=NullTrialLog(), plots=False)
    lost = json.loads(ledger.read_text())
    trials = load_optuna_study(open_study(cfg.study_dir)).trials
    recs = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in trials}
    failed = [t for t in trials if recs[t.number].cause is Cause.WORKER_LOST]
    assert sum(lost.values()) == len(failed) > 0  # every loss the executor drew reached Optuna
    for t in failed:
        reruns = [u for u in trials if recs[u.number].requeued_from == t.number]
        if recs[t.number].attempt <= cfg.trial_retries:
            assert len(reruns) == 1 and reruns[0].params == t.params  # one new attempt of the same spec
        else:
            assert reruns == []  # out of attempts: it stays failed
    assert any(v == 2 for v in lost.values())  # (the second branch ran)
    done = [recs[t.number].hash for t in trials
            if t.state is TrialState.COMPLETE and recs[t.number].duplicate_of is None]
    assert len(done) == len(set(done))
