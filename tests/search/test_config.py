"""The search config: defaults, validation with one clear line, derived addresses, identity."""

import pytest

from nas.errors import SearchError
from nas.search import SearchConfig, default_search_config, load_search_config


def test_default_runs_the_embedded_study_under_runs():
    c = default_search_config()
    assert c.name == "default" and c.data.train == "embedded" and c.latency.model == "vs680"
    assert c.storage_url == "sqlite:///runs/default/optuna.db"
    assert c.tracking_uri == "sqlite:///runs/mlflow.db"
    assert c.proxy.report_every == 75 and c.resources.tf_threads == 1 and c.warm_start == ("abpn",)


def test_the_default_study_gets_past_random_sampling():
    """With n_startup_trials 8 and n_trials 8 the default study was the warm start plus random sampling: TPE never
    proposed a trial. The warm start counts as a start-up trial (it is a completed trial of the study)."""
    c = default_search_config()
    assert c.sampler.name == "tpe" and len(c.warm_start) <= c.sampler.n_startup_trials
    assert c.n_trials - c.sampler.n_startup_trials >= 4  # trials TPE proposes


def test_file_and_overrides(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: mine\nn_trials: 3\nexport: {input_size: 48x64}\nproxy: {steps: 40, eval_every: 20}\n")
    c = load_search_config(f, workers=2, ray_address=None)
    assert (c.name, c.n_trials, c.workers, c.export.input_size, c.proxy.report_every) == ("mine", 3, 2, (48, 64), 20)


@pytest.mark.parametrize("text, message", [
    ("n_trials: 0\n", "field 'n_trials': Input should be greater than or equal to 1 (got 0)"),
    ("objective: fastest\n", "field 'objective'"),
    ("proxy: {steps: 10, eval_every: 20}\n", "proxy.eval_every 20 is more than proxy.steps 10"),
    ("sampler: {name: cmaes}\n", "field 'sampler.name'"),
    ("export: {input_size: 36x}\n", "'36x' is not HEIGHTxWIDTH"),
    ("name: ../evil\n", "field 'name'"),
    ("storage: runs/x.db\n", "is not a storage URL"),
    ("latncy: {k: 1}\n", "unknown field 'latncy'"),
    ("- 1\n- 2\n", "a search config must be a YAML mapping, got list"),
    ("name: [\n", "not valid YAML at line 2"),
])
def test_bad_config_is_one_line_naming_the_field(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SearchError) as err:
        load_search_config(f)
    assert str(f) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file():
    with pytest.raises(SearchError, match="search config not found: nope.yaml"):
        load_search_config("nope.yaml")


def test_identity_ignores_what_a_resume_may_change():
    a = SearchConfig()
    assert a.identity_hash == a.with_overrides(n_trials=50, workers=4, ray_address="127.0.0.1:6379").identity_hash
    assert a.identity_hash != SearchConfig(proxy={"steps": 301}).identity_hash
    assert a.identity_hash != SearchConfig(objective="score").identity_hash


def test_show_config_prints_a_file_that_loads_back(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "nas", "search", "--show-config", "--n-trials", "20"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    f = tmp_path / "mine.yaml"
    f.write_text(proc.stdout)
    assert load_search_config(f) == default_search_config().with_overrides(n_trials=20)
