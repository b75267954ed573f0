"""Real INT8 conversion (in a subprocess), real LiteRT inference, real NPU check."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nas.errors import CheckError, ExportError
from nas.export import check_model, export_int8, load_target, read_tflite
from nas.model import save_weights
from nas.space import ArchSpec, zoo_get


def _run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def abpn_cli(tmp_path_factory) -> Path:
    """`nas export zoo:abpn` through the real command line, at the challenge's 360x640 input."""
    out = tmp_path_factory.mktemp("export") / "abpn.tflite"
    proc = subprocess.run([sys.executable, "-m", "nas", "export", "zoo:abpn", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def test_abpn_export_is_50_to_60_kb_and_passes_the_vs680_check(abpn_cli):
    size_kb = abpn_cli.stat().st_size / 1024
    assert 50 <= size_kb <= 60  # Table 1: 53 KB
    proc = subprocess.run([sys.executable, "-m", "nas", "check", str(abpn_cli), "--target", "vs680", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] is True
    assert report["op_counts"] == {"QUANTIZE": 2, "CONCATENATION": 1, "CONV_2D": 7, "ADD": 1, "DEPTH_TO_SPACE": 1,
                                   "MINIMUM": 1, "RELU": 1}
    assert report["input"]["dtype"] == "uint8" and report["input"]["shape"] == [1, 360, 640, 3]
    assert report["output"]["shape"] == [1, 1080, 1920, 3]
    assert report["input"]["scale"] == [1.0] and report["output"]["scale"] == [1.0]


def test_tflite_ops_carry_the_deterministic_layer_names(abpn_cli):
    graph = read_tflite(abpn_cli)
    names = " ".join(graph.op_name(op) for op in graph.ops)
    for layer in ("head", "body_01", "body_04", "tail_1", "tail_2", "anchor", "anchor_add", "d2s", "clip"):
        assert f"/{layer}/" in names, layer


def test_int8_model_of_a_zero_body_abpn_is_nearest_neighbour_upscaling(tmp_path):
    """Known answer through conversion and LiteRT: zero trainable weights leave the anchor, i.e. nearest x3."""
    spec = zoo_get("abpn").spec
    weights = {s.name: [np.zeros((s.kernel, s.kernel, s.cin, s.cout), np.float32), np.zeros(s.cout, np.float32)]
               for s in spec.convs()}
    res = export_int8(spec, tmp_path / "zero.tflite", weights=weights, input_hw=(24, 32), n_calibration=2)
    assert res.report.passed
    x = np.random.default_rng(0).integers(0, 256, (1, 24, 32, 3), dtype=np.uint8)
    y = _run_litert(res.path, x)
    want = np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)
    assert y.dtype == np.uint8 and y.shape == (1, 72, 96, 3)
    assert np.abs(y.astype(int) - want.astype(int)).max() <= 1


def test_export_refuses_a_model_that_fails_the_target_and_writes_nothing(tmp_path):
    profile = yaml.safe_load((Path(__file__).parents[2] / "nas/export/targets/vs680.yaml").read_text())
    del profile["ops"]["DEPTH_TO_SPACE"]
    profile["name"] = "no-d2s"
    target = tmp_path / "no-d2s.yaml"
    target.write_text(yaml.safe_dump(profile))
    spec = ArchSpec(width=16, depth=1, blocks="conv")
    out = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match="fails the no-d2s check .*DEPTH_TO_SPACE"):
        export_int8(spec, out, input_hw=(16, 16), n_calibration=1, target=str(target))
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    res = export_int8(spec, out, input_hw=(16, 16), n_calibration=1, target=str(target), require_pass=False)
    assert out.exists() and not res.report.passed
    assert [i.name for i in res.report.failures] == ["ops_supported"]
    assert check_model(out, "vs680").passed


def test_a_float_model_fails_integer_and_io_checks(tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    inp = keras.Input((8, 8, 3), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(inp))
    fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32)])
    blob = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model).convert()
    path = tmp_path / "float.tflite"
    path.write_bytes(blob)
    report = check_model(path, "vs680")
    failed = {i.name for i in report.failures}
    assert {"integer_only", "io_dtype", "output_clipped"} <= failed
    assert not report.passed


