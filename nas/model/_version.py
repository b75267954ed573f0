"""The training form's version, kept apart from the builder so that configs can name it without TensorFlow."""

TRAIN_FORM_VERSION = 2
"""Version of the training form's parameterisation (initial values, multipliers, folded anchors). It enters every
training config's hash, so a training-form checkpoint of another version is refused rather than resumed into a
different network; deploy-form weights (``weights.npz``, INT8 models) are not affected."""
