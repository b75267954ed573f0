"""Evaluation: PSNR/SSIM of bicubic, FP32 and INT8 (LiteRT) upscalers on whole images, and the challenge score."""

from nas.evaluate._evaluate import (Bicubic, EvalResult, ImageScore, KerasUpscaler, ModelUpscaler, TfliteUpscaler,
                                    Upscaler, evaluate)
from nas.evaluate._metrics import psnr, ssim, to_uint8
from nas.evaluate._score import Table1Row, challenge_score, derive_c, log2_score, mai2022_c, table1

__all__ = [
    "evaluate",
    "Upscaler",
    "Bicubic",
    "KerasUpscaler",
    "ModelUpscaler",
    "TfliteUpscaler",
    "EvalResult",
    "ImageScore",
    "psnr",
    "ssim",
    "to_uint8",
    "challenge_score",
    "log2_score",
    "mai2022_c",
    "derive_c",
    "table1",
    "Table1Row",
]
