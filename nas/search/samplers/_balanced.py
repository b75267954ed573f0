"""A space-filling sampler over discrete choices (see ``balanced`` in :mod:`nas.search.samplers`)."""

from __future__ import annotations

import hashlib

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

__all__ = ["BalancedSampler"]


class BalancedSampler(optuna.samplers.BaseSampler):
    """A Latin hypercube over discrete choices: trial number t takes, for a parameter with k values, entry
    ``t mod k`` of a permutation of the k values drawn for run ``t // k`` (seeded by the sampler's seed, the
    parameter's name and the run). Every k consecutive trials thus hold each value once, and parameters are drawn
    independently of each other. Stateless: the value depends on the trial number only, so a resumed study goes on
    where it stopped. Float parameters are drawn uniformly within the run's stratum."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def _rng(self, name: str, run: int) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}/{name}/{run}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def sample_independent(self, study, trial, param_name, param_distribution):
        d = param_distribution
        if isinstance(d, CategoricalDistribution):
            values = list(d.choices)
        elif isinstance(d, IntDistribution) and not d.log:
            values = list(range(d.low, d.high + 1, d.step))
        else:  # floats (and log ints): stratified uniform in 16 strata
            k = 16
            run, pos = divmod(trial.number, k)
            rng = self._rng(param_name, run)
            stratum = rng.permutation(k)[pos]
            u = (stratum + rng.random()) / k
            if getattr(d, "log", False):
                value = float(np.exp(np.log(d.low) + u * (np.log(d.high) - np.log(d.low))))
            else:
                value = d.low + u * (d.high - d.low)
            return int(round(value)) if isinstance(d, IntDistribution) else value
        run, pos = divmod(trial.number, len(values))
        return values[int(self._rng(param_name, run).permutation(len(values))[pos])]
