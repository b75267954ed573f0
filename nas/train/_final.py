"""The INT8 model a training ships: after a QAT stage, the better of QAT's weights and its own float model quantized
after training, chosen on training photographs.

Why both. On most of the fidelity bench's full-schedule trainings the QAT stage lost more INT8 PSNR against its
float model than quantizing that float model after training did (the figures: ``python -m bench.qat_probes`` and
docs/networks.md). Probed, the cause is the rounding: QAT's fake quantizer rounds each weight to its nearest level,
and its steps do not reach what the export's rounding of each kernel for its output gives with no step at all; its
activation ranges and its steps run in float are not it. So a QAT run exports both and keeps the one with the higher
PSNR on a few training photographs (never the validation images its figures are reported on). Training without QAT
exports its float weights, as always.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Literal

from nas._logging import get_logger
from nas.data import ImageSet
from nas.evaluate import TfliteUpscaler, evaluate
from nas.train._trainer import TrainResult

__all__ = ["Int8Choice", "export_shipped", "SELECTION_IMAGES"]

log = get_logger("train")

SELECTION_IMAGES = 8
"""How many training photographs (the first) choose between QAT's weights and the float model's PTQ."""

Form = Literal["qat", "ptq"]


@dataclasses.dataclass(frozen=True)
class Int8Choice:
    """What was exported: ``form`` ``qat`` (QAT's weights, converted as trained) or ``ptq`` (float weights, quantized
    after training); the export's own result; the deploy-form weights it converted; and, when there was a choice,
    each candidate's RGB PSNR on the selection photographs."""

    form: Form
    export: object  # nas.export.ExportResult
    weights: dict
    selection_psnr: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def quantization_trained(self) -> bool:
        return self.form == "qat"


Exporter = Callable[[dict, Path, bool], object]
"""``export(weights, out, quantization_trained) -> ExportResult``: one INT8 conversion (the caller's target, converter,
input size and calibration)."""


def export_shipped(result: TrainResult, out: str | Path, images: ImageSet, export: Exporter,
                   threads: int | None = None) -> Int8Choice:
    """Export the INT8 model ``result`` ships to ``out`` (see the module docstring); ``images``: the training set,
    whose first :data:`SELECTION_IMAGES` photographs choose after a QAT stage."""
    out = Path(out)
    if not result.quantization_trained:
        return Int8Choice("ptq", export(result.weights, out, False), result.weights)
    if result.float_model is None:  # (a run resumed in QAT from a checkpoint that predates keeping the float model)
        log.warning("%s: no float model kept beside QAT's weights; exporting QAT's weights without a choice",
                    result.spec.hash)
        return Int8Choice("qat", export(result.weights, out, True), result.weights)
    chosen = dataclasses.replace(images, pairs=images.pairs[:SELECTION_IMAGES])
    with tempfile.TemporaryDirectory(prefix="nas-choice-") as tmp:
        candidates = {"qat": (result.weights, True), "ptq": (result.float_model, False)}
        exported, psnr = {}, {}
        for form, (weights, qt) in candidates.items():
            exported[form] = export(weights, Path(tmp) / f"{form}.tflite", qt)
            psnr[form] = evaluate(TfliteUpscaler(exported[form].path, threads=threads), chosen,
                                  with_ssim=False).psnr_rgb
        form: Form = "qat" if psnr["qat"] >= psnr["ptq"] else "ptq"
        log.info("%s: INT8 on %d training photographs: QAT %.3f dB, float model quantized after training %.3f dB; "
                 "shipping %s", result.spec.hash, len(chosen), psnr["qat"], psnr["ptq"], form.upper())
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported[form].path), str(out))
        res = dataclasses.replace(exported[form], path=out)
    return Int8Choice(form, res, candidates[form][0], psnr)
