"""Environment faults on a real file system: a study, a retraining and a latency calibration whose folder is on a
small tmpfs that fills up while they run end with one line naming the folder and what to do (each used to end with
a traceback: ``OSError: [Errno 28] No space left on device`` from the store's trial files, TensorFlow's
``ResourceExhaustedError`` from a checkpoint) and lose nothing: once space is freed, the same command resumes from
where it stopped and finishes.

Mounting needs root (or the capability): where the test cannot mount, it skips with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


@pytest.mark.slow
def test_an_export_to_a_full_disk_names_the_model_and_leaves_no_half_file(small_disk):
    out = small_disk / "abpn.tflite"
    cmd = [sys.executable, "-m", "nas", "export", "zoo:abpn", "--out", str(out), "--input-size", "48x64"]
    ballast = _fill(small_disk, leave=4096)
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert full.returncode == 1
    _one_error_line(full.stderr, f"the model {out}")
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast"]  # (a .partial file used to stay behind)
    ballast.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and out.stat().st_size > 10_000, again.stderr[-3000:]


@pytest.mark.slow
def test_a_study_whose_disk_turns_read_only_stops_with_one_line_and_resumes_once_writable(small_disk, tmp_path):
    runs = small_disk / "runs"
    cfg = tmp_path / "ro.yaml"
    cfg.write_text(f"name: ro\nout: {runs}\ntable: {TABLE}\nsampler:\n  name: random\npruner:\n  name: none\n")
    first = _search(cfg, 4)
    assert first.returncode == 0, first.stderr[-3000:]
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, timeout=30)
    try:
        ro = _search(cfg, 12)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True, timeout=30)
    assert ro.returncode == 1, ro.stderr[-3000:]
    lines = [ln for ln in ro.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in ro.stderr, ro.stderr[-3000:]
    assert "read-only" in lines[0] and str(runs) in lines[0] and "run the same command again" in lines[0]
    again = _search(cfg, 12)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["complete"] + summary["pruned"] + summary["failed"] == 12


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
    import tensorflow as tf  # its file errors are no OSErrors: the OS's words and the path are in the message

    tf_full = tf.errors.ResourceExhaustedError(None, None, "{{function_node __wrapped__SaveV2_device_/job:localhost/"
                                               "device:CPU:0}} /d/r/checkpoints/stage0-0000060_temp/part-00000-of-"
                                               "00001.tempstate28; No space left on device [Op:SaveV2]")
    assert str(environment_fault(tf_full)).startswith("cannot write /d/r/checkpoints: No space left on device")
    assert environment_fault(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")) is None
    assert environment_fault(ValueError("a bad value")) is None
    assert environment_fault(FileNotFoundError(errno.ENOENT, "no such file")) is None  # names nothing: not ours


def _one_error_line(stderr: str, naming: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert "No space left on device" in lines[0] and naming in lines[0] and "run the same command again" in lines[0]
    return lines[0]


@pytest.mark.slow
def test_a_retraining_on_a_disk_that_fills_stops_with_one_line_and_resumes_from_its_checkpoint(small_disk, tmp_path,
                                                                                               image_cache):
    from tests.conftest import SMALL, retraining_at

    cfg = tmp_path / "r.yaml"
    cfg.write_text(SMALL.format(name="r", n=1, workers=1, cache=image_cache, out=small_disk / "runs"))
    made = _search(cfg, 1)
    assert made.returncode == 0, made.stderr[-3000:]
    folder = small_disk / "runs" / "r"
    progress = folder / "retrain-0000-60steps" / "checkpoints" / "progress.json"
    proc, cmd = retraining_at(folder, 60, 12)
    ballast = _fill(small_disk, leave=0)  # the disk fills while it trains
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    _one_error_line(err, str(folder / "retrain-0000-60steps"))
    at = json.loads(progress.read_text())["step"]
    ballast.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((folder / "retrain-0000-60steps" / "report.json").read_text())
    assert report["train"]["resumed_from"] == at >= 12 and report["train"]["steps"] == 60
    assert json.loads(again.stdout)["check_passed"] is True


@pytest.mark.slow
def test_a_calibration_on_a_disk_that_fills_stops_with_one_line_and_keeps_its_exports(small_disk):
    work = small_disk / "cal"
    cmd = [sys.executable, "-m", "nas", "latency", "calibrate", "--out", str(small_disk / "cal.json"), "--n", "6",
           "--input-size", "48x64", "--runs", "3", "--warmup", "1", "--rounds", "1", "--folds", "2",
           "--work", str(work)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list((work / "models").glob("*.tflite"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    ballast = _fill(small_disk, leave=0)  # the disk fills while it exports
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    _one_error_line(err, str(work))
    kept = {p.name: p.stat().st_mtime_ns for p in (work / "models").glob("*.tflite")}
    assert len(kept) >= 2
    ballast.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((small_disk / "cal.json").read_text())["meta"]["n"] == 6
    assert all((work / "models" / n).stat().st_mtime_ns == t for n, t in kept.items())  # not exported again
