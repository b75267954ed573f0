"""INT8 TFLite export (conversion in a subprocess) and the NPU check against a target profile.

Checking imports no TensorFlow (the model is read as a flatbuffer); exporting runs TensorFlow in a child process.
"""

from nas.export._check import CheckItem, CheckReport, TargetProfile, check_graph, check_model, list_targets, load_target
from nas.export._tflite import OpInfo, TensorInfo, TfliteGraph, read_tflite

__all__ = [
    "check_model",
    "check_graph",
    "load_target",
    "list_targets",
    "TargetProfile",
    "CheckItem",
    "CheckReport",
    "read_tflite",
    "TfliteGraph",
    "OpInfo",
    "TensorInfo",
]

from nas.export._convert import (  # noqa: E402
    Converter,
    ExportResult,
    InProcessConverter,
    PersistentConverter,
    SubprocessConverter,
    calibration_samples,
    export_int8,
)

from nas.export._child import full_integer  # noqa: E402

__all__ += ["full_integer", "export_int8", "ExportResult", "calibration_samples", "Converter",
            "SubprocessConverter", "PersistentConverter", "InProcessConverter"]
