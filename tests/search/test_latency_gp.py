"""The hardware-aware sampler (``latency_gp``): its model recovers a known function, its acquisition has the known
answers, and in a study it never proposes an infeasible or repeated spec and finds a known optimum sooner than
random search."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from nas.latency import load_latency_model
from nas.search import SearchConfig
from nas.search.samplers._latency_gp import LatencyGPSampler, _ehvi, _ei, _fit_predict
from nas.search.samplers import make_sampler
from nas.space import load_space


@pytest.fixture(scope="module")
def space():
    return load_space("mai2022")


def test_the_process_recovers_a_known_function_and_is_unsure_far_from_its_data():
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    f = lambda a: 28.0 + 2.0 * a[:, 0] - 1.0 * a[:, 1] ** 2  # the third input is irrelevant
    new = rng.random((200, 3))
    mean, sd = _fit_predict(x, f(x), new)
    assert np.sqrt(np.mean((mean - f(new)) ** 2)) < 0.05, "a smooth function of 2 of 3 inputs, 40 points"
    far = np.array([[4.0, 4.0, 4.0]])
    _, sd_far = _fit_predict(x, f(x), far)
    assert sd_far[0] > 10 * sd.mean()


def test_expected_hypervolume_improvement_has_the_known_answers():
    z = np.array([0.0])  # a certain PSNR
    # an empty front: the candidate's whole box to the reference point
    got = _ehvi([], np.array([29.0]), np.array([0.0]), np.array([20.0]), 27.0, 80.0, z)
    assert got[0] == pytest.approx(2.0 * 60.0)
    # a front point (28.5 dB, 30 ms): a candidate at 20 ms and 29 dB adds 10 ms x 2 dB plus 50 ms x 0.5 dB
    got = _ehvi([(28.5, 30.0)], np.array([29.0, 28.0]), np.zeros(2), np.array([20.0, 40.0]), 27.0, 80.0, z)
    assert got[0] == pytest.approx(10 * 2.0 + 50 * 0.5) and got[1] == 0.0  # the second is dominated
    # uncertainty is worth something: a dominated mean with a spread has a positive expectation
    zq = np.array([-1.0, 1.0])
    got = _ehvi([(28.5, 30.0)], np.array([28.0]), np.array([1.0]), np.array([40.0]), 27.0, 80.0, zq)
    assert got[0] == pytest.approx(0.5 * 40 * 0.5)  # half the draws at 29 dB, 0.5 dB above the front, for 40 ms
    # expected improvement: N(0, 1) over 0 is 1/sqrt(2*pi)
    assert _ei(np.array([0.0]), np.array([1.0]), 0.0)[0] == pytest.approx(1 / math.sqrt(2 * math.pi))


def _study(sampler, directions):
    return optuna.create_study(sampler=sampler, directions=directions)


def _synthetic_psnr(spec) -> float:
    """A made-up but structured PSNR: more width and depth help with diminishing returns, an anchor helps."""
    anchor = 0.0 if spec.skip.value == "none" else 1.0
    return 27.0 + anchor + 0.6 * math.log2(spec.width / 16 + 1) + 0.15 * math.sqrt(spec.depth)


def test_in_a_study_it_never_repeats_a_spec_nor_proposes_one_over_the_budget(space):
    cfg = SearchConfig(sampler={"name": "latency_gp"}, latency={"budget_ms": 30.0}, seed=1)
    sampler = make_sampler(cfg)
    assert isinstance(sampler, LatencyGPSampler)
    model = load_latency_model("vs680")
    st = _study(sampler, ["maximize", "minimize"])
    seen, running = set(), []
    for i in range(24):
        t = st.ask()
        spec = space.suggest(t)
        lat = model.predict(spec).pessimistic(1.0)
        assert lat <= 30.0, (i, spec.describe(), lat)
        assert spec.hash not in seen, (i, spec.describe())
        seen.add(spec.hash)
        if i % 3 == 2:  # a running trial (not told yet) is not proposed again either
            running.append(t)
            continue
        st.tell(t, [_synthetic_psnr(spec), lat])
    assert len(seen) == 24


def test_on_a_known_function_it_finds_the_best_score_sooner_than_random_search(space):
    """The score objective on a synthetic PSNR (the latency model's latency): the best log2 score of the space is
    known, and over 5 seeds the hardware-aware sampler gets closer to it in 16 trials than random search."""
    from nas.evaluate import log2_score

    model = load_latency_model("vs680")
    specs = [s for _, s in space.enumerate()]
    lat = {s.hash: model.predict(s).pessimistic(1.0) for s in specs}
    best = max(log2_score(_synthetic_psnr(s), lat[s.hash]) for s in specs)
    gaps = {}
    for name in ("latency_gp", "random"):
        gaps[name] = []
        for seed in range(5):
            st = _study(make_sampler(SearchConfig(sampler={"name": name}, objective="score", seed=seed)), ["maximize"])
            top = -math.inf
            for _ in range(16):
                t = st.ask()
                spec = space.suggest(t)
                v = log2_score(_synthetic_psnr(spec), lat[spec.hash])
                st.tell(t, v)
                top = max(top, v)
            gaps[name].append(best - top)
    assert np.median(gaps["latency_gp"]) < 0.5 * np.median(gaps["random"]), gaps


def test_a_space_too_large_to_list_gets_fresh_candidates_drawn_for_each_trial(space):
    """Blocks chosen per layer: 4^(depth+2) block choices per depth, far more specs than are listed."""
    from nas.space import SearchSpace

    big = SearchSpace.model_validate({**space.to_dict(), "name": "per-layer",
                                      "blocks": {"choices": ["conv", "repconv", "ecb", "clb"], "per_layer": True}})
    assert big.size() > 10**6
    model = load_latency_model("vs680")
    sampler = LatencyGPSampler(big, lambda s: (model.predict(s).pessimistic(1.0), True), seed=0, n_candidates=256)
    st = _study(sampler, ["maximize", "minimize"])
    specs = []
    for _ in range(10):
        t = st.ask()
        spec = big.suggest(t)
        specs.append(spec)
        st.tell(t, [_synthetic_psnr(spec), model.predict(spec).pessimistic(1.0)])
    assert len({s.hash for s in specs}) == 10 and sampler._all is None
    assert len({b.value for s in specs for b in s.blocks}) > 1  # per-layer blocks are chosen, not all one kind


def test_a_resumed_study_goes_on_without_proposing_a_spec_it_already_holds(tmp_path):
    """A table study (the product's driver and storage) of 8 trials, then the same study resumed to 16: the sampler
    is made afresh in the second run (from the stored trials only), and the study holds 16 distinct specs, none a
    duplicate of an earlier trial."""
    from pathlib import Path

    from nas.benchmark import BenchTable, TableExecutors
    from nas.search import run_search
    from nas.search._record import TrialRecord
    from nas.search._store import load_optuna_study, open_study
    from nas.search._study import NullTrialLog

    table = Path(__file__).resolve().parents[2] / "bench" / "tables" / "mai2022-300.csv"
    meta = BenchTable.read_csv(table).meta
    data = {"name": "resume", "out": str(tmp_path), "n_trials": 8, "table": str(table), "seed": 5,
            "sampler": {"name": "latency_gp"}, "export": {"input_size": meta.get("input_size")}}
    first = run_search(SearchConfig.model_validate(data), executors=TableExecutors(), trial_log=NullTrialLog(),
                       plots=False)
    again = run_search(SearchConfig.model_validate({**data, "n_trials": 16}), executors=TableExecutors(),
                       trial_log=NullTrialLog(), plots=False)
    assert first.complete == 8 and again.complete == 16
    st = load_optuna_study(open_study(tmp_path / "resume"))
    recs = [TrialRecord.from_attrs(t.user_attrs) for t in st.get_trials(deepcopy=False)]
    assert len(recs) == 16 and all(r.duplicate_of is None for r in recs)
    assert len({r.hash for r in recs}) == 16
