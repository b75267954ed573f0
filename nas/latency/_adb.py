"""An Android device over adb, timed with TFLite's ``benchmark_model`` (CPU, NNAPI or GPU delegate).

The binary is TFLite's prebuilt ``android_aarch64_benchmark_model`` (or one built with Bazel), pushed once to the
device (``adb push benchmark_model /data/local/tmp/``). :func:`parse_benchmark_output` reads what the tool prints:
the steady-state ``count=... avg=... [median=...]`` line and, with op profiling, the per-op "Run Order" table.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from nas.errors import LatencyError
from nas.latency._board import Board, Measurement

__all__ = ["AdbBoard", "parse_benchmark_output", "DELEGATES"]

DELEGATES = ("cpu", "xnnpack", "nnapi", "gpu")
_DELEGATE_FLAGS = {
    "cpu": ["--use_xnnpack=false"],
    "xnnpack": ["--use_xnnpack=true"],
    "nnapi": ["--use_nnapi=true"],
    "gpu": ["--use_gpu=true"],
}

_PREFIX = r"^(?:[A-Z]+: |[IWE] tflite\s*: )?"
_STEADY = re.compile(_PREFIX + r"count=(\d+) first=\S+ curr=\S+ min=(\S+) max=(\S+) avg=(\S+) std=(\S+)(.*)$")
_SUMMARY = re.compile(r"Inference timings in us: .*Inference \(avg\): ([0-9.e+]+)")
_RUN_ORDER_ROW = re.compile(r"^\s*(\S+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)%\s+([0-9.]+)%\s+([0-9.]+)\s+"
                            r"(\d+)\s+(.+)$")


def _us(text: str) -> float:
    return float(text)


def parse_benchmark_output(text: str, model: str, board: str = "adb") -> Measurement:
    """The measurement in ``benchmark_model``'s output: the median of the timed runs where the tool prints one
    (newer versions), else their mean; per-op average times from the op-profiling table where present."""
    steady = None
    for line in text.splitlines():
        m = _STEADY.match(line.strip())
        if m:
            steady = m  # the last one is the timed runs (the first is the warm-up)
    if steady is None:
        summary = _SUMMARY.search(text)
        if not summary:
            tail = " | ".join(ln.strip() for ln in text.strip().splitlines()[-4:])
            raise LatencyError(f"benchmark_model printed no timings for {model}: {tail or '(no output)'}")
        return Measurement(model, board, _us(summary.group(1)) / 1000.0, 1)
    count = int(steady.group(1))
    extra = dict(kv.split("=", 1) for kv in steady.group(6).split() if "=" in kv)
    centre = _us(extra["median"]) if "median" in extra else _us(steady.group(4))
    per_op = _per_op(text)
    return Measurement(model, board, centre / 1000.0, count, per_op_ms=per_op or None)


def _per_op(text: str) -> dict[str, float]:
    """``{op name: avg ms}`` from the "Run Order" table of the regular runs' op profile."""
    marker = text.find("Operator-wise Profiling Info for Regular Benchmark Runs")
    if marker < 0:
        return {}
    lines = text[marker:].splitlines()
    out: dict[str, float] = {}
    in_table = False
    for line in lines[1:]:
        if "Run Order" in line:
            in_table = True
            continue
        if in_table and line.startswith("="):
            break
        row = _RUN_ORDER_ROW.match(line) if in_table else None
        if row:
            name = row.group(9).strip()
            bracketed = re.match(r"^\[(.*)\]:\d+$", name)  # "[tensor name]:node index"
            out[bracketed.group(1) if bracketed else name] = float(row.group(4))
    return out


class AdbBoard(Board):
    """An Android device over adb running ``benchmark_model`` with the chosen delegate.

    Args:
        serial: the device (``adb -s``); ``None`` for the only one attached.
        delegate: ``cpu`` (plain kernels), ``xnnpack``, ``nnapi`` (the phone's NPU driver) or ``gpu``.
        binary: where ``benchmark_model`` lives on the device.
        op_profiling: ask the tool for per-op times (slightly slower runs).
    """

    def __init__(self, serial: str | None = None, *, delegate: str = "nnapi", threads: int = 4, runs: int = 50,
                 warmup: int = 10, binary: str = "/data/local/tmp/benchmark_model", remote_dir: str = "/data/local/tmp",
                 op_profiling: bool = False, adb: str = "adb", timeout_s: float = 600.0):
        if delegate not in DELEGATES:
            raise LatencyError(f"unknown delegate '{delegate}' (choose from {', '.join(DELEGATES)})")
        if threads < 1 or runs < 1 or warmup < 0:
            raise LatencyError(f"threads and runs must be positive and warmup not negative "
                               f"(got threads={threads}, runs={runs}, warmup={warmup})")
        self.serial, self.delegate, self.threads, self.runs, self.warmup = serial, delegate, threads, runs, warmup
        self.binary, self.remote_dir, self.op_profiling = binary, remote_dir.rstrip("/"), op_profiling
        self.adb, self.timeout_s = adb, timeout_s
        self.name = f"adb-{serial or 'device'}-{delegate}"

    def _base(self) -> list[str]:
        exe = shutil.which(self.adb)
        if exe is None:
            raise LatencyError(f"'{self.adb}' not found on PATH: install Android platform-tools and connect the "
                               f"device (check with `adb devices`)")
        return [exe, *(["-s", self.serial] if self.serial else [])]

    def _run(self, args: Sequence[str]) -> str:
        cmd = self._base() + list(args)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise LatencyError(f"adb timed out after {self.timeout_s:.0f} s: {' '.join(args[:2])}") from None
        out = proc.stdout + proc.stderr
        if proc.returncode != 0:
            tail = " | ".join(out.strip().splitlines()[-3:])
            raise LatencyError(f"adb {' '.join(args[:1])} failed (exit {proc.returncode}): {tail}")
        return out

    def command(self, remote_model: str) -> list[str]:
        """The ``benchmark_model`` command line run on the device."""
        return [self.binary, f"--graph={remote_model}", f"--num_threads={self.threads}", f"--num_runs={self.runs}",
                f"--warmup_runs={self.warmup}", *(_DELEGATE_FLAGS[self.delegate]),
                *(["--enable_op_profiling=true"] if self.op_profiling else [])]

    def measure(self, model: str | Path) -> Measurement:
        path = Path(model)
        if not path.is_file():
            raise LatencyError(f"model not found: {path}")
        remote = f"{self.remote_dir}/{path.name}"
        self._run(["push", str(path), remote])
        try:
            out = self._run(["shell", " ".join(shlex.quote(a) for a in self.command(remote))])
        finally:
            try:
                self._run(["shell", f"rm -f {shlex.quote(remote)}"])
            except LatencyError:
                pass
        return parse_benchmark_output(out, path.name, self.name)
