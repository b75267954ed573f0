"""Trials in the driver's own process, one at a time (the default for one worker: no Ray start-up)."""

from __future__ import annotations

import time

from nas.export import PersistentConverter
from nas.search._trial import TrialJob, TrialOutcome, run_trial
from nas.search.executors._base import Executor, OnReport

__all__ = ["InProcessExecutor"]


class InProcessExecutor(Executor):
    """One trial at a time, in the driver's process (the default for one worker: no Ray start-up)."""

    capacity = 1

    def __init__(self, on_report: OnReport | None = None, converter_jobs: int = 16, images=None):
        super().__init__(on_report)
        self._queue: list[TrialJob] = []
        self._images = images  # (train, valid) decoded once by the driver
        # one converter process serves many trials (TensorFlow starts once per `converter_jobs` models)
        self._converter = PersistentConverter(max_jobs=converter_jobs)

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def running(self) -> list[int]:
        return [j.number for j in self._queue]

    def poll(self, timeout: float) -> list[TrialOutcome]:
        if not self._queue:
            time.sleep(min(timeout, 0.05))
            return []
        job = self._queue.pop(0)
        return [run_trial(job, self.on_report, self._converter, self._images)]

    def close(self) -> None:
        self._converter.close()

    def describe(self) -> str:
        return "in-process (1 worker)"
