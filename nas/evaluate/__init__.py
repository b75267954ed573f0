"""Evaluation: the challenge score (and, next, PSNR/SSIM of FP32 and INT8 models)."""

from nas.evaluate._score import Table1Row, challenge_score, derive_c, log2_score, mai2022_c, table1

__all__ = ["challenge_score", "log2_score", "mai2022_c", "derive_c", "table1", "Table1Row"]
