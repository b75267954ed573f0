import numpy as np
import pytest

from nas.data import imresize, modcrop, read_image, rgb_to_y
from nas.errors import DataError
from tests.conftest import shared_path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255.0**2 / np.mean((a - b) ** 2))


def test_bicubic_x3_on_set5_gives_30_39_db_on_y():
    """The literature's reference figure: MATLAB imresize bicubic x3, rgb2ycbcr Y, border crop 3."""
    folder = shared_path("data", "CSet5")
    scores = []
    for f in sorted(folder.glob("*.png")):
        hr = modcrop(read_image(f), 3)
        sr = imresize(imresize(hr, 1 / 3), 3)
        y_hr, y_sr = np.round(rgb_to_y(hr)), np.round(rgb_to_y(sr))
        scores.append(_psnr(y_hr[3:-3, 3:-3], y_sr[3:-3, 3:-3]))
    assert len(scores) == 5
    assert abs(np.mean(scores) - 30.39) <= 0.02


def test_imresize_sizes_and_constant_images():
    img = np.full((31, 20, 3), 77, np.uint8)
    small = imresize(img, 1 / 3)
    assert small.shape == (11, 7, 3) and small.dtype == np.uint8 and (small == 77).all()
    assert imresize(small, 3).shape == (33, 21, 3)


def test_read_image_normalises_modes(tmp_path):
    from PIL import Image

    gray = tmp_path / "g.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(gray)
    assert read_image(gray).shape == (8, 8, 3)
    rgba = tmp_path / "a.png"
    Image.fromarray(np.full((4, 4, 4), 200, np.uint8)).save(rgba)
    assert read_image(rgba).shape == (4, 4, 3)
    deep = tmp_path / "d.png"
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(deep)
    out = read_image(deep)
    assert out.dtype == np.uint8 and (out == 255).all()
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="corrupt.png: cannot decode image"):
        read_image(bad)
