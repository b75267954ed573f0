"""The real `nas` command line, run as a subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest


def nas(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=timeout)


def test_zoo_show_reports_published_parameter_counts():
    abpn = json.loads(nas("zoo", "show", "abpn", "--json").stdout)
    ncnet = json.loads(nas("zoo", "show", "ncnet", "--json").stdout)
    assert abpn["params"] == 42539 and ncnet["params"] == 52279
    assert abpn["input_hw"] == [360, 640] and abpn["layers"][0]["name"] == "head"


def test_zoo_list_and_space_show():
    rows = json.loads(nas("zoo", "list", "--json").stdout)
    assert len(rows) == 13 and rows[0]["name"] == "abpn-baseline"
    space = json.loads(nas("space", "show", "mai2022", "--json").stdout)
    assert space["size"] == 5120 and space["width"] == [16, 32, 48, 64]
    human = nas("zoo", "show", "ncnet")
    assert human.returncode == 0 and "52,279" in human.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("zoo", "show", "abpnn"), "error: unknown zoo network 'abpnn'"),
        (("space", "show", "nope.yaml"), "error: space file not found: nope.yaml"),
        (("export", "BADSPEC", "--out", "x.tflite"), "error: BADSPEC: not valid JSON"),
        (("export", "zoo:abpn", "--out", "x.tflite", "--input-size", "36x"), "error: input size '36x' is not HEIGHTxWIDTH"),
        (("export", "zoo:nope", "--out", "x.tflite"), "error: unknown zoo network 'nope'"),
        (("check", "BADSPEC"), "error: BADSPEC: not a TFLite model"),
        (("evaluate",), "error: give a MODEL"),
        (("evaluate", "--baseline", "lanczos"), "error: unknown baseline 'lanczos'"),
        (("evaluate", "--baseline", "bicubic", "--data", "no/such/dir"), "error: data folder not found: no/such/dir"),
        (("evaluate", "."), "error: . is not a `nas train` output folder"),
        (("train", "zoo:abpn", "--out", "o", "--data", "no/such/dir"), "error: data folder not found: no/such/dir"),
        (("train", "zoo:abpn", "--out", "o", "--config", "no.yaml"), "error: training config not found: no.yaml"),
    ],
)
def test_bad_input_gives_one_error_line_and_status_1(tmp_path, args, message):
    (tmp_path / "BADSPEC").write_text("{width: 16,")
    (tmp_path / "bad.yaml").write_text("name: [\n")
    proc = subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_space_file_error_names_field(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nwidth: {min: 16, max: 64}\ndepth: {min: 1, max: 4}\nblocks: {choices: [conv, wavelet]}\n"
                 "skip: {choices: [none]}\nclip_where: {choices: [before_d2s]}\nclip_kind: {choices: [clip]}\n")
    proc = nas("space", "show", str(f))
    assert proc.returncode == 1 and "field 'blocks.choices.1'" in proc.stderr and "'wavelet'" in proc.stderr


def test_cli_inspection_commands_do_not_import_tensorflow():
    code = ("import sys; from nas.cli import main; rc = main(['zoo', 'show', 'abpn', '--json']); "
            "rc2 = main(['space', 'show', 'mai2022', '--json']); "
            "assert rc == rc2 == 0; assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_score_command_reproduces_the_winner():
    import json as _json

    out = _json.loads(nas("score", "--psnr", "30.03", "--runtime-ms", "19.2", "--json").stdout)
    assert abs(out["score"] - 22.22) / 22.22 < 0.005
    bad = nas("score", "--psnr", "30", "--runtime-ms", "0")
    assert bad.returncode == 1 and bad.stderr.startswith("error: runtime 0.0 ms must be a positive number")


def test_train_then_evaluate_the_output_folder_and_its_int8_model(tmp_path):
    """`nas train` writes weights, an INT8 model that passes the check, and a report; `nas evaluate` on the folder
    and on the .tflite (at its own full image sizes) gives the report's figures."""
    out = tmp_path / "run"
    res = nas("train", "zoo:abpn", "--data", "embedded", "--steps", "20", "--batch-size", "4", "--patch-size", "24",
              "--input-size", "60x80", "--out", str(out), "--json", timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report["check_passed"] is True and report["train"]["steps"] == 20
    assert {p.name for p in out.iterdir()} >= {"spec.json", "weights.npz", "model_int8.tflite", "report.json"}
    assert report["fp32"]["n_images"] == 2  # the embedded held-out photographs
    both = json.loads(nas("evaluate", str(out), "--json", timeout=200).stdout)
    assert both["fp32"]["psnr_rgb"] == report["fp32"]["psnr_rgb"]
    assert both["int8"]["psnr_rgb"] == report["int8"]["psnr_rgb"]
    one = json.loads(nas("evaluate", str(out / "model_int8.tflite"), "--no-ssim", "--json").stdout)
    assert one["psnr_rgb"] == report["int8"]["psnr_rgb"] and one["ssim_rgb"] is None
    human = nas("evaluate", "--baseline", "bicubic")
    assert human.returncode == 0 and "bicubic x3" in human.stdout


def test_latency_predict_and_report_on_the_vs680_default(tmp_path):
    pred = json.loads(nas("latency", "predict", "vs680", "zoo:abpn", "--json").stdout)
    assert pred["board"] == "vs680-npu" and pred["input_hw"] == [360, 640] and pred["in_range"]
    assert pred["mean_ms"] == pytest.approx(sum(o["ms"] for o in pred["per_op"]))
    assert [o["name"] for o in pred["per_op"]][:2] == ["head", "body_01"] and pred["stddev_ms"] > 0
    human = nas("latency", "predict", "vs680", "zoo:abpn")
    assert human.returncode == 0 and "anchor_add" in human.stdout and "1 sigma" in human.stdout
    spec = tmp_path / "wide.json"
    spec.write_text('{"width": 64, "depth": 8, "block": "conv"}')
    wide = nas("latency", "predict", "vs680", str(spec))
    assert wide.returncode == 0 and "outside the fitted range: conv_gmac" in wide.stdout
    report = json.loads(nas("latency", "report", "vs680", "--json").stdout)
    assert report["version"] == 1 and report["meta"]["n"] == 13 and report["meta"]["published"]
    text = nas("latency", "report", "vs680").stdout
    assert "leave-one-out accuracy over 13 measurements" in text and "abpn-baseline" in text
    bad = nas("latency", "predict", "nosuch.json", "zoo:abpn")
    assert bad.returncode == 1 and "latency model not found: nosuch.json" in bad.stderr


def test_doctor_reports_a_healthy_environment_and_names_what_to_fix(tmp_path):
    ok = nas("doctor", "--json", "--out", str(tmp_path / "runs"))
    data = json.loads(ok.stdout)
    assert ok.returncode == 0 and data["healthy"] is True
    names = {c["name"]: c for c in data["checks"]}
    assert names["latency model vs680.json"]["status"] == "ok" and names["tensorflow"]["status"] == "ok"
    bad = nas("doctor", "--json", "--data", str(tmp_path / "nowhere"))
    data = json.loads(bad.stdout)
    assert bad.returncode == 1 and data["healthy"] is False
    (fail,) = [c for c in data["checks"] if c["status"] == "fail"]
    assert "data folder not found" in fail["found"] and fail["fix"]


def test_tensorflows_native_start_up_lines_are_filtered_and_verbose_brings_them_back(tmp_path):
    """On a CPU machine TensorFlow writes "WARNING: All log messages before absl::InitializeLog()", I-lines from
    cudart_stub and an ``E0000 ... failed call to cuInit`` line from C++, which neither TF_CPP_MIN_LOG_LEVEL nor
    Python's logging reaches; the CLI filters them; ``NAS_NATIVE_LOGS=1`` shows them again."""
    import os
    import re

    from PIL import Image

    import numpy as np

    (tmp_path / "img").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), np.uint8)).save(tmp_path / "img" / "a.png")
    (tmp_path / "spec.json").write_text(json.dumps({"width": 16, "depth": 1, "blocks": "conv", "skip": "repeat_add"}))
    cmd = [sys.executable, "-m", "nas", "train", "spec.json", "--data", "img", "--val", "img", "--steps", "2",
           "--batch-size", "2", "--patch-size", "16", "--no-export", "--out", "t", "--json"]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NAS_NATIVE_LOGS")}
    native = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)", re.M)
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert json.loads(quiet.stdout)["train"]["steps"] == 2  # the command's own output is untouched
    assert not native.search(quiet.stderr), quiet.stderr[-2000:]
    loud = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**env, "NAS_NATIVE_LOGS": "1"})
    assert loud.returncode == 0, loud.stderr[-2000:]
    if not native.search(loud.stderr):
        pytest.skip("this TensorFlow build writes no native start-up lines here: nothing to filter")


