"""One training job end to end: train, fuse, export INT8, check, evaluate FP32 and INT8 beside bicubic.

This is what ``nas train`` runs and what a search trial runs with the proxy config. Its output folder holds
``spec.json``, ``weights.npz`` (deploy form), ``model_int8.tflite``, ``report.json`` and ``checkpoints/``; every
file appears only when complete, and a job started again on the same folder resumes its training. A config with QAT
also leaves ``weights_float.npz``, the float model its float stages ended with: its FP32 figures are that model's
(QAT's own weights are trained for their INT8 form and exported as trained).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from nas._files import write_json
from nas._logging import get_logger
from nas.data import ImageSet
from nas.evaluate import Bicubic, KerasUpscaler, TfliteUpscaler, evaluate
from nas.export import export_int8
from nas.model import save_weights
from nas.space import DEFAULT_INPUT_HW, ArchSpec
from nas.train._config import TrainConfig
from nas.train._trainer import TrainEvent, TrainResult, train

__all__ = ["JobReport", "train_and_export", "FLOAT_WEIGHTS"]

FLOAT_WEIGHTS = "weights_float.npz"
"""A QAT run's float model, beside ``weights.npz`` (its INT8-trained weights)."""

log = get_logger("train")


@dataclasses.dataclass(frozen=True)
class JobReport:
    spec: ArchSpec
    out_dir: Path
    train: TrainResult
    fp32: dict  # EvalResult.to_dict()
    int8: dict | None
    bicubic: dict
    tflite: Path | None
    tflite_bytes: int | None
    check_passed: bool | None
    seconds: dict  # wall time by phase: train, export, evaluate

    def to_dict(self) -> dict:
        t = self.train
        return {
            "spec": self.spec.to_dict(), "hash": self.spec.hash, "out_dir": str(self.out_dir),
            "config": t.config.model_dump(mode="json"), "config_hash": t.config.hash,
            "train": {"steps": t.steps, "seconds": t.seconds, "final_loss": t.final_loss,
                      "resumed_from": t.resumed_from, "history": [list(h) for h in t.history]},
            "fp32": _summary(self.fp32), "int8": _summary(self.int8), "bicubic": _summary(self.bicubic),
            "int8_drop_db": None if self.int8 is None else self.fp32["psnr_rgb"] - self.int8["psnr_rgb"],
            "int8_gain_over_bicubic_db": None if self.int8 is None else self.int8["psnr_rgb"] - self.bicubic["psnr_rgb"],
            "tflite": None if self.tflite is None else str(self.tflite), "tflite_bytes": self.tflite_bytes,
            "check_passed": self.check_passed, "seconds": self.seconds,
        }


def _summary(ev: dict | None) -> dict | None:
    if ev is None:
        return None
    return {k: ev[k] for k in ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "n_images", "data")}


def train_and_export(
    spec: ArchSpec,
    images: ImageSet,
    valid: ImageSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    export: bool = True,
    input_hw: tuple[int, int] = DEFAULT_INPUT_HW,
    target: str = "vs680",
    callback: Callable[[TrainEvent], None] | None = None,
    phase: Callable[[str], None] | None = None,
) -> JobReport:
    """Train ``spec``, export it to INT8 and evaluate both forms on ``valid``; write everything to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "spec.json", spec.to_dict())
    say = phase or (lambda _: None)
    seconds = {}
    t0 = time.perf_counter()
    say("train")
    result = train(spec, images, config, out_dir=out, resume=resume, valid=valid, callback=callback)
    save_weights(result.weights, out / "weights.npz")
    if result.quantization_trained and result.float_model is not None:
        save_weights(result.float_model, out / FLOAT_WEIGHTS)
    seconds["train"] = time.perf_counter() - t0
    tflite = size = passed = None
    if export:
        t0 = time.perf_counter()
        say("export")
        res = export_int8(spec, out / "model_int8.tflite", weights=result.weights, input_hw=input_hw,
                          images=[p.hr for p in images.pairs[:16]], seed=config.seed, target=target,
                          threads=config.threads or 0, quantization_trained=result.quantization_trained)
        tflite, size, passed = res.path, res.size_bytes, res.report.passed
        seconds["export"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("evaluate")
    fp32 = evaluate(KerasUpscaler(spec, result.float_model or result.weights), valid).to_dict()
    int8 = evaluate(TfliteUpscaler(tflite, threads=config.threads), valid).to_dict() if tflite else None
    bicubic = evaluate(Bicubic(spec.scale), valid).to_dict()
    seconds["evaluate"] = time.perf_counter() - t0
    report = JobReport(spec, out, result, fp32, int8, bicubic, tflite, size, passed, seconds)
    write_json(out / "report.json", report.to_dict())
    return report
