import pytest

from nas.errors import TrainError
from nas.train import Stage, TrainConfig, load_train_config


def test_presets():
    proxy = TrainConfig.proxy()
    assert proxy.steps == 1000 and len(proxy.stages) == 1 and not proxy.has_qat
    assert proxy.stages[0].loss == "charbonnier"  # exact L1 kept young residuals at zero (see nas.train._config)
    full = TrainConfig.full(1000)
    assert [s.label for s in full.stages] == ["charbonnier", "l2", "qat"] and full.has_qat and full.ema == 0.999
    assert full.stage_steps() == [800, 100, 100]
    assert sum(TrainConfig.full(1001).stage_steps()) == 1001


def test_hash_is_stable_and_ignores_cadence():
    a = TrainConfig.proxy(500)
    assert a.hash == TrainConfig.proxy(500).hash
    assert a.hash == TrainConfig.proxy(500, eval_every=10, checkpoint_every=7, threads=1).hash
    assert a.hash != TrainConfig.proxy(501).hash and a.hash != TrainConfig.proxy(500, seed=1).hash


def test_hash_names_the_training_form(monkeypatch):
    """A checkpoint of another parameterisation of the training form is refused, not resumed into this one."""
    import nas.train._config as config

    a = TrainConfig.proxy(500).hash
    monkeypatch.setattr(config, "TRAIN_FORM_VERSION", config.TRAIN_FORM_VERSION + 1)
    assert TrainConfig.proxy(500).hash != a


@pytest.mark.parametrize("kwargs, message", [
    ({"stages": (Stage(share=0.5),)}, "add up to 0.5"),
    ({"stages": (Stage(share=0.5, qat=True), Stage(share=0.5))}, "cannot follow a QAT stage"),
    ({"steps": 2, "stages": (Stage(share=0.4), Stage(share=0.3), Stage(share=0.3))}, "too few"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_config_files(tmp_path):
    good = tmp_path / "full.yaml"
    good.write_text("preset: full\nsteps: 300\nbatch_size: 8\n")
    cfg = load_train_config(good, seed=4)
    assert cfg.steps == 300 and cfg.batch_size == 8 and cfg.seed == 4 and cfg.has_qat
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 0\nbatch_sise: 8\n")
    with pytest.raises(TrainError, match=r"bad.yaml: steps: .*greater than or equal to 1.*batch_sise: Extra"):
        load_train_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(TrainError, match="expected a mapping"):
        load_train_config(tmp_path / "list.yaml")
    with pytest.raises(TrainError, match="preset must be"):
        load_train_config(None, preset="long")
    with pytest.raises(TrainError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
    with pytest.raises(TrainError, match=r"stages.0: .*lr_end 0.001 is above lr 0.0001"):
        load_train_config(None, stages=[{"lr": 1e-4, "lr_end": 1e-3}])
