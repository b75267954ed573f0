"""The MAI 2022 challenge score, ``2^(2*PSNR) / (C * runtime_ms)``, and its log2 form.

The report does not print C; it follows from Table 1: every row gives ``C = 2^(2*PSNR) / (score * runtime)``,
and the geometric mean over the 25 rows reproduces every published score within 0.3% (the rest is the
rounding of the published PSNR to 0.01 dB, worth up to 0.7% of a score). The log2 form,
``2*PSNR - log2(C) - log2(runtime_ms)``, is additive and well scaled, which is what an optimiser wants.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterable

from nas.errors import NasError
from nas.reference import Table1Row, table1

__all__ = ["Table1Row", "table1", "derive_c", "mai2022_c", "challenge_score", "log2_score"]


def derive_c(rows: Iterable[Table1Row]) -> float:
    """The normalisation constant C: geometric mean of ``2^(2*PSNR) / (score * npu_ms)`` over scored rows."""
    logs = [2 * r.psnr - math.log2(r.score * r.npu_ms) for r in rows if r.score and r.npu_ms]
    if not logs:
        raise NasError("no scored rows to derive the challenge constant C from")
    return 2.0 ** (sum(logs) / len(logs))


@lru_cache(maxsize=1)
def mai2022_c() -> float:
    """C of the MAI 2022 challenge, derived from Table 1."""
    return derive_c(table1())


def _check(psnr: float, runtime_ms: float) -> None:
    if not math.isfinite(psnr):
        raise NasError(f"PSNR {psnr} is not a finite number")
    if not math.isfinite(runtime_ms) or runtime_ms <= 0:
        raise NasError(f"runtime {runtime_ms} ms must be a positive number")


def log2_score(psnr: float, runtime_ms: float, c: float | None = None) -> float:
    """``log2`` of the challenge score: ``2*PSNR - log2(C) - log2(runtime_ms)``."""
    _check(psnr, runtime_ms)
    return 2.0 * psnr - math.log2(c if c is not None else mai2022_c()) - math.log2(runtime_ms)


def challenge_score(psnr: float, runtime_ms: float, c: float | None = None) -> float:
    """The final score ``2^(2*PSNR) / (C * runtime_ms)`` (PSNR in dB on RGB, runtime of the INT8 model in ms)."""
    return 2.0 ** log2_score(psnr, runtime_ms, c)
