"""nas proxy check: real trainings of a tiny space, Kendall tau with its interval, resume, MLflow, the CLI."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nas.latency import load_latency_model
from nas.model import load_weights
from nas.fidelity import kendall, proxy_check, spread_specs
from nas.search import load_search_config
from nas.fidelity._proxy_check import recommend
from nas.space import load_space

SPACE = """\
name: tiny
scale: 3
width: {min: 16, max: 32, multiple_of: 16}
depth: {min: 1, max: 2}
blocks: {choices: [conv]}
skip: {choices: [repeat_add, none]}
clip_where: {choices: [after_d2s]}
clip_kind: {choices: [clip]}
tail: {choices: [[]]}
"""


def test_kendall_known_answers():
    a = np.arange(8.0)
    same, rev = kendall(a, a * 2 + 1), kendall(a, -a)
    assert same.tau == pytest.approx(1.0) and same.p_value < 1e-3 and same.low == pytest.approx(1.0)
    assert rev.tau == pytest.approx(-1.0)
    # one discordant pair of 28: tau = (27 - 1) / 28
    b = a.copy()
    b[[0, 1]] = b[[1, 0]]
    assert kendall(a, b).tau == pytest.approx(26 / 28)
    assert np.isnan(kendall([1, 2], [1, 2]).tau)  # too few to rank


def test_a_proxy_is_recommended_only_where_its_tau_is_significant():
    """Four specs ranked alike (tau 1.0, p 0.083) once made `nas proxy check --n 4` recommend a proxy of half the
    default's length; the cheapest length that reaches the target *and* is significant is chosen."""
    four = kendall([1, 2, 3, 4], [1, 2, 3, 4])
    assert four.tau == pytest.approx(1.0) and four.p_value == pytest.approx(1 / 12) and not four.significant()
    sixteen = kendall(np.arange(16.0), np.arange(16.0) + np.r_[0, 2, -2, np.zeros(13)])
    assert sixteen.significant() and sixteen.tau >= 0.8
    weak = kendall(np.arange(16.0), np.r_[np.arange(8.0)[::-1], np.arange(8.0, 16.0)])
    assert weak.significant() and weak.tau < 0.8
    assert recommend({150: four, 300: sixteen, 600: sixteen}, target=0.8) == 300
    assert recommend({150: four, 300: weak}, target=0.8) is None
    assert recommend({150: four}, target=0.8) is None


def test_spread_specs_cover_the_latency_range():
    space, lat = load_space("mai2022"), load_latency_model("vs680")
    specs = spread_specs(space, lat, 8, seed=0)
    ms = [lat.predict(s).pessimistic(1.0) for s in specs]
    assert len({s.hash for s in specs}) == 8 and ms == sorted(ms)
    pool = [lat.predict(space.sample(np.random.default_rng(i))).pessimistic(1.0) for i in range(300)]
    assert ms[0] <= np.percentile(pool, 2) and ms[-1] >= np.percentile(pool, 98)
    assert spread_specs(space, lat, 8, seed=0) == specs  # seeded