def test_check_rejects_files_that_are_not_tflite(tmp_path, abpn_cli):
    text = tmp_path / "x.tflite"
    text.write_text("hello")
    with pytest.raises(CheckError, match="not a TFLite model"):
        check_model(text)
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(abpn_cli.read_bytes()[:4000])
    with pytest.raises(CheckError, match="corrupt TFLite model|not a TFLite model"):
        check_model(cut)
    with pytest.raises(CheckError, match="file not found"):
        check_model(tmp_path / "missing.tflite")


def test_target_profiles_are_validated(tmp_path):
    assert load_target("vs680").peak_tops_int8 == 7.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npeak_tops_int8: -1\nio_dtypes: [uint8]\ntensor_dtypes: [int8]\nfused_activations: [NONE]\nops: {}\n")
    with pytest.raises(CheckError, match="field 'peak_tops_int8'"):
        load_target(str(bad))
    with pytest.raises(CheckError, match="unknown target 'vs999'"):
        load_target("vs999")


def test_weights_file_round_trip_refuses_pickles(tmp_path):
    from nas.errors import NasError
    from nas.model import load_weights

    w = {"head": [np.ones((3, 3, 3, 16), np.float32), np.zeros(16, np.float32)]}
    path = save_weights(w, tmp_path / "w.npz")
    back = load_weights(path)
    assert list(back) == ["head"] and np.array_equal(back["head"][0], w["head"][0])
    evil = tmp_path / "evil.npz"
    np.savez(evil, **{"head/0": np.array([object()], dtype=object)})
    with pytest.raises(NasError, match="not a weights file"):
        load_weights(evil)


@pytest.mark.slow
def test_persistent_converter_gives_the_same_bytes_and_is_replaced_after_max_jobs(tmp_path):
    from nas.export import InProcessConverter, PersistentConverter

    spec = ArchSpec.from_dict({"width": 16, "depth": 1, "blocks": "conv"})
    fresh = export_int8(spec, tmp_path / "a.tflite", input_hw=(24, 32)).path.read_bytes()
    with PersistentConverter(max_jobs=2) as conv:
        served = [export_int8(spec, tmp_path / f"p{i}.tflite", input_hw=(24, 32), converter=conv).path.read_bytes()
                  for i in range(3)]
        assert conv.started == 2  # the third model went to a new child
        with pytest.raises(ExportError, match="timed out after 0 s"):
            export_int8(spec, tmp_path / "t.tflite", input_hw=(24, 32), converter=conv, timeout_s=0.01)
        again = export_int8(spec, tmp_path / "q.tflite", input_hw=(24, 32), converter=conv).path.read_bytes()
        assert conv.started == 3  # the child killed by the timeout was replaced
    here = export_int8(spec, tmp_path / "h.tflite", input_hw=(24, 32), converter=InProcessConverter()).path.read_bytes()
    assert served == [fresh] * 3 and again == fresh and here == fresh


def test_converter_errors_are_reported_by_every_converter(tmp_path):
    from nas.export import PersistentConverter

    spec = ArchSpec.from_dict({"width": 16, "depth": 1, "blocks": "conv"})
    bad = {"head": [np.zeros((3, 3, 3, 8), np.float32), np.zeros(8, np.float32)]}  # wrong shapes for the spec
    with PersistentConverter() as conv:
        with pytest.raises(ExportError, match="INT8 conversion of .* failed"):
            export_int8(spec, tmp_path / "x.tflite", weights=bad, input_hw=(24, 32), converter=conv)
        ok = export_int8(spec, tmp_path / "y.tflite", input_hw=(24, 32), converter=conv)  # the child lives on
        assert ok.report.passed and conv.started == 1
