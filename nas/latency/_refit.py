"""A latency model refitted from measurements of a study's own trials (the closed latency loop's refit).

Few measurements cannot fit the per-op features: below :data:`MIN_FIT` the prior model is scaled to them
(:func:`~nas.latency.scale_model`); from there the features are fitted with the prior as the starting point
(:func:`~nas.latency.fit_model`). Either way what the linear model cannot capture is corrected where it was measured
(:meth:`~nas.latency.LatencyModel.with_residuals`), so a measured spec is predicted as measured, up to
:data:`NOISE`.
"""

from __future__ import annotations

from typing import Sequence

from nas.latency._model import LatencyModel, Sample, fit_model, scale_model

__all__ = ["refit_model", "MIN_FIT", "NOISE"]

MIN_FIT = 5
"""Measurements from which the model is fitted (below: the prior, scaled)."""
NOISE = 0.02
"""Relative noise the residual correction allows a measurement (a run's own spread is about 1-3%)."""


def refit_model(prior: LatencyModel, samples: Sequence[Sample], *, board: str, input_hw: tuple[int, int],
                source: str, seed: int = 0) -> LatencyModel:
    """``prior`` refitted to ``samples`` measured on ``board`` at ``input_hw`` (see the module docstring);
    ``source`` says where the measurements come from (kept in the model's file)."""
    if len(samples) < MIN_FIT:
        model = scale_model(prior, samples, board=board, input_hw=input_hw, source=source)
    else:
        model = fit_model(samples, kind=prior.kind, board=board, input_hw=input_hw, alignment=None,
                          folds=min(5, len(samples)), baselines=False, source=source, prior=prior, seed=seed)
    return model.with_residuals(samples, noise=NOISE)
