"""Where the built-in search spaces and latency models are, from a source tree or an installed wheel.

They live, and are edited, in the project's top-level ``search_spaces/`` and ``latency_models/``; this package
holds links to those folders, which a wheel build copies into the package, so the same lookup finds them from any
working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["builtin_dir"]


def builtin_dir(kind: Literal["search_spaces", "latency_models"]) -> Path:
    """The folder of the built-in files of ``kind``."""
    return Path(__file__).resolve().parent / kind
