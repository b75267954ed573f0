import json
import math

import numpy as np
import pytest

from nas.errors import LatencyError
from nas.latency import (
    FEATURES,
    Accuracy,
    LatencyPrediction,
    OpFeatureModel,
    OpLatency,
    Sample,
    cross_validate,
    fit_model,
    load_latency_model,
    op_rows,
    ops_from_layers,
    published_samples,
)
from nas.space import ArchSpec, deploy_ops, load_space, load_spec, zoo_get
from tests.conftest import ROOT, shared_path

# A made-up board: 2 ms/GMAC, 0.01 ms/MB through convs, elementwise traffic 0.05..0.3 ms/MB, 0.1 ms per op.
TRUE = {"conv_gmac": 2.0, "conv_mb": 0.01, "concat_mb": 0.2, "add_mb": 0.3, "clip_mb": 0.25, "relu_mb": 0.05,
        "d2s_mb": 0.1, "ops": 0.1}
HW = (90, 160)


def _truth(spec: ArchSpec, alignment: int = 8) -> float:
    model = OpFeatureModel(board="truth", input_hw=HW, coef=TRUE, overhead_ms=1.5, alignment=alignment)
    return model.predict(spec).mean_ms


def _specs(n: int, seed: int, widths=(16, 32, 48, 64)) -> list[ArchSpec]:
    space = load_space("mai2022")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        s = space.sample(rng)
        if s.width in widths:
            out.append(s)
    return out


def test_published_layers_give_the_zoo_specs_deployed_features(published_rows):
    """The published reconstructions and the zoo's ArchSpecs describe the same graphs op for op."""
    rows = {r["name"]: r for r in published_rows}
    for name in ("abpn-baseline", "megsr-ncnet", "ecnusr-pureconvsr", "lcvg-hopn", "z6-scsrn", "boe-iot-aibd",
                 "njust-emsrnet", "vccip", "rtsisr2022", "klab-sr"):
        spec = zoo_get(name).spec
        layers = [dict(layer) for layer in rows[name]["layers"]]
        if name == "ecnusr-pureconvsr":  # training form 4: the image rides on past tail_1 to the 1x1 tail, which
            layers[2]["out"], layers[3]["in"] = 30, 30  # folds the anchor (see tests/space/test_zoo.py)
        mine = op_rows(deploy_ops(spec), 16)
        theirs = op_rows(ops_from_layers(layers), 16)
        assert np.allclose(np.sum(mine, axis=0), np.sum(theirs, axis=0)), name


def test_abpn_features_known_answer():
    """ABPN at 640x360: 42,539 parameters, 9.756 GMAC (42,345 MACs per pixel), 13 deployed ops."""
    ops = deploy_ops(load_spec("zoo:abpn"))
    assert sum(o.params for o in ops) == 42539
    assert sum(o.macs for o in ops) == 42345 * 360 * 640
    cols = dict(zip(FEATURES, np.sum(op_rows(ops, 1), axis=0)))
    assert cols["ops"] == len(ops) == 11
    assert cols["conv_gmac"] == pytest.approx(42345 * 360 * 640 / 1e9)
    # the 9x repeat: nine 3-channel inputs and a 27-channel output of 360x640
    assert cols["concat_mb"] == pytest.approx(2 * 27 * 360 * 640 / 1e6)
    assert cols["clip_mb"] == pytest.approx(2 * 3 * 1080 * 1920 / 1e6)
    # padding to 16 channels: 3 -> 16 in the head, 28 -> 32 and 27 -> 32 elsewhere
    padded = dict(zip(FEATURES, np.sum(op_rows(ops, 16), axis=0)))
    per_pixel = 9 * (16 * 32 + 4 * 32 * 32 + 32 * 32 + 32 * 32)
    assert padded["conv_gmac"] == pytest.approx(per_pixel * 360 * 640 / 1e9)
    # the full-resolution clip's 3 channels move as 16
    assert padded["clip_mb"] == pytest.approx(2 * 16 * 1080 * 1920 / 1e6)


