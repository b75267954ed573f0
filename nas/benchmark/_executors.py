"""Executors that answer a study's trials from a benchmark table instead of training them.

:class:`TableExecutor` is an :class:`~nas.search.executors.Executor` whose trials look their results up in a
:class:`~nas.benchmark.BenchTable`: the same driver, storage, constraints, pessimistic latency and (optional) MLflow
logging run on it. It simulates ``capacity`` workers: each trial takes its row's training seconds on a simulated
clock, its validation curve is reported to the pruner at the simulated times, and :meth:`TableExecutor.poll` returns
the trial that finishes first, so asynchronous arrivals of parallel workers are reproduced exactly and
deterministically.

A spec the table lacks gets the result of its nearest row (``missing="nearest"``: the distance counts width and
depth steps and differing choices; the outcome says which row and how far) or fails (``missing="fail"``). A
spec's latency is always its own prediction, so a sampler can exploit the nearest-row rule: a small spec next to a
larger row borrows that row's PSNR at its own, lower latency (``python -m bench.samplers`` measures how much, by
counting each trial also as the row that answered it).

:class:`TableExecutors` and :class:`ReplayExecutors` are the :class:`~nas.search.executors.ExecutorFactory` of a
study answered from a table, and of a table study going on from its CSV.
"""

from __future__ import annotations

import heapq
from typing import Any, Literal

from nas.benchmark._table import BenchTable, TableRow, space_digest
from nas.errors import SearchError
from nas.model import result_forms
from nas.search import Cause, TrialJob, TrialOutcome
from nas.search.executors import Executor, ExecutorFactory, OnReport, TrainingExecutors

__all__ = ["TableExecutor", "ReplayExecutor", "TableExecutors", "ReplayExecutors"]


def _row_outcome(job: TrialJob, row: TableRow, seconds: float, worker: str, extra: dict) -> TrialOutcome:
    """A trial's outcome as ``row`` records it: complete with the row's metrics and curve, or failed infeasible."""
    if row.state != "complete":
        return TrialOutcome(job.number, "failed", row.reason, seconds={"train": seconds}, worker=worker,
                            cause=Cause.INFEASIBLE)
    # (as current as the row it came from: a spec the table lacks is answered from its nearest row, another spec)
    return TrialOutcome(job.number, "complete", "", row.metrics() | extra, row.curve, {"train": seconds}, {}, worker,
                        forms=result_forms(job.spec) if row.current else "")


class ReplayExecutor(Executor):
    """Another executor, except that the specs ``table`` holds are answered from it at once (with the training
    seconds it recorded) instead of being trained again: how a table study goes on from its CSV on a machine that
    does not hold the study (a fresh clone, another computer). Answers from the table come back at the next
    :meth:`poll` and are not reported to the pruner (a table study prunes nothing); everything else is ``inner``'s,
    rows measured with an earlier training form or INT8 export included (:attr:`TableRow.current`): those are
    measured again, so a table made on after such a change re-makes them. :attr:`replayed` counts the answers,
    :attr:`remade` the rows measured again."""

    def __init__(self, inner: Executor, table: "BenchTable"):
        super().__init__(inner.on_report)
        self.inner, self.table = inner, table
        self.capacity = inner.capacity
        self.replayed = self.remade = 0
        self._ready: list[TrialOutcome] = []

    def submit(self, job: TrialJob) -> None:
        row = self.table.get(job.spec)
        if row is None or not row.current:
            self.remade += row is not None
            self.inner.submit(job)
            return
        self.replayed += 1
        self._ready.append(_row_outcome(job, row, row.train_s or 0.0, "table (replayed)", {}))

    def running(self) -> list[int]:
        return self.inner.running() + [o.number for o in self._ready]

    def poll(self, timeout: float) -> list[TrialOutcome]:
        if self._ready:  # (not inner's poll as well: the in-process executor trains in it, whatever the timeout)
            ready, self._ready = self._ready, []
            return ready
        return self.inner.poll(timeout)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return (f"{self.inner.describe()}; {self.replayed} specs answered from a table of {len(self.table)}"
                + (f", {self.remade} of its rows measured again (made before today's training form or INT8 export)"
                   if self.remade else ""))


