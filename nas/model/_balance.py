"""Rescaling that leaves a deployed network's float function unchanged and makes its INT8 form keep the residual.

Nets that fold the nearest-neighbour anchor into their last conv, the *folding conv* (skip ``carry`` and
``concat_input``; ``tail_1`` where no tail conv follows), have, in every output channel of it, one weight of 1 (the
anchor's copy of an input pixel) beside the residual's weights, which are tiny (median about 0.003 after the proxy).
TFLite quantizes weights per output channel with a step of max|w| / 127 = 1/127: nearly every residual weight rounds
to zero, and the INT8 model falls back to its anchor (measured: a w16 d1 CLB concat-input net, 29.36 dB FP32, 27.82
dB with only its weights quantized, 27.77 INT8). The features entering the folding conv share one quantization range
with the input pixels they are concatenated or carried with (0..255, a step of 1 pixel), so they cannot simply be
scaled down without limit either. Scaling the feature channels of the conv before the folding conv by ``beta`` and
the folding conv's weights on them by ``1 / beta`` is exact in float (ReLU commutes with a positive scale); the
expected rounding error is about ``beta * f / 127 + w / beta`` (weights' step times the features, plus the
activations' step times the weights), smallest near ``beta = sqrt(127 * w / f)`` with ``w`` and ``f`` the RMS of
those weights and features; the error is measured on calibration images for a grid of ``beta``; it is flat near its
minimum (a w16 CLB net: INT8 29.18-29.23 dB for beta from 1/32 to 0.3, 27.77 at 1), and the largest beta within 10%
of the least error is taken.
"""

from __future__ import annotations

import numpy as np

from nas.model._weights import Weights
from nas.space import CARRY_CHANNELS, ArchSpec, Skip

__all__ = ["balance_folded_anchor", "folded_feature_channels", "equalise_carried_ranges", "carried_feature_slots",
           "feature_channels"]

WEIGHT_LEVELS = 127.0  # int8 weights, symmetric, narrow range


def folded_feature_channels(spec: ArchSpec) -> int:
    """Feature channels of the tensor entering the conv that folds the anchor, the last one (0 for nets that do
    not fold it)."""
    if spec.skip not in (Skip.CARRY, Skip.CONCAT_INPUT):
        return 0
    prev = spec.convs()[-2]  # the conv before the last (the head when a net without tail convs has depth 0)
    return prev.cout - (CARRY_CHANNELS if prev.carry_out else 0)


