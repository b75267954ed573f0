"""The study driver alone at scale: its own time per trial over a long study, per Optuna storage.

Trials run on the synthetic executor (nas/benchmark/_synthetic.py: canned outcomes, nothing trained) with
``--workers`` trials in flight, so what is timed is the driver: asking Optuna (its live copy in memory), predicting
latency, writing the trial's folder, telling Optuna, writing the trial to the durable storage (once when it starts,
twice when it ends), counting. MLflow is left out (``NullTrialLog``; ``--mlflow`` puts it back). Each trial's driver
time is what the driver reports in its summary (``driver_seconds``: asking + finishing); the sampler's share of
it (Optuna's sampler calls, timed by a wrapper) is reported apart. Storages: SQLite (the default; write-ahead log),
Optuna's journal file, and PostgreSQL when ``--postgres URL`` is given or a local ``initdb`` lets the bench start a
throwaway server.

    python -m bench.driver [--trials 2000] [--workers 64] [--storages sqlite,journal,postgresql] [--sampler random]

Goal (issue 13): driver time per trial at the end no more than at the start (no quadratic rescans), <= 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench._postgres import fresh_database, postgres_server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _TimedSampler:
    """Wraps an Optuna sampler and adds up the seconds spent in it, per trial number."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, {}

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                trial = next((a for a in args if hasattr(a, "number")), None)
                key = getattr(trial, "number", -1)
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0

        return timed


