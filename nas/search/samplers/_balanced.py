"""A space-filling sampler over discrete choices (see ``balanced`` in :mod:`nas.search.samplers`)."""

from __future__ import annotations

import hashlib

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from nas.search._record import TrialRecord

__all__ = ["BalancedSampler"]


class BalancedSampler(optuna.samplers.BaseSampler):
    """A Latin hypercube over discrete choices: the trial at place t of the design takes, for a parameter with k
    values, entry ``t mod k`` of a permutation of the k values drawn for run ``t // k`` (seeded by the sampler's
    seed, the parameter's name and the run). Every k consecutive places thus hold each value once, and parameters
    are drawn independently of each other. Float parameters are drawn uniformly within the run's stratum.

    A trial's place is its number less the trials before it that run an interrupted or crashed trial again (they
    repeat a spec already drawn, with its parameters): a study whose driver was killed draws what an uninterrupted
    one draws, and a resumed study goes on where it stopped. (Until 2026-12-07 the place was the number itself, so
    each kill shifted every later draw; a study without re-runs draws as it did.)"""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self._rerun: dict[int, bool] = {}  # trial number -> whether it runs an earlier trial again
        self._place: dict[int, int] = {}

    def _place_of(self, study, trial) -> int:
        if trial.number not in self._place:
            for t in study.get_trials(deepcopy=False):
                if t.number < trial.number and t.number not in self._rerun:
                    self._rerun[t.number] = TrialRecord.from_attrs(t.user_attrs).requeued_from is not None
            self._place[trial.number] = trial.number - sum(
                1 for n, again in self._rerun.items() if again and n < trial.number)
        return self._place[trial.number]

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
            run, pos = divmod(self._place_of(study, trial), k)
            rng = self._rng(param_name, run)
            stratum = rng.permutation(k)[pos]
            u = (stratum + rng.random()) / k
            if getattr(d, "log", False):
                value = float(np.exp(np.log(d.low) + u * (np.log(d.high) - np.log(d.low))))
            else:
                value = d.low + u * (d.high - d.low)
            return int(round(value)) if isinstance(d, IntDistribution) else value
        run, pos = divmod(self._place_of(study, trial), len(values))
        return values[int(self._rng(param_name, run).permutation(len(values))[pos])]