def _patches(maps: np.ndarray, k: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random interior k x k neighbourhoods of ``maps`` (N x H x W x C): count x k x k x C."""
    n, h, w, c = maps.shape
    r = k // 2
    ii = rng.integers(0, n, count)
    yy = rng.integers(r, h - r, count)
    xx = rng.integers(r, w - r, count)
    out = np.empty((count, k, k, c), np.float64)
    for j, (i, y, x) in enumerate(zip(ii, yy, xx)):
        out[j] = maps[i, y - r:y + r + 1, x - r:x + r + 1]
    return out


def _int8_error(p_feat: np.ndarray, p_img: np.ndarray, k_feat: np.ndarray, k_img: np.ndarray, f_max: float,
                beta: float) -> float:
    """Mean squared error that 8-bit activations (one range for features and pixels) and per-channel 8-bit
    weights add to the folding conv's output when the features are scaled by ``beta``."""
    step_a = max(beta * f_max, 255.0) / 255.0
    a = np.concatenate([p_feat * beta, p_img], axis=2)
    kern = np.concatenate([k_feat / beta, k_img], axis=2)  # (k, k, cin, cout)
    step_w = np.maximum(np.abs(kern).max(axis=(0, 1, 2)), 1e-12) / WEIGHT_LEVELS
    kq = np.round(kern / step_w) * step_w
    aq = np.round(a / step_a) * step_a
    flat = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731
    exact = flat(a) @ kern.reshape(-1, kern.shape[-1])
    quant = flat(aq) @ kq.reshape(-1, kq.shape[-1])
    return float(np.mean((quant - exact) ** 2))


TOLERANCE = 1.1  # the error is flat near its minimum: take the largest beta within 10% of it

BETAS = tuple(2.0 ** -i for i in range(0, 9)) + (2.0 ** -10, 2.0 ** -12)


def balance_folded_anchor(spec: ArchSpec, weights: Weights, features: np.ndarray, images: np.ndarray,
                          seed: int = 0, samples: int = 4000) -> tuple[Weights, float]:
    """``weights`` rescaled for INT8 (see the module docstring) and the scale ``beta`` applied (1: unchanged).

    ``features``: the output of the conv before the folding conv on calibration images (N x H x W x C, the deploy form's
    pixel units); ``images``: those images (N x H x W x 3). ``beta`` is the largest of a grid of powers of two whose
    rounding error added to the folding conv's output on ``samples`` random pixels of them is within 10% of the least.
    """
    n = folded_feature_channels(spec)
    if n == 0:
        return weights, 1.0
    slots = spec.convs()
    prev, t1 = slots[-2], slots[-1]
    k_t1, b_t1 = (np.asarray(a, np.float64) for a in weights[t1.name])
    f = np.asarray(features, np.float64)[..., :n]
    if not np.any(f) or not np.any(k_t1[:, :, :n]):
        return weights, 1.0
    rng = np.random.default_rng(seed)
    maps = np.concatenate([f, np.asarray(images, np.float64)], axis=-1)
    p = _patches(maps, t1.kernel, samples, rng)
    p_feat, p_img = p[..., :n].reshape(samples, t1.kernel * t1.kernel, n), p[..., n:].reshape(samples, -1, 3)
    k_feat, k_img = k_t1[:, :, :n, :], k_t1[:, :, n:, :]
    f_max = float(f.max())
    errors = {b: _int8_error(p_feat, p_img, k_feat, k_img, f_max, b) for b in BETAS}
    best = min(errors.values())
    beta = max(b for b, e in errors.items() if e <= TOLERANCE * best)  # the least change among the near-best
    if beta >= 1.0:
        return weights, 1.0
    k_prev, b_prev = (np.asarray(a, np.float64).copy() for a in weights[prev.name])
    k_prev[..., :n] *= beta
    b_prev[:n] *= beta
    k_t1 = k_t1.copy()
    k_t1[:, :, :n, :] /= beta
    out = dict(weights)
    out[prev.name] = [k_prev.astype(np.float32), b_prev.astype(np.float32)]
    out[t1.name] = [k_t1.astype(np.float32), b_t1.astype(np.float32)]
    return out, beta


PIXEL_TOP = 255.0


def carried_feature_slots(spec: ArchSpec) -> list[int]:
    """Indices of the convs whose output is stored beside the input image in one tensor (the image carried in its
    last channels, or concatenated to it before ``tail_1``), except the one feeding the conv that folds the anchor
    (:func:`balance_folded_anchor` sets that one's scale)."""
    slots = spec.convs()
    fold = len(slots) - 1 if folded_feature_channels(spec) else None
    concat = spec.depth if spec.skip is Skip.CONCAT_INPUT else None
    return [i for i, s in enumerate(slots) if (s.carry_out or i == concat) and i + 1 != fold]


def feature_channels(slot) -> int:
    """Feature channels of a conv's output (its carried image channels left out)."""
    return slot.cout - (CARRY_CHANNELS if slot.carry_out else 0)


def equalise_carried_ranges(spec: ArchSpec, weights: Weights, feature_max: dict[str, float]) -> tuple[Weights, dict]:
    """``weights`` with the features of every tensor that carries the image (:func:`carried_feature_slots`) scaled
    to the image's own range, and the scale of each (by conv name).

    INT8 stores a tensor with one range (a concatenation's inputs share its range): where features reach 4x the
    image's 255 the image is stored in steps of 4 pixels, and every layer that carries it rounds it again (measured
    by ``bench/int8_probes.py``: a w16 d5 ECB carry net's body tensors cost 0.5 dB, a w48 d5 concat-input net's
    concatenation with a tail conv after it 0.77 dB). Scaling a conv's feature channels by ``255 / max`` (``feature_max``: their largest value on the
    calibration images, by conv name) and the next conv's weights on them by the inverse is exact in float (ReLU
    commutes with a positive scale); the tensor's range is then the image's, 0..255, one pixel a step, so the image
    rides through unrounded and the features keep their resolution."""
    out = dict(weights)
    slots = spec.convs()
    scales = {}
    for i in carried_feature_slots(spec):
        slot, nxt = slots[i], slots[i + 1]
        n = feature_channels(slot)
        top = float(feature_max.get(slot.name, 0.0))
        if top <= 0.0:
            continue
        s = PIXEL_TOP / top
        k, b = (np.asarray(a, np.float64).copy() for a in out[slot.name])
        k[..., :n] *= s
        b[:n] *= s
        kn, bn = (np.asarray(a, np.float64).copy() for a in out[nxt.name])
        kn[:, :, :n, :] /= s
        out[slot.name] = [k.astype(np.float32), b.astype(np.float32)]
        out[nxt.name] = [kn.astype(np.float32), bn.astype(np.float32)]
        scales[slot.name] = s
    return out, scales
