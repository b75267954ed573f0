"""The executor contract: the one extension point between the study and where its trials run.

An :class:`Executor` sits between the study (which asks Optuna for specs and writes every result) and the workers
(which only compute). Its contract:

* :meth:`Executor.submit` hands over a :class:`~nas.search.TrialJob` and returns at once (the in-process
  executor runs it in the next :meth:`~Executor.poll`);
* :meth:`Executor.poll` waits at most ``timeout`` seconds and returns the :class:`~nas.search.TrialOutcome` of every
  job that finished; while jobs run, each intermediate validation value is passed to ``on_report(number, step,
  psnr)`` *in the driver's thread*, and a True answer stops that trial at its next step (it comes back pruned);
* a job whose worker process died is run again up to ``retries`` times, then comes back failed with the reason:
  a job is never lost;
* :meth:`Executor.close` gives back what the executor started (a local Ray, never a cluster it joined).
"""

from __future__ import annotations

import abc
from typing import Callable, Iterable

from nas.search._trial import TrialJob, TrialOutcome

__all__ = ["Executor", "OnReport", "run_jobs"]

OnReport = Callable[[int, int, float], bool]


class Executor(abc.ABC):
    """Runs trial jobs (see the module docstring for the contract)."""

    #: how many jobs may run at once
    capacity: int = 1

    def __init__(self, on_report: OnReport | None = None):
        self.on_report = on_report or (lambda number, step, value: False)

    @abc.abstractmethod
    def submit(self, job: TrialJob) -> None:
        """Start ``job`` (or queue it); never blocks for long."""

    @abc.abstractmethod
    def running(self) -> list[int]:
        """Numbers of the trials submitted and not yet returned by :meth:`poll`."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[TrialOutcome]:
        """Outcomes of the jobs that finished (waiting at most ``timeout`` seconds for one)."""

    def close(self) -> None:
        """Release what this executor started."""

    def describe(self) -> str:
        return type(self).__name__

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_jobs(executor: Executor, jobs: Iterable[TrialJob], on_outcome: Callable[[TrialOutcome], None],
             poll_s: float = 5.0) -> None:
    """Run ``jobs`` on ``executor`` in their order, at most its capacity at once, until every one has come back;
    ``on_outcome`` hears each outcome as it arrives (in the caller's thread). For work that is not a study's trials
    (``nas proxy check``'s trainings): a study's driver asks Optuna between submissions instead."""
    pending = list(jobs)
    while pending or executor.running():
        while pending and len(executor.running()) < executor.capacity:
            executor.submit(pending.pop(0))
        for outcome in executor.poll(poll_s):
            on_outcome(outcome)
