"""The driver's state as data: the table of finished trials and what follows from it, and the one Objective."""

from __future__ import annotations

import dataclasses
import json

import pytest
from optuna.trial import TrialState

from nas.search._objective import Objective, optuna_state, outcome_state
from nas.search._record import Cause, TrialRecord
from nas.search._trials import FinishedTrial, TrialTable


def _rec(h: str, psnr: float | None = None, latency: float = 10.0, **kw) -> TrialRecord:
    metrics = {} if psnr is None else {"int8_psnr": psnr}
    return TrialRecord(hash=h, describe=h, latency_ms=latency, latency_sigma_ms=0.0, latency_objective_ms=latency,
                       metrics=metrics, curve=((100, (psnr or 20.0) - 1),), **kw)


def _complete(n, h, psnr, latency=10.0, **kw):
    return FinishedTrial(n, _rec(h, psnr, latency, **kw), TrialState.COMPLETE, [psnr, latency])


def test_the_table_derives_counts_evaluated_specs_curves_points_and_best():
    table = TrialTable()
    table.add(_complete(0, "a", 29.0))
    table.add(_complete(1, "b", 30.0, latency=40.0))  # more PSNR, but 4x slower: a lower log2 score
    table.add(FinishedTrial(2, _rec("c", cause=Cause.CRASH, reason="a fault", requeued=True), TrialState.FAIL))  # runs again as 3
    table.add(_complete(3, "c", 28.0))
    table.add(FinishedTrial(4, _rec("a", 29.0, duplicate_of=0), TrialState.COMPLETE, [29.0, 10.0]))
    table.add(FinishedTrial(5, _rec("d", cause=Cause.PRUNED, reason="pruned at step 100"), TrialState.PRUNED))
    assert table.counts == {"complete": 4, "pruned": 1, "failed": 0} and table.finished == 5 and len(table) == 6
    assert table.evaluated("a").number == 0 and table.evaluated("d").number == 5  # a pruned spec is evaluated
    assert table.evaluated("c").number == 3  # the crashed attempt did not evaluate it
    assert sorted(table.points) == [0, 1, 3]  # the duplicate is its original's point
    assert table.best.number == 0 and len(table.curves) == 3
    with pytest.raises(ValueError, match="trial 3 is already"):
        table.add(_complete(3, "e", 30.0))


def test_a_rescored_table_is_a_new_table_built_from_the_rescored_rows():
    """A re-score (the closed loop's refit) used to clear four caches by hand and rebuild them in place; a new table
    from the re-scored rows derives the same things as a table built from them from the start."""
    table = TrialTable([_complete(0, "a", 29.0, latency=10.0), _complete(1, "b", 29.1, latency=12.0)])
    assert table.best.number == 0

    def slower_a(row):  # the refit finds net a four times slower
        if row.record.hash != "a":
            return row
        return dataclasses.replace(row, record=row.record.with_(latency_ms=40.0, latency_objective_ms=40.0),
                                   values=[29.0, 40.0])

    again = table.rescored(slower_a)
    fresh = TrialTable([slower_a(r) for r in table])
    assert again is not table and table.best.number == 0  # the old table is unchanged
    assert again.best.number == fresh.best.number == 1
    assert again.points == fresh.points and again.counts == fresh.counts


def test_one_objective_names_directions_values_and_states():
    pareto, score = Objective("pareto"), Objective("score")
    assert pareto.directions == ["maximize", "minimize"] and len(pareto.names) == 2 and pareto.multi
    assert score.directions == ["maximize"] and len(score.names) == 1 and not score.multi
    assert pareto.values(29.0, 12.0, 3.0) == [29.0, 12.0] and score.values(29.0, 12.0, 3.0) == 3.0
    for outcome in ("complete", "pruned", "failed"):
        assert outcome_state(optuna_state(outcome)) == outcome
    assert outcome_state(TrialState.RUNNING) == "failed"  # a trial its driver left running
    with pytest.raises(ValueError, match="unknown objective 'psnr'"):
        Objective("psnr")
    with pytest.raises(ValueError, match="unknown trial outcome 'done'"):
        optuna_state("done")


@pytest.mark.parametrize("objective", ["pareto", "score"])
def test_the_store_and_the_rebuild_make_the_study_one_objective_says(tmp_path, image_cache, objective):
    """The store creates the study and a rebuild re-creates it from the folder, both from Objective (they once kept
    a table each); each trial's outcome.json is written once, before Optuna, and says whether it runs again."""
    from nas.benchmark import SyntheticExecutors
    from nas.search import SearchConfig, run_search
    from nas.search._rebuild import rebuild_study
    from nas.search._store import load_optuna_study
    from nas.search._study import NullTrialLog

    cfg = SearchConfig.model_validate({
        "name": f"ob-{objective}", "out": str(tmp_path), "n_trials": 3, "objective": objective,
        "sampler": {"name": "random"}, "data": {"limit": 1, "valid_limit": 1, "cache": str(image_cache)}})
    summary = run_search(cfg, executors=SyntheticExecutors(capacity=1), trial_log=NullTrialLog(), plots=False)
    for st in (load_optuna_study(summary.study), None):
        if st is None:
            rebuild_study(summary.study.folder, force=True)
            st = load_optuna_study(summary.study)
        assert [d.name.lower() for d in st.directions] == Objective(objective).directions
        assert st.metric_names == list(Objective(objective).names) and len(st.trials) == 3
    outcomes = [json.loads((summary.study.trial_dir(n) / "outcome.json").read_text()) for n in range(3)]
    assert all("driver" not in o["seconds"] and o["requeued"] is False for o in outcomes)
    assert sorted(summary.driver_seconds) == [0, 1, 2]  # the driver's own seconds: in its summary