@pytest.fixture(scope="module")
def check_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    (tmp / "tiny.yaml").write_text(SPACE)
    cfg = tmp / "study.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        name: pc
        space: {tmp / 'tiny.yaml'}
        proxy: {{steps: 20, batch_size: 4, patch_size: 24}}
        export: {{input_size: 24x32}}
        data: {{limit: 2, valid_limit: 1}}
        out: {tmp / 'runs'}
        """))
    return cfg


@pytest.mark.slow
def test_proxy_check_trains_ranks_logs_and_resumes(check_config):
    cfg = load_search_config(check_config)
    seen = []
    rep = proxy_check(cfg, n=3, candidates=(10, 20), long_steps=40, repeats=1, seeds=2,
                      progress=lambda d, t, m: seen.append((d, t, m)))
    assert len(rep.rows) == 3 and all(set(r.int8) == {10, 20, 40} for r in rep.rows)
    assert seen[-1][0] == seen[-1][1] == 3 * 3 + 1  # 3 lengths x 3 specs, plus one spec under a second seed
    for s in (10, 20):
        t = rep.tau[s]
        assert -1.0 <= t.tau <= 1.0 and 0.0 <= t.p_value <= 1.0 and t.n == 3
        assert t.tau == pytest.approx(kendall([r.int8[s] for r in rep.rows], [r.int8[40] for r in rep.rows]).tau)
    assert rep.recommended is None  # 3 specs: no tau can be significant (the least p is 1/3)
    r = rep.repeatability[0]  # one spec under both seeds: its two INT8 PSNRs, and their spread
    assert len(r["int8"]) == 2 and r["std_db"] == pytest.approx(float(np.std(r["int8"], ddof=1)))
    assert all(v > 0 for v in rep.cost_s.values())
    for name in ("report.json", "specs.csv", "proxy_check.png"):
        assert (rep.folder / name).stat().st_size > 0
    assert (rep.folder / "proxy_check.png").read_bytes()[:4] == b"\x89PNG"
    results = (rep.folder / "results")
    kept = sorted(f for f in results.glob("*.npz") if not f.name.endswith(".float.npz"))  # every trained net, to
    assert len(kept) == 10 and len(load_weights(kept[0])) > 0  # evaluate again on other images; beside QAT's weights
    floats = sorted(results.glob("*.float.npz"))  # the float model each full schedule's QAT started from
    assert len(floats) == 3 and all("-40-full-" in f.name for f in floats)
    assert load_weights(floats[0]).keys() == load_weights(floats[0].with_name(floats[0].name[:-10] + ".npz")).keys()
    assert not list((rep.folder / "results").glob("*.train"))  # the long trainings' checkpoints went with them
    # the reference arm is the product's full schedule (Charbonnier, L2, QAT), named as such in its results
    long_ = [json.loads(f.read_text()) for f in (rep.folder / "results").glob("*-40-full-s*.json")]
    assert rep.reference == "full" and len(long_) == 3 and {r["schedule"] for r in long_} == {"full"}
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    exp = client.get_experiment_by_name("nas-pc")
    runs = client.search_runs([exp.experiment_id], "tags.`nas.kind` = 'proxy-check'")
    assert len(runs) == 1 and runs[0].data.metrics["tau_20"] == pytest.approx(rep.tau[20].tau)
    assert "proxy_check.png" in {a.path for a in client.list_artifacts(runs[0].info.run_id)}

    # started again: nothing is trained again but a training that crashed (not the spec's fault), and the same
    # figures come back (here through the command line)
    before = sorted(p.name for p in (rep.folder / "results").iterdir())
    crashed = sorted((rep.folder / "results").glob("*-10-s*.json"))[0]
    rec = json.loads(crashed.read_text())
    crashed.write_text(json.dumps({**rec, "state": "failed", "reason": "RuntimeError: a fault", "cause": "crash"}))
    res = subprocess.run([sys.executable, "-m", "nas", "proxy", "check", str(check_config), "--n", "3",
                          "--candidates", "10,20", "--long-steps", "40", "--repeats", "1", "--seeds", "2", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads(res.stdout)
    assert sorted(p.name for p in (rep.folder / "results").iterdir()) == before
    assert json.loads(crashed.read_text())["state"] == "complete"
    assert again["tau"]["20"]["tau"] == pytest.approx(rep.tau[20].tau)
    # a changed config (another patch size) does not reuse results that no longer apply
    other = cfg.model_copy(update={"proxy": cfg.proxy.model_copy(update={"patch_size": 16})})
    from nas.fidelity._proxy_check import _config_digest

    assert _config_digest(other) != _config_digest(cfg)


def test_proxy_check_bad_arguments_say_what_is_wrong(check_config):
    from nas.errors import SearchError

    cfg = load_search_config(check_config)
    with pytest.raises(SearchError, match="at least 3 specs"):
        proxy_check(cfg, n=2)
    with pytest.raises(SearchError, match="must be longer than every candidate"):
        proxy_check(cfg, n=3, candidates=(10, 50), long_steps=40)
    with pytest.raises(SearchError, match="reference schedule 'qat'"):
        proxy_check(cfg, n=3, candidates=(2, 4), long_steps=40, reference="qat")
    with pytest.raises(SearchError, match="at least 10 steps, not 8"):
        proxy_check(cfg, n=3, candidates=(2, 4), long_steps=8)
    res = subprocess.run([sys.executable, "-m", "nas", "proxy", "check", str(check_config), "--candidates", "ten"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "--candidates 'ten'" in res.stderr and "Traceback" not in res.stderr


def test_a_long_training_interrupted_mid_way_goes_on_from_its_checkpoint(check_config, tmp_path):
    """A job with a checkpoint folder (what `nas proxy check` gives its long trainings), stopped at step 12 of 24,
    resumes there when run again and ends where an uninterrupted run ends."""
    from nas.search import TrialJob, run_trial

    cfg = load_search_config(check_config)
    cfg = cfg.model_copy(update={"proxy": cfg.proxy.model_copy(update={"steps": 24, "eval_every": 4})})
    spec = load_space(cfg.space).sample(np.random.default_rng(0))

    def job(folder):
        return TrialJob(0, spec, cfg, (24, 32), 1, str(folder) if folder else None)

    cut = run_trial(job(tmp_path / "ck"), lambda number, step, value: step >= 12)
    assert cut.state == "pruned" and (tmp_path / "ck" / "checkpoints" / "progress.json").exists()
    resumed = run_trial(job(tmp_path / "ck"))
    whole = run_trial(job(None))
    assert resumed.state == whole.state == "complete"
    assert 0 < resumed.metrics["train_resumed_from"] < 12 and "train_resumed_from" not in whole.metrics
    assert resumed.metrics["train_steps"] == 24 and [s for s, _ in resumed.curve] == [12, 16, 20, 24]
    assert abs(resumed.metrics["fp32_psnr"] - whole.metrics["fp32_psnr"]) < 0.01  # the same batches, the same net
