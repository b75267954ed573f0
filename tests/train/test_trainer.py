import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nas.data import ImagePair, ImageSet, load_images
from nas.errors import DivergedError, TrainError
from nas.evaluate import KerasUpscaler, evaluate
from nas.space import ArchSpec, load_spec
from nas.train import Stage, TrainConfig, train
from tests.conftest import ROOT, shared_path

SMALL = ArchSpec(width=16, depth=2, blocks="repconv", skip="repeat_add", tail=(3,))


@pytest.fixture(scope="module")
def photos() -> ImageSet:
    return load_images(None, "valid")  # two embedded photographs: small and always there


class Stop(Exception):
    pass


def _weights_close(a, b, tol):
    assert a.keys() == b.keys()
    return all(np.abs(x - y).max() <= tol for k in a for x, y in zip(a[k], b[k]))


@pytest.mark.slow
def test_short_training_learns_past_its_starting_point(photos):
    """A fresh network starts close to its anchor (nearest x3); 150 proxy steps must move it well past that."""
    valid = load_images(shared_path("data", "CSet5"), "valid")
    spec = load_spec("zoo:abpn")
    seen = []
    res = train(spec, load_images(shared_path("data", "CBSD68")), TrainConfig.proxy(150, eval_every=150),
                valid=valid, callback=seen.append)
    start = evaluate(KerasUpscaler(spec, _initial_deploy(spec)), valid, with_ssim=False).psnr_rgb
    end = evaluate(KerasUpscaler(spec, res.weights), valid, with_ssim=False).psnr_rgb
    assert end > start + 1.0
    assert seen[-1].val_psnr == pytest.approx(end, abs=1e-3) and len(seen) == 150
    assert [e.step for e in seen] == list(range(1, 151)) and seen[0].lr < seen[10].lr  # warm-up
    assert res.history[-1][0] == 150 and res.history[0][2] > res.history[-1][2]  # the loss went down


def _initial_deploy(spec):
    from nas.model import build_model, deploy_weights

    return deploy_weights(build_model(spec, "train", seed=0), spec)


def test_resume_after_interruption_continues_where_the_checkpoint_is(photos, tmp_path):
    cfg = TrainConfig.proxy(30, batch_size=4, patch_size=24, checkpoint_every=10, ema=0.9)
    ref = train(SMALL, photos, cfg)

    def stop_at_25(ev):
        if ev.step == 25:
            raise Stop

    with pytest.raises(Stop):
        train(SMALL, photos, cfg, out_dir=tmp_path, callback=stop_at_25)
    state = json.loads((tmp_path / "checkpoints" / "progress.json").read_text())
    assert state["step"] == 20
    again = train(SMALL, photos, cfg, out_dir=tmp_path)
    assert again.resumed_from == 20 and again.steps == 30
    # same batches from step 20 on, same optimizer and EMA state: the same weights as the uninterrupted run
    assert _weights_close(again.weights, ref.weights, 1e-4)
    # a finished run resumes to its end at once
    assert train(SMALL, photos, cfg, out_dir=tmp_path).resumed_from == 30


