"""Where a study's trials run: the :class:`Executor` contract, its in-process and Ray executors, and the
:class:`ExecutorFactory` a study gets its executor from.

A study asks one :class:`ExecutorFactory` for its executor. :class:`TrainingExecutors` (the default) trains every
trial: in the driver's process for one worker without a Ray address, as Ray tasks otherwise. Other factories answer
trials without training them (the benchmark tables of :mod:`nas.benchmark`, the synthetic executor of the driver's
tests): the study is the same, only where its results come from differs.
"""

from __future__ import annotations

import abc
from typing import Any

from nas.search.executors._base import Executor, OnReport, run_jobs
from nas.search.executors._local import InProcessExecutor
from nas.search.executors._ray import TRIALS_PER_WORKER, RayExecutor

__all__ = ["Executor", "OnReport", "run_jobs", "InProcessExecutor", "RayExecutor", "TRIALS_PER_WORKER", "ExecutorFactory",
           "TrainingExecutors"]


class ExecutorFactory(abc.ABC):
    """How a study gets its executor (the one seam for where its trials are answered).

    Contract: :attr:`trains` says whether the trials train on the study's images (the driver then loads and checks
    them before the study starts, and hands them to :meth:`make`); :meth:`check` raises :class:`~nas.errors.NasError`
    when the factory cannot serve the study (before the study is touched); :meth:`references` gives the baselines
    drawn on a new study's front, or None for bicubic on the study's validation images; :meth:`make` returns the
    executor and the TensorFlow threads of each of its jobs (None: TensorFlow's default).
    """

    trains: bool = True

    def check(self, config, space) -> None:
        """Raise when this factory cannot answer the study ``config`` describes (nothing by default)."""

    def references(self) -> dict[str, float] | None:
        """The baselines of a new study's front (None: bicubic on the study's validation images)."""
        return None

    @abc.abstractmethod
    def make(self, config, on_report: OnReport, images: Any) -> tuple[Executor, int | None]:
        """The executor of the study ``config`` describes; ``images``: its (train, valid) images, or None when
        :attr:`trains` is False."""


class TrainingExecutors(ExecutorFactory):
    """Trials that train: in this process for one worker without a Ray address (a trial may then use every core
    unless the config says otherwise), Ray tasks otherwise (each trial uses what it reserved)."""

    def make(self, config, on_report: OnReport, images: Any) -> tuple[Executor, int | None]:
        if config.workers == 1 and not config.ray_address:
            return InProcessExecutor(on_report, images=images), config.resources.threads
        board = config.latency.measure.resource if config.latency.board else None  # the closed loop's board node
        return (RayExecutor(workers=config.workers, cpus=config.resources.cpus, gpus=config.resources.gpus,
                            address=config.ray_address, retries=config.trial_retries, on_report=on_report,
                            resources={board: 1} if board else None),
                config.resources.tf_threads)
