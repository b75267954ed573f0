"""The search policy: which sampler proposes specs, when a running trial is pruned, when a failed trial runs again,
and when the study has enough trials. Chosen once, from the config; the samplers come from the registry in
:mod:`nas.search.samplers`.

Pruning has two rules: the scalar objective uses Optuna's :class:`~optuna.pruners.MedianPruner` through the trial;
the Pareto objective (which Optuna does not prune) uses :func:`dominated_median` over the curves of the completed
trials, which the driver hands over (it keeps them; nothing is re-read from the storage per report).
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

import optuna

from nas.evaluate import log2_score
from nas.search._config import SearchConfig
from nas.search._objective import Objective
from nas.search._record import Cause, TrialRecord
from nas.search.samplers import SAMPLERS, make_sampler, register_sampler

__all__ = ["SearchPolicy", "SAMPLERS", "register_sampler", "dominated_median"]


def dominated_median(step: int, psnr: float, latency_ms: float, completed: Iterable, n_startup: int,
                     n_warmup: int) -> bool:
    """The Pareto objective's pruning rule: stop a trial whose validation PSNR at ``step`` is below the median PSNR,
    at the same step, of the completed trials predicted at most as slow (``completed``: (latency, curve) pairs,
    a curve being (step, PSNR) pairs). Needs ``max(1, n_startup)`` such trials; never before ``n_warmup`` steps."""
    if step < n_warmup:
        return False
    values = []
    for latency, curve in completed:
        if latency > latency_ms:
            continue
        at = {int(s): float(v) for s, v in curve}
        if step in at:
            values.append(at[step])
    if len(values) < max(1, n_startup):
        return False
    return psnr < statistics.median(values)


class SearchPolicy:
    """The decisions of a study, from its config (see the module docstring)."""
    def __init__(self, config: SearchConfig):
        self.config = config
        self.objective = Objective.of(config)

    def sampler(self, trials: int = 0):
        """The study's sampler, for a study that already holds ``trials`` trials. A sampler draws from one random
        stream from its seed, so a resumed study would draw its first run's specs again (each a duplicate that
        uses up a trial): the seed moves on by the trials already there (the same history gives the same draws).
        The balanced sampler draws by trial number and keeps its seed."""
        c = self.config
        if trials and c.sampler.name != "balanced":
            c = c.model_copy(update={"seed": c.seed + trials})
        return make_sampler(c)

    @property
    def prunes(self) -> bool:
        """Whether running trials may be pruned: the config's pruner is on and the sampler learns from pruned trials
        (one that does not would propose a pruned spec again and again: see :mod:`nas.search.samplers`)."""
        return self.config.pruner.name != "none" and SAMPLERS[self.config.sampler.name].learns_from_pruned

    @property
    def pruner_name(self) -> str:
        """The pruner in effect ("none" where :attr:`prunes` is false)."""
        return self.config.pruner.name if self.prunes else "none"

    def pruner(self):
        p = self.config.pruner
        if not self.prunes or self.objective.multi:  # Optuna prunes single-objective studies only
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)

    # ------------------------------------------------------------------------------------------- decisions
    def want_more(self, finished: int, running: int, capacity: int) -> bool:
        """Whether to ask for another trial now."""
        return finished + running < self.config.n_trials and running < capacity

    def should_prune(self, trial, record: TrialRecord, step: int, psnr: float, completed) -> bool:
        """Whether the running ``trial`` should stop after reporting ``psnr`` at ``step`` (``completed``: the
        (latency, curve) pairs of the completed trials, for the Pareto rule)."""
        if not self.prunes or not math.isfinite(psnr):
            return False
        if not self.objective.multi:
            trial.report(log2_score(max(psnr, 1e-3), record.latency_objective_ms), step)
            return trial.should_prune()
        p = self.config.pruner
        return dominated_median(step, psnr, record.latency_objective_ms, completed, p.n_startup_trials,
                                p.n_warmup_steps)

    def retry(self, record: TrialRecord) -> bool:
        """Whether a trial that did not complete runs again as a new trial: an interrupted one always; a crashed
        one or one whose worker was lost while it has attempts left (``trial_retries``); an infeasible or pruned
        one never (its spec is evaluated)."""
        if record.cause is Cause.INTERRUPTED:
            return True
        if record.cause in (Cause.CRASH, Cause.WORKER_LOST):
            return record.attempt <= self.config.trial_retries
        return False
