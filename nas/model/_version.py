"""The training form's version, kept apart from the builder so that configs can name it without TensorFlow."""

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
