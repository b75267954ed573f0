"""The study store's Optuna storage: opened by several processes at once."""

from __future__ import annotations

import multiprocessing

import optuna

from nas.search._store import optuna_storage


def _open_each(folder: str, rounds: int, barrier, errors) -> None:
    for i in range(rounds):
        barrier.wait(timeout=60)  # both processes open the same new database at the same moment
        try:
            optuna_storage(f"sqlite:///{folder}/race{i}.db")
        except Exception as exc:  # reported to the test, which names it
            errors.put(f"round {i}: {exc}")


def test_two_processes_opening_a_new_sqlite_study_at_once_both_succeed(tmp_path):
    """A driver's first open raced by another opener (a test polling the study, optuna-dashboard, `nas pareto`):
    Optuna creates the tables check-then-create, and without a retry 29 of 30 such races failed one side with
    "table studies already exists" (this stopped a CI run of `nas search` before its first trial)."""
    ctx = multiprocessing.get_context("spawn")
    rounds = 12
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_open_each, args=(str(tmp_path), rounds, barrier, errors)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    storage = optuna_storage(f"sqlite:///{tmp_path}/race0.db")
    assert optuna.create_study(storage=storage, study_name="s").study_name == "s"
