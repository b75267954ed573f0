"""Boards by name: the factory of :class:`~nas.latency.Board` (apart from the base module the boards build on)."""

from __future__ import annotations

from pathlib import Path

from nas.errors import LatencyError
from nas.latency._adb import AdbBoard
from nas.latency._board import Board, FileBoard, LiteRTCPUBoard

__all__ = ["BOARDS", "make_board"]


BOARDS = ("litert-cpu (this machine's CPU, XNNPACK), litert-builtin (this machine's CPU, LiteRT's built-in kernels), "
          "adb (an Android device), or a measurements .csv/.yaml file")
"""What :func:`make_board` accepts."""


def make_board(board: str, *, threads: int = 1, runs: int = 20, warmup: int = 3, serial: str | None = None,
               delegate: str = "nnapi") -> Board:
    """The board named ``board`` (see :data:`BOARDS`)."""
    if board in ("litert-cpu", "litert-builtin"):
        return LiteRTCPUBoard(threads=threads, warmup=warmup, runs=runs, xnnpack=board == "litert-cpu")
    if board == "adb":
        return AdbBoard(serial, delegate=delegate, threads=threads, runs=runs, warmup=warmup)
    if Path(board).suffix.lower() in (".csv", ".yaml", ".yml"):
        return FileBoard(board)
    raise LatencyError(f"unknown board '{board}': use {BOARDS}")
