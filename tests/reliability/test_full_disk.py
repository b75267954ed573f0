"""Environment faults on a real file system: a study whose folder is on a small tmpfs that fills up mid-study ends
with one line naming what to do (it used to end with a traceback: ``OSError: [Errno 28] No space left on device``
from the store's trial files) and loses nothing: once space is freed, the same command resumes and finishes.

Mounting needs root (or the capability): where the test cannot mount, it skips with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.errors import EnvironmentFault, environment_fault

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "bench" / "tables" / "mai2022-300.csv"


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(where)], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _fill(folder: Path, leave: int) -> Path:
    """A ballast file taking all of ``folder``'s file system but ``leave`` bytes."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    ballast = folder / "ballast"
    with open(ballast, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return ballast


def _search(config: Path, n: int):
    return subprocess.run([sys.executable, "-m", "nas", "search", str(config), "--n-trials", str(n), "--json"],
                          capture_output=True, text=True, timeout=600)


def test_a_study_on_a_full_disk_stops_with_one_line_and_resumes_once_space_is_freed(small_disk, tmp_path):
    runs = small_disk / "runs"
    cfg = tmp_path / "full.yaml"
    cfg.write_text(f"name: full\nout: {runs}\ntable: {TABLE}\nsampler:\n  name: random\npruner:\n  name: none\n")
    first = _search(cfg, 4)  # the study, its Optuna database and its MLflow store exist
    assert first.returncode == 0, first.stderr[-3000:]
    ballast = _fill(small_disk, leave=48 * 1024)
    full = _search(cfg, 60)
    assert full.returncode == 1, full.stderr[-3000:]
    lines = [ln for ln in full.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "run the same command again" in lines[0]
    assert "Traceback" not in full.stderr
    ballast.unlink()
    again = _search(cfg, 60)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["complete"] + summary["pruned"] + summary["failed"] == 60
    from nas.search import TrialRecord, open_study
    from nas.search._store import load_optuna_study

    info = open_study(runs / "full")
    trials = load_optuna_study(info).trials
    assert [t.number for t in trials] == list(range(len(trials)))  # every number accounted for
    recs = {t.number: TrialRecord.from_attrs(t.user_attrs) for t in trials}
    done = [t for t in trials if t.state.name == "COMPLETE" and recs[t.number].duplicate_of is None]
    assert all((info.trial_dir(t.number) / "outcome.json").exists() for t in done)  # the folder holds each result
    assert len({recs[t.number].hash for t in done}) == len(done)  # and no spec was answered twice


def test_the_faults_of_the_machine_become_one_line_that_names_the_path():
    import errno
    import sqlite3

    f = environment_fault(OSError(errno.ENOSPC, "No space left on device", "/d/runs/x/trials/0001/outcome.json"))
    assert isinstance(f, EnvironmentFault) and str(f).startswith("cannot write /d/runs/x/trials/0001/outcome.json: ")
    ro = environment_fault(PermissionError(errno.EROFS, "Read-only file system", "/ro/runs"))
    assert "/ro/runs" in str(ro) and "read-only: give a writable folder" in str(ro)
    try:  # as SQLAlchemy raises it: SQLite's words, wrapped
        raise RuntimeError("(sqlite3.OperationalError) database or disk is full") from sqlite3.OperationalError(
            "database or disk is full")
    except RuntimeError as exc:
        assert "SQLite database" in str(environment_fault(exc, where="the study folder /d/runs/x"))
    assert "the study folder /d" in str(environment_fault(OSError(errno.ENOSPC, "full"), where="the study folder /d"))
    assert environment_fault(ValueError("a bad value")) is None
    assert environment_fault(FileNotFoundError(errno.ENOENT, "no such file")) is None  # names nothing: not ours
