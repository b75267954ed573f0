"""The samplers a study can use: a registry, filled here and open to users.

A sampler is a factory registered under the name a config's ``sampler.name`` gives; it receives the study's
:class:`~nas.search.SearchConfig` and returns an Optuna sampler (seeded with ``config.seed``)::

    from nas.search import register_sampler

    @register_sampler("cmaes", "CMA-ES over the integer choices")
    def _cmaes(config):
        import optuna
        return optuna.samplers.CmaEsSampler(seed=config.seed)

A sampler that ignores pruned trials is registered with ``learns_from_pruned=False``, and a study with it prunes
nothing: Optuna's GPSampler learns from completed trials only, so a pruned spec would be proposed again and again
(each time pruned again, never learnt from); NSGA-II makes its generations of completed trials only, so a pruned
child is a trial spent for nothing.

The registered names are the config's choices (an unknown name is refused when the config is read). The samplers
see each trial's constraints (latency budget, latency model range) through ``Trial.set_constraint``. Optuna is
imported by the factories, not by this module (a config is validated without it).

Built in:

* ``tpe``: Optuna's TPE, multivariate, with the constant liar (a running trial counts as a bad one, so parallel
  workers are not sent to the same place);
* ``gp``: Optuna's Gaussian-process sampler (constrained, multi-objective; needs PyTorch: ``pip install
  'npu-nas[gp]'``);
* ``nsga2``: Optuna's NSGA-II (``sampler.population_size``);
* ``random``: independent uniform draws;
* ``balanced``: space-filling (a Latin hypercube over the choices): in every run of k trials each of a parameter's
  k values appears once, in an order drawn per parameter and run, so any number of trials covers every value of
  every parameter as evenly as it can (what a benchmark table is made with);
* ``evolution``: regularised evolution, the classic NAS baseline: the fittest of a tournament drawn from the last
  ``sampler.population_size`` completed trials, one parameter mutated (see :mod:`nas.search.samplers._evolution`);
* ``latency_gp``: hardware-aware Bayesian optimisation: the latency model gives every spec's latency before it is
  trained, so only the INT8 PSNR is modelled (a Gaussian process) and each candidate is scored at its exact latency
  (expected hypervolume improvement, or expected improvement of the log2 score); a spec over the latency budget is
  never proposed (see :mod:`nas.search.samplers._latency_gp`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from typing import Callable

from nas.errors import SearchError
from nas.search.samplers._params import optuna_distributions

__all__ = ["SAMPLERS", "SamplerEntry", "register_sampler", "make_sampler", "optuna_distributions"]


@dataclasses.dataclass(frozen=True)
class SamplerEntry:
    name: str
    factory: Callable
    summary: str
    learns_from_pruned: bool = True
    """Whether the sampler takes pruned trials into account; a study whose sampler does not prunes nothing."""


SAMPLERS: dict[str, SamplerEntry] = {}
"""Sampler name -> its entry (factory(config) -> an Optuna sampler, and a one-line summary)."""


def register_sampler(name: str, summary: str = "", *, learns_from_pruned: bool = True):
    """Register ``factory(config) -> optuna sampler`` under ``name`` (decorator). ``learns_from_pruned=False``
    for a sampler that ignores pruned trials (a study with it then prunes nothing)."""
    def add(factory):
        SAMPLERS[name] = SamplerEntry(name, factory, summary or (factory.__doc__ or "").strip().split("\n")[0],
                                      learns_from_pruned)
        return factory

    return add


def make_sampler(config):
    """The Optuna sampler ``config.sampler`` names."""
    entry = SAMPLERS.get(config.sampler.name)
    if entry is None:
        raise SearchError(f"unknown sampler '{config.sampler.name}' (registered: {', '.join(sorted(SAMPLERS))})")
    return entry.factory(config)


@register_sampler("tpe", "TPE, multivariate, constant liar for parallel workers (the default)")
def _tpe(c, **settings):
    """``settings``: other ``TPESampler`` arguments over the product's (``bench/tpe_settings.py`` compares them)."""
    import optuna

    # a per-layer space draws width_i / block_i only as deep as the net: TPE models such conditional parameters in
    # groups that occur together (group=True) instead of falling back to independent draws for every one of them
    grouped = _per_layer(c.space)
    with warnings.catch_warnings():  # (group=True is "experimental" in Optuna: a warning per study otherwise)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(**{"n_startup_trials": c.sampler.n_startup_trials, "seed": c.seed,
                                             "multivariate": True, "constant_liar": c.sampler.constant_liar,
                                             **({"group": True} if grouped else {}), **settings})


def _per_layer(space: str) -> bool:
    """Whether the space draws per-layer parameters (their number depends on the depth)."""
    from nas.space import load_space

    sp = load_space(space)
    return sp.width.per_layer or sp.blocks.per_layer


@register_sampler("gp", "Gaussian process (Optuna's GPSampler; needs PyTorch; ignores pruned trials: no pruning)",
                  learns_from_pruned=False)
def _gp(c):
    if importlib.util.find_spec("torch") is None:
        raise SearchError("sampler 'gp' needs PyTorch, which is not installed: pip install 'npu-nas[gp]' (or torch), "
                          "or choose another sampler (tpe, nsga2, random, balanced)")
    import optuna

    return optuna.samplers.GPSampler(seed=c.seed, n_startup_trials=max(1, c.sampler.n_startup_trials))


@register_sampler("nsga2", "NSGA-II (sampler.population_size; a pruned child never joins a generation: no pruning)",
                  learns_from_pruned=False)
def _nsga2(c):
    import optuna

    return optuna.samplers.NSGAIISampler(population_size=c.sampler.population_size, seed=c.seed)


@register_sampler("random", "independent uniform draws")
def _random(c):
    import optuna

    return optuna.samplers.RandomSampler(seed=c.seed)


@register_sampler("balanced", "space-filling: every value of every parameter equally often (benchmark tables)")
def _balanced(c):
    from nas.search.samplers._balanced import BalancedSampler

    return BalancedSampler(seed=c.seed)


@register_sampler("evolution", "regularised evolution (Real et al. 2019): tournaments in an ageing population of "
                  "sampler.population_size, one mutation each; the classic NAS baseline (no pruning)",
                  learns_from_pruned=False)
def _evolution(c):
    from nas.search.samplers._evolution import RegularizedEvolutionSampler

    return RegularizedEvolutionSampler(population=c.sampler.population_size,
                                       sample=max(2, c.sampler.population_size // 4), seed=c.seed)


@register_sampler("latency_gp", "hardware-aware: a Gaussian process on INT8 PSNR, each spec at its latency model's "
                  "latency, known before training (no pruning)", learns_from_pruned=False)
def _latency_gp(c):
    from nas.latency import load_latency_model
    from nas.search.samplers._latency_gp import LatencyGPSampler
    from nas.search._record import TrialRecord
    from nas.space import load_space

    model = load_latency_model(c.latency.model)

    def facts(spec) -> tuple[float, bool]:
        """The objective latency and feasibility the driver gives the spec's trial (the same record)."""
        rec = TrialRecord().predicted(spec, model.predict(spec), c.latency)
        return rec.latency_objective_ms, rec.feasible

    return LatencyGPSampler(load_space(c.space), facts, seed=c.seed,
                            n_startup_trials=max(1, c.sampler.n_startup_trials))
