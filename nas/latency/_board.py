"""Boards: where latency is measured. One abstract :class:`Board` with ``measure(model.tflite) -> Measurement``.

* :class:`LiteRTCPUBoard` times the model on this machine's CPU with LiteRT (XNNPACK): warm-up runs, then the
  median of N timed runs and their spread.
* :class:`FileBoard` serves measurements made elsewhere (a board farm, a phone) from a CSV or YAML file.

* :class:`~nas.latency.AdbBoard` times it on an Android device over adb (TFLite's ``benchmark_model``).

:func:`~nas.latency.make_board` makes one by name.
"""

from __future__ import annotations

import abc
import csv
import dataclasses
import math
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import yaml

from nas.errors import LatencyError
from nas.export import read_tflite

__all__ = ["Measurement", "Board", "LiteRTCPUBoard", "FileBoard"]


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Latency of one model on one board: the median of ``runs`` timed runs, with the quartiles as spread, and
    per-op times where the board reports them."""

    model: str
    board: str
    median_ms: float
    runs: int
    q1_ms: float | None = None
    q3_ms: float | None = None
    per_op_ms: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise LatencyError("a measurement needs the model it measured")
        for name in ("median_ms", "q1_ms", "q3_ms"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
                raise LatencyError(f"measurement of {self.model}: {name} must be a positive number, got {v!r}")
        if not isinstance(self.runs, int) or self.runs < 1:
            raise LatencyError(f"measurement of {self.model}: runs must be a positive integer, got {self.runs!r}")
        if self.q1_ms is not None and self.q3_ms is not None and not self.q1_ms <= self.median_ms <= self.q3_ms:
            raise LatencyError(f"measurement of {self.model}: quartiles {self.q1_ms}..{self.q3_ms} ms do not "
                               f"bracket the median {self.median_ms} ms")

    @property
    def spread(self) -> float | None:
        """Interquartile range relative to the median (0.05 = the middle half of runs within 5%)."""
        if self.q1_ms is None or self.q3_ms is None:
            return None
        return (self.q3_ms - self.q1_ms) / self.median_ms

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["per_op_ms"] = dict(self.per_op_ms) if self.per_op_ms else None
        return d


class Board(abc.ABC):
    """Somewhere a TFLite model can be timed.

    Subclasses set :attr:`name` (recorded in every measurement and in the latency models fitted from them) and
    implement :meth:`measure`. A board that cannot measure a model raises :class:`~nas.errors.LatencyError`.
    """

    name: str = "board"

    @abc.abstractmethod
    def measure(self, model: str | Path) -> Measurement:
        """Time one ``.tflite`` model."""


class LiteRTCPUBoard(Board):
    """This machine's CPU through LiteRT's interpreter, ``threads`` threads: with the XNNPACK delegate (LiteRT's
    default, board ``litert-cpu-<threads>t``) or, with ``xnnpack=False``, LiteRT's own built-in kernels (ruy and
    the optimized reference ops, board ``litert-builtin-<threads>t``): another cost structure on the same machine
    (about twice the time of XNNPACK for a conv net, with other ratios between ops)."""

    def __init__(self, threads: int = 1, warmup: int = 3, runs: int = 20, xnnpack: bool = True):
        if threads < 1 or warmup < 0 or runs < 1:
            raise LatencyError(f"threads and runs must be positive and warmup not negative "
                               f"(got threads={threads}, warmup={warmup}, runs={runs})")
        self.threads, self.warmup, self.runs, self.xnnpack = int(threads), int(warmup), int(runs), bool(xnnpack)
        self.name = f"litert-{'cpu' if xnnpack else 'builtin'}-{threads}t"

    def measure(self, model: str | Path) -> Measurement:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = Path(model)
        read_tflite(path)  # a clear error for a file that is not a TFLite model
        resolver = OpResolverType.AUTO if self.xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(model_path=str(path), num_threads=self.threads, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
        rng = np.random.default_rng(0)
        for d in interp.get_input_details():
            dt = np.dtype(d["dtype"])
            lo, hi = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind in "iu" else (0.0, 255.0)
            interp.set_tensor(d["index"], rng.uniform(lo, hi, d["shape"]).astype(dt))
        for _ in range(self.warmup):
            interp.invoke()
        times = np.empty(self.runs)
        for i in range(self.runs):
            t = time.perf_counter()
            interp.invoke()
            times[i] = (time.perf_counter() - t) * 1000.0
        q1, med, q3 = np.percentile(times, [25, 50, 75])
        return Measurement(path.name, self.name, float(med), self.runs, float(q1), float(q3))


_COLUMNS = ("model", "median_ms")


class FileBoard(Board):
    """Measurements imported from a file: CSV with a header, or YAML (a list of mappings, or ``measurements:``).

    Columns: ``model`` (the .tflite file name or its stem), ``median_ms``; optional ``runs`` (default 1),
    ``q1_ms``, ``q3_ms``, ``board``. Every row is validated when the file is read; errors name file, row and column.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"file:{self.path.name}"
        self._rows = {m.model: m for m in self._read()}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def measurements(self) -> list[Measurement]:
        return list(self._rows.values())

    def _read(self) -> list[Measurement]:
        if not self.path.exists():
            raise LatencyError(f"measurements file not found: {self.path}")
        text = self.path.read_text(encoding="utf-8")
        if self.path.suffix.lower() == ".csv":
            reader = csv.DictReader(text.splitlines())
            rows = list(reader)
            header = set(reader.fieldnames or [])
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise LatencyError(f"{self.path}: not valid YAML ({str(exc).splitlines()[0]})") from None
            rows = data.get("measurements") if isinstance(data, dict) else data
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise LatencyError(f"{self.path}: expected a list of measurements (mappings)")
            header = set().union(*(r.keys() for r in rows)) if rows else set()
        missing = [c for c in _COLUMNS if c not in header]
        if missing:
            raise LatencyError(f"{self.path}: missing column(s) {', '.join(missing)} (need {', '.join(_COLUMNS)})")
        if not rows:
            raise LatencyError(f"{self.path}: no measurements")
        out = []
        for i, row in enumerate(rows, start=2 if self.path.suffix.lower() == ".csv" else 1):
            where = f"{self.path} row {i}"

            def num(col: str, kind=float, required=False):
                v = row.get(col)
                if v is None or (isinstance(v, str) and not v.strip()):
                    if required:
                        raise LatencyError(f"{where}: column {col} is empty")
                    return None
                try:
                    x = kind(v)
                except (TypeError, ValueError):
                    raise LatencyError(f"{where}: column {col} is not a number: {v!r}") from None
                if kind is float and not math.isfinite(x):
                    raise LatencyError(f"{where}: column {col} is not finite: {v!r}")
                return x

            model = str(row.get("model") or "").strip()
            if not model:
                raise LatencyError(f"{where}: column model is empty")
            try:
                out.append(Measurement(Path(model).stem, str(row.get("board") or self.name), num("median_ms", required=True),
                                       num("runs", int) or 1, num("q1_ms"), num("q3_ms")))
            except LatencyError as exc:
                raise LatencyError(f"{where}: {exc}") from None
        return out

    def measure(self, model: str | Path) -> Measurement:
        key = Path(model).stem
        if key not in self._rows:
            raise LatencyError(f"{self.path} has no measurement for {Path(model).name}")
        return self._rows[key]
