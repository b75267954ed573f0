"""The Android board: ``benchmark_model``'s output parsed from real printouts of the tool (tests/latency/data)."""

import os
import stat
from pathlib import Path

import pytest

from nas.errors import LatencyError
from nas.latency import AdbBoard, parse_benchmark_output

DATA = Path(__file__).parent / "data"


def test_parses_the_op_profiling_printout():
    m = parse_benchmark_output((DATA / "benchmark_model_op_profiling.txt").read_text(), "mobilenet.tflite", "phone")
    # the timed runs' line (count=50 ... avg=2.95034e+06), not the warm-up's nor the profiler's summary
    assert m.runs == 50 and m.median_ms == pytest.approx(2950.34)
    assert m.board == "phone" and m.model == "mobilenet.tflite"
    assert len(m.per_op_ms) == 31
    assert m.per_op_ms["MobilenetV1/MobilenetV1/Conv2d_0/Relu6"] == pytest.approx(60.957)
    assert m.per_op_ms["MobilenetV1/Predictions/Reshape_1"] == pytest.approx(0.233)
    assert sum(m.per_op_ms.values()) == pytest.approx(2950.2, rel=1e-3)  # the ops add up to the whole run


def test_prefers_the_median_where_the_tool_prints_one():
    m = parse_benchmark_output((DATA / "benchmark_model_xnnpack.txt").read_text(), "m.tflite")
    assert m.runs == 1000 and m.median_ms == pytest.approx(51.891)  # not the outlier-inflated avg of 63.7 ms
    assert m.per_op_ms is None


def test_parses_an_nnapi_run():
    m = parse_benchmark_output((DATA / "benchmark_model_nnapi_summary.txt").read_text(), "yolo.tflite")
    assert m.runs == 50 and m.median_ms == pytest.approx(156.669)


def test_summary_line_alone_and_failures():
    text = "Inference timings in us: Init: 4521, First inference: 38234, Warmup (avg): 37856, Inference (avg): 37234\n"
    assert parse_benchmark_output(text, "m").median_ms == pytest.approx(37.234)
    failed = "STARTING!\nGraph: [/data/local/tmp/m.tflite]\nFailed to allocate tensors!\nBenchmarking failed.\n"
    with pytest.raises(LatencyError, match="no timings for m.tflite: .*Benchmarking failed"):
        parse_benchmark_output(failed, "m.tflite")


def test_board_arguments_and_missing_adb(tmp_path):
    with pytest.raises(LatencyError, match="unknown delegate 'tpu'"):
        AdbBoard(delegate="tpu")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    board = AdbBoard(delegate="nnapi", adb="nas-test-no-such-adb")
    with pytest.raises(LatencyError, match="'nas-test-no-such-adb' not found on PATH"):
        board.measure(model)
    cmd = AdbBoard(delegate="gpu", threads=2, runs=7, op_profiling=True).command("/data/local/tmp/m.tflite")
    assert cmd[0] == "/data/local/tmp/benchmark_model" and "--graph=/data/local/tmp/m.tflite" in cmd
    assert {"--use_gpu=true", "--num_threads=2", "--num_runs=7", "--enable_op_profiling=true"} <= set(cmd)


def test_measure_pushes_runs_and_cleans_up(tmp_path):
    """The adb conversation, against a stand-in ``adb`` executable (no device here) that replays the tool's output."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "adb"
    fake.write_text("#!/bin/sh\n"
                    f'echo "$@" >> "{log}"\n'
                    'case "$*" in *benchmark_model*) '
                    f'cat "{DATA / "benchmark_model_xnnpack.txt"}";; esac\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    model = tmp_path / "abpn.tflite"
    model.write_bytes(b"x")
    board = AdbBoard("emulator-5554", delegate="xnnpack", adb=str(fake))
    m = board.measure(model)
    assert m.median_ms == pytest.approx(51.891) and m.board == "adb-emulator-5554-xnnpack"
    calls = log.read_text().splitlines()
    assert calls[0] == f"-s emulator-5554 push {model} /data/local/tmp/abpn.tflite"
    assert "benchmark_model --graph=/data/local/tmp/abpn.tflite" in calls[1] and "--use_xnnpack=true" in calls[1]
    assert calls[2] == "-s emulator-5554 shell rm -f /data/local/tmp/abpn.tflite"
    # a failing adb (device offline) is reported with its message
    fake.write_text("#!/bin/sh\necho 'error: device offline' >&2\nexit 1\n")
    with pytest.raises(LatencyError, match="adb push failed .*device offline"):
        board.measure(model)
    assert os.access(fake, os.X_OK)
