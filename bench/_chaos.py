"""A study driver for the chaos bench: ``nas search CONFIG --json`` for a table study, except that its simulated
workers die at random.

    python -m bench._chaos CONFIG --loss 0.05 --ledger FILE [--seed 0]

A benchmark table's workers are simulated (nothing runs in another process), so a killed worker is simulated too:
a trial that would complete comes back instead as Ray reports a worker process that died after Ray's own retries
(``failed``, cause ``worker_lost``), and the driver's policy decides what a lost worker costs (a new attempt while
``trial_retries`` allows, then a failed trial). Which trials lose their worker is drawn from ``--seed`` and the
spec's hash and attempt, and every loss is written to the ledger (atomically) before the driver hears of it, so a
driver killed and started again, and a run never interrupted, lose the same workers: their evaluated specs and
fronts can be compared. A real Ray worker killed with SIGKILL is
``tests/search/test_ray_cluster.py::test_a_killed_ray_worker_costs_only_a_retry``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from bench._harness import read_result, write_result
from nas.benchmark import TableExecutors
from nas.search import Cause, TrialJob, TrialOutcome
from nas.search.executors import Executor

__all__ = ["LosingWorkers"]


class LosingWorkers(TableExecutors):
    """A table study whose simulated workers die: the trial of a spec loses its worker when a draw from (``seed``,
    spec hash, how often that spec lost one before) falls under ``rate``; ``ledger`` (a JSON file: spec hash -> losses)
    keeps the count across driver runs."""

    def __init__(self, rate: float, ledger: Path, seed: int = 0):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"a worker loss rate is in [0, 1), got {rate}")
        self.rate, self.ledger, self.seed = rate, Path(ledger), seed

    def make(self, config, on_report, images):
        inner, threads = super().make(config, on_report, images)
        return _Losing(inner, self), threads


class _Losing(Executor):
    def __init__(self, inner: Executor, how: LosingWorkers):
        super().__init__(inner.on_report)
        self.inner, self.how = inner, how
        self.capacity = inner.capacity
        self.losses: dict[str, int] = read_result(how.ledger, {})
        self._spec: dict[int, str] = {}

    def _draw(self, spec_hash: str, before: int) -> float:
        digest = hashlib.sha256(f"{self.how.seed}:{spec_hash}:{before}".encode()).hexdigest()
        return int(digest[:12], 16) / float(16 ** 12)

    def submit(self, job: TrialJob) -> None:
        self._spec[job.number] = job.spec.hash
        self.inner.submit(job)

    def running(self) -> list[int]:
        return self.inner.running()

    def poll(self, timeout: float) -> list[TrialOutcome]:
        out = []
        for o in self.inner.poll(timeout):
            h = self._spec.pop(o.number, "")
            before = self.losses.get(h, 0)
            if o.state == "complete" and self._draw(h, before) < self.how.rate:
                self.losses[h] = before + 1
                write_result(self.how.ledger, self.losses)  # before the driver hears of it
                o = TrialOutcome(o.number, "failed", "worker lost (the chaos bench killed its simulated worker)",
                                 seconds=o.seconds, worker=o.worker, cause=Cause.WORKER_LOST)
            out.append(o)
        return out

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return f"{self.inner.describe()}; workers lost at rate {self.how.rate:g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--loss", type=float, default=0.05, help="the chance that a trial's worker dies")
    ap.add_argument("--ledger", required=True, help="a JSON file counting each spec's lost workers")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from nas.search import load_search_config, run_search

    cfg = load_search_config(a.config)
    summary = run_search(cfg, executors=LosingWorkers(a.loss, Path(a.ledger), a.seed))
    sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
