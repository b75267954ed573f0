"""What every command module of the CLI shares: its options, its two consoles, JSON output, size parsing.

The command modules import from here and never from each other; ``_app`` only assembles them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

__all__ = ["JSON_OPT", "OUT_OPT", "PIPED_WIDTH", "out_console", "status_console", "print_json", "parse_hw"]

JSON_OPT = typer.Option(False, "--json", help="Print machine-readable JSON.")
OUT_OPT = typer.Option("runs", "--out", help="Folder of the study folders (where a study NAME is looked up).")

PIPED_WIDTH = 240
"""Columns of a console that is not a terminal (a pipe, a log file): wide enough that tables and the live line keep
whole values (Rich's default of 80, or an inherited ``COLUMNS``, cut them: "clip:bef…")."""


def _console(stderr: bool):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    width = None if tty else PIPED_WIDTH
    return Console(stderr=stderr, width=width)


def out_console():
    """Results (tables, fronts, summaries): standard output, so that they can be piped."""
    return _console(stderr=False)


def status_console():
    """Progress bars, the live line and status messages: standard error."""
    return _console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def parse_hw(text: str) -> tuple[int, int]:
    """``HEIGHTxWIDTH`` (e.g. 360x640) as two positive ints."""
    from nas.errors import NasError

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise NasError(f"input size '{text}' is not HEIGHTxWIDTH (e.g. 360x640)") from None
    if h < 1 or w < 1:
        raise NasError(f"input size '{text}' must be positive")
    return h, w
