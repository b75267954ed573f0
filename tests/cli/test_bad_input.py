"""Bad input, through the real command line: one line naming the problem, exit status 1, no traceback.

Every case here is counted by bench/reliability.py ("bad inputs tried and refused cleanly")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "broken.yaml").write_text("name: [\n")
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "contradict.yaml").write_text("proxy: {steps: 10, eval_every: 20}\n")
    (d / "typo.yaml").write_text("n_trails: 3\n")
    (d / "nozoo.yaml").write_text("warm_start: [abpnn]\ndata: {limit: 1}\n")
    (d / "space-minmax.yaml").write_text("name: s\nwidth: {min: 64, max: 16}\ndepth: {min: 1, max: 2}\n"
                                         "blocks: {choices: [conv]}\nskip: {choices: [none]}\n"
                                         "clip_where: {choices: [before_d2s]}\nclip_kind: {choices: [clip]}\n")
    (d / "space-carry.yaml").write_text("name: s\nwidth: {min: 2, max: 8, multiple_of: 1}\ndepth: {min: 1, max: 2}\n"
                                        "blocks: {choices: [conv]}\nskip: {choices: [carry]}\n"
                                        "clip_where: {choices: [before_d2s]}\nclip_kind: {choices: [clip]}\n")
    (d / "spec-bad.json").write_text("{width: 16,")
    (d / "spec-field.json").write_text(json.dumps({"width": 0, "depth": 2, "blocks": "conv"}))
    (d / "fake.tflite").write_bytes(b"\x00" * 64)
    for name in ("corrupt", "truncated", "tiny", "empty", "odd"):
        (d / name).mkdir()
    (d / "corrupt" / "a.png").write_bytes(b"this is not a png")
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(img).save(d / "full.png")
    (d / "truncated" / "a.png").write_bytes((d / "full.png").read_bytes()[:300])
    Image.fromarray(img[:2, :2]).save(d / "tiny" / "a.png")
    Image.fromarray(img[..., 0]).save(d / "odd" / "gray.png")  # accepted: grayscale, 16-bit and alpha convert
    Image.fromarray((img[..., 0].astype(np.uint16) * 257)).save(d / "odd" / "deep16.png")
    Image.fromarray(np.dstack([img, img[..., :1]])).save(d / "odd" / "alpha.png")
    model = json.loads((ROOT / "latency_models" / "vs680.json").read_text())
    (d / "lat-v99.json").write_text(json.dumps({**model, "version": 99}))
    (d / "lat-notjson.json").write_text("{")
    (d / "m-missing.csv").write_text("model,runs\na.tflite,5\n")
    (d / "m-nan.csv").write_text("model,median_ms\na.tflite,fast\n")
    return d


CASES = [
    (("search", "broken.yaml"), "broken.yaml: not valid YAML at line 2"),
    (("search", "list.yaml"), "list.yaml: a search config must be a YAML mapping, got list"),
    (("search", "contradict.yaml"), "proxy.eval_every 20 is more than proxy.steps 10"),
    (("search", "typo.yaml"), "unknown field 'n_trails'"),
    (("search", "missing.yaml"), "search config not found: missing.yaml"),
    (("search", "nozoo.yaml"), "unknown zoo network 'abpnn'"),
    (("search", "--n-trials", "0"), "field 'n_trials'"),
    (("space", "show", "space-minmax.yaml"), "min 64 is greater than max 16"),
    (("space", "show", "space-carry.yaml"), "skip 'carry' needs width > 3"),
    (("zoo", "show", "abpnn"), "unknown zoo network 'abpnn'"),
    (("export", "zoo:nope", "--out", "x.tflite"), "unknown zoo network 'nope'"),
    (("export", "spec-bad.json", "--out", "x.tflite"), "spec-bad.json: not valid JSON"),
    (("export", "spec-field.json", "--out", "x.tflite"), "width"),
    (("check", "fake.tflite"), "fake.tflite: not a TFLite model"),
    (("evaluate", "fake.tflite"), "fake.tflite: not a TFLite model"),
    (("evaluate", "--baseline", "bicubic", "--data", "corrupt"), "corrupt/a.png: cannot decode image"),
    (("evaluate", "--baseline", "bicubic", "--data", "truncated"), "truncated/a.png: cannot decode image"),
    (("evaluate", "--baseline", "bicubic", "--data", "tiny"), "image of 2x2 pixels is too small for x3"),
    (("evaluate", "--baseline", "bicubic", "--data", "empty"), "no images (.png"),
    (("evaluate", "--baseline", "bicubic", "--data", "nowhere"), "data folder not found: nowhere"),
    (("latency", "predict", "lat-v99.json", "zoo:abpn"), "version 99"),
    (("latency", "predict", "lat-notjson.json", "zoo:abpn"), "lat-notjson.json"),
    (("latency", "predict", "vs680", "zoo:abpn", "--input-size", "720x1280"), "calibrated at 360x640"),
    (("latency", "calibrate", "--board", "m-missing.csv", "--out", "x.json"), "missing column(s) median_ms"),
    (("latency", "calibrate", "--board", "m-nan.csv", "--out", "x.json"), "median_ms"),
    (("pareto", "nostudy"), "no study at nostudy"),
    (("retrain", "nostudy", "--best"), "no study at nostudy"),
    (("data", "extract", "full.png", "--to", "out"), "full.png: not a readable zip archive"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_refused_with_one_line(files, args, message):
    proc = subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, cwd=files,
                          timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_grayscale_16bit_and_alpha_images_are_converted_not_refused(files):
    proc = subprocess.run([sys.executable, "-m", "nas", "evaluate", "--baseline", "bicubic", "--data", "odd",
                           "--json"], capture_output=True, text=True, cwd=files, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_images"] == 3 and sorted(i["name"] for i in out["images"]) == ["alpha", "deep16", "gray"]


USAGE = [
    (("serch",), "No such command 'serch'. Did you mean 'search'?"),
    (("search", "--n-trails", "10"), "No such option: --n-trails"),
    (("zoo", "lst"), "No such command 'lst'. Did you mean 'list'?"),
    (("zoo",), "Usage: nas zoo"),  # a group alone prints its help (Click's exit status 2)
]


@pytest.mark.parametrize("args, message", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_print_clicks_usage_message_and_exit_2_without_a_traceback(files, args, message):
    """Through the installed console script: the Typer in use carries its own copy of Click, whose usage errors
    are not ``click.exceptions``' classes (they printed a traceback)."""
    script = Path(sys.executable).with_name("nas")
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable} (package not installed)")
    proc = subprocess.run([str(script), *args], capture_output=True, text=True, cwd=files, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert message in out and "Traceback" not in out, out[-2000:]


def test_a_study_that_is_not_there_is_refused_before_any_progress_bar(files):
    import os

    env = {**os.environ, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}  # Rich draws its bars as on a terminal
    proc = subprocess.run([sys.executable, "-m", "nas", "retrain", "runs/nostudy", "--best"], capture_output=True,
                          text=True, cwd=files, timeout=300, env=env)
    assert proc.returncode == 1 and "no study at runs/nostudy" in proc.stderr
    assert "0/20000" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr  # the bar: "train ... 0/20000"


def test_a_server_whose_port_is_taken_is_an_error_naming_the_port(files):
    """``nas ui`` printed its address as if it worked, then the server's "address already in use", and exit 0."""
    import socket

    (files / "m.db").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "nas", "ui", "--tracking", "sqlite:///m.db", "--port", str(port)],
                              capture_output=True, text=True, cwd=files, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot start the MLflow UI: port {port} on 127.0.0.1 is already in use; choose another with --port"]
