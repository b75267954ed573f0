"""Latency models: predict an ArchSpec's latency on a board from its deployed graph, without building a model.

:class:`LatencyModel` is the one extension point. A model is linear in per-op feature rows (see
:mod:`nas.latency._features`): ``latency = overhead + sum over ops of row(op) . coef``, so every prediction has a
per-op breakdown that sums to its total. Subclasses choose the rows:

* :class:`OpFeatureModel` (``kind="ops"``): padded MACs, bytes moved per op type, op count; each op's cost is
  bounded from below by the board's peak throughput and memory bandwidth where those are known;
* :class:`MacsModel` and :class:`ParamsModel`: the usual proxies (MACs only, parameters only), kept as baselines.

Fitting is non-negative least squares on relative errors with a small ridge penalty, its strength chosen by
leave-one-out inside the training set. The uncertainty is the leave-one-out relative error, widened for a graph
whose features lie outside the range the model was fitted on. A model is saved as a versioned JSON file.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from nas._builtin import builtin_dir
from nas._files import write_json
from nas.errors import LatencyError
from nas.latency._features import FEATURES, op_rows, peak_floor_ms
from nas.space import ArchSpec, Op, deploy_ops

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OpLatency",
    "LatencyPrediction",
    "ResidualGP",
    "Sample",
    "Accuracy",
    "LatencyModel",
    "OpFeatureModel",
    "MacsModel",
    "ParamsModel",
    "fit_model",
    "scale_model",
    "cross_validate",
    "load_latency_model",
]

FORMAT = "npu-nas/latency-model"
FORMAT_VERSION = 1
OVERHEAD = "(overhead)"  # the per-inference constant's row in a breakdown
_LAMBDAS = (0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)


# ------------------------------------------------------------------------------------------------- value objects
@dataclasses.dataclass(frozen=True)
class OpLatency:
    """One op's share of a prediction; ``floor_ms`` is the least it can take on the board (0 if unknown)."""

    name: str
    type: str
    ms: float
    floor_ms: float = 0.0

    @property
    def at_floor(self) -> bool:
        return self.floor_ms > 0 and self.ms <= self.floor_ms * (1 + 1e-9)


