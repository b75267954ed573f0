import numpy as np
import pytest

from nas.data import load_images
from nas.errors import NasError
from nas.evaluate import Bicubic, KerasUpscaler, TfliteUpscaler, Upscaler, evaluate, psnr, ssim
from nas.space import load_spec
from tests.conftest import shared_path


def test_psnr_known_values():
    hr = np.full((12, 12, 3), 100, np.uint8)
    assert psnr(hr, hr) == float("inf")
    assert psnr(hr.astype(np.float32) + 1, hr) == pytest.approx(10 * np.log10(255**2), abs=1e-9)  # 48.13 dB
    sr = hr.astype(np.float32)
    sr[0, 0, 0] = 355  # clipped to 255 first, as a saved 8-bit image: error 155 in one of 432 values
    assert psnr(sr, hr) == pytest.approx(10 * np.log10(255**2 / (155**2 / 432)))
    sr[0, 0, 0] = 100
    assert psnr(sr, hr, border=1) == float("inf")
    assert ssim(hr, hr) == pytest.approx(1.0)
    with pytest.raises(NasError, match="SSIM needs at least 11x11"):
        ssim(hr, hr, border=1)


def test_metrics_refuse_mismatched_shapes_and_huge_borders():
    a = np.zeros((9, 9, 3), np.uint8)
    with pytest.raises(NasError, match="does not match"):
        psnr(a, np.zeros((9, 12, 3), np.uint8))
    with pytest.raises(NasError, match="border 5 leaves nothing"):
        psnr(a, a, border=5)


def test_bicubic_on_set5_gives_the_published_psnr_and_ssim():
    """Set5 x3 bicubic, Y channel, border 3: 30.39 dB / 0.8682 in the SR literature (e.g. the VDSR and EDSR
    tables). Our SSIM follows Wang et al. in skimage; MATLAB's differs in the 4th decimal."""
    res = evaluate(Bicubic(), load_images(shared_path("data", "CSet5"), "valid"))
    assert len(res.images) == 5 and res.border == 3
    assert res.psnr_y == pytest.approx(30.39, abs=0.02)
    assert res.ssim_y == pytest.approx(0.8682, abs=0.001)
    assert res.psnr_rgb < res.psnr_y  # the challenge's RGB PSNR is lower than the literature's Y PSNR


class _Nearest(Upscaler):
    name = "nearest"

    def upscale(self, lr):
        return np.repeat(np.repeat(lr, 3, axis=0), 3, axis=1)


@pytest.fixture(scope="module")
def zero_abpn(tmp_path_factory):
    """ABPN with zero trainable weights (what is left is its anchor: nearest x3), exported at 24x32."""
    from nas.export import export_int8

    spec = load_spec("zoo:abpn")
    weights = {s.name: [np.zeros((s.kernel, s.kernel, s.cin, s.cout), np.float32), np.zeros(s.cout, np.float32)]
               for s in spec.convs()}
    path = tmp_path_factory.mktemp("zero") / "zero.tflite"
    export_int8(spec, path, weights=weights, input_hw=(24, 32), n_calibration=2)
    return spec, weights, path


def test_int8_model_evaluates_whole_images_of_any_size(zero_abpn):
    """A model exported for 24x32 runs on every CSet5 image at its own size (no tiles, no seams) and gives the
    known answer, nearest-neighbour x3, on every pixel."""
    spec, weights, path = zero_abpn
    images = load_images(shared_path("data", "CSet5"), "valid")
    assert len({p.lr.shape for p in images.pairs}) > 1
    up = TfliteUpscaler(path)
    for pair in images.pairs:
        assert np.abs(up.upscale(pair.lr) - _Nearest().upscale(pair.lr)).max() <= 1
    want = evaluate(_Nearest(), images, with_ssim=False)
    got_int8 = evaluate(up, images, with_ssim=False)
    got_fp32 = evaluate(KerasUpscaler(spec, weights), images, with_ssim=False)
    assert got_int8.psnr_rgb == pytest.approx(want.psnr_rgb, abs=0.01)
    assert got_fp32.psnr_rgb == pytest.approx(want.psnr_rgb, abs=1e-6)
    assert got_int8.psnr_rgb < evaluate(Bicubic(), images, with_ssim=False).psnr_rgb  # nearest loses to bicubic


def test_tflite_upscaler_refuses_non_models(tmp_path):
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(NasError, match="x.tflite"):
        TfliteUpscaler(bad)


def test_scale_mismatch_is_refused():
    images = load_images(None, "valid")
    with pytest.raises(NasError, match="x2"):
        evaluate(Bicubic(2), images)


def test_int8_model_that_xnnpack_refuses_is_evaluated_with_builtin_kernels():
    """A trial's model once failed its evaluation because XNNPACK refused a node; TFLite's own kernels run it."""
    from pathlib import Path

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from nas.evaluate import TfliteUpscaler

    path = Path(__file__).parent / "data" / "xnnpack_refuses.tflite"
    lr = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.float32)
    up = TfliteUpscaler(path, threads=1)
    sr = up.upscale(lr)
    assert up._xnnpack is False and sr.shape == (120, 150, 3)
    ref = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ref.resize_tensor_input(0, [1, 40, 50, 3])
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], lr.astype(np.uint8)[None])
    ref.invoke()
    assert np.array_equal(sr, ref.get_tensor(ref.get_output_details()[0]["index"])[0].astype(np.float32))