def floor(url: str, trials: int, workers: int, sampler: str) -> dict:
    """The Optuna calls of a trial made bare on the storage (no driver, no copy in memory): ask, 8 parameters, 2
    constraints, the record written twice, tell, with ``workers`` trials in flight. What a driver that asks the
    storage directly pays per trial (the npu-nas driver before it asked a copy in memory)."""
    import optuna

    from nas.search import SearchConfig
    from nas.search import SAMPLERS
    from nas.search import optuna_storage

    cfg = SearchConfig.model_validate({"sampler": {"name": sampler}})
    study = optuna.create_study(storage=optuna_storage(url), study_name="floor", sampler=SAMPLERS[sampler].factory(cfg),
                                directions=["maximize", "minimize"])
    running, times = [], [0.0] * trials  # per trial: its asking and its finishing, as the driver records them
    for i in range(trials + workers):
        if i < trials:
            t0 = time.perf_counter()
            trial = study.ask()
            for k in ("width", "depth", "block", "skip", "clip_where", "clip_kind", "tail", "expansion"):
                trial.suggest_int(k, 0, 8)
            trial.set_constraint("latency_budget", 0.0)
            trial.set_constraint("latency_model_range", 0.0)
            trial.set_user_attr("nas", {"spec": {"width": 16}, "latency_ms": 1.0})
            running.append((i, trial))
            times[i] += time.perf_counter() - t0
        if running and (len(running) >= workers or i >= trials):
            n, done = running.pop(0)
            t0 = time.perf_counter()
            done.set_user_attr("nas", {"spec": {"width": 16}, "latency_ms": 1.0, "metrics": {"int8_psnr": 29.0}})
            study.tell(done, [29.0, 1.0])
            times[n] += time.perf_counter() - t0
    k = max(1, trials // 10)
    return {"first_ms": 1000 * statistics.median(times[:k]), "last_ms": 1000 * statistics.median(times[-k:])}


def run(storage: str, url: str | None, work: Path, trials: int, workers: int, sampler: str, mlflow: bool) -> dict:
    from nas.benchmark import SyntheticExecutors
    from nas.search import SearchConfig, run_search
    from nas.search import SAMPLERS
    from nas.search import NullTrialLog

    name = f"drv-{storage}"
    cfg = SearchConfig.model_validate({
        "name": name, "out": str(work / "runs"), "n_trials": trials, "workers": workers, "warm_start": [],
        "sampler": {"name": sampler}, "pruner": {"name": "none"}, "storage": url,
        "data": {"limit": 1, "valid_limit": 1}})
    original = SAMPLERS[sampler]
    timed = []
    SAMPLERS[sampler] = dataclasses.replace(original, factory=lambda c: timed.append(_TimedSampler(original.factory(c)))
                                            or timed[-1])
    try:
        t0 = time.perf_counter()
        summary = run_search(cfg, executors=SyntheticExecutors(capacity=workers),
                             trial_log=None if mlflow else NullTrialLog(), plots=False)
        wall = time.perf_counter() - t0
    finally:
        SAMPLERS[sampler] = original
    driver, samp = [], []
    for n in range(trials):
        if n in summary.driver_seconds:
            driver.append(summary.driver_seconds[n])
            samp.append(timed[0].seconds.get(n, 0.0))
    k = max(1, len(driver) // 10)
    own = [d - s for d, s in zip(driver, samp)]
    return {"storage": storage, "trials": len(driver), "asked": trials, "wall_s": wall,
            "first_ms": 1000 * statistics.median(own[:k]), "last_ms": 1000 * statistics.median(own[-k:]),
            "mean_ms": 1000 * statistics.fmean(own), "sampler_first_ms": 1000 * statistics.median(samp[:k]),
            "sampler_last_ms": 1000 * statistics.median(samp[-k:]), "k": k}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--storages", default="sqlite,journal,postgresql")
    ap.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: start a throwaway server)")
    ap.add_argument("--sampler", default="random", choices=["random", "tpe", "nsga2"])
    ap.add_argument("--mlflow", action="store_true", help="log every trial to MLflow (SQLite) as a study does")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="nas-bench-driver-"))
    rows = []
    with contextlib.ExitStack() as stack:
        for storage in args.storages.split(","):
            url = None
            if storage == "postgresql":
                url = fresh_database(args.postgres or stack.enter_context(postgres_server()), "nas_driver")
            elif storage == "journal":
                url = f"journal:///{(work / storage / 'optuna.log').as_posix()}"
            elif storage != "sqlite":
                raise SystemExit(f"unknown storage {storage} (sqlite, journal, postgresql)")
            print(f"{storage}: {args.trials} trials, {args.workers} in flight, sampler {args.sampler}"
                  f"{', MLflow' if args.mlflow else ''} ...", flush=True)
            row = run(storage, url, work / storage, args.trials, args.workers, args.sampler, args.mlflow)
            bare = url or f"sqlite:///{(work / storage / 'floor.db').as_posix()}"
            if storage == "journal":
                bare = f"journal:///{(work / storage / 'floor.log').as_posix()}"
            if storage == "postgresql":  # a fresh database for the bare calls
                bare = fresh_database(url, "nas_floor")
            f = floor(bare, args.trials, args.workers, args.sampler)
            row.update({"floor_first_ms": f["first_ms"], "floor_last_ms": f["last_ms"]})
            rows.append(row)
            print(f"  driver {row['first_ms']:.1f} -> {row['last_ms']:.1f} ms a trial, bare Optuna "
                  f"{f['first_ms']:.1f} -> {f['last_ms']:.1f}", flush=True)
    print(f"\ndriver time per trial without the sampler (median of the first and of the last {rows[0]['k']} trials);"
          " the sampler apart; the bare Optuna calls of a trial on the same storage beside it")
    print("  (trials: those that ran; the others were duplicates of a spec already run, answered from it)")
    print(f"  {'storage':<11} {'trials':>6} {'first ms':>9} {'last ms':>8} {'last/first':>10} {'mean ms':>8} "
          f"{'sampler first/last':>19} {'bare Optuna first/last':>23} {'driver/bare (last)':>19} {'wall s':>7}")
    for r in rows:
        print(f"  {r['storage']:<11} {r['trials']:>6} {r['first_ms']:>9.1f} {r['last_ms']:>8.1f} "
              f"{r['last_ms'] / r['first_ms']:>10.2f} {r['mean_ms']:>8.1f} "
              f"{r['sampler_first_ms']:>9.1f} / {r['sampler_last_ms']:<7.1f} "
              f"{r['floor_first_ms']:>12.1f} / {r['floor_last_ms']:<8.1f} "
              f"{r['last_ms'] / r['floor_last_ms']:>19.2f} {r['wall_s']:>7.0f}")
    print("  goal: last/first <= 1 (no rescans), last <= 20 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
