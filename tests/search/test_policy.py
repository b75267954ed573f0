"""The search policy (nas.search._policy): the Pareto pruning rule, retries, when to ask, which pruner."""

from __future__ import annotations

import optuna
import pytest

from nas.search import SearchConfig
from nas.search._policy import SearchPolicy, dominated_median
from nas.search._record import Cause, TrialRecord

# completed trials: (objective latency ms, validation curve)
DONE = [(10.0, ((100, 28.0), (200, 29.0))), (12.0, ((100, 28.4), (200, 29.4))), (30.0, ((100, 29.5), (200, 30.5)))]


def test_the_pareto_rule_compares_with_the_median_of_trials_at_most_as_slow():
    # at 20 ms: the peers are the 10 and 12 ms trials (median 28.2 at step 100), not the slow 30 ms one
    assert dominated_median(100, 28.1, 20.0, DONE, n_startup=2, n_warmup=0)
    assert not dominated_median(100, 28.3, 20.0, DONE, n_startup=2, n_warmup=0)
    # a faster trial than any completed one has no peers: never pruned
    assert not dominated_median(100, 20.0, 5.0, DONE, n_startup=1, n_warmup=0)
    # too few peers, before the warm-up, or a step no peer reported: kept
    assert not dominated_median(100, 28.1, 20.0, DONE, n_startup=3, n_warmup=0)
    assert not dominated_median(100, 28.1, 20.0, DONE, n_startup=2, n_warmup=150)
    assert not dominated_median(150, 10.0, 20.0, DONE, n_startup=1, n_warmup=0)
    # at 40 ms all three are peers: median 28.4
    assert dominated_median(100, 28.3, 40.0, DONE, n_startup=3, n_warmup=0)


def test_retries_follow_the_cause():
    policy = SearchPolicy(SearchConfig(trial_retries=1))
    rec = TrialRecord(cause=Cause.CRASH, reason="a fault")
    assert policy.retry(rec) and not policy.retry(rec.with_(attempt=2))  # one retry, then it fails for good
    assert policy.retry(TrialRecord(cause=Cause.WORKER_LOST, reason="node died"))
    assert policy.retry(TrialRecord(cause=Cause.INTERRUPTED, reason="driver stopped", attempt=9))  # always
    assert not policy.retry(TrialRecord(cause=Cause.INFEASIBLE, reason="diverged"))  # the spec's own
    assert not policy.retry(TrialRecord(cause=Cause.PRUNED, reason="pruned at step 100"))


def test_the_policy_asks_while_trials_and_capacity_remain():
    policy = SearchPolicy(SearchConfig(n_trials=10))
    assert policy.want_more(finished=5, running=2, capacity=4)
    assert not policy.want_more(finished=5, running=4, capacity=4)  # every worker busy
    assert not policy.want_more(finished=8, running=2, capacity=4)  # the rest are running


@pytest.mark.parametrize("objective", ["pareto", "score"])
def test_the_pruner_in_effect(objective):
    """Optuna prunes single-objective studies only: the Pareto objective prunes by the driver's own rule; a sampler
    that ignores pruned trials would propose them again, so with it nothing is pruned."""
    tpe = SearchPolicy(SearchConfig(objective=objective, sampler={"name": "tpe"}))
    assert tpe.prunes and tpe.pruner_name == "median"
    want = optuna.pruners.NopPruner if objective == "pareto" else optuna.pruners.MedianPruner
    assert isinstance(tpe.pruner(), want)
    nsga2 = SearchPolicy(SearchConfig(objective=objective, sampler={"name": "nsga2"}))
    assert not nsga2.prunes and isinstance(nsga2.pruner(), optuna.pruners.NopPruner)
    off = SearchPolicy(SearchConfig(objective=objective, pruner={"name": "none"}))
    assert not off.prunes and off.pruner_name == "none" and isinstance(off.pruner(), optuna.pruners.NopPruner)
