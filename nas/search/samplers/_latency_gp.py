"""A hardware-aware sampler: the latency of a spec is known before it is trained, so only its PSNR is modelled.

Optuna's samplers treat both objectives as unknown until a trial finishes. Here the latency model predicts every
spec's (pessimistic) latency in a fraction of a millisecond, so the sampler models only the INT8 PSNR (a Gaussian
process over the space's parameters) and scores each candidate spec at its own, exact latency:

* Pareto objective: the expected improvement of the front's hypervolume (PSNR up, latency down) if the candidate
  were trained, its PSNR drawn from the process (fixed normal quantiles, so the choice is deterministic);
* score objective: the expected improvement of the best log2 score (``2*PSNR - log2(C*latency)``, the latency
  known).

A candidate over the latency budget (or, with ``outside_range: constrain``, outside the latency model's range) is
never proposed: it is infeasible before it is trained. A spec already in the study (finished or running) is never
proposed again, so parallel workers get different specs without a constant liar.

The process: inputs are the space's parameters (integers scaled to [0, 1], choices one-hot), a squared-exponential
kernel with one length scale per parameter, chosen with the noise level by maximising the marginal likelihood over
a small grid (coordinate by coordinate); the PSNRs below the lower quartile are raised to it before fitting (a
network that failed to learn says little about where the front is, and would dominate the fit). Until
``n_startup_trials`` trials have completed (the warm start included), a trial is drawn uniformly among the feasible
candidates.

Candidates: every spec of the space (:meth:`~nas.space.SearchSpace.enumerate`) when it has at most
``max_enumerated`` specs (``mai2022`` has 5,120), otherwise ``n_candidates`` specs drawn afresh per trial.
Registered as ``latency_gp`` in :mod:`nas.search.samplers`.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Any, Callable

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, IntDistribution
from optuna.trial import TrialState

from nas.errors import NasError
from nas.search.samplers._params import optuna_distributions as _optuna

__all__ = ["LatencyGPSampler"]

_LENGTH_GRID = (0.0, 0.25, 1.0, 4.0, 16.0)  # inverse squared length scales (0: the parameter is ignored)
_NOISE_GRID = (0.01, 0.05, 0.2, 0.5)  # noise variance, in units of the PSNRs' variance


@dataclasses.dataclass
class _Pool:
    """The candidates a trial chooses from: their parameters, keys, objective latencies and feasibility; their
    inputs to the process (per parameter-name list) and log2 offsets are made once, when first needed."""

    params: list[dict]
    keys: list[tuple]
    lat: np.ndarray
    ok: np.ndarray
    inputs: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=dict)
    offsets: np.ndarray | None = None


class LatencyGPSampler(optuna.samplers.BaseSampler):
    """See the module docstring. ``facts``: spec -> (the latency the study's objective uses, ms; whether the spec
    meets the study's latency constraints), one latency prediction per spec."""

    def __init__(self, space, facts: Callable[[Any], tuple[float, bool]], seed: int = 0, n_startup_trials: int = 4,
                 max_enumerated: int = 20000, n_candidates: int = 4096, n_quantiles: int = 32):
        if n_startup_trials < 1 or n_candidates < 1 or n_quantiles < 1:
            raise ValueError("n_startup_trials, n_candidates and n_quantiles must be at least 1")
        self.space = space
        self.facts = facts
        self.seed = int(seed)
        self.n_startup_trials = n_startup_trials
        self.n_candidates = n_candidates
        self._rng = np.random.default_rng(self.seed)
        self._z = np.array([NormalDist().inv_cdf((i + 0.5) / n_quantiles) for i in range(n_quantiles)])
        self._all: _Pool | None = None
        self._enumerated = space.size() <= max_enumerated
        self._dists: dict[str, BaseDistribution] = {}
        self._latency_cache: dict[str, tuple[float, bool]] = {}
        self._replayed: dict[tuple, Any] = {}  # a finished trial's parameter key -> its spec (None: not in the space)

    # -------------------------------------------------------------------------------------- optuna interface
    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        if not self._dists:
            self._candidates()
        return dict(self._dists)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        if not search_space:
            return {}
        pool = self._candidates()
        idx = np.flatnonzero(pool.ok)
        if not len(idx):  # no feasible spec at all: the trial is drawn at random (and fails its constraint)
            return {}
        taken = {self._key(t.params) for t in study.get_trials(deepcopy=False) if t.number != trial.number
                 and t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED, TrialState.FAIL)}
        free = idx[[pool.keys[i] not in taken for i in idx]]
        idx = free if len(free) else idx
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        if len(done) < self.n_startup_trials:
            return dict(pool.params[idx[int(self._rng.integers(len(idx)))]])
        pareto = len(study.directions) > 1
        obs = [self._observe(t, pareto) for t in done]
        obs = [o for o in obs if o is not None]
        if len(obs) < 2:
            return dict(pool.params[idx[int(self._rng.integers(len(idx)))]])
        names = tuple(sorted(self._dists))
        if names not in pool.inputs:
            pool.inputs[names] = self._features(pool.params, names)
        x_all, groups = pool.inputs[names]
        psnr = np.array([o[1] for o in obs])
        lat_obs = np.array([o[2] for o in obs])
        ok_obs = np.array([o[3] for o in obs])
        mean, sd = _fit_predict(self._features([o[0] for o in obs], names)[0],
                                np.maximum(psnr, np.quantile(psnr, 0.25)), x_all[idx], groups)
        lat = pool.lat[idx]
        if pareto:
            front = [(p, la) for p, la, ok in zip(psnr, lat_obs, ok_obs) if ok]
            ref_psnr = float(psnr.min())
            ref_lat = 1.05 * max(float(lat.max()), float(lat_obs.max()))
            acq = _ehvi(front, mean, sd, lat, ref_psnr, ref_lat, self._z)
        else:
            if pool.offsets is None:
                pool.offsets = np.array([_log2_offset(v) for v in pool.lat])
            offset = pool.offsets[idx]
            best = max((_log2_offset(la) + 2 * p for p, la, ok in zip(psnr, lat_obs, ok_obs) if ok), default=-math.inf)
            acq = _ei(2 * mean + offset, 2 * sd, best)
        top = np.flatnonzero(acq >= acq.max() - 1e-12 * max(1.0, abs(acq.max())))
        return dict(pool.params[idx[int(self._rng.choice(top))]])

    def sample_independent(self, study, trial, param_name, param_distribution):
        return optuna.samplers.RandomSampler(seed=int(self._rng.integers(2**31))).sample_independent(
            study, trial, param_name, param_distribution)

    # -------------------------------------------------------------------------------------------- internals
    @staticmethod
    def _key(params: dict) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in params.items()))

    def _spec_facts(self, spec) -> tuple[float, bool]:
        got = self._latency_cache.get(spec.hash)
        if got is None:
            lat, ok = self.facts(spec)
            got = self._latency_cache[spec.hash] = (float(lat), bool(ok))
        return got

    def _candidates(self) -> _Pool:
        """The specs the next trial chooses from (every spec of a listable space, made once)."""
        if self._all is not None:
            return self._all
        if self._enumerated:
            made = self.space.enumerate()
        else:
            made = [(self.space.params_of(spec), spec)
                    for spec in (self.space.sample(self._rng) for _ in range(self.n_candidates))]
        for params, _ in made:
            if not self._dists.keys() >= params.keys():
                self._dists.update(_distributions(self.space, params))
        facts = [self._spec_facts(spec) for _, spec in made]
        pool = _Pool([p for p, _ in made], [self._key(p) for p, _ in made], np.array([f[0] for f in facts]),
                     np.array([f[1] for f in facts], dtype=bool))
        if self._enumerated:
            self._all = pool
        return pool

    def _observe(self, trial, pareto: bool):
        """(params, INT8 PSNR, objective latency, feasible) of a completed trial, or None when its parameters are
        not a spec of the space."""
        key = self._key(trial.params)
        if key not in self._replayed:
            try:
                self._replayed[key], drawn = self.space.replay(trial.params)
                self._dists.update(_optuna(drawn))
            except (NasError, KeyError):  # not a spec of this space
                self._replayed[key] = None
        spec = self._replayed[key]
        if spec is None:
            return None
        lat, ok = self._spec_facts(spec)
        if pareto:
            return trial.params, float(trial.values[0]), float(trial.values[1]), ok
        return trial.params, (float(trial.values[0]) - _log2_offset(lat)) / 2.0, lat, ok

    def _features(self, rows: list[dict], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, the parameter of each column): integers scaled to [0, 1]; choices one-hot (scaled by 1/sqrt(2),
        so two different choices are as far apart as the two ends of an integer range); a parameter a row lacks is
        all zeros."""
        cols = []
        for name in names:
            d = self._dists[name]
            if isinstance(d, IntDistribution):
                span = max(1, d.high - d.low)
                cols.append(np.array([[(r[name] - d.low) / span if name in r else 0.0] for r in rows]))
            else:
                choices = [str(c) for c in d.choices]
                m = np.zeros((len(rows), len(choices)))
                for i, r in enumerate(rows):
                    if name in r:
                        m[i, choices.index(str(r[name]))] = 1 / math.sqrt(2)
                cols.append(m)
        groups = np.concatenate([np.full(c.shape[1], i) for i, c in enumerate(cols)])
        return np.concatenate(cols, axis=1), groups


def _distributions(space, params: dict) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each parameter ``space.suggest`` draws for ``params``."""
    return _optuna(space.replay(params)[1])


