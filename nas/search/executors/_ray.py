"""Trials as Ray tasks on a local Ray (started here) or a cluster."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from nas._logging import get_logger
from nas.errors import SearchError
from nas.export import InProcessConverter
from nas.search._record import Cause
from nas.search._trial import TrialJob, TrialOutcome, run_trial
from nas.search.executors._base import Executor, OnReport

__all__ = ["RayExecutor", "TRIALS_PER_WORKER"]

log = get_logger("search")

# Ray reads it at import: "0" on Linux makes Ray treat this machine as the whole cluster and bind to loopback
_LOOPBACK_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

class _Mailbox:
    """An async Ray actor between the workers and the driver: a worker posts its validation value and waits (up to
    a timeout) for the driver's decision; the driver drains the posts and decides."""

    def __init__(self) -> None:
        self._posts: list[tuple[int, int, float]] = []
        self._answers: dict[tuple[int, int], bool] = {}
        self._events: dict[tuple[int, int], asyncio.Event] = {}

    async def post(self, number: int, step: int, value: float, timeout: float) -> bool:
        key = (number, step)
        self._posts.append((number, step, value))
        event = self._events.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            self._events.pop(key, None)
            return False
        return self._answers.pop(key, False)

    async def drain(self) -> list[tuple[int, int, float]]:
        out, self._posts = self._posts, []
        return out

    async def decide(self, number: int, step: int, stop: bool) -> None:
        key = (number, step)
        self._answers[key] = bool(stop)
        event = self._events.pop(key, None)
        if event is not None:
            event.set()
        else:
            self._answers.pop(key, None)


def _ray_trial(job: TrialJob, mailbox) -> TrialOutcome:
    """The Ray task: run one trial, asking the driver (through the mailbox) whether to stop at each report.

    The INT8 conversion runs in the worker itself (TensorFlow is already loaded there): the converter's leak is
    bounded because Ray replaces a worker process after :data:`TRIALS_PER_WORKER` trials (``max_calls``).
    """
    import ray

    # Ray sets OMP_NUM_THREADS=1 in workers; TensorFlow's threads come from the job's config instead.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def report(number: int, step: int, value: float) -> bool:
        return bool(ray.get(mailbox.post.remote(number, step, value, 120.0)))

    return run_trial(job, report, InProcessConverter())


#: trials a Ray worker process runs before Ray replaces it (bounds the converter's memory leak)
TRIALS_PER_WORKER = 8


class RayExecutor(Executor):
    """Trials as Ray tasks, each with its own CPUs/GPUs, on a local Ray (started here) or a cluster (``address``).

    The address is passed to :func:`ray.init` explicitly (``RAY_ADDRESS`` is neither read nor set here).
    """

    def __init__(self, *, workers: int, cpus: float = 1.0, gpus: float = 0.0, address: str | None = None,
                 retries: int = 1, on_report: OnReport | None = None, resources: dict[str, float] | None = None):
        super().__init__(on_report)
        # A local Ray of our own listens on 127.0.0.1 only: Ray binds its servers to the machine's address unless it
        # runs in "single machine" mode, which this variable (read once, when Ray is imported) selects. A cluster
        # (``address``) is the user's to configure.
        bound_locally = not address and "ray" not in sys.modules
        saved = os.environ.get(_LOOPBACK_VAR)
        if bound_locally:
            os.environ[_LOOPBACK_VAR] = "0"
        try:
            import ray
        finally:
            if bound_locally:
                if saved is None:
                    os.environ.pop(_LOOPBACK_VAR, None)
                else:
                    os.environ[_LOOPBACK_VAR] = saved
        if not address and not bound_locally:
            log.warning("Ray was imported before the search started it: the local Ray listens on this machine's "
                        "address (protected by its token), not only on 127.0.0.1")

        self.capacity = int(workers)
        self.address = address
        self._started = False
        if ray.is_initialized():
            log.info("using the Ray this process already joined")
        else:
            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                      runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
            try:
                if address:
                    ray.init(address=address, **kw)
                else:
                    need = max(1, int(round(workers * cpus)))
                    ray.init(address="local", num_cpus=need, num_gpus=int(gpus * workers) if gpus else 0,
                             dashboard_host="127.0.0.1", resources=dict(resources or {}) or None, **kw)
            except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError, ValueError...
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                if "auth" in type(exc).__name__.lower() or "InvalidAuthToken" in str(exc):
                    raise SearchError(
                        f"{where} requires token authentication: run nas search with RAY_AUTH_MODE=token, as the "
                        "cluster's nodes were started, and its token in ~/.ray/auth_token (or RAY_AUTH_TOKEN)"
                    ) from None
                raise SearchError(f"cannot start or join {where}: {str(exc).strip().splitlines()[0]}") from None
            self._started = True
        have = ray.cluster_resources()
        if have.get("CPU", 0) < cpus:
            raise SearchError(f"a trial asks for {cpus:g} CPUs but the Ray cluster has {have.get('CPU', 0):g}")
        if gpus and have.get("GPU", 0) < gpus:
            raise SearchError(f"a trial asks for {gpus:g} GPUs but the Ray cluster has {have.get('GPU', 0):g}")
        for name in resources or {}:
            if have.get(name, 0) < 1:
                raise SearchError(f"no node of the Ray cluster has the resource '{name}' (the board's node starts "
                                  f"with: ray start ... --resources '{{\"{name}\": 1}}')")
        self._nodes = len([n for n in ray.nodes() if n.get("Alive")])
        self._mailbox = ray.remote(num_cpus=0)(_Mailbox).remote()
        self._task = ray.remote(max_calls=TRIALS_PER_WORKER)(_ray_trial).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=False)
        self._futures: dict = {}  # ObjectRef -> job

    def describe(self) -> str:
        where = f"Ray cluster {self.address}" if self.address else "local Ray"
        return f"{where} ({self._nodes} node{'s' if self._nodes != 1 else ''}, {self.capacity} workers)"

    def submit(self, job: TrialJob) -> None:
        self._futures[self._task.remote(job, self._mailbox)] = job

    def running(self) -> list[int]:
        return [j.number for j in self._futures.values()]

    def _answer_reports(self) -> None:
        import ray

        for number, step, value in ray.get(self._mailbox.drain.remote()):
            try:
                stop = bool(self.on_report(number, step, value))
            except Exception:  # the pruner must never take the driver down
                log.exception("deciding on trial %d's report failed", number)
                stop = False
            self._mailbox.decide.remote(number, step, stop)

    def poll(self, timeout: float) -> list[TrialOutcome]:
        import ray

        deadline = time.monotonic() + timeout
        out: list[TrialOutcome] = []
        while True:
            self._answer_reports()
            if not self._futures:
                time.sleep(min(0.05, timeout))
                return out
            ready, _ = ray.wait(list(self._futures), num_returns=len(self._futures), timeout=0.2)
            for ref in ready:
                job = self._futures.pop(ref)
                try:
                    out.append(ray.get(ref))
                except Exception as exc:  # the worker died after its retries, or the task could not run
                    kind = type(exc).__name__
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    out.append(TrialOutcome(job.number, "failed", f"worker lost ({kind}): {first}",
                                            cause=Cause.WORKER_LOST))
            if out or time.monotonic() >= deadline:
                return out

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
            self._started = False
