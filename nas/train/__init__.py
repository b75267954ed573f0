"""Training: one config for the search's short proxy and the full schedule (L1, L2, QAT), checkpoints, resume."""

from nas.train._config import DEFAULT_PROXY_STEPS, Stage, TrainConfig, load_train_config
from nas.train._final import SELECTION_IMAGES, Int8Choice, export_shipped
from nas.train._job import FLOAT_WEIGHTS, JobReport, train_and_export
from nas.train._trainer import QAT_CALIBRATION_HW, TrainEvent, TrainResult, set_threads, train, validation_psnr

__all__ = [
    "train",
    "train_and_export",
    "export_shipped",
    "Int8Choice",
    "SELECTION_IMAGES",
    "JobReport",
    "TrainConfig",
    "Stage",
    "TrainEvent",
    "TrainResult",
    "load_train_config",
    "set_threads",
    "validation_psnr",
    "DEFAULT_PROXY_STEPS",
    "FLOAT_WEIGHTS",
    "QAT_CALIBRATION_HW",
]
