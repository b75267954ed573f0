import pytest

from nas.errors import LatencyError
from nas.latency import FileBoard, LiteRTCPUBoard, Measurement, make_board
from nas.space import load_spec


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    """ABPN exported at two input sizes 16x apart in pixels (and MACs)."""
    from nas.export import export_int8

    d = tmp_path_factory.mktemp("lat")
    spec = load_spec("zoo:abpn")
    small = export_int8(spec, d / "small.tflite", input_hw=(45, 80), n_calibration=1).path
    big = export_int8(spec, d / "big.tflite", input_hw=(180, 320), n_calibration=1).path
    return small, big


def test_host_cpu_board_times_models_and_sees_size(two_sizes):
    small, big = two_sizes
    board = LiteRTCPUBoard(threads=1, warmup=2, runs=15)
    a, b = board.measure(small), board.measure(big)
    assert a.runs == 15 and a.board == "litert-cpu-1t" and a.model == "small.tflite"
    assert a.q1_ms <= a.median_ms <= a.q3_ms and a.spread < 1.0  # the middle half of 15 runs within 2x of the median
    assert 4.0 < b.median_ms / a.median_ms < 40.0  # 16x the pixels: much slower, roughly in proportion


def test_litert_builtin_kernels_are_another_board_on_the_same_machine(two_sizes):
    _, big = two_sizes
    xnn, builtin = make_board("litert-cpu", runs=9, warmup=2), make_board("litert-builtin", runs=9, warmup=2)
    assert (xnn.name, builtin.name) == ("litert-cpu-1t", "litert-builtin-1t")
    a, b = xnn.measure(big), builtin.measure(big)
    assert b.board == "litert-builtin-1t"
    # without XNNPACK LiteRT's own kernels run ABPN's convs about 2x slower here: a distinct
    # cost structure, not the same board under another name
    assert b.median_ms > 1.2 * a.median_ms, (a.median_ms, b.median_ms)


def test_host_cpu_board_refuses_non_models(tmp_path):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"nope")
    with pytest.raises(Exception, match="m.tflite"):
        LiteRTCPUBoard().measure(bad)
    with pytest.raises(LatencyError, match="runs"):
        LiteRTCPUBoard(runs=0)


def test_measurement_validates_itself():
    with pytest.raises(LatencyError, match="median_ms must be a positive number"):
        Measurement("m", "b", float("nan"), 3)
    with pytest.raises(LatencyError, match="do not bracket the median"):
        Measurement("m", "b", 5.0, 3, q1_ms=6.0, q3_ms=7.0)
    m = Measurement("m", "b", 10.0, 5, 9.0, 11.5)
    assert m.spread == pytest.approx(0.25) and m.to_dict()["median_ms"] == 10.0


def test_file_board_csv_and_yaml(tmp_path):
    csv_file = tmp_path / "farm.csv"
    csv_file.write_text("model,median_ms,runs,q1_ms,q3_ms\nabpn.tflite,19.2,50,19.0,19.5\nncnet,21.5,,,\n")
    board = FileBoard(csv_file)
    assert len(board) == 2 and board.measure("runs/abpn.tflite").median_ms == 19.2
    assert board.measure("ncnet.tflite").runs == 1
    with pytest.raises(LatencyError, match="farm.csv has no measurement for hopn.tflite"):
        board.measure("hopn.tflite")
    yaml_file = tmp_path / "farm.yaml"
    yaml_file.write_text("measurements:\n  - {model: a, median_ms: 3.5, runs: 10}\n")
    assert FileBoard(yaml_file).measure("a.tflite").median_ms == 3.5


@pytest.mark.parametrize("text, message", [
    ("model,ms\na,1\n", "missing column.* median_ms"),
    ("model,median_ms\na,fast\n", "row 2: column median_ms is not a number: 'fast'"),
    ("model,median_ms\na,1\nb,-2\n", "row 3: .*median_ms must be a positive number"),
    ("model,median_ms\n,1\n", "row 2: column model is empty"),
    ("model,median_ms,runs\na,1,2.5\n", "row 2: column runs is not a number"),
    ("model,median_ms\n", "no measurements"),
])
def test_file_board_names_bad_rows_and_columns(tmp_path, text, message):
    f = tmp_path / "m.csv"
    f.write_text(text)
    with pytest.raises(LatencyError, match=message):
        FileBoard(f)
    with pytest.raises(LatencyError, match="not found"):
        FileBoard(tmp_path / "none.csv")
