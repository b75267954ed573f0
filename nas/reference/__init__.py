"""Reference data of the MAI 2022 challenge: Table 1 of the report (every solution's PSNR, SSIM, size, runtimes
and score). It sits below the packages that use it (``nas.space``'s zoo, ``nas.evaluate``'s score), so neither
imports the other for it."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import resources

import yaml

__all__ = ["Table1Row", "table1"]


@dataclasses.dataclass(frozen=True)
class Table1Row:
    name: str
    team: str
    psnr: float
    ssim: float
    size_kb: float | None = None
    cpu_ms: float | None = None
    npu_ms: float | None = None
    score: float | None = None


@lru_cache(maxsize=1)
def table1() -> tuple[Table1Row, ...]:
    """Table 1 of the report: the 25 solutions (with runtimes and scores) and the two baselines."""
    text = resources.files("nas.reference").joinpath("table1.yaml").read_text(encoding="utf-8")
    return tuple(Table1Row(**row) for row in yaml.safe_load(text)["rows"])
