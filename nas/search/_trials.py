"""The driver's state as data: one table of the study's finished trials, and a value for each running one.

Everything else the driver knows follows from the table: the counts, the specs already evaluated (a spec asked
again reuses its result), the completed trials' curves (the Pareto pruning rule), the front's points and the best
point. The table indexes a trial as it is added and never changes a row; a re-score (the closed latency loop's
refit) makes a new table from re-scored rows, so no derived value is ever cleared or kept in step by hand.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator, Mapping

from optuna.trial import TrialState

from nas.evaluate import log2_score
from nas.search._objective import OUTCOMES, outcome_state
from nas.search._record import TrialRecord
from nas.search.pareto import FrontPoint

__all__ = ["FinishedTrial", "RunningTrial", "TrialTable", "front_point"]


@dataclasses.dataclass(frozen=True)
class FinishedTrial:
    """One finished trial: its record, its Optuna state and values (``None`` unless it completed)."""

    number: int
    record: TrialRecord
    state: TrialState
    values: Any = None

    @property
    def counted(self) -> bool:
        """Whether the trial counts towards the study's trials: a failed attempt that a later trial runs again
        (``superseded``) does not (the study holds its spec once)."""
        return not (self.state == TrialState.FAIL and self.record.superseded)

    @property
    def outcome(self) -> str:
        return outcome_state(self.state)


@dataclasses.dataclass(frozen=True)
class RunningTrial:
    """A trial handed to an executor: the live Optuna trial, its record so far and the driver's seconds asking it."""

    trial: Any  # optuna.trial.Trial (of the live copy)
    record: TrialRecord
    ask_seconds: float


def front_point(number: int, rec: TrialRecord, measured: Mapping[str, Any] | None = None) -> FrontPoint | None:
    """A completed trial as a front point (log2 score on the latency the search optimised); None for a duplicate
    (it is its original's point) or a trial without a result. ``measured``: spec hash -> its closed-loop
    measurement (:class:`~nas.latency.MeasuredTime`)."""
    psnr = rec.metrics.get("int8_psnr")
    if psnr is None or rec.duplicate_of is not None or rec.latency_objective_ms is None:
        return None
    t = (measured or {}).get(rec.hash)
    return FrontPoint(number=number, spec=rec.describe, hash=rec.hash, psnr=psnr, latency_ms=rec.latency_ms,
                      latency_sigma_ms=rec.latency_sigma_ms, latency_objective_ms=rec.latency_objective_ms,
                      log2_score=log2_score(psnr, rec.latency_objective_ms), outside_range=rec.outside_range,
                      warm_start=rec.warm_start, feasible=rec.feasible,
                      measured_ms=None if t is None else t.median_ms)


class TrialTable:
    """The study's finished trials by number and what follows from them (see the module docstring). ``measured``:
    the closed loop's measurements by spec hash, which the front's points carry."""

    def __init__(self, rows: Iterable[FinishedTrial] = (), measured: Mapping[str, Any] | None = None):
        self._rows: dict[int, FinishedTrial] = {}
        self._measured = measured
        self._evaluated: dict[str, FinishedTrial] = {}
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._curves: list[tuple[float, tuple]] = []
        self._points: dict[int, FrontPoint] = {}
        self._best: FrontPoint | None = None
        for row in rows:
            self.add(row)

    def add(self, row: FinishedTrial) -> None:
        """A trial that has just finished (each number once)."""
        if row.number in self._rows:
            raise ValueError(f"trial {row.number} is already in the table")
        self._rows[row.number] = row
        if not row.counted:
            return
        self._counts[row.outcome] += 1
        rec, complete = row.record, row.state == TrialState.COMPLETE
        if rec.evaluated(complete):
            self._evaluated.setdefault(rec.hash, row)
        if complete and rec.duplicate_of is None:
            self._curves.append((rec.latency_objective_ms, rec.curve))
            point = front_point(row.number, rec, self._measured)
            if point is not None:
                self._points[row.number] = point
                if point.feasible and (self._best is None or point.log2_score > self._best.log2_score):
                    self._best = point

    def rescored(self, rescore: Callable[[FinishedTrial], FinishedTrial],
                 measured: Mapping[str, Any] | None = None) -> "TrialTable":
        """A new table of every row passed through ``rescore``, in trial order."""
        return TrialTable((rescore(self._rows[n]) for n in sorted(self._rows)), measured)

    # ------------------------------------------------------------------------------------------------- views
    def __contains__(self, number: int) -> bool:
        return number in self._rows

    def __getitem__(self, number: int) -> FinishedTrial:
        return self._rows[number]

    def __iter__(self) -> Iterator[FinishedTrial]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def counts(self) -> dict[str, int]:
        """Counted trials by outcome (complete, pruned, failed)."""
        return dict(self._counts)

    @property
    def finished(self) -> int:
        return sum(self._counts.values())

    def evaluated(self, spec_hash: str) -> FinishedTrial | None:
        """The first counted trial that evaluated the spec (completed, pruned or infeasible), if any."""
        return self._evaluated.get(spec_hash)

    @property
    def curves(self) -> list[tuple[float, tuple]]:
        """The completed trials' (objective latency, validation curve), for the Pareto pruning rule."""
        return self._curves

    @property
    def points(self) -> dict[int, FrontPoint]:
        """Completed trials' front points by number (a duplicate is its original's point)."""
        return self._points

    @property
    def best(self) -> FrontPoint | None:
        """The feasible point with the highest log2 score."""
        return self._best

    def records(self) -> dict[int, TrialRecord]:
        """Every finished trial's record by number."""
        return {n: r.record for n, r in self._rows.items()}
