"""Keras models from specs: training form (multi-branch blocks), deploy form (one conv per block), exact fusion.

Importing this package imports TensorFlow; the rest of the library imports it only where a model is needed.
"""

from nas.model._builder import (
    build_model,
    count_params,
    deploy_weights,
    fuse,
    load_weights,
    model_weights,
    nearest_kernel,
    save_weights,
    set_weights,
)
from nas.model._layers import CLB, ECB, Clip, DepthToSpace, PixelRange, RepConv

__all__ = [
    "build_model",
    "fuse",
    "deploy_weights",
    "set_weights",
    "model_weights",
    "save_weights",
    "load_weights",
    "count_params",
    "nearest_kernel",
    "RepConv",
    "ECB",
    "CLB",
    "Clip",
    "DepthToSpace",
    "PixelRange",
]
