"""A space's parameters as Optuna distributions."""

from __future__ import annotations

__all__ = ["optuna_distributions"]


def optuna_distributions(drawn) -> dict:
    """The Optuna distribution of each parameter a space draws (``SearchSpace.replay``'s second value)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from nas.space import IntParam

    return {name: IntDistribution(p.low, p.high, step=p.step) if isinstance(p, IntParam)
            else CategoricalDistribution(list(p.choices)) for name, p in drawn.items()}
