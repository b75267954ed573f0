"""What every command module of the CLI shares: its options, its two consoles, JSON output, size parsing.

The command modules import from here and never from each other; ``_app`` only assembles them.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import typer

__all__ = ["JSON_OPT", "OUT_OPT", "PIPED_WIDTH", "out_console", "status_console", "print_json", "parse_hw",
           "live_trials"]

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


@contextlib.contextmanager
def live_trials(con, enabled: bool, target: int):
    """A live line: trials done/target, running, complete/pruned/failed, best log2 score."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = (TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn())
    with Progress(*cols, console=con, transient=False) as prog:
        task = prog.add_task("trials", total=target, info="")

        def callback(ev) -> None:
            best = "-" if ev.best_log2 is None else f"{ev.best_log2:.2f} (trial {ev.best_trial})"
            prog.update(task, completed=ev.done, total=ev.target, info=(
                f"running {ev.running}  complete {ev.complete}  pruned {ev.pruned}  failed {ev.failed}  "
                f"best log2 score (mean+k sigma) {best}"))
            if ev.kind == "start":
                prog.console.print(f"[bold]executor[/]: {ev.message}")
            elif ev.kind == "finish" and ev.number is not None and not con.is_terminal:
                # a log file gets no live bar: one line per finished trial instead
                prog.console.print(f"trial {ev.number}: {ev.message}; {ev.done}/{ev.target} done, best log2 score "
                                   f"(mean+k sigma) {best}", soft_wrap=True)
            elif ev.kind == "finish" and ev.number is not None and not ev.message.startswith("complete"):
                prog.console.print(f"trial {ev.number}: {ev.message}")
            elif ev.kind == "measure":  # the closed latency loop timed a trial's INT8 model on the board
                prog.console.print(f"trial {ev.number}: {ev.message}", soft_wrap=True)

        yield callback