class TableExecutor(Executor):
    """Trials answered from a :class:`BenchTable` on a simulated clock (see the module docstring).

    ``capacity`` trials run at once; a trial takes its row's ``train_s`` (``default_s`` when the row has none) of
    simulated time; :attr:`clock` is the simulated time of the last event; :attr:`answered` maps each trial to the
    row that answered it. ``missing``: what a spec the table lacks
    gets ("nearest": the nearest row's result, "fail": a failed trial)."""

    def __init__(self, table: BenchTable, on_report: OnReport | None = None, capacity: int = 1,
                 missing: Literal["nearest", "fail"] = "nearest", default_s: float = 60.0):
        super().__init__(on_report)
        if capacity < 1:
            raise SearchError(f"a table executor needs capacity >= 1, got {capacity}")
        if missing not in ("nearest", "fail"):
            raise SearchError(f"missing must be 'nearest' or 'fail', got {missing!r}")
        self.table, self.capacity, self.missing, self.default_s = table, capacity, missing, default_s
        self.clock = 0.0
        self.lookups = {"exact": 0, "nearest": 0, "missing": 0}
        self.answered: dict[int, TableRow] = {}  # trial number -> the row that answers it (exact or nearest)
        self._events: list[tuple[float, int, int, int]] = []  # (time, order, trial number, curve index)
        self._jobs: dict[int, tuple[TrialJob, TableRow | None, float, float]] = {}  # number -> job, row, dist, start
        self._order = 0

    def submit(self, job: TrialJob) -> None:
        if len(self._jobs) >= self.capacity:
            raise SearchError(f"table executor: {len(self._jobs)} trials already run on {self.capacity} workers")
        row, dist = self._lookup(job.spec)
        if row is not None:
            self.answered[job.number] = row
        self._jobs[job.number] = (job, row, dist, self.clock)
        first = 0 if row is not None and row.state == "complete" and row.curve else -1
        self._push(job.number, first)

    def _lookup(self, spec) -> tuple[TableRow | None, float]:
        """The row that answers ``spec`` and its distance (None: a spec the table lacks, with ``missing="fail"``)."""
        row, dist = self.table.nearest(spec)
        if dist > 0 and self.missing == "fail":
            row = None
        self.lookups["exact" if dist == 0 else "nearest" if row is not None else "missing"] += 1
        return row, dist

    def _duration(self, row: TableRow | None) -> float:
        return row.train_s if row is not None and row.train_s else self.default_s

    def _push(self, number: int, index: int) -> None:
        job, row, _, start = self._jobs[number]
        dur = self._duration(row)
        if index >= 0:
            last = row.curve[-1][0]
            t = start + dur * row.curve[index][0] / max(last, 1)
        else:
            t = start + dur
        self._order += 1
        heapq.heappush(self._events, (t, self._order, number, index))

    def running(self) -> list[int]:
        return list(self._jobs)

    def poll(self, timeout: float) -> list[TrialOutcome]:
        while self._events:
            t, _, number, index = heapq.heappop(self._events)
            self.clock = max(self.clock, t)
            job, row, dist, start = self._jobs[number]
            if index >= 0 and index < len(row.curve) - 1:  # an intermediate report: the pruner may stop it here
                step, value = row.curve[index]
                if self.on_report(number, step, value):
                    del self._jobs[number]
                    return [TrialOutcome(number, "pruned", f"pruned at step {step}: validation PSNR {value:.2f} dB",
                                         curve=row.curve[:index + 1], seconds={"train": t - start},
                                         worker="table")]
                self._push(number, index + 1)
                continue
            if index >= 0:  # the final validation: the pruner sees the whole curve (as from a trained trial)
                self.on_report(number, *row.curve[index])
            del self._jobs[number]
            return [self._outcome(job, row, dist, t - start)]
        return []

    def _outcome(self, job: TrialJob, row: TableRow | None, dist: float, seconds: float) -> TrialOutcome:
        if row is None:
            return TrialOutcome(job.number, "failed", f"spec {job.spec.hash} ({job.spec.describe()}) is not in the "
                                "benchmark table", seconds={"train": seconds}, worker="table", cause=Cause.INFEASIBLE)
        return _row_outcome(job, row, seconds, "table", {"table_distance": dist})

    def describe(self) -> str:
        return f"benchmark table of {len(self.table)} specs ({self.capacity} simulated workers)"


class TableExecutors(ExecutorFactory):
    """A study whose trials are answered from ``table`` (read from the config's ``table`` when not given) on
    ``config.workers`` simulated workers; the table must have been made on the study's space. :attr:`made` holds
    every executor it made (one per driver run)."""

    trains = False

    def __init__(self, table: BenchTable | None = None, missing: Literal["nearest", "fail"] = "nearest"):
        self.table, self.missing = table, missing
        self.made: list[TableExecutor] = []

    def _table(self, config) -> BenchTable:
        if self.table is None:
            if not config.table:
                raise SearchError("a table study needs a benchmark table: set 'table' in the config")
            self.table = BenchTable.read_csv(config.table)
        return self.table

    def check(self, config, space) -> None:
        table = self._table(config)
        made_on = table.meta.get("space_digest")
        if made_on != space_digest(space):
            raise SearchError(f"benchmark table {config.table or 'given'} was made on space "
                              f"'{table.meta.get('space')}' ({made_on}), not on this study's space '{config.space}' "
                              f"({space_digest(space)})")

    def references(self) -> dict[str, float] | None:
        return dict(self.table.meta.get("references") or {}) if self.table is not None else None

    def make(self, config, on_report: OnReport, images: Any) -> tuple[Executor, int | None]:
        self.made.append(TableExecutor(self._table(config), on_report, capacity=config.workers, missing=self.missing))
        return self.made[-1], None


class ReplayExecutors(ExecutorFactory):
    """``inner``'s executor (by default the training one), except that the specs ``table`` holds are answered from
    it (:class:`ReplayExecutor`)."""

    def __init__(self, table: BenchTable, inner: ExecutorFactory | None = None):
        self.table, self.inner = table, inner or TrainingExecutors()
        self.trains = self.inner.trains

    def check(self, config, space) -> None:
        self.inner.check(config, space)

    def references(self) -> dict[str, float] | None:
        return self.inner.references()

    def make(self, config, on_report: OnReport, images: Any) -> tuple[Executor, int | None]:
        executor, threads = self.inner.make(config, on_report, images)
        return ReplayExecutor(executor, self.table), threads
