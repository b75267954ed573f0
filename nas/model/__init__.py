"""Keras models from specs: training form (multi-branch blocks), deploy form (one conv per block), exact fusion.

The names are imported lazily: weight files (:func:`save_weights`, :func:`load_weights`) need only numpy, while
the builders import TensorFlow on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "build_model": "_builder",
    "fuse": "_builder",
    "deploy_weights": "_builder",
    "set_weights": "_builder",
    "model_weights": "_builder",
    "count_params": "_builder",
    "nearest_kernel": "_builder",
    "qat_model": "_builder",
    "conv_weights": "_builder",
    "residual_end": "_builder",
    "slot_starts": "_builder",
    "RESIDUAL_MULTIPLIER": "_builder",
    "TRAIN_FORM_VERSION": "_version",
    "train_form": "_version",
    "balance_folded_anchor": "_balance",
    "folded_feature_channels": "_balance",
    "equalise_carried_ranges": "_balance",
    "carried_feature_slots": "_balance",
    "int8_ready": "_int8",
    "int8_form": "_version",
    "result_forms": "_version",
    "QAT_EXPORT_VERSION": "_version",
    "round_to_int8_grid": "_int8",
    "QConv2D": "_layers",
    "ActQuant": "_layers",
    "save_weights": "_weights",
    "load_weights": "_weights",
    "Weights": "_weights",
    "RepConv": "_layers",
    "ECB": "_layers",
    "CLB": "_layers",
    "Clip": "_layers",
    "DepthToSpace": "_layers",
    "PixelRange": "_layers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nas.model' has no attribute '{name}'")
    return getattr(importlib.import_module(f"nas.model.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