def test_a_checkpoint_write_cut_short_does_not_break_the_next_one(photos, tmp_path):
    """A process killed inside TensorFlow's checkpoint write leaves a ``<prefix>_temp`` folder of shards behind;
    the resumed run saves and cleans up past it."""
    cfg = TrainConfig.proxy(10, batch_size=2, patch_size=16, checkpoint_every=5)
    train(SMALL, photos, cfg.model_copy(update={"steps": 5}), out_dir=tmp_path)
    leftover = tmp_path / "checkpoints" / "stage0-0000007_temp"
    leftover.mkdir()
    (leftover / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    train(SMALL, photos, cfg, out_dir=tmp_path, resume=False)
    names = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert not leftover.exists() and "progress.json" in names
    assert {n.split(".")[0] for n in names if n.startswith("stage")} == {"stage0-0000010"}


def test_a_checkpoint_of_another_run_is_refused(photos, tmp_path):
    cfg = TrainConfig.proxy(4, batch_size=2, patch_size=16)
    train(SMALL, photos, cfg, out_dir=tmp_path)
    with pytest.raises(TrainError, match="checkpoint of another run .* --no-resume"):
        train(SMALL, photos, TrainConfig.proxy(5, batch_size=2, patch_size=16), out_dir=tmp_path)
    assert train(SMALL, photos, TrainConfig.proxy(5, batch_size=2, patch_size=16), out_dir=tmp_path,
                 resume=False).resumed_from == 0


def test_nan_loss_stops_with_a_clear_error(photos):
    """A NaN reaching the loss through the real pipeline (here: in the data) stops at that step."""
    hr = np.asarray(photos.pairs[0].hr, np.float32).copy()
    hr[:] = np.nan
    bad = ImageSet("nan", "train", 3, (ImagePair("nan", hr, np.asarray(photos.pairs[0].lr)),))
    with pytest.raises(DivergedError, match=r"diverged at step 1 \(charbonnier stage\): the loss is nan"):
        train(SMALL, bad, TrainConfig.proxy(5, batch_size=2, patch_size=16))


def test_full_schedule_runs_qat_on_the_fused_form(photos, tmp_path):
    """L1 -> L2 -> QAT: the QAT stage trains the fake-quantized deploy form; the result has the deploy layout and
    resumes inside the QAT stage."""
    cfg = TrainConfig(steps=30, batch_size=4, patch_size=24, checkpoint_every=5, stages=(
        Stage(loss="l1", share=0.5), Stage(loss="l2", share=0.2, lr=1e-4), Stage(share=0.3, lr=1e-5, qat=True)))
    seen = []

    def stop_in_qat(ev):
        seen.append(ev.stage)
        if ev.step == 27:
            raise Stop

    with pytest.raises(Stop):
        train(SMALL, photos, cfg, out_dir=tmp_path, callback=stop_in_qat)
    assert seen[0] == "l1" and seen[15] == "l2" and seen[21] == "qat"
    res = train(SMALL, photos, cfg, out_dir=tmp_path)
    assert res.resumed_from == 25
    assert set(res.weights) == {s.name for s in SMALL.convs()}
    assert res.weights["tail_1"][0].shape == (3, 3, 16, 27)


@pytest.mark.timeout(300)
def test_kill_9_during_training_loses_at_most_the_steps_since_the_last_checkpoint(tmp_path):
    """A real process killed with SIGKILL mid-training; the same command resumes from its last checkpoint."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas", "train", "zoo:abpn", "--data", "embedded", "--steps", "400",
           "--checkpoint-every", "20", "--batch-size", "4", "--patch-size", "24", "--no-export", "--out", str(out),
           "--json"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = out / "checkpoints" / "progress.json"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if progress.exists() and json.loads(progress.read_text())["step"] >= 40:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(progress.read_text())["step"]
    assert 40 <= killed_at < 400 and not (out / "report.json").exists()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["train"]["resumed_from"] == killed_at and report["train"]["steps"] == 400
    assert report["fp32"]["psnr_rgb"] > 20 and report["int8"] is None



def test_qat_fine_tuning_starts_from_trained_weights(photos):
    cfg = TrainConfig.proxy(6, batch_size=2, patch_size=16)
    base = train(SMALL, photos, cfg)
    with pytest.raises(TrainError, match="first stage is QAT"):
        train(SMALL, photos, cfg, init=base.weights)
    qat = TrainConfig(steps=3, batch_size=2, patch_size=16, stages=(Stage(lr=1e-9, lr_end=0.0, qat=True),))
    tuned = train(SMALL, photos, qat, init=base.weights)
    assert _weights_close(tuned.weights, base.weights, 1e-5)  # a vanishing learning rate keeps the start


def test_qat_starts_from_the_rescaling_the_int8_export_makes(photos):
    """A carry net stores the image beside its features; the export gives those tensors the image's 0..255 range
    (exact in float). QAT used to start from the weights as trained, so its fake quantizers learnt ranges (and the
    weights learnt noise) that the exported model does not have. It now starts from the rescaled weights: other
    weights, the same function."""
    spec = ArchSpec(width=16, depth=2, blocks="conv", skip="carry", tail=(3,))
    base = train(spec, photos, TrainConfig.proxy(6, batch_size=2, patch_size=16))
    qat = TrainConfig(steps=2, batch_size=2, patch_size=16, stages=(Stage(lr=1e-9, lr_end=0.0, qat=True),))
    tuned = train(spec, photos, qat, init=base.weights)
    assert not _weights_close(tuned.weights, base.weights, 1e-3)  # rescaled
    lr = photos.pairs[0].lr[:40, :40].astype(np.float32)
    before, after = (KerasUpscaler(spec, w).upscale(lr) for w in (base.weights, tuned.weights))
    assert np.abs(before.astype(float) - after.astype(float)).max() <= 1.0  # the same net (to the output's rounding)


def test_a_qat_run_keeps_its_float_model_through_a_resume(photos, tmp_path):
    """QAT's weights are trained for their INT8 form; run in float without their quantizers they are no float model
    (a carry net's float figure fell to 26 dB while its INT8 model gave 30). The float stages' result is the float
    model: it is kept when QAT starts, so a run stopped inside QAT and resumed still has it."""
    cfg = TrainConfig(steps=8, batch_size=2, patch_size=16, seed=1, checkpoint_every=1,
                      stages=(Stage(loss="l1", share=0.5, lr=1e-3), Stage(loss="l1", share=0.5, lr=1e-4, qat=True)))
    whole = train(SMALL, photos, cfg)
    assert whole.quantization_trained and not _weights_close(whole.float_model, whole.weights, 1e-6)

    def stop_in_qat(ev):
        if ev.step == 6:
            raise Stop

    with pytest.raises(Stop):
        train(SMALL, photos, cfg, out_dir=tmp_path, callback=stop_in_qat)
    resumed = train(SMALL, photos, cfg, out_dir=tmp_path)
    assert resumed.resumed_from == 5 and resumed.float_model is not None  # (QAT: steps 5-8)
    assert _weights_close(resumed.float_model, whole.float_model, 1e-5)
    plain = train(SMALL, photos, TrainConfig.proxy(4, batch_size=2, patch_size=16))
    assert not plain.quantization_trained and plain.float_model is plain.weights