def test_fit_recovers_a_known_board_and_predicts_unseen_specs():
    train = _specs(30, seed=1)
    test = _specs(30, seed=2)
    samples = [Sample(s.hash, deploy_ops(s, *HW), _truth(s)) for s in {s.hash: s for s in train}.values()]
    model = fit_model(samples, board="truth", input_hw=HW, alignment=None, baselines=True)
    assert model.alignment == 8  # the true alignment is found from the measurements alone
    for s in test:
        assert model.predict(s).mean_ms == pytest.approx(_truth(s), rel=0.01)
    acc = model.accuracy
    assert acc.within_10 == 1.0 and acc.spearman > 0.99 and acc.mape < 0.01
    # a MACs-only fit cannot see the elementwise ops and does clearly worse on the same folds
    assert model.meta["baselines"]["macs"]["mape"] > 5 * acc.mape


def test_breakdown_sums_to_total_and_floor_bounds_each_op():
    abpn = load_spec("zoo:abpn")
    zero = OpFeatureModel(board="vs680", input_hw=(360, 640), coef={}, peak_tops=7.0, bandwidth_gbs=25.6)
    p = zero.predict(abpn)
    assert p.mean_ms == pytest.approx(sum(o.ms for o in p.per_op))
    # 2 x 9.756 GMAC at 7 TOPS is 2.79 ms: no model may predict less than that for the convs
    conv_ms = sum(o.ms for o in p.per_op if o.type == "conv")
    assert conv_ms >= 2 * 42345 * 360 * 640 / 7e12 * 1e3 - 1e-9
    assert all(o.at_floor for o in p.per_op)
    # the full-resolution clip moves 2 x 6.2 MB: at 25.6 GB/s no less than 0.486 ms
    clip = next(o for o in p.per_op if o.name == "clip")
    assert clip.ms == pytest.approx(2 * 3 * 1080 * 1920 / 25.6e9 * 1e3)


def test_uncertainty_widens_outside_the_fitted_range():
    small = _specs(25, seed=3, widths=(16, 32))
    samples = [Sample(s.hash, deploy_ops(s, *HW), _truth(s)) for s in {s.hash: s for s in small}.values()]
    model = fit_model(samples, board="truth", input_hw=HW, alignment=8, baselines=False)
    inside = model.predict(ArchSpec(width=32, depth=3, blocks="conv"))
    wide = model.predict(ArchSpec(width=64, depth=8, blocks="conv"))
    assert inside.in_range and not wide.in_range and "conv_gmac" in wide.outside
    assert wide.stddev_ms / wide.mean_ms > 1.5 * inside.stddev_ms / inside.mean_ms
    assert wide.pessimistic(1.0) == pytest.approx(wide.mean_ms + wide.stddev_ms)