def test_ctrl_c_says_interrupted_and_exits_130(monkeypatch, capsys):
    """Typer turns KeyboardInterrupt into exit status 130 and prints nothing; the command line says why it
    stopped (tests/search/test_resume.py sends a real SIGINT to a running study)."""
    import nas.space
    from nas.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nas.space, "load_space", interrupted)  # (the command imports it when it runs)
    assert main(["space", "show", "mai2022"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.slow
def test_export_converts_the_weights_of_a_qat_run_as_trained(tmp_path):
    """`nas export` of a `nas retrain` / `nas train --full` folder's weights.npz reads from its report.json that they
    come out of QAT and keeps every int8 weight on the level QAT chose (re-rounding them for their outputs, as float
    weights are, cost a carry net 4 dB after the full schedule); `--no-qat` prepares them as float weights, and so
    does the report of a QAT run that shipped its float model (``int8_form`` ``ptq``)."""
    from nas.model import build_model, deploy_weights, save_weights
    from nas.space import ArchSpec
    from nas.train import TrainConfig
    from tests.conftest import tflite_kernels

    spec = ArchSpec(width=16, depth=2, blocks="conv", skip="none", tail=())
    (tmp_path / "spec.json").write_text(spec.to_json())
    weights = deploy_weights(build_model(spec, "train", seed=3), spec)
    save_weights(weights, tmp_path / "weights.npz")
    cfg = TrainConfig.full(steps=100).model_dump(mode="json")
    (tmp_path / "report.json").write_text(json.dumps({"config": cfg}))

    def moved(*flags):
        out = tmp_path / f"m{len(flags)}.tflite"
        res = nas("export", str(tmp_path / "spec.json"), "--weights", str(tmp_path / "weights.npz"), "--out",
                  str(out), "--input-size", "24x32", "--calibration", "2", *flags, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        kernels = tflite_kernels(out)
        w = np.moveaxis(weights["body_01"][0], 3, 0)
        step = np.abs(w).reshape(len(w), -1).max(axis=1)[:, None, None, None] / 127
        return np.mean(kernels["body_01"].astype(int) != np.round(w / step))

    assert moved() < 0.01
    assert moved("--no-qat") > 0.1
    # a QAT run whose float model won the choice (export version 3) ships that model's weights: float weights
    (tmp_path / "report.json").write_text(json.dumps({"config": cfg, "int8_form": "ptq"}))
    assert moved() > 0.1
