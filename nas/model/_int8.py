"""Deploy weights made ready for INT8: the rescalings the export applies before conversion (exact in float)."""

from __future__ import annotations

import numpy as np

from nas.model._balance import (balance_folded_anchor, carried_feature_slots, equalise_carried_ranges,
                                folded_feature_channels, feature_channels)
from nas.model._builder import build_model, set_weights
from nas.model._weights import Weights
from nas.space import ArchSpec

__all__ = ["int8_ready", "int8_form"]


def int8_form(spec: ArchSpec) -> int:
    """The version of the export's rescaling that ``spec``'s INT8 model gets: 2 where a tensor carries the image
    beside features (:func:`equalise_carried_ranges`, added in 2), else 1. Benchmark caches key on it, so an INT8
    figure measured before a change that touches the spec is measured again, and only then."""
    return 2 if carried_feature_slots(spec) else 1


def int8_ready(spec: ArchSpec, weights: Weights, calibration: np.ndarray, log=None) -> Weights:
    """``weights`` rescaled for INT8 as the export converts them (exact in float): every tensor that carries the
    image beside features gets the image's range (:func:`equalise_carried_ranges`), then a folded anchor's
    features are balanced against its weights (:func:`balance_folded_anchor`). ``calibration``: the export's
    calibration images (N x H x W x 3 pixels); ``log(message)`` hears what was scaled."""
    import tf_keras as keras

    slots = spec.convs()
    carried = [slots[i] for i in carried_feature_slots(spec)]
    fold = folded_feature_channels(spec)
    if not carried and not fold:
        return weights
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
        if log and beta != 1.0:
            log(f"folded anchor: features into {slots[-1].name} scaled by {beta:g} for INT8")
    return weights
