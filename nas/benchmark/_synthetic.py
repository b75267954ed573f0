"""A synthetic executor: trials that finish at once with canned outcomes, for measuring and testing the driver.

Nothing is trained. A spec's INT8 PSNR is a fixed function of its choices (wider and deeper is better, with a
deterministic per-spec spread), its validation curve rises to it, and :meth:`SyntheticExecutor.poll` reports every
curve point to the driver (so pruning runs as it would) before the trial completes. ``behaviour(job, attempt)`` may
turn a trial into a crash, a lost worker or an infeasible spec; ``capacity`` jobs run at once and each poll
finishes the oldest ones, as a busy cluster would.
"""

from __future__ import annotations

import collections
import hashlib
import math
from typing import Callable

from nas.search import Cause, TrialJob, TrialOutcome
from nas.search.executors import Executor, ExecutorFactory, OnReport

__all__ = ["SyntheticExecutor", "SyntheticExecutors", "synthetic_psnr"]

Behaviour = Callable[[TrialJob, int], "Cause | None"]


def synthetic_psnr(spec) -> float:
    """A made-up but stable INT8 PSNR for ``spec``: 28 dB plus width and depth terms plus up to 0.3 dB of noise
    fixed by the spec's hash."""
    noise = int(hashlib.sha256(spec.hash.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return 28.0 + 0.35 * math.log2(spec.width / 16) + 0.08 * min(spec.depth, 8) + 0.3 * noise


class SyntheticExecutor(Executor):
    """Canned outcomes (see the module docstring); ``per_poll`` jobs finish per :meth:`poll`."""

    def __init__(self, on_report: OnReport | None = None, capacity: int = 1, per_poll: int = 1,
                 behaviour: Behaviour | None = None, steps: tuple[int, ...] = (100, 200, 300)):
        super().__init__(on_report)
        self.capacity = capacity
        self.per_poll = per_poll
        self.behaviour = behaviour or (lambda job, n: None)
        self.steps = steps
        self._queue: collections.deque[TrialJob] = collections.deque()
        self.submitted: list[TrialJob] = []
        self._seen: collections.Counter[str] = collections.Counter()  # spec hash -> times run

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)
        self.submitted.append(job)

    def running(self) -> list[int]:
        return [j.number for j in self._queue]

    def poll(self, timeout: float) -> list[TrialOutcome]:
        out = []
        for _ in range(min(self.per_poll, len(self._queue))):
            out.append(self._run(self._queue.popleft()))
        return out

    def _run(self, job: TrialJob) -> TrialOutcome:
        self._seen[job.spec.hash] += 1
        cause = self.behaviour(job, self._seen[job.spec.hash])
        if cause is not None:
            cause = Cause(cause)
            return TrialOutcome(job.number, "failed", f"synthetic {cause.value}", cause=cause)
        final = synthetic_psnr(job.spec)
        curve = []
        for i, step in enumerate(self.steps, 1):
            value = 27.77 + (final - 27.77) * i / len(self.steps)
            curve.append((step, value))
            if step < self.steps[-1] and self.on_report(job.number, step, value):
                return TrialOutcome(job.number, "pruned", f"pruned at step {step}: validation PSNR {value:.2f} dB",
                                    curve=tuple(curve))
        metrics = {"int8_psnr": final, "int8_ssim": 0.8, "fp32_psnr": final + 0.05, "fp32_ssim": 0.8,
                   "int8_drop_db": 0.05}
        return TrialOutcome(job.number, "complete", "", metrics, tuple(curve), {"train": 0.0}, {})

    def describe(self) -> str:
        return f"synthetic ({self.capacity} at once)"


class SyntheticExecutors(ExecutorFactory):
    """The :class:`~nas.search.executors.ExecutorFactory` of a study answered by :class:`SyntheticExecutor` (the
    keyword arguments are its own); :attr:`made` holds every executor it made (one per driver run)."""

    trains = False

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.made: list[SyntheticExecutor] = []

    def make(self, config, on_report: OnReport, images) -> tuple[Executor, int | None]:
        self.made.append(SyntheticExecutor(on_report, **self.kwargs))
        return self.made[-1], config.resources.tf_threads
