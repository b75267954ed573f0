"""The versions of what decides a trained spec's figures (its training form, its INT8 export's weight preparation),
kept apart from the builder so that configs and caches can name them without TensorFlow."""

from __future__ import annotations

TRAIN_FORM_VERSION = 4
"""Version of the training form's parameterisation (initial values, multipliers, folded anchors): the latest.
:func:`train_form` says which one a spec trains in; a training-form checkpoint of another version is refused rather
than resumed into a different network; deploy-form weights (``weights.npz``, INT8 models) are not affected."""

# History: 2 started the residual end at zero behind a x0.1 multiplier and folded the anchor into tail_1; 3 starts the
# non-identity branches of RepConv/ECB/CLB blocks that have an identity branch at a quarter of their He scale (plain
# conv nets train exactly as under 2); 4 folds a carry or concat-input net's anchor into its last conv, the image
# carried past tail_1, where 3 folded it into tail_1 and passed the image through the tail convs (nets without tail
# convs, and every other skip, train exactly as under 3).


def train_form(spec) -> int:
    """The training-form version ``spec`` trains in: the latest that changed how it trains. A spec untouched by a
    change keeps its version, so what was measured of it before stays valid (benchmark caches key on this)."""
    folds = spec.skip.value in ("carry", "concat_input")
    return 4 if folds and spec.tail else 3


def int8_form(spec) -> int:
    """The version of the export's weight preparation that ``spec``'s INT8 model gets (:func:`nas.model.int8_ready`):
    3 (every kernel rounded for its output; 2 added the carried ranges; 1 before).
    Benchmark caches key on it, so an INT8 figure measured before a change that touches the spec is measured
    again."""
    return 3


QAT_EXPORT_VERSION = 3
"""Version of how the export treats weights that come out of a QAT stage: 3 ships the better of them (converted as
trained) and the float stages' model quantized after training, on a few training photographs
(:func:`nas.train.export_shipped`); 2 converted them as trained and measured FP32 on the float stages' model; 1
prepared them as it prepares float weights (rescaled, then re-rounded for their outputs, which moved them off the grid
QAT had trained them on) and measured FP32 on QAT's weights."""


def result_forms(spec, qat: bool = False) -> str:
    """What decides a trained spec's figures besides its training config and data, as a key: its training form
    (:func:`train_form`) and its export's weight preparation (:func:`int8_form`; left out where it is 1, so keys made
    before the export had versions stay valid); for a training with ``qat``, the version of its export
    (:data:`QAT_EXPORT_VERSION`). Caches of measured figures key on it."""
    q = int8_form(spec)
    return (f"form{train_form(spec)}" + (f"-int8v{q}" if q > 1 else "")
            + (f"-qatv{QAT_EXPORT_VERSION}" if qat else ""))
