"""Regularised evolution (Real et al., 2019, "Regularized Evolution for Image Classifier Architecture Search"): the
classic NAS baseline, as an Optuna sampler.

The population is the last ``population`` completed, feasible trials (by the order they finished: the oldest leave,
which is the "regularisation", or ageing). Until it is full, trials are random. Then each new trial takes a
tournament of ``sample`` members drawn from the population, copies the fittest one's parameters and mutates one of
them (drawn again, to another value where it can be). Parameters the parent lacks (a deeper child's ``width_i`` in a
per-layer space) are drawn at random, so conditional spaces need nothing special.

Fitness is the study's own: the value of a single-objective study, and for the Pareto objective (INT8 PSNR up,
latency down) the log2 of the challenge's score up to its constant, ``2 * PSNR - log2(latency)``. Pruned trials
never join the population (it is made of completed trials), so the sampler is registered as not learning from them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

__all__ = ["RegularizedEvolutionSampler"]


def _fitness(study: optuna.Study, t: FrozenTrial) -> float:
    if len(study.directions) == 1:
        v = t.values[0]
        return v if study.direction == optuna.study.StudyDirection.MAXIMIZE else -v
    psnr, latency = t.values[0], t.values[1]
    return 2.0 * psnr - math.log2(max(latency, 1e-9))


def _feasible(t: FrozenTrial) -> bool:
    return all(v <= 0 for k, v in t.system_attrs.items() if k.startswith("constraints:"))


class RegularizedEvolutionSampler(optuna.samplers.BaseSampler):
    """See the module docstring. Deterministic for a seed and a history."""

    def __init__(self, population: int = 20, sample: int = 5, seed: int | None = None):
        if not 1 <= sample <= population:
            raise ValueError(f"tournament sample {sample} must be between 1 and the population {population}")
        self.population, self.sample = population, sample
        self._rng = np.random.RandomState(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        # trial number -> (inherited parameters, the mutated one's name and its parent's value)
        self._plans: dict[int, tuple[dict[str, Any], str | None, Any]] = {}

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def _plan(self, study: optuna.Study) -> tuple[dict[str, Any], str | None, Any]:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
        if len(done) < self.population:
            return {}, None, None  # random until the population is full
        done.sort(key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        pop = done[-self.population:]
        picks = self._rng.choice(len(pop), size=self.sample, replace=False)
        parent = max((pop[i] for i in picks), key=lambda t: (_fitness(study, t), -t.number))
        mutated = sorted(parent.params)[self._rng.randint(len(parent.params))] if parent.params else None
        return {k: v for k, v in parent.params.items() if k != mutated}, mutated, parent.params.get(mutated)

    def sample_independent(self, study, trial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if trial.number not in self._plans:
            self._plans[trial.number] = self._plan(study)
        inherited, mutated, parent_value = self._plans[trial.number]
        if param_name in inherited:
            value = inherited[param_name]
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        value = self._random.sample_independent(study, trial, param_name, param_distribution)
        if param_name == mutated:  # the mutation: another value than the parent's, where there is one
            for _ in range(8):
                if value != parent_value:
                    break
                value = self._random.sample_independent(study, trial, param_name, param_distribution)
        return value

    def after_trial(self, study, trial, state, values) -> None:
        self._plans.pop(trial.number, None)
