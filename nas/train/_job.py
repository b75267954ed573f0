"""One training job end to end: train, fuse, export INT8, check, evaluate FP32 and INT8 beside bicubic.

This is what ``nas train`` runs and what a search trial runs with the proxy config. Its output folder holds
``spec.json``, ``weights.npz`` (deploy form), ``model_int8.tflite``, ``report.json`` and ``checkpoints/``; every
file appears only when complete, and a job started again on the same folder resumes its training. A config with QAT
also leaves ``weights_float.npz``, the float model its float stages ended with: its FP32 figures are that model's.
Its INT8 model is the better of QAT's weights (converted as trained) and that float model quantized after training,
on a few training photographs (:func:`nas.train.export_shipped`); ``weights.npz`` holds the weights it converted and
``report.json`` says which (``int8_form``).
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
from nas.train._final import Int8Choice, export_shipped
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
    choice: Int8Choice | None = None  # what the INT8 model was made from (None: not exported)

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
            **({"int8_form": self.choice.form, "int8_selection_psnr": dict(self.choice.selection_psnr)}
               if self.choice is not None else {}),
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
    tflite = size = passed = choice = None
    if export:
        t0 = time.perf_counter()
        say("export")

        def convert(weights, path, quantization_trained):
            return export_int8(spec, path, weights=weights, input_hw=input_hw, images=[p.hr for p in images.pairs[:16]],
                               seed=config.seed, target=target, threads=config.threads or 0,
                               quantization_trained=quantization_trained)

        choice = export_shipped(result, out / "model_int8.tflite", images, convert, threads=config.threads)
        tflite, size, passed = choice.export.path, choice.export.size_bytes, choice.export.report.passed
        if choice.weights is not result.weights:  # (the float model won: weights.npz holds what was converted)
            save_weights(choice.weights, out / "weights.npz")
        seconds["export"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("evaluate")
    fp32 = evaluate(KerasUpscaler(spec, result.float_model or result.weights), valid).to_dict()
    int8 = evaluate(TfliteUpscaler(tflite, threads=config.threads), valid).to_dict() if tflite else None
    bicubic = evaluate(Bicubic(spec.scale), valid).to_dict()
    seconds["evaluate"] = time.perf_counter() - t0
    report = JobReport(spec, out, result, fp32, int8, bicubic, tflite, size, passed, seconds, choice)
    write_json(out / "report.json", report.to_dict())
    return report