@dataclasses.dataclass(frozen=True)
class LatencyPrediction:
    """A predicted latency: ``mean_ms`` with ``stddev_ms`` and the per-op breakdown that sums to ``mean_ms``.

    ``in_range`` is False when the graph's features lie outside the range the model was fitted on (``outside``
    names them); the stddev is then widened.
    """

    mean_ms: float
    stddev_ms: float
    per_op: tuple[OpLatency, ...] = ()
    in_range: bool = True
    outside: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("mean_ms", "stddev_ms"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise LatencyError(f"prediction: {name} must be a finite non-negative number, got {v!r}")
        if self.per_op and not math.isclose(sum(o.ms for o in self.per_op), self.mean_ms, rel_tol=1e-6, abs_tol=1e-9):
            raise LatencyError("prediction: the per-op breakdown does not sum to the total")

    def pessimistic(self, k: float = 1.0) -> float:
        """The mean plus ``k`` standard deviations: what a search should optimise to stay off the model's blind spots."""
        return self.mean_ms + k * self.stddev_ms

    def to_dict(self) -> dict[str, Any]:
        return {"mean_ms": self.mean_ms, "stddev_ms": self.stddev_ms, "in_range": self.in_range,
                "outside": list(self.outside),
                "per_op": [{"name": o.name, "type": o.type, "ms": o.ms, "floor_ms": o.floor_ms} for o in self.per_op]}


@dataclasses.dataclass(frozen=True)
class Sample:
    """One whole-model measurement to fit on: the deployed graph's ops and its measured latency."""

    name: str
    ops: tuple[Op, ...]
    ms: float

    def __post_init__(self) -> None:
        if not self.ops:
            raise LatencyError(f"sample {self.name}: no ops")
        if not isinstance(self.ms, (int, float)) or not math.isfinite(self.ms) or self.ms <= 0:
            raise LatencyError(f"sample {self.name}: latency must be a positive number, got {self.ms!r}")


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """Cross-validated accuracy: every sample predicted by a model fitted without it (``folds`` = n: leave-one-out)."""

    n: int
    folds: int
    mape: float
    spearman: float
    within_10: float  # share of predictions within +-10% of the measurement
    max_ape: float
    predicted: tuple[float, ...] = ()

    @classmethod
    def of(cls, measured: Sequence[float], predicted: Sequence[float], folds: int) -> "Accuracy":
        from scipy.stats import spearmanr

        y, p = np.asarray(measured, float), np.asarray(predicted, float)
        ape = np.abs(p - y) / y
        rho = float(spearmanr(y, p).statistic) if len(y) > 2 and np.ptp(p) > 0 else float("nan")
        return cls(len(y), folds, float(ape.mean()), rho, float((ape <= 0.10).mean()), float(ape.max()),
                   tuple(float(v) for v in p))

    def to_dict(self, with_predictions: bool = False) -> dict[str, Any]:
        d = {"n": self.n, "folds": self.folds, "mape": self.mape, "spearman": self.spearman,
             "within_10": self.within_10, "max_ape": self.max_ape}
        if with_predictions:
            d["predicted"] = list(self.predicted)
        return d


@dataclasses.dataclass(frozen=True)
class ResidualGP:
    """A Gaussian process on the log ratio measured / predicted of a model's own measurements: the correction a
    closed loop adds where it has measured (exact up to the measurement noise at a measured graph, fading to none
    far from every one, in the model's features on a log scale).

    ``points``: each measured graph's log features; ``alpha`` = (K + noise^2 I)^-1 r and ``kinv`` = (K + noise^2
    I)^-1 for the kernel ``amp^2 exp(-d^2 / 2 length^2)``; ``eps``: the per-feature offset inside the log."""

    length: float
    amp: float
    noise: float
    eps: tuple[float, ...]
    points: tuple[tuple[float, ...], ...]
    alpha: tuple[float, ...]
    kinv: tuple[tuple[float, ...], ...]
    loo_rms: float = 0.0  # leave-one-out RMS of the log ratio after the correction (what it achieves unseen)

    # length scales tried (log features): local only. Longer ones, which leave-one-out picks from ten measurements,
    # carried a few neighbours' errors to unseen graphs (bench/latency_boards.py measured it on the host boards): the
    # correction is for the measured graphs and their near neighbours
    LENGTHS: ClassVar[tuple[float, ...]] = (0.1, 0.2, 0.5)

    def __post_init__(self) -> None:
        n = len(self.points)
        if not (self.length > 0 and self.amp >= 0 and self.noise > 0) or len(self.alpha) != n or len(self.kinv) != n:
            raise LatencyError("residual correction: malformed (length, amp, noise, points, alpha, kinv)")

    def embed(self, sums: Sequence[float]) -> np.ndarray:
        return np.log(np.asarray(sums, float) + np.asarray(self.eps))

    def correct(self, sums: Sequence[float]) -> tuple[float, float]:
        """(mean, variance) of the log ratio at a graph whose feature sums are ``sums``."""
        if not self.points:
            return 0.0, self.amp ** 2
        d2 = ((np.asarray(self.points) - self.embed(sums)) ** 2).sum(axis=1)
        k = self.amp ** 2 * np.exp(-d2 / (2 * self.length ** 2))
        mean = float(k @ np.asarray(self.alpha))
        var = float(max(self.amp ** 2 - k @ np.asarray(self.kinv) @ k, 0.0))
        return mean, var

    @classmethod
    def fit(cls, sums: np.ndarray, log_ratio: np.ndarray, amp: float, noise: float) -> "ResidualGP":
        """The correction for graphs with feature sums ``sums`` (one row each) whose log ratio measured/predicted
        is ``log_ratio``; the length scale is chosen by exact leave-one-out error."""
        eps = tuple(float(v) for v in 1e-3 * np.maximum(sums.max(axis=0), 1e-12))
        Z = np.log(sums + np.asarray(eps))
        d2 = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(axis=2)
        best = None
        for length in cls.LENGTHS:
            K = amp ** 2 * np.exp(-d2 / (2 * length ** 2)) + noise ** 2 * np.eye(len(Z))
            kinv = np.linalg.inv(K)
            alpha = kinv @ log_ratio
            loo = alpha / np.diag(kinv)  # r_i minus its prediction from the others (exact for a GP)
            rms = float(np.sqrt(np.mean(loo ** 2)))
            if best is None or rms < best[0] - 1e-12:
                best = (rms, length, alpha, kinv)
        rms, length, alpha, kinv = best
        return cls(length, float(amp), float(noise), eps, tuple(tuple(map(float, z)) for z in Z),
                   tuple(map(float, alpha)), tuple(tuple(map(float, r)) for r in kinv), rms)

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "amp": self.amp, "noise": self.noise, "eps": list(self.eps),
                "points": [list(p) for p in self.points], "alpha": list(self.alpha),
                "kinv": [list(r) for r in self.kinv], "loo_rms": self.loo_rms}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResidualGP":
        return cls(float(d["length"]), float(d["amp"]), float(d["noise"]), tuple(d["eps"]),
                   tuple(tuple(p) for p in d["points"]), tuple(d["alpha"]), tuple(tuple(r) for r in d["kinv"]),
                   float(d.get("loo_rms", 0.0)))