def _log2_offset(latency_ms: float) -> float:
    """``log2_score(psnr, latency) - 2*psnr``."""
    from nas.evaluate import log2_score
    return log2_score(30.0, latency_ms) - 60.0


def _fit_predict(x: np.ndarray, y: np.ndarray, x_new: np.ndarray,
                 groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation at ``x_new`` of a Gaussian process fitted to (x, y); ``groups``: the
    parameter of each column of ``x`` (one length scale each; default: one per column)."""
    groups = np.arange(x.shape[1]) if groups is None else np.asarray(groups)
    mu, scale = float(y.mean()), float(y.std()) or 1.0
    yn = (y - mu) / scale
    n_dim = int(groups.max()) + 1
    inv = np.ones(n_dim)
    noise = _NOISE_GRID[1]
    sq = (x[:, None, :] - x[None, :, :]) ** 2
    best = _marginal(sq, yn, inv[groups], noise)
    for _ in range(2):  # coordinate search over each dimension's length scale, then the noise
        for j in range(n_dim + 1):
            for v in (_NOISE_GRID if j == n_dim else _LENGTH_GRID):
                inv2, noise2 = inv.copy(), noise
                if j == n_dim:
                    noise2 = v
                else:
                    inv2[j] = v
                got = _marginal(sq, yn, inv2[groups], noise2)
                if got[0] > best[0] + 1e-9:
                    best, inv, noise = got, inv2, noise2
    _, chol, alpha = best
    k_new = np.exp(-0.5 * (((x_new[:, None, :] - x[None, :, :]) ** 2) * inv[groups]).sum(-1))
    v = np.linalg.solve(chol, k_new.T)
    var = np.maximum(1.0 - (v * v).sum(0), 1e-9)
    return mu + scale * (k_new @ alpha), scale * np.sqrt(var)


def _marginal(sq: np.ndarray, yn: np.ndarray, inv: np.ndarray, noise: float):
    """(log marginal likelihood, Cholesky factor, weights) of a fit; -inf where the kernel is not positive
    definite."""
    k = np.exp(-0.5 * (sq * inv).sum(-1)) + noise * np.eye(len(yn))
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return -math.inf, None, None
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, yn))
    return float(-0.5 * yn @ alpha - np.log(np.diag(chol)).sum()), chol, alpha


def _ehvi(front, mean, sd, lat, ref_psnr, ref_lat, z) -> np.ndarray:
    """Expected hypervolume improvement (PSNR up, latency down, reference (``ref_psnr``, ``ref_lat``)) of each
    candidate at its known latency ``lat``, its PSNR ~ N(mean, sd) taken at the normal quantiles ``z``."""
    pts = sorted((la, p) for p, la in front if la < ref_lat)
    edges = sorted({la for la, _ in pts} | {ref_lat})
    heights, best, j = [], ref_psnr, 0  # the front's PSNR on [edges[s], edges[s+1])
    for e in edges[:-1]:
        while j < len(pts) and pts[j][0] <= e:
            best = max(best, pts[j][1])
            j += 1
        heights.append(best)
    draws = mean[:, None] + sd[:, None] * z[None, :]
    start = np.minimum(lat, ref_lat)
    total = np.clip(edges[0] - start, 0, None) * np.maximum(draws - ref_psnr, 0).mean(1)
    for s, h in enumerate(heights):
        width = np.clip(edges[s + 1] - np.maximum(edges[s], start), 0, None)
        if width.any():
            total += width * np.maximum(draws - h, 0).mean(1)
    return total


def _ei(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of N(mean, sd) (the mean itself where there is no best yet)."""
    if not math.isfinite(best):
        return mean
    u = (mean - best) / sd
    cdf = 0.5 * (1 + np.vectorize(math.erf)(u / math.sqrt(2)))
    pdf = np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    return sd * (u * cdf + pdf)
