"""The INT8 model a training ships (nas.train.export_shipped): after QAT, the better of QAT's weights and the float
model quantized after training, chosen on training photographs; without QAT, the float weights."""

import pytest

from nas.data import load_images
from nas.evaluate import TfliteUpscaler, evaluate
from nas.export import export_int8
from nas.space import ArchSpec
from nas.train import SELECTION_IMAGES, Stage, TrainConfig, export_shipped, train

SPEC = ArchSpec(width=16, depth=1, blocks="conv", skip="repeat_add", tail=())
HW = (24, 32)


@pytest.fixture(scope="module")
def photos():
    return load_images(None, "valid")  # two embedded photographs: small and always there


def _exporter(spec, photos, calls):
    def convert(weights, path, quantization_trained):
        calls.append(quantization_trained)
        return export_int8(spec, path, weights=weights, input_hw=HW, images=[p.hr for p in photos.pairs],
                           n_calibration=2, quantization_trained=quantization_trained)
    return convert


def test_a_qat_stage_that_spoils_its_weights_ships_the_float_model(photos, tmp_path):
    """The full schedule's QAT stage lost more INT8 PSNR than quantizing its own float model after training did, on
    every fidelity reference measured (w32 d6 ECB carry: 0.089 dB against 0.034), and until export version 3 its
    weights were shipped regardless. Here a QAT stage whose learning rate wrecks the weights must lose the choice:
    the float model is shipped, its weights are the ones returned, and the choice is the one the figures say."""
    cfg = TrainConfig(steps=12, batch_size=4, patch_size=24, seed=0, stages=(
        Stage(loss="l2", share=0.75, lr=1e-3), Stage(loss="l1", share=0.25, lr=0.3, lr_end=0.3, qat=True)))
    result = train(SPEC, photos, cfg)
    assert result.quantization_trained and result.float_model is not None
    calls = []
    choice = export_shipped(result, tmp_path / "m.tflite", photos, _exporter(SPEC, photos, calls))
    assert sorted(calls) == [False, True]  # both candidates were converted
    psnr = choice.selection_psnr
    assert set(psnr) == {"qat", "ptq"} and psnr["ptq"] > psnr["qat"] + 1.0, psnr
    assert choice.form == "ptq" and not choice.quantization_trained and choice.weights is result.float_model
    assert choice.export.path == tmp_path / "m.tflite" and choice.export.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]  # (the loser is not left behind)
    shipped = evaluate(TfliteUpscaler(choice.export.path), photos, with_ssim=False).psnr_rgb
    assert shipped == pytest.approx(psnr["ptq"])  # (the selection photographs here are these two)


def test_a_training_without_qat_exports_its_float_weights_without_a_choice(photos, tmp_path):
    plain = train(SPEC, photos, TrainConfig.proxy(4, batch_size=4, patch_size=24))
    calls = []
    choice = export_shipped(plain, tmp_path / "p.tflite", photos, _exporter(SPEC, photos, calls))
    assert calls == [False] and choice.form == "ptq" and choice.selection_psnr == {}
    assert choice.weights is plain.weights and choice.export.path.exists()
    assert SELECTION_IMAGES >= len(photos)
