"""The training form's version, kept apart from the builder so that configs can name it without TensorFlow."""

TRAIN_FORM_VERSION = 3
"""Version of the training form's parameterisation (initial values, multipliers, folded anchors). It enters every
training config's hash, so a training-form checkpoint of another version is refused rather than resumed into a
different network; deploy-form weights (``weights.npz``, INT8 models) are not affected."""

# History: 2 started the residual end at zero behind a x0.1 multiplier and folded the anchor into tail_1; 3 starts the
# non-identity branches of RepConv/ECB/CLB blocks that have an identity branch at a quarter of their He scale (plain
# conv nets train exactly as under 2).
