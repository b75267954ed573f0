"""One trial as a worker runs it (nas.search._trial): the job and outcome values, the training each schedule
gives. Real trials run in test_executors.py, test_study.py and the proxy-check tests."""

from __future__ import annotations

import pytest

from nas.search import Cause, SearchConfig, TrialJob, TrialOutcome
from nas.search._trial import full_train_config, proxy_train_config
from nas.space import ArchSpec
from nas.train import TrainConfig

SPEC = ArchSpec(width=16, depth=1, blocks="conv")


def test_the_proxy_and_the_full_schedule_of_a_study():
    cfg = SearchConfig(seed=3, proxy={"steps": 400, "lr": 5e-4, "loss": "l1", "batch_size": 8})
    proxy = proxy_train_config(cfg, threads=1, checkpoint_every=40)
    assert proxy.steps == 400 and len(proxy.stages) == 1 and not proxy.has_qat
    assert (proxy.stages[0].loss, proxy.stages[0].lr, proxy.batch_size, proxy.seed) == ("l1", 5e-4, 8, 3)
    assert proxy.eval_every == 100 and proxy.checkpoint_every == 40  # a quarter of the steps by default
    full = full_train_config(cfg, threads=1)
    # the product's own (what nas retrain runs), for the proxy's length, batches and seed
    want = TrainConfig.full(steps=400, batch_size=8, patch_size=cfg.proxy.patch_size, seed=3)
    assert full.hash == want.hash and full.has_qat and full.stage_steps() == [320, 40, 40]


def test_a_job_names_a_known_schedule():
    assert TrialJob(0, SPEC, SearchConfig(), (24, 32)).schedule == "proxy"
    with pytest.raises(ValueError, match="unknown training schedule 'long'"):
        TrialJob(0, SPEC, SearchConfig(), (24, 32), schedule="long")


def test_an_outcome_says_why_it_did_not_complete():
    assert TrialOutcome(0, "pruned", "pruned at step 100").cause is Cause.PRUNED
    assert TrialOutcome(0, "failed", "boom").cause is Cause.CRASH  # retried unless it says it is the spec's
    assert TrialOutcome(0, "complete").cause is None
    with pytest.raises(ValueError, match="needs its reason"):
        TrialOutcome(0, "failed")
    with pytest.raises(ValueError, match="cannot have cause pruned"):
        TrialOutcome(0, "failed", "x", cause=Cause.PRUNED)
    with pytest.raises(ValueError, match="unknown trial state 'done'"):
        TrialOutcome(0, "done")
    out = TrialOutcome(1, "complete", metrics={"int8_psnr": 29.0}, files={"model_int8.tflite": b"x"})
    assert out.summary()["files"] == ["model_int8.tflite"]  # (names only: outcome.json holds no bytes)


@pytest.mark.slow
def test_a_full_schedule_trial_keeps_its_float_model_and_names_its_forms(tmp_path):
    """A trial of the full schedule (the fidelity bench's reference) exports QAT's weights as trained and measures
    FP32 on the float model QAT started from, which it returns beside them; every complete trial names the training
    form and INT8 export it was measured with (a table row records it)."""
    from nas.data import load_images
    from nas.evaluate import KerasUpscaler, evaluate
    from nas.model import load_weights, result_forms
    from nas.search import run_trial

    cfg = SearchConfig(name="t", out=str(tmp_path), proxy={"steps": 20, "batch_size": 4, "patch_size": 24},
                       data={"train": "embedded", "limit": 2, "valid_limit": 1})
    images = (load_images("embedded", "train", limit=2), load_images("embedded", "valid", limit=1))
    spec = ArchSpec(width=16, depth=1, blocks="conv", skip="carry", tail=(3,))
    out = run_trial(TrialJob(0, spec, cfg, (24, 32), schedule="full"), images=images)
    assert out.state == "complete", out.reason
    assert out.forms == result_forms(spec, qat=True) and out.forms.endswith("-qatv3")
    # (QAT's weights or the float model quantized after training, whichever the training photographs favour)
    picks = out.metrics["int8_select_psnr_qat"] >= out.metrics["int8_select_psnr_ptq"]
    assert out.metrics["int8_qat_shipped"] == float(picks)
    (tmp_path / "float.npz").write_bytes(out.files["weights_float.npz"])
    float_model = load_weights(tmp_path / "float.npz")
    fp32 = evaluate(KerasUpscaler(spec, float_model), images[1]).psnr_rgb
    assert out.metrics["fp32_psnr"] == pytest.approx(fp32)
    proxy = run_trial(TrialJob(1, spec, cfg, (24, 32)), images=images)
    assert proxy.forms == result_forms(spec) and "weights_float.npz" not in proxy.files
