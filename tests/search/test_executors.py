"""The executor contract (nas.search.executors): run_jobs, the in-process executor on a real trial, and the factory's
choice. The Ray executor has its own tests (test_ray_cluster.py, test_faults.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.benchmark import SyntheticExecutor, synthetic_psnr
from nas.search import Cause, SearchConfig, TrialJob
from nas.search import load_search_config
from nas.search.executors import InProcessExecutor, TrainingExecutors, run_jobs
from nas.space import ArchSpec

SPECS = [ArchSpec(width=16 * (1 + i % 3), depth=1 + i % 4, blocks="conv") for i in range(7)]


def _jobs(config, n=7):
    return [TrialJob(i, SPECS[i], config, (24, 32)) for i in range(n)]


def test_run_jobs_keeps_the_executor_at_its_capacity_and_returns_every_job():
    """A busy executor (3 at once, one finishing per poll, the fourth job's worker crashing) never holds more than
    its capacity, and every job comes back once, a failed one with its cause."""
    seen, peak = [], []
    ex = SyntheticExecutor(capacity=3, behaviour=lambda job, n: Cause.CRASH if job.number == 3 else None)
    real_submit = ex.submit

    def submit(job):
        real_submit(job)
        peak.append(len(ex.running()))

    ex.submit = submit
    run_jobs(ex, _jobs(SearchConfig()), seen.append, poll_s=0.0)
    assert sorted(o.number for o in seen) == list(range(7)) and max(peak) == 3
    assert [j.number for j in ex.submitted] == list(range(7))  # in their order
    bad = [o for o in seen if o.state != "complete"]
    assert [(o.number, o.cause) for o in bad] == [(3, Cause.CRASH)]
    assert all(o.metrics["int8_psnr"] == synthetic_psnr(SPECS[o.number]) for o in seen if o.state == "complete")


def test_the_factory_runs_one_worker_in_the_driver_process():
    """One worker without a Ray address: no Ray start-up; the trial gets the config's threads (None: every core).
    (More workers start Ray: test_ray_cluster.py.)"""
    one = SearchConfig(workers=1, resources={"threads": 2})
    ex, threads = TrainingExecutors().make(one, None, None)
    try:
        assert isinstance(ex, InProcessExecutor) and ex.capacity == 1 and threads == 2
    finally:
        ex.close()


@pytest.mark.slow
def test_the_in_process_executor_runs_a_real_trial_and_reports_its_curve(small_config):
    """One real trial (train, export INT8, evaluate) through the executor, its validation curve reported to the
    driver's callback in the driver's thread; answering True stops it (pruned)."""
    reports = []
    cfg = load_search_config(small_config())
    cfg = cfg.model_copy(update={"proxy": cfg.proxy.model_copy(update={"steps": 20, "eval_every": 5})})
    spec = ArchSpec(width=16, depth=1, blocks="conv")
    with InProcessExecutor(lambda n, step, v: reports.append((n, step)) or False) as ex:
        ex.submit(TrialJob(0, spec, cfg, (24, 32), 1))
        assert ex.running() == [0]
        (out,) = ex.poll(1.0)
        assert out.state == "complete" and ex.running() == []
        # (the final validation too: the pruner sees the whole curve)
        assert [s for _, s in reports] == [5, 10, 15, 20] and np.isfinite(out.metrics["int8_psnr"])
    with InProcessExecutor(lambda n, step, v: step >= 10) as ex:
        ex.submit(TrialJob(1, spec, cfg, (24, 32), 1))
        (out,) = ex.poll(1.0)
        assert out.state == "pruned" and out.cause is Cause.PRUNED and "step 10" in out.reason
