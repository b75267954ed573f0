"""Latency: boards that measure INT8 models, and models that predict a spec's latency without building it.

Boards (:class:`Board`): the host CPU through LiteRT, an Android device over adb (``benchmark_model``), and
measurements imported from a file. Models (:class:`LatencyModel`): per-op features fitted to whole-model
measurements (:func:`fit_model`), saved as versioned JSON in ``latency_models/`` and loaded with
:func:`load_latency_model` (``"vs680"`` is the default, fitted to the MAI 2022 challenge's published runtimes).
"""

from nas.latency._adb import DELEGATES, AdbBoard, parse_benchmark_output
from nas.latency._board import Board, FileBoard, LiteRTCPUBoard, Measurement
from nas.latency._boards import BOARDS, make_board
from nas.latency._calibrate import CalibrationEvent, calibrate, graph_key, measure_specs, select_specs, specs_of
from nas.latency._features import FEATURE_UNITS, FEATURES, op_rows, peak_floor_ms
from nas.latency._model import (
    FORMAT_VERSION,
    Accuracy,
    LatencyModel,
    LatencyPrediction,
    MacsModel,
    OpFeatureModel,
    OpLatency,
    ParamsModel,
    ResidualGP,
    Sample,
    cross_validate,
    fit_model,
    load_latency_model,
    scale_model,
)
from nas.latency._published import ops_from_layers, published_samples
from nas.latency._refit import NOISE as REFIT_NOISE
from nas.latency._refit import refit_model

__all__ = [
    "refit_model",
    "graph_key",
    "REFIT_NOISE",
    "Board",
    "BOARDS",
    "make_board",
    "LiteRTCPUBoard",
    "AdbBoard",
    "FileBoard",
    "Measurement",
    "DELEGATES",
    "parse_benchmark_output",
    "LatencyModel",
    "OpFeatureModel",
    "MacsModel",
    "ParamsModel",
    "LatencyPrediction",
    "ResidualGP",
    "OpLatency",
    "Sample",
    "Accuracy",
    "FEATURES",
    "FEATURE_UNITS",
    "FORMAT_VERSION",
    "op_rows",
    "peak_floor_ms",
    "fit_model",
    "scale_model",
    "cross_validate",
    "load_latency_model",
    "ops_from_layers",
    "published_samples",
    "select_specs",
    "measure_specs",
    "specs_of",
    "calibrate",
    "CalibrationEvent",
]
