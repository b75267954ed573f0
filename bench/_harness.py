"""What every benchmark shares: where the repository and its committed results are, reading and writing a result
file (atomically, so an interrupted run never leaves half a file), and the goal lines they end with."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
"""Committed results: a fresh clone prints every benchmark's figures from here in minutes."""

__all__ = ["ROOT", "RESULTS", "read_result", "write_result", "goal_line"]


def read_result(name: str | Path, default: Any = None) -> Any:
    """A JSON result (a name under :data:`RESULTS`, or a path), or ``default`` when there is none."""
    path = Path(name) if Path(name).is_absolute() or Path(name).parent != Path(".") else RESULTS / name
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def write_result(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path``, replacing the file only once the new one is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
    return path


def goal_line(met: bool | None, text: str) -> str:
    """One goal as the benchmarks print it: ``[met]``, ``[NOT met]`` or ``[not measured]`` before what it says."""
    mark = "not measured" if met is None else "met" if met else "NOT met"
    return f"  [{mark}] {text}"
