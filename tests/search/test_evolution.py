"""Regularised evolution (nas.search.samplers._evolution) through a real study on the committed benchmark table."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nas.benchmark import TableExecutors
from nas.search import SearchConfig, TrialRecord, run_search
from nas.search._store import load_optuna_study
from nas.search._study import NullTrialLog
from nas.search.samplers._evolution import RegularizedEvolutionSampler

TABLE = Path(__file__).resolve().parents[2] / "bench" / "tables" / "mai2022-300.csv"


def test_children_are_mutations_of_a_fit_member_of_the_population(tmp_path):
    cfg = SearchConfig.model_validate({"name": "evo", "out": str(tmp_path), "n_trials": 40, "table": str(TABLE),
                                       "sampler": {"name": "evolution", "population_size": 8},
                                       "pruner": {"name": "none"}})
    summary = run_search(cfg, executors=TableExecutors(), trial_log=NullTrialLog(), plots=False)
    assert summary.complete + summary.failed == 40
    trials = load_optuna_study(summary.study).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    later = [t for t in trials if t.number >= 20 and not TrialRecord.from_attrs(t.user_attrs).warm_start]
    # once the population is full, every child differs from some earlier completed trial in at most one
    # parameter that both have (a mutation; a changed depth adds or drops per-layer ones, here none)
    for child in later:
        before = [t for t in done if t.number < child.number]
        diffs = [sum(child.params.get(k) != v for k, v in t.params.items()) for t in before]
        assert min(diffs) <= 1, (child.number, child.params)


def test_the_tournament_needs_a_population_to_draw_from():
    with pytest.raises(ValueError, match="tournament sample 9 must be between 1 and the population 8"):
        RegularizedEvolutionSampler(population=8, sample=9)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = [3, 1, 4, 1, 5, 9]

    def matches(t):  # how many of six digits are right: one mutation at a time climbs it, a random draw does not
        return sum(t.suggest_int(f"d{i}", 0, 9) == v for i, v in enumerate(target))

    best = {}
    for name, sampler in (("evolution", RegularizedEvolutionSampler(population=10, sample=3, seed=1)),
                          ("random", optuna.samplers.RandomSampler(seed=1))):
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(matches, n_trials=300)
        best[name] = study.best_value
    assert best["evolution"] >= 5 > best["random"], best
