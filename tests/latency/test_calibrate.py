"""Calibration: the space-filling design, and `nas latency calibrate` end to end on this machine's CPU."""

import csv
import json
import subprocess
import sys

import pytest

from nas.errors import LatencyError
from nas.latency import load_latency_model, select_specs
from nas.latency import graph_key
from nas.space import load_space


def test_space_filling_design_reaches_every_corner():
    space = load_space("mai2022")
    picks = select_specs(space, 12, seed=0)
    assert picks == select_specs(space, 12, seed=0)  # seeded
    assert len({graph_key(s) for s in picks}) == 12  # distinct deployed graphs
    assert {s.width for s in picks} >= {16, 64} and {s.depth for s in picks} >= {1, 8}
    # every skip design with a graph of its own (carry deploys as plain convs, the same graphs as skip none, except
    # with a tail conv: the image rides on past tail_1 in 3 more channels, training form 4)
    assert {s.skip.value for s in picks} == {s.skip.value for s in space.deployed_variants()} == {
        "none", "repeat_add", "nearest_conv_add", "concat_input", "carry"}
    assert {s.tail for s in picks} == set(space.tail.choices)
    # random draws of the same size usually miss a corner; the design never does, whatever the seed
    for seed in range(5):
        widths = {s.width for s in select_specs(space, 8, seed=seed)}
        assert {16, 64} <= widths
    more = select_specs(space, 5, seed=0, exclude=picks)
    assert not {graph_key(s) for s in more} & {graph_key(s) for s in picks}
    with pytest.raises(LatencyError, match="fewer than 5000"):
        select_specs(space, 5000)


def _nas(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_calibrate_on_the_host_cpu_end_to_end_and_resume(tmp_path):
    """Five real INT8 exports timed with LiteRT, fitted, written, reported, used for a prediction; a second run
    re-uses every export and measurement."""
    space = tmp_path / "small.yaml"
    space.write_text("name: small\nscale: 3\nwidth: {min: 16, max: 48, multiple_of: 16}\ndepth: {min: 1, max: 3}\n"
                     "blocks: {choices: [conv]}\nskip: {choices: [none, repeat_add]}\n"
                     "clip_where: {choices: [before_d2s, after_d2s]}\nclip_kind: {choices: [clip]}\n")
    out, work = tmp_path / "cpu.json", tmp_path / "work"
    args = ("latency", "calibrate", "--board", "litert-cpu", "--space", str(space), "--n", "6", "--out", str(out),
            "--input-size", "48x64", "--runs", "5", "--warmup", "1", "--rounds", "1", "--work", str(work))
    first = _nas(*args)
    assert first.returncode == 0, first.stderr
    assert "per-op features" in first.stdout and "macs-only linear" in first.stdout
    model = load_latency_model(out)
    assert model.board == "litert-cpu-1t" and model.input_hw == (48, 64) and model.meta["n"] == 6
    assert model.meta["accuracy"]["folds"] == 5 and set(model.meta["baselines"]) == {"macs", "params"}
    with open(work / "measurements.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and all(float(r["median_ms"]) > 0 for r in rows)
    stamp = {p.name: p.stat().st_mtime_ns for p in (work / "models").iterdir()}
    again = _nas(*args, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["meta"]["n"] == 6
    assert {p.name: p.stat().st_mtime_ns for p in (work / "models").iterdir()} == stamp  # nothing re-exported
    with open(work / "measurements.csv") as fh:
        assert list(csv.DictReader(fh)) == rows  # nothing re-measured
    pred = json.loads(_nas("latency", "predict", str(out), "zoo:hopn", "--json").stdout)
    assert pred["mean_ms"] == pytest.approx(sum(o["ms"] for o in pred["per_op"]))
    # the same folder at another input size is refused, naming both
    other = _nas(*args[:-4], "--input-size", "24x32", "--work", str(work))
    assert other.returncode == 1 and "48x64, not litert-cpu-1t at 24x32" in other.stderr
    # a board farm: export only, time elsewhere, calibrate from the file of timings
    farm_work = tmp_path / "farm"
    (farm_work / "models").mkdir(parents=True)
    for p in (work / "models").iterdir():  # the same specs: their exports are re-used, not redone
        (farm_work / "models" / p.name).write_bytes(p.read_bytes())
    exported = _nas(*args[:-2], "--work", str(farm_work), "--export-only")
    assert exported.returncode == 0 and "time them on your board" in exported.stdout, exported.stderr
    with open(farm_work / "specs.csv") as fh:
        listed = [r["model"] for r in csv.DictReader(fh)]
    assert sorted(listed) == sorted(f"{r['hash']}.tflite" for r in rows)
    farm = tmp_path / "farm.csv"
    farm.write_text("model,median_ms\n" + "".join(f"{m},{3.0 + i}\n" for i, m in enumerate(listed)))
    fitted = _nas(*args[:-2], "--work", str(farm_work), "--board", str(farm), "--out", str(tmp_path / "farm.json"))
    assert fitted.returncode == 0, fitted.stderr
    assert load_latency_model(tmp_path / "farm.json").board == "file:farm.csv"
