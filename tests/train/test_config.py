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


def test_a_checkpoint_of_another_training_form_is_refused(tmp_path):
    """A checkpoint of another parameterisation of a spec's training form is refused, not resumed into this one
    (form 4 folds a carry net's anchor into its last conv: its tail conv has 30 inputs where form 3's had 27); a
    spec whose form did not change keeps its checkpoints (one written before forms were recorded is form 3)."""
    import json

    from nas.errors import TrainError
    from nas.model import train_form
    from nas.space import ArchSpec
    from nas.train._trainer import _Checkpoints

    tailed = ArchSpec(width=32, depth=1, blocks="conv", skip="carry", tail=[3], clip_where="before_d2s")
    plain = ArchSpec(width=32, depth=1, blocks="conv", skip="carry", clip_where="before_d2s")
    assert (train_form(tailed), train_form(plain)) == (4, 3)
    cfg = TrainConfig.proxy(500)
    for spec in (tailed, plain):
        folder = tmp_path / spec.hash
        folder.mkdir()
        (folder / "progress.json").write_text(json.dumps({"spec": spec.hash, "config": cfg.hash, "stage": 0}))
        ckpt = _Checkpoints(folder, spec, cfg)
        if spec is plain:
            assert ckpt.load()["spec"] == spec.hash
        else:
            with pytest.raises(TrainError, match="training form 3; .* in form 4"):
                ckpt.load()


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
