"""Deploy weights made ready for INT8, as the export converts them.

Two steps, in order:

1. rescalings that are exact in float (:mod:`nas.model._balance`): every tensor that stores the image beside
   features gets the image's range, and a folded anchor's features are balanced against its weights;
2. the rounding of every conv's kernel onto the per-channel int8 grid TFLite uses (a step of ``max|w| / 127`` per
   output channel), chosen so that the conv's *output* on the calibration images changes least rather than each
   weight by least (GPTQ, Frantar et al. 2022: the weights are rounded one input at a time and the error of each is
   spread over the weights not yet rounded, through the inverse Hessian ``(X^T X)^-1`` of the conv's inputs). Each
   output channel's largest weight is kept, so TFLite finds the same step and keeps every weight as given. Measured
   by ``bench/int8_probes.py`` on the proxy's weights: a w16 d5 ECB carry net's INT8 loss 0.33 -> 0.03 dB (its
   folding conv's output error 30x smaller), a w16 d8 CLB net without an anchor 0.37 -> 0.07 dB.
"""

from __future__ import annotations

import numpy as np

from nas.model._balance import (balance_folded_anchor, carried_feature_slots, equalise_carried_ranges,
                                folded_feature_channels, feature_channels)
from nas.model._builder import build_model, set_weights
from nas.model._weights import Weights
from nas.space import ArchSpec

__all__ = ["int8_ready", "round_to_int8_grid", "WEIGHT_LEVELS"]

WEIGHT_LEVELS = 127
"""Per-channel int8 weights are symmetric over -127..127 (TFLite's narrow range)."""
SAMPLES_PER_IMAGE = 3000
"""Input positions of each conv sampled per calibration image for its Hessian."""


def int8_ready(spec: ArchSpec, weights: Weights, calibration: np.ndarray, log=None,
               rounding: bool = True) -> Weights:
    """``weights`` as the export converts them (see the module docstring): the exact rescalings, then (with
    ``rounding``) every kernel on the int8 grid. ``calibration``: the export's calibration images (N x H x W x 3
    pixels); ``log(message)`` hears what was done."""
    import tf_keras as keras

    slots = spec.convs()
    carried = [slots[i] for i in carried_feature_slots(spec)]
    fold = folded_feature_channels(spec)
    model = build_model(spec, "deploy", seed=None)
    set_weights(model, weights)

    def outputs(names: list[str]):  # per calibration image, each layer's output
        probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
        for c in calibration:
            out = probe(c[None], training=False)
            yield [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    if carried:
        top = {s.name: 0.0 for s in carried}
        for maps in outputs([s.name for s in carried]):  # (only the maxima kept: deep nets' maps are large)
            for s, m in zip(carried, maps):
                top[s.name] = max(top[s.name], float(m[..., :feature_channels(s)].max()))
        weights, scales = equalise_carried_ranges(spec, weights, top)
        set_weights(model, weights)
        if log and scales:
            log("carried image: features scaled to its range by "
                + ", ".join(f"{k} {v:.3g}" for k, v in scales.items()))
    if fold:
        feats = np.concatenate([m[0] for m in outputs([slots[-2].name])])
        weights, beta = balance_folded_anchor(spec, weights, feats, calibration)
        set_weights(model, weights)
        if log and beta != 1.0:
            log(f"folded anchor: features into {slots[-1].name} scaled by {beta:g} for INT8")
    if rounding:
        weights, gain = round_to_int8_grid(model, weights, calibration)
        if log:
            log("kernels rounded for their outputs: output error x"
                + ", ".join(f"{k} {v:.2g}" for k, v in gain.items()))
    return weights


def _neighbourhoods(x: np.ndarray, k: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random positions' k x k neighbourhoods of ``x`` (1 x H x W x C, zero padding as the conv's
    ``same``), as rows in the kernel's (row, column, channel) order."""
    r = k // 2
    xp = np.pad(x[0], ((r, r), (r, r), (0, 0)))
    h, w = x.shape[1], x.shape[2]
    ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
    dy, dx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    patches = xp[ys[:, None, None] + dy, xs[:, None, None] + dx]  # count x k x k x C
    return patches.reshape(count, -1)


def _gptq(w: np.ndarray, hessian: np.ndarray, damp: float = 0.01) -> np.ndarray:
    """``w`` (outputs x inputs) rounded onto its per-output int8 grid, input by input, each rounding error spread
    over the inputs not yet rounded through the inverse Hessian; each output's largest weight is kept as it is."""
    w = w.astype(np.float64).copy()
    d = w.shape[1]
    step = np.maximum(np.abs(w).max(axis=1), 1e-12) / WEIGHT_LEVELS
    h = hessian.astype(np.float64).copy()
    dead = np.diag(h) == 0  # inputs that are 0 on every calibration image: nothing to compensate through
    h[dead, dead] = 1.0
    h += damp * np.mean(np.diag(h)) * np.eye(d)
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T  # upper triangular
    keep = np.ones_like(w, bool)
    keep[np.arange(w.shape[0]), np.abs(w).argmax(axis=1)] = False  # the largest weight sets the step: not moved
    q = np.empty_like(w)
    for j in range(d):
        q[:, j] = np.clip(np.round(w[:, j] / step), -WEIGHT_LEVELS, WEIGHT_LEVELS) * step
        err = (w[:, j] - q[:, j]) / hinv[j, j]
        w[:, j + 1:] -= err[:, None] * hinv[j, j + 1:][None, :] * keep[:, j + 1:]
    return q


def round_to_int8_grid(model, weights: Weights, calibration: np.ndarray, seed: int = 0) -> tuple[Weights, dict]:
    """Every conv kernel of ``weights`` (loaded in the deploy-form ``model``) rounded onto TFLite's per-channel int8
    grid for least change of its output on ``calibration`` (see the module docstring), and, by conv name, how much
    that shrank the output's squared error against rounding each weight to its nearest level."""
    import tf_keras as keras

    rng = np.random.default_rng(seed)
    names = [n for n, arrays in weights.items()
             if np.ndim(arrays[0]) == 4 and model.get_layer(n).trainable]  # (a frozen anchor's 0/1 kernel is on grid)
    probe = keras.Model(model.input, [model.get_layer(n).input for n in names])  # one pass per image for all
    rows: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for c in calibration:
        maps = probe(c[None], training=False)
        for n, m in zip(names, maps if isinstance(maps, (list, tuple)) else [maps]):
            rows[n].append(_neighbourhoods(np.asarray(m, np.float64), np.shape(weights[n][0])[0], SAMPLES_PER_IMAGE,
                                           rng))
    out, gain = dict(weights), {}
    for name in names:
        kernel = np.asarray(weights[name][0])
        x = np.concatenate(rows.pop(name))
        w = kernel.reshape(-1, kernel.shape[3]).T.astype(np.float64)
        q = _gptq(w, x.T @ x)
        step = np.maximum(np.abs(w).max(axis=1), 1e-12)[:, None] / WEIGHT_LEVELS
        nearest = np.clip(np.round(w / step), -WEIGHT_LEVELS, WEIGHT_LEVELS) * step
        before, after = np.mean(((nearest - w) @ x.T) ** 2), np.mean(((q - w) @ x.T) ** 2)
        gain[name] = float(after / before) if before > 0 else 1.0
        out[name] = [q.T.reshape(kernel.shape).astype(np.float32), *weights[name][1:]]
    return out, gain