def test_model_json_round_trip_and_bad_files(tmp_path):
    samples = [Sample(s.hash, deploy_ops(s, *HW), _truth(s)) for s in {s.hash: s for s in _specs(12, 4)}.values()]
    model = fit_model(samples, board="truth", input_hw=HW, alignment=8, baselines=False, source="test")
    path = model.save(tmp_path / "new" / "m.json")  # folders are created
    again = load_latency_model(path)
    spec = load_spec("zoo:abpn")
    assert again.predict(spec) == model.predict(spec)
    assert again.meta["n"] == len(samples) and again.meta["accuracy"]["folds"] == len(samples)
    with pytest.raises(LatencyError, match="calibrated at 90x160 .* predicting at 360x640"):
        again.predict(spec, input_hw=(360, 640))
    data = json.loads(path.read_text())
    for change, message in (({"version": 2}, "version 2 latency model; this nas reads version 1"),
                            ({"format": "other"}, "is not a latency model file"),
                            ({"kind": "magic"}, "unknown kind 'magic'"),
                            ({"coef_ms": {"conv_gmac": -1.0}}, "must be finite and >= 0"),
                            ({"coef_ms": {"flops": 1.0}}, "unknown feature"),
                            ({"input_hw": [90]}, "input_hw must be"),
                            ({"board": None}, "board")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**data, **change}))
        with pytest.raises(LatencyError, match=message):
            load_latency_model(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(LatencyError, match="broken.json: not valid JSON"):
        load_latency_model(broken)
    with pytest.raises(LatencyError, match="latency model not found: nosuch"):
        load_latency_model("nosuch")


def test_value_objects_validate_themselves():
    with pytest.raises(LatencyError, match="does not sum"):
        LatencyPrediction(10.0, 1.0, (OpLatency("a", "conv", 4.0),))
    with pytest.raises(LatencyError, match="stddev_ms"):
        LatencyPrediction(10.0, float("nan"))
    with pytest.raises(LatencyError, match="latency must be a positive number"):
        Sample("x", deploy_ops(load_spec("zoo:abpn"), 8, 8), 0.0)
    acc = Accuracy.of([10, 20, 30, 40], [11, 19, 36, 44], folds=4)
    assert acc.mape == pytest.approx((0.1 + 0.05 + 0.2 + 0.1) / 4)
    assert acc.within_10 == 0.75 and acc.spearman == 1.0 and acc.max_ape == pytest.approx(0.2)
    with pytest.raises(LatencyError, match="at least 5 measurements"):
        cross_validate([Sample(str(i), deploy_ops(load_spec("zoo:abpn"), 8, 8), 1.0 + i) for i in range(3)])


def test_vs680_default_model_is_fitted_to_the_published_rows():
    rows = published_samples(shared_path("latency", "vs680-published.yaml"))
    model = load_latency_model("vs680")
    assert load_latency_model(ROOT / "latency_models" / "vs680.json").coef == model.coef
    assert model.board == "vs680-npu" and model.input_hw == (360, 640)
    meta = model.meta
    assert meta["published"] is True and meta["n"] == len(rows) == 13
    assert meta["accuracy"]["folds"] == 13  # leave-one-out
    assert {s["name"] for s in meta["samples"]} == {s.name for s in rows}
    assert model.alignment == 16 and model.peak_tops == 7.0
    # what MACs cannot see: HOPN (ABPN without the anchor, clip before depth-to-space) at under half ABPN's time
    abpn, hopn = model.predict(load_spec("zoo:abpn")), model.predict(load_spec("zoo:hopn"))
    assert 30 < abpn.mean_ms < 47 and hopn.mean_ms < 0.5 * abpn.mean_ms
    anchor = sum(o.ms for o in abpn.per_op if o.name in ("anchor", "anchor_add", "clip"))
    assert anchor > 0.3 * abpn.mean_ms
    # and the published file itself is reproduced: refitting gives the shipped coefficients
    refit = fit_model(rows, board=model.board, input_hw=(360, 640), alignment=16, peak_tops=7.0,
                      bandwidth_gbs=model.bandwidth_gbs, baselines=False)
    assert all(math.isclose(refit.coef[f], model.coef[f], rel_tol=1e-6, abs_tol=1e-9) for f in FEATURES)



def test_a_new_board_from_a_few_measurements_starts_from_another_boards_model():
    from nas.latency import select_specs

    prior = fit_model([Sample(s.hash, deploy_ops(s, *HW), _truth(s)) for s in _specs(40, 1)], board="old",
                      input_hw=HW, alignment=8, baselines=False)
    held = _specs(40, 9)

    def board(clip: float):  # 1.8x slower than the old board overall, its clips ``clip`` times dearer again
        coef = {k: 1.8 * v for k, v in TRUE.items()}
        coef["clip_mb"] *= clip
        return OpFeatureModel(board="new", input_hw=HW, coef=coef, overhead_ms=2.7, alignment=8)

    def fit(truth, k: int, **kw):
        noise = np.random.default_rng(5)  # 2% measurement noise
        few = [Sample(s.hash, deploy_ops(s, *HW), truth.predict(s).mean_ms * float(noise.normal(1.0, 0.02)))
               for s in select_specs(load_space("mai2022"), k, seed=0)]
        model = fit_model(few, board="new", input_hw=HW, alignment=8, baselines=False, **kw)
        return model, Accuracy.of([truth.predict(s).mean_ms for s in held],
                                  [model.predict_ops(deploy_ops(s, *HW)).mean_ms for s in held], 1)

    # same cost structure, another speed: 5 measurements (fewer than the model's 9 coefficients) find it
    started, a = fit(board(1.0), 5, prior=prior)
    _, b = fit(board(1.0), 5)
    assert a.mape < 0.02 and a.within_10 == 1.0 and b.mape > 2 * a.mape, (a, b)
    assert started.meta["prior"]["board"] == "old" and 1.7 < started.meta["prior"]["scale"] < 1.9
    assert started.meta["prior"]["used"]  # leave-one-out chose the prior over the fit without it
    # another structure (clips 3x dearer): ten measurements move the fit away from the prior where they show it
    _, c = fit(board(3.0), 10, prior=prior)
    assert c.within_10 >= 0.95 and c.spearman >= 0.95, c
    six = [Sample(s.hash, deploy_ops(s, *HW), _truth(s)) for s in held[:6]]
    with pytest.raises(LatencyError, match="cannot start from a macs prior"):
        fit_model(six, board="new", input_hw=HW, prior=fit_model(six, kind="macs", board="m", input_hw=HW))


def test_one_to_four_measurements_scale_the_prior():
    """Below the five measurements a fit needs, a closed loop has the prior times one factor."""
    from nas.latency import scale_model

    prior = OpFeatureModel(board="old", input_hw=HW, coef=TRUE, overhead_ms=1.5, alignment=8, sigma_rel=0.05)
    specs = _specs(3, 4)
    samples = [Sample(s.hash, deploy_ops(s, *HW), 2.5 * prior.predict(s).mean_ms) for s in specs]
    model = scale_model(prior, samples, board="new", input_hw=HW)
    for s in _specs(10, 6):  # unseen specs: 2.5x the prior, exactly (the board differs by one factor)
        assert model.predict(s).mean_ms == pytest.approx(2.5 * prior.predict(s).mean_ms, rel=1e-9)
    assert model.meta["prior"]["scale"] == pytest.approx(2.5) and model.sigma_rel == pytest.approx(0.05)
    odd = samples[:2] + [Sample(samples[2].name, samples[2].ops, samples[2].ms * 1.5)]  # one disagrees
    assert scale_model(prior, odd, board="new", input_hw=HW).sigma_rel > 0.1  # its error is the uncertainty
    with pytest.raises(LatencyError, match="at least one measurement"):
        scale_model(prior, [], board="new", input_hw=HW)


def test_residual_correction_is_exact_where_measured_and_fades_away_from_it(tmp_path):
    """A model that misses a cost (add traffic 3x dearer than it thinks) is corrected at the measured graphs to
    within the allowed noise, unchanged far from them, and surer near them; the correction survives JSON."""
    truth = OpFeatureModel(board="t", input_hw=HW, coef={**TRUE, "add_mb": 0.9}, overhead_ms=1.5, alignment=8)
    model = OpFeatureModel(board="t", input_hw=HW, coef=TRUE, overhead_ms=1.5, alignment=8, sigma_rel=0.2)
    specs = _specs(12, 11)
    samples = [Sample(s.hash, deploy_ops(s, *HW), truth.predict(s).mean_ms) for s in specs]
    fixed = model.with_residuals(samples, noise=0.02)
    before = [abs(model.predict(s).mean_ms / truth.predict(s).mean_ms - 1) for s in specs]
    after = [abs(fixed.predict(s).mean_ms / truth.predict(s).mean_ms - 1) for s in specs]
    assert max(before) > 0.10 and max(after) < 0.02, (before, after)
    p = fixed.predict(specs[0])
    assert p.stddev_ms / p.mean_ms < 0.05 < model.predict(specs[0]).stddev_ms / model.predict(specs[0]).mean_ms
    assert sum(o.ms for o in p.per_op) == pytest.approx(p.mean_ms)  # the breakdown still sums to the total
    unseen = [s for s in _specs(40, 99) if s.hash not in {m.hash for m in specs}]
    doubt = max(fixed.predict(s).stddev_ms / fixed.predict(s).mean_ms for s in unseen)
    assert doubt == pytest.approx(0.2)  # nothing measured near it: about as unsure as the model was
    fixed.save(tmp_path / "m.json")
    again = load_latency_model(tmp_path / "m.json")
    assert again.predict(specs[3]).mean_ms == pytest.approx(fixed.predict(specs[3]).mean_ms, rel=1e-9)
    assert fixed.without_residuals().predict(specs[3]).mean_ms == pytest.approx(model.predict(specs[3]).mean_ms)
