"""Calibration: choose diverse specs, export and measure them on a board, and fit a latency model.

Work is kept in a folder (``models/<hash>.tflite`` and ``measurements.csv``, one row appended per measured model),
so an interrupted calibration picks up where it stopped and a measurement is never taken twice.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nas._files import atomic_write, write_json
from nas._logging import get_logger
from nas.errors import LatencyError, faults_named
from nas.export import PersistentConverter, export_int8
from nas.latency._board import Board, Measurement
from nas.latency._model import Sample, fit_model
from nas.space import ArchSpec, SearchSpace, deploy_ops

__all__ = ["select_specs", "measure_specs", "specs_of", "calibrate", "CalibrationEvent"]

log = get_logger("latency")

_CSV_COLUMNS = ("hash", "model", "board", "median_ms", "runs", "q1_ms", "q3_ms", "spec")


def _coords(spec: ArchSpec, space: SearchSpace) -> np.ndarray:
    """A point per spec for space-filling: width, depth, log MACs, and the categorical choices one-hot."""

    def unit(v: float, lo: float, hi: float) -> float:
        return 0.0 if hi <= lo else (v - lo) / (hi - lo)

    macs = sum(o.macs for o in deploy_ops(spec, 8, 8))
    ws = spec.feature_widths
    x = [unit(float(np.mean(ws)), space.width.min, space.width.max), unit(spec.depth, space.depth.min, space.depth.max),
         math.log(max(macs, 1))]
    if space.width.per_layer:  # how unequal the widths are (0 for a uniform net)
        x.append(unit(float(np.std(ws)), 0.0, (space.width.max - space.width.min) / 2))
    for field in ("skip", "clip_where", "clip_kind"):
        choices = getattr(space, field).choices
        x += [0.5 * (getattr(spec, field) is c) for c in choices]
    x += [0.5 * (spec.tail == t) for t in space.tail.choices]
    return np.array(x, float)


def select_specs(space: SearchSpace, n: int, *, seed: int = 0, exclude: Sequence[ArchSpec] = ()) -> list[ArchSpec]:
    """``n`` specs spread over ``space``: greedy max-min distance over its distinct deployed graphs.

    The first spec is drawn with ``seed``; each next one is the candidate farthest from all chosen so far (width,
    depth and log MACs scaled to [0, 1], each categorical choice one-hot at half weight), so the extremes and the
    middle of every dimension are measured rather than what a random draw happens to hit. Specs whose deployed graph
    equals one in ``exclude`` are not chosen.
    """
    if n < 1:
        raise LatencyError(f"the number of specs to calibrate on must be positive, got {n}")
    candidates = space.deployed_variants()
    skip = {graph_key(s) for s in exclude}
    candidates = [s for s in candidates if graph_key(s) not in skip]
    if n > len(candidates):
        raise LatencyError(f"space '{space.name}' has {len(candidates)} distinct deployed graphs left, fewer than {n}")
    X = np.stack([_coords(s, space) for s in candidates])
    span = X.max(axis=0) - X.min(axis=0)
    X[:, 2] = (X[:, 2] - X[:, 2].min()) / (span[2] or 1.0)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(candidates)))]
    dist = np.linalg.norm(X - X[chosen[0]], axis=1)
    noise = rng.uniform(0, 1e-9, len(candidates))  # seeded tie-breaking
    while len(chosen) < n:
        i = int(np.argmax(dist + noise))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(X - X[i], axis=1))
    return [candidates[i] for i in chosen]


def graph_key(spec: ArchSpec) -> tuple:
    """What makes two specs one deployed graph for latency: their ops' types, shapes, channels and kernels."""
    return tuple((o.type, o.out_shape, o.in_channels, o.kernel) for o in deploy_ops(spec, 8, 8))


@dataclasses.dataclass(frozen=True)
class CalibrationEvent:
    """Progress of :func:`measure_specs`: ``phase`` is ``export`` or ``measure``; ``done`` of ``total`` in it."""

    phase: str
    done: int
    total: int
    spec: ArchSpec
    measurement: Measurement | None = None


def _read_rows(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["hash"]: row for row in csv.DictReader(fh)}