# ------------------------------------------------------------------------------------------------------ models
class LatencyModel(abc.ABC):
    """Predicts a deployed graph's latency on one board at one input size.

    Contract for subclasses: set :attr:`kind` and :attr:`features` and implement :meth:`rows` (one feature row per
    op, in ``features`` order). Fitting, prediction, the uncertainty and the JSON format are shared.
    """

    kind: ClassVar[str]
    features: ClassVar[tuple[str, ...]]

    def __init__(self, *, board: str, input_hw: tuple[int, int], coef: Mapping[str, float], overhead_ms: float = 0.0,
                 alignment: int = 1, peak_tops: float | None = None, bandwidth_gbs: float | None = None,
                 sigma_rel: float = 0.1, feature_range: Mapping[str, Sequence[float]] | None = None,
                 meta: Mapping[str, Any] | None = None, residuals: ResidualGP | None = None):
        if not board:
            raise LatencyError("a latency model needs the board it was calibrated on")
        h, w = (int(v) for v in input_hw)
        if h < 1 or w < 1:
            raise LatencyError(f"input size {h}x{w} must be positive")
        unknown = sorted(set(coef) - set(self.features))
        if unknown:
            raise LatencyError(f"{self.kind} latency model: unknown feature(s) {', '.join(unknown)}")
        values = [float(coef.get(f, 0.0)) for f in self.features] + [float(overhead_ms), float(sigma_rel)]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise LatencyError(f"{self.kind} latency model: coefficients, overhead and sigma must be finite and >= 0")
        if alignment < 1:
            raise LatencyError(f"channel alignment must be positive, got {alignment}")
        self.board, self.input_hw = board, (h, w)
        self.coef = {f: float(coef.get(f, 0.0)) for f in self.features}
        self._coef = [self.coef[f] for f in self.features]  # plain floats: numpy scalars are slow one op at a time
        self.overhead_ms, self.alignment, self.sigma_rel = float(overhead_ms), int(alignment), float(sigma_rel)
        self.peak_tops, self.bandwidth_gbs = peak_tops, bandwidth_gbs
        rng = dict(feature_range or {})
        self.feature_range = {f: (float(rng[f][0]), float(rng[f][1])) for f in self.features if f in rng}
        self.meta = dict(meta or {})
        if residuals is not None and len(residuals.eps) != len(self.features):
            raise LatencyError(f"{self.kind} latency model: its residual correction has {len(residuals.eps)} "
                               f"features, not {len(self.features)}")
        self.residuals = residuals

    # -- the extension point
    @abc.abstractmethod
    def rows(self, ops: Sequence[Op]) -> list[list[float]]:
        """One row of :attr:`features` per op."""

    def floor_ms(self, op: Op) -> float:
        return 0.0

    # -- prediction
    def predict(self, spec: ArchSpec, input_hw: tuple[int, int] | None = None) -> LatencyPrediction:
        """Predict ``spec``'s latency at the model's input size (another size is refused: calibrate for it)."""
        if input_hw is not None and tuple(int(v) for v in input_hw) != self.input_hw:
            raise LatencyError(
                f"this latency model was calibrated at {self.input_hw[0]}x{self.input_hw[1]} input on {self.board}; "
                f"predicting at {input_hw[0]}x{input_hw[1]} needs a model calibrated at that size")
        return self.predict_ops(deploy_ops(spec, *self.input_hw))

    def predict_ops(self, ops: Sequence[Op]) -> LatencyPrediction:
        rows = self.rows(ops)
        per_op, total = [], self.overhead_ms
        for op, row in zip(ops, rows):
            ms = sum(r * c for r, c in zip(row, self._coef))
            floor = self.floor_ms(op)
            ms = max(ms, floor)
            per_op.append(OpLatency(op.name, op.type, ms, floor))
            total += ms
        if self.overhead_ms:
            per_op.append(OpLatency(OVERHEAD, "overhead", self.overhead_ms))
        sums = [sum(col) for col in zip(*rows)] if self.feature_range or self.residuals is not None else None
        outside, widen = self._extrapolation(sums)
        rel = self.sigma_rel
        if self.residuals is not None:  # measured near here: corrected, and surer (every op by the same factor)
            mean, var = self.residuals.correct(sums)
            factor = math.exp(mean)
            per_op = [dataclasses.replace(o, ms=o.ms * factor) for o in per_op]
            total *= factor
            rel = min(math.sqrt(var + self.residuals.noise ** 2), max(self.residuals.amp, self.residuals.noise))
        return LatencyPrediction(float(total), float(total * rel * widen), tuple(per_op), not outside, outside)

    def with_residuals(self, samples: Sequence[Sample], noise: float = 0.03) -> "LatencyModel":
        """A copy corrected by a :class:`ResidualGP` fitted to this model's errors on ``samples`` (measurements of
        the same board at the same input size): measured graphs are then predicted to within about ``noise``
        (relative), graphs near them better than before, far ones as before. The prior amplitude is the model's
        own relative uncertainty."""
        if not samples:
            return self
        base = self.without_residuals()
        sums = np.array([base.feature_sums(s.ops) for s in samples], float)
        pred = np.array([base.predict_ops(s.ops).mean_ms for s in samples])
        r = np.log(np.array([s.ms for s in samples]) / pred)
        gp = ResidualGP.fit(sums, r, amp=max(base.sigma_rel, noise), noise=noise)
        return type(self)(**{**base._init_args(), "residuals": gp})

    def without_residuals(self) -> "LatencyModel":
        return self if self.residuals is None else type(self)(**{**self._init_args(), "residuals": None})

    def _init_args(self) -> dict[str, Any]:
        return dict(board=self.board, input_hw=self.input_hw, coef=self.coef, overhead_ms=self.overhead_ms,
                    alignment=self.alignment, peak_tops=self.peak_tops, bandwidth_gbs=self.bandwidth_gbs,
                    sigma_rel=self.sigma_rel, feature_range=self.feature_range, meta=self.meta,
                    residuals=self.residuals)

    def feature_sums(self, ops: Sequence[Op]) -> list[float]:
        """A graph's features: the sum of its ops' rows (what the coefficients multiply)."""
        return [sum(col) for col in zip(*self.rows(ops))]

    def _extrapolation(self, sums: list[float] | None) -> tuple[tuple[str, ...], float]:
        """Features (``sums``: the graph's feature sums) outside the fitted range and the factor that widens the
        stddev (1 + log-distance outside)."""
        if not self.feature_range:
            return (), 1.0
        outside, widen = [], 1.0
        for f, x in zip(self.features, sums):
            if f not in self.feature_range:
                continue
            lo, hi = self.feature_range[f]
            eps = 1e-3 * max(hi, 1e-9)
            if x > hi * (1 + 1e-6) + 1e-12:
                outside.append(f)
                widen += 1.0 if hi <= 0 else math.log((x + eps) / (hi + eps))
            elif x < lo * (1 - 1e-6) - 1e-12:
                outside.append(f)
                widen += math.log((lo + eps) / (x + eps))
        return tuple(outside), widen

    # -- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "kind": self.kind, "board": self.board,
            "input_hw": list(self.input_hw), "alignment": self.alignment, "peak_tops": self.peak_tops,
            "bandwidth_gbs": self.bandwidth_gbs, "coef_ms": dict(self.coef), "overhead_ms": self.overhead_ms,
            "sigma_rel": self.sigma_rel, "feature_range": {f: list(v) for f, v in self.feature_range.items()},
            "meta": self.meta, **({"residuals": self.residuals.to_dict()} if self.residuals is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix != ".json":
            raise LatencyError(f"a latency model is saved as .json, not {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, self.to_dict())
        return path

    @property
    def accuracy(self) -> Accuracy | None:
        acc = self.meta.get("accuracy")
        return None if not acc else Accuracy(**{k: acc[k] for k in ("n", "folds", "mape", "spearman", "within_10",
                                                                    "max_ape")})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(board={self.board!r}, input_hw={self.input_hw}, n={self.meta.get('n')})"


class OpFeatureModel(LatencyModel):
    """Per-op features (padded MACs, bytes by op type, op count), each op bounded below by the board's physics."""

    kind = "ops"
    features = FEATURES

    def rows(self, ops: Sequence[Op]) -> list[list[float]]:
        return op_rows(ops, self.alignment)

    def floor_ms(self, op: Op) -> float:
        return peak_floor_ms(op, self.peak_tops, self.bandwidth_gbs)


class MacsModel(LatencyModel):
    """Baseline: latency linear in MACs (what a FLOPs proxy assumes)."""

    kind = "macs"
    features = ("gmac",)

    def rows(self, ops: Sequence[Op]) -> list[list[float]]:
        return [[op.macs / 1e9] for op in ops]


class ParamsModel(LatencyModel):
    """Baseline: latency linear in the number of parameters."""

    kind = "params"
    features = ("kparams",)

    def rows(self, ops: Sequence[Op]) -> list[list[float]]:
        return [[(op.params + op.frozen_params) / 1e3] for op in ops]


_KINDS: dict[str, type[LatencyModel]] = {m.kind: m for m in (OpFeatureModel, MacsModel, ParamsModel)}


# ----------------------------------------------------------------------------------------------------- fitting
def _design(cls: type[LatencyModel], samples: Sequence[Sample], alignment: int) -> np.ndarray:
    probe = cls(board="fit", input_hw=(1, 1), coef={}, alignment=alignment)
    X = np.array([probe.feature_sums(s.ops) for s in samples], float)
    return np.hstack([X, np.ones((len(samples), 1))])  # last column: the per-inference overhead


def _solve(X: np.ndarray, y: np.ndarray, lam: float, prior: np.ndarray | None = None) -> np.ndarray:
    """Non-negative coefficients minimising the squared relative error plus ``lam`` x the scaled ridge penalty.

    With ``prior`` (coefficients of another board's model, in the same design), the penalty pulls toward the
    prior scaled to these measurements (``_prior_scale``) instead of toward zero: a few measurements then adjust
    a known cost structure rather than learn one."""
    from scipy.optimize import nnls

    scale = np.abs(X).max(axis=0)
    scale[scale == 0] = 1.0
    A = (X / scale) / y[:, None]
    b = np.ones(len(y))
    if lam > 0:
        A = np.vstack([A, math.sqrt(lam) * np.eye(X.shape[1])])
        centre = np.zeros(X.shape[1]) if prior is None else _prior_scale(X, y, prior) * prior * scale
        b = np.concatenate([b, math.sqrt(lam) * centre])
    phi, _ = nnls(A, b, maxiter=50 * X.shape[1])
    return phi / scale


def _prior_scale(X: np.ndarray, y: np.ndarray, prior: np.ndarray) -> float:
    """The factor s minimising the squared relative error of ``s x prior`` on these measurements (how much faster
    or slower this board is, everything else equal)."""
    r = (X @ prior) / y
    return float(r.sum() / max((r * r).sum(), 1e-300))


_PRIOR_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e6)  # 1e6: the scaled prior itself


def _loo(X: np.ndarray, y: np.ndarray, lam: float, prior: np.ndarray | None = None) -> np.ndarray:
    pred = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        pred[i] = X[i] @ _solve(X[keep], y[keep], lam, prior)
    return pred


def _fit_arrays(X: np.ndarray, y: np.ndarray, prior: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Coefficients, the chosen ridge strength and the leave-one-out relative RMS error at that strength."""
    best = None
    for lam in (_LAMBDAS if prior is None else _PRIOR_LAMBDAS):
        pred = _loo(X, y, lam, prior)
        mape = float(np.mean(np.abs(pred - y) / y))
        if best is None or mape < best[0] - 1e-12:
            best = (mape, lam, pred)
    _, lam, pred = best
    sigma = float(np.sqrt(np.mean(((pred - y) / y) ** 2)))
    return _solve(X, y, lam, prior), lam, sigma


def _check_samples(samples: Sequence[Sample], minimum: int) -> None:
    if len(samples) < minimum:
        raise LatencyError(f"fitting a latency model needs at least {minimum} measurements, got {len(samples)}")
    names = [s.name for s in samples]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LatencyError(f"duplicate measurement name(s): {', '.join(dup[:5])}")


ALIGNMENTS = (1, 4, 8, 16, 32)


def _prior_vector(prior: "LatencyModel") -> np.ndarray:
    return np.array([prior.coef[f] for f in prior.features] + [prior.overhead_ms], float)


def _fit_auto(cls: type[LatencyModel], samples: Sequence[Sample], alignment: int | None,
              prior: "LatencyModel | None" = None) -> tuple[np.ndarray, float, float, int, np.ndarray, bool]:
    """Fit with a given channel alignment, or choose it (by leave-one-out error on ``samples`` alone) when None.

    With a ``prior`` model every alignment is fitted twice, pulled toward the scaled prior and toward zero, and the
    leave-one-out error picks among all of them: a prior whose cost structure the measurements contradict is not
    used (the last value says whether it was)."""
    y = np.array([s.ms for s in samples])
    best = None
    for a in ([alignment] if alignment else (ALIGNMENTS if cls.kind == "ops" else (1,))):
        X = _design(cls, samples, a)
        for centre in ((None,) if prior is None else (_prior_vector(prior), None)):
            theta, lam, sigma = _fit_arrays(X, y, centre)
            if best is None or sigma < best[2] - 1e-12:
                best = (theta, lam, sigma, a, X, centre is not None)
    return best


def fit_model(samples: Sequence[Sample], *, kind: str = "ops", board: str, input_hw: tuple[int, int],
              alignment: int | None = 1, peak_tops: float | None = None, bandwidth_gbs: float | None = None,
              folds: int | None = None, baselines: bool = True, source: str = "", seed: int = 0,
              prior: "LatencyModel | None" = None) -> LatencyModel:
    """Fit a ``kind`` model to whole-model measurements and record its cross-validated accuracy in ``meta``.

    ``alignment``: the board's channel alignment, or None to choose it from the measurements (by leave-one-out
    error, inside every cross-validation fold as well). ``folds``: k of the k-fold cross-validation (default:
    leave-one-out up to 20 samples, else 5). With ``baselines`` the MACs-only and parameters-only fits are
    cross-validated on the same folds beside it.

    ``prior``: a model of another board (same kind). At each alignment tried the fit is made twice: pulled toward
    the prior's cost structure scaled to these measurements (moving away from it only as far as they support; the
    pull's strength is chosen by leave-one-out, up to the scaled prior itself) and without the prior; the
    leave-one-out error picks one (``meta["prior"]["used"]``), so a prior the measurements contradict is left out:
    few-shot calibration of a new board from a handful of measurements (4 at least).
    """
    if kind not in _KINDS:
        raise LatencyError(f"unknown latency model kind '{kind}' (known: {', '.join(_KINDS)})")
    if prior is not None and prior.kind != kind:
        raise LatencyError(f"a {kind} latency model cannot start from a {prior.kind} prior ({prior.board})")
    _check_samples(samples, 4)
    cls = _KINDS[kind]
    requested = alignment if kind == "ops" else 1
    theta, lam, sigma, alignment, X, used = _fit_auto(cls, samples, requested, prior)
    y = np.array([s.ms for s in samples])
    k = folds or (len(samples) if len(samples) <= 20 else 5)
    acc = cross_validate(samples, kind=kind, alignment=requested, folds=k, seed=seed, prior=prior)
    hi = X[:, :-1].max(axis=0)
    lo = X[:, :-1].min(axis=0)
    if prior is not None and prior.input_hw == tuple(input_hw):  # the prior's graphs count as fitted
        for i, f in enumerate(cls.features):
            if f in prior.feature_range:
                lo[i] = min(lo[i], prior.feature_range[f][0])
                hi[i] = max(hi[i], prior.feature_range[f][1])
    meta: dict[str, Any] = {
        "created": datetime.date.today().isoformat(), "source": source, "n": len(samples), "ridge": lam,
        "alignment_chosen": requested is None,
        "accuracy": acc.to_dict(),
        "samples": [{"name": s.name, "ms": s.ms, "cv_predicted_ms": p} for s, p in zip(samples, acc.predicted)],
    }
    if prior is not None:
        meta["prior"] = {"board": prior.board, "scale": _prior_scale(X, y, _prior_vector(prior)), "used": used}
    if baselines:
        meta["baselines"] = {b: cross_validate(samples, kind=b, folds=k, seed=seed).to_dict()
                             for b in _KINDS if b != kind}
    # the model's own uncertainty: the cross-validated error where it is larger than the in-sample choice's
    sigma = max(sigma, math.sqrt(np.mean(((np.array(acc.predicted) - y) / y) ** 2)))
    return cls(board=board, input_hw=input_hw, coef=dict(zip(cls.features, theta[:-1])), overhead_ms=theta[-1],
               alignment=alignment, peak_tops=peak_tops, bandwidth_gbs=bandwidth_gbs, sigma_rel=sigma,
               feature_range={f: (lo[i], hi[i]) for i, f in enumerate(cls.features)}, meta=meta)


def scale_model(prior: LatencyModel, samples: Sequence[Sample], *, board: str, input_hw: tuple[int, int],
                source: str = "") -> LatencyModel:
    """``prior``'s cost structure times one factor fitted to ``samples`` (how much faster or slower this board is,
    everything else equal): what a board has from 1 to 4 measurements, fewer than :func:`fit_model` needs.

    Its uncertainty is the larger of the prior's and the relative RMS error on ``samples``; the prior's fitted
    range is kept when it was fitted at the same input size, and its peak and bandwidth floors (another board's
    physics) are not."""
    if not samples:
        raise LatencyError("scaling a latency model needs at least one measurement")
    _check_samples(samples, 1)
    cls = type(prior)
    X = _design(cls, samples, prior.alignment)
    y = np.array([s.ms for s in samples])
    scale = _prior_scale(X, y, _prior_vector(prior))
    theta = scale * _prior_vector(prior)
    rms = float(np.sqrt(np.mean(((X @ theta - y) / y) ** 2)))
    same = prior.input_hw == tuple(int(v) for v in input_hw)
    meta = {"created": datetime.date.today().isoformat(), "source": source, "n": len(samples),
            "prior": {"board": prior.board, "scale": scale, "used": True, "scaled_only": True},
            "samples": [{"name": s.name, "ms": s.ms, "predicted_ms": float(p)} for s, p in zip(samples, X @ theta)]}
    return cls(board=board, input_hw=input_hw, coef=dict(zip(cls.features, theta[:-1])), overhead_ms=theta[-1],
               alignment=prior.alignment, sigma_rel=max(prior.sigma_rel, rms),
               feature_range=prior.feature_range if same else None, meta=meta)


def cross_validate(samples: Sequence[Sample], *, kind: str = "ops", alignment: int | None = 1,
                   folds: int | None = None, seed: int = 0, prior: "LatencyModel | None" = None) -> Accuracy:
    """k-fold (``folds`` = n: leave-one-out) accuracy of fitting a ``kind`` model (from ``prior``, see
    :func:`fit_model`); the ridge strength (and the alignment when None) are chosen inside each fold from its
    training part only."""
    if kind not in _KINDS:
        raise LatencyError(f"unknown latency model kind '{kind}' (known: {', '.join(_KINDS)})")
    _check_samples(samples, 5)
    n = len(samples)
    k = min(folds or n, n)
    if k < 2:
        raise LatencyError(f"cross-validation needs at least 2 folds, got {k}")
    cls = _KINDS[kind]
    y = np.array([s.ms for s in samples])
    order = np.random.default_rng(seed).permutation(n) if k < n else np.arange(n)
    fold = np.empty(n, int)
    fold[order] = np.arange(n) % k
    pred = np.empty(n)
    for f in range(k):
        test = np.flatnonzero(fold == f)
        train = [samples[i] for i in np.flatnonzero(fold != f)]
        theta, _, _, a, _, _ = _fit_auto(cls, train, alignment if kind == "ops" else 1, prior)
        pred[test] = _design(cls, [samples[i] for i in test], a) @ theta
    return Accuracy.of(y, pred, k)


# ----------------------------------------------------------------------------------------------------- loading
def _model_from_dict(data: Any, where: str) -> LatencyModel:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LatencyError(f"{where} is not a latency model file (expected \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise LatencyError(f"{where} is a version {version!r} latency model; this nas reads version {FORMAT_VERSION} "
                           f"(recalibrate it with `nas latency calibrate`)")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise LatencyError(f"{where}: unknown kind {kind!r} (known: {', '.join(_KINDS)})")
    try:
        hw = data["input_hw"]
        if not (isinstance(hw, list) and len(hw) == 2 and all(_is_num(v) and v >= 1 for v in hw)):
            raise LatencyError(f"{where}: input_hw must be [height, width], got {hw!r}")
        _check_numbers(data, where)
        return _KINDS[kind](board=data["board"], input_hw=tuple(hw), coef=data["coef_ms"],
                            overhead_ms=data.get("overhead_ms", 0.0), alignment=data.get("alignment", 1),
                            peak_tops=data.get("peak_tops"), bandwidth_gbs=data.get("bandwidth_gbs"),
                            sigma_rel=data.get("sigma_rel", 0.1), feature_range=data.get("feature_range"),
                            meta=data.get("meta"),
                            residuals=ResidualGP.from_dict(data["residuals"]) if data.get("residuals") else None)
    except KeyError as exc:
        raise LatencyError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LatencyError(f"{where}: malformed field ({first})") from None
    except LatencyError as exc:
        if str(exc).startswith(where):
            raise
        raise LatencyError(f"{where}: {exc}") from None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_numbers(data: dict, where: str) -> None:
    """The numeric fields of a model file are numbers (what the constructors assume), named when they are not."""
    for key, optional in (("overhead_ms", False), ("alignment", False), ("sigma_rel", False), ("peak_tops", True),
                          ("bandwidth_gbs", True)):
        if key in data and not (_is_num(data[key]) or (optional and data[key] is None)):
            raise LatencyError(f"{where}: field '{key}' must be a number, got {data[key]!r}")
    coef = data.get("coef_ms")
    if not isinstance(coef, dict) or not all(isinstance(k, str) and _is_num(v) for k, v in coef.items()):
        raise LatencyError(f"{where}: field 'coef_ms' must map feature names to numbers")
    rng = data.get("feature_range")
    if rng is not None and not (isinstance(rng, dict) and all(
            isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v) for v in rng.values())):
        raise LatencyError(f"{where}: field 'feature_range' must map feature names to [low, high]")


def _builtin_dir() -> Path:
    return builtin_dir("latency_models")


def load_latency_model(name_or_path: str | Path) -> LatencyModel:
    """Load a latency model from a JSON file, or by name (``"vs680"``) from ``./latency_models`` (a user's own) or
    the built-in ones."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix != ".json" and len(path.parts) == 1:
        mine = Path.cwd() / "latency_models" / f"{path.name}.json"
        path = mine if mine.exists() else _builtin_dir() / f"{path.name}.json"
    if not path.exists():
        raise LatencyError(f"latency model not found: {name_or_path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LatencyError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return _model_from_dict(data, str(path))
