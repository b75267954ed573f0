"""The surrogate benchmark (nas.benchmark._surrogate) on the committed 200-spec table: it ranks specs it was not
fitted on, and a study runs on it through the same driver, each spec answered the same way every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.benchmark import BenchTable, SurrogateExecutors, cross_validate, fit_surrogate, spec_features
from nas.errors import SearchError
from nas.search import SearchConfig, run_search
from nas.search._study import NullTrialLog
from nas.space import ArchSpec, load_space

TABLE = Path(__file__).resolve().parents[2] / "bench" / "tables" / "mai2022-300.csv"


@pytest.fixture(scope="module")
def table() -> BenchTable:
    return BenchTable.read_csv(TABLE)


def test_a_forest_ranks_held_out_rows_of_the_table(table):
    """5-fold cross-validation over the 200 rows: the forest ranks them (tau 0.81 when written) far better than
    chance and better than the nearest-row lookup the table executor uses for a spec it lacks."""
    space = load_space("mai2022")
    score = cross_validate(table.rows, space, "forest", folds=5)
    assert score.n == 200 and score.kendall_tau > 0.75 and score.mae_db < 0.6
    assert score.kendall_tau > table.leave_one_out().tau
    with pytest.raises(SearchError, match="unknown surrogate kind 'tree'"):
        fit_surrogate(table.rows, space, "tree")


def test_the_features_of_a_per_layer_space_see_each_position():
    layers = load_space("mai2022-layers")
    a = ArchSpec(width=48, depth=2, blocks="conv", widths=(16, 48, 32))
    b = ArchSpec(width=48, depth=2, blocks="conv", widths=(32, 48, 16))  # the same widths, another order
    assert (spec_features(a, layers) != spec_features(b, layers)).any()
    assert len(spec_features(a, layers)) == len(spec_features(ArchSpec(width=16, depth=12, blocks="ecb"), layers))


def test_a_study_runs_on_the_surrogate_and_each_spec_gets_one_answer(table, tmp_path):
    cfg = SearchConfig.model_validate({"name": "sur", "out": str(tmp_path), "n_trials": 24, "table": str(TABLE),
                                       "sampler": {"name": "random"}, "pruner": {"name": "none"}, "workers": 4})
    executors = SurrogateExecutors(kind="forest", noise_db=0.05)
    summary = run_search(cfg, executors=executors, trial_log=NullTrialLog(), plots=False)
    ex = executors.made[-1]
    assert summary.complete == 24 and ex.lookups["surrogate"] + ex.lookups["exact"] >= 20  # (duplicates: none)
    sur = executors._surrogate
    spec = ArchSpec(width=48, depth=5, blocks="ecb", skip="repeat_add")
    assert sur.answer(spec) == sur.answer(spec) and abs(sur.answer(spec) - float(sur.predict([spec])[0])) < 0.3
    assert 28.0 < sur.answer(spec) < 31.0