def measure_specs(specs: Sequence[ArchSpec], board: Board | None, work_dir: str | Path, *, input_hw: tuple[int, int],
                  rounds: int = 2, callback: Callable[[CalibrationEvent], None] | None = None) -> list[Sample]:
    """Export every spec to INT8 (once), then measure each on ``board`` and return the fitting samples.

    Exports run first and all measurements after them, so no conversion competes with a timing. Each model is timed
    in ``rounds`` interleaved rounds and keeps its fastest median (background load only ever adds time). Results
    are appended to ``work_dir/measurements.csv`` as they come; specs already there are not measured again.
    With ``board=None`` the specs are only exported (``work_dir/models/<hash>.tflite``, listed in
    ``work_dir/specs.csv``) for timing elsewhere, and nothing is returned.
    """
    if rounds < 1:
        raise LatencyError(f"rounds must be positive, got {rounds}")
    work = Path(work_dir)
    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    table = work / "measurements.csv"
    unique = list({s.hash: s for s in specs}.values())
    if board is None:
        _export_all(unique, models, input_hw, callback)
        listing = io.StringIO()
        writer = csv.writer(listing)
        writer.writerow(("model", "spec"))
        writer.writerows((f"{s.hash}.tflite", s.to_json()) for s in unique)
        with atomic_write(work / "specs.csv") as fh:
            fh.write(listing.getvalue().encode())
        return []
    identity = {"board": board.name, "input_hw": [int(v) for v in input_hw]}
    marker = work / "calibration.json"
    if marker.exists():  # measurements belong to one board and one input size
        had = json.loads(marker.read_text(encoding="utf-8"))
        if had != identity:
            raise LatencyError(f"{work} holds measurements of {had['board']} at {had['input_hw'][0]}x"
                               f"{had['input_hw'][1]}, not {board.name} at {input_hw[0]}x{input_hw[1]}; "
                               f"use another work folder")
    else:
        write_json(marker, identity)
    done = _read_rows(table)
    todo = [s for s in unique if s.hash not in done]
    _export_all(todo, models, input_hw, callback)
    best: dict[str, Measurement] = {}
    for r in range(rounds):
        for i, spec in enumerate(todo):
            m = board.measure(models / f"{spec.hash}.tflite")
            if spec.hash not in best or m.median_ms < best[spec.hash].median_ms:
                best[spec.hash] = m
            if r == rounds - 1:
                _append(table, spec, best[spec.hash])
            if callback:
                callback(CalibrationEvent("measure", r * len(todo) + i + 1, rounds * len(todo), spec, m))
    rows = _read_rows(table)
    samples = []
    for spec in unique:
        row = rows[spec.hash]
        samples.append(Sample(spec.hash, deploy_ops(spec, *input_hw), float(row["median_ms"])))
    return samples


def _export_all(specs: Sequence[ArchSpec], models: Path, input_hw: tuple[int, int],
                callback: Callable[[CalibrationEvent], None] | None) -> None:
    converter = PersistentConverter(max_jobs=16)  # one converter process for 16 models (TensorFlow starts once)
    try:
        for i, spec in enumerate(specs):
            path = models / f"{spec.hash}.tflite"
            if not path.exists():  # an export is written under a temporary name and renamed: present means complete
                export_int8(spec, path, input_hw=input_hw, n_calibration=1, require_pass=False, converter=converter)
            if callback:
                callback(CalibrationEvent("export", i + 1, len(specs), spec))
    finally:
        converter.close()


def _append(table: Path, spec: ArchSpec, m: Measurement) -> None:
    new = not table.exists()
    with open(table, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(_CSV_COLUMNS)
        writer.writerow([spec.hash, m.model, m.board, f"{m.median_ms:.6g}", m.runs,
                         "" if m.q1_ms is None else f"{m.q1_ms:.6g}", "" if m.q3_ms is None else f"{m.q3_ms:.6g}",
                         spec.to_json()])
        fh.flush()


def specs_of(work_dir: str | Path) -> list[ArchSpec]:
    """The specs measured in a calibration folder, in measurement order."""
    return [ArchSpec.from_json(row["spec"]) for row in _read_rows(Path(work_dir) / "measurements.csv").values()]



def calibrate(board: Board, space: SearchSpace, n: int, out: str | Path, *, input_hw: tuple[int, int],
              work_dir: str | Path, alignment: int | None = None, folds: int = 5, rounds: int = 2, seed: int = 0,
              peak_tops: float | None = None, bandwidth_gbs: float | None = None,
              callback: Callable[[CalibrationEvent], None] | None = None, prior=None):
    """Choose ``n`` space-filling specs, export and measure them on ``board``, fit, save to ``out`` and return the
    model (its metadata holds the k-fold accuracy beside the MACs-only and parameters-only fits).

    ``prior``: a :class:`~nas.latency.LatencyModel` of another board to start from (few-shot calibration: about
    ten measurements adjust its cost structure; see :func:`~nas.latency.fit_model`). The n specs are the first n
    of the space-filling sequence: the extremes and the middle of width, depth and MACs, and every skip, clip and
    tail choice, before anything else.

    With ``board=None`` the chosen specs are only exported to ``work_dir/models`` for timing elsewhere (returns None);
    calibrating again with a :class:`FileBoard` of those timings fits the model.
    """
    out = Path(out)
    if out.suffix != ".json":
        raise LatencyError(f"the latency model is written as .json, not {out.name}")
    specs = select_specs(space, n, seed=seed)
    with faults_named(f"the latency work folder {work_dir}"):  # (a full disk: one line; the same command resumes)
        samples = measure_specs(specs, board, work_dir, input_hw=input_hw, rounds=rounds, callback=callback)
    if board is None:
        return None
    model = fit_model(samples, kind="ops", board=board.name, input_hw=input_hw, alignment=alignment,
                      peak_tops=peak_tops, bandwidth_gbs=bandwidth_gbs, folds=min(folds, len(samples)), seed=seed,
                      prior=prior,
                      source=f"nas latency calibrate: {len(samples)} specs of space '{space.name}' measured on "
                             f"{board.name}" + (f", starting from the model of {prior.board}" if prior else ""))
    model.meta["space"] = space.name
    with faults_named(f"the latency model {out}"):
        model.save(out)
    return model
