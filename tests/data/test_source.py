import numpy as np
import pytest
from PIL import Image

from nas.data import (EMBEDDED_VALID, ImageCache, ImageSet, ImagePair, PatchSampler, default_valid_source, imresize,
                      load_images, make_dataset)
from nas.errors import DataError
from tests.conftest import shared_path


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A crop of a real photograph (scikit-image's astronaut), so resizing has real content to work on."""
    import skimage.data

    img = skimage.data.astronaut()
    y = (seed * 37) % (img.shape[0] - h)
    return np.ascontiguousarray(img[y:y + h, :w])


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def div2k(tmp_path):
    root = tmp_path / "DIV2K"
    for i in range(2):
        _save(root / "DIV2K_train_HR" / f"{i + 1:04d}.png", _photo(91, 122, i))
    _save(root / "DIV2K_valid_HR" / "0801.png", _photo(60, 90, 5))
    # DIV2K's own LR image: a constant one, so the test can tell it was read rather than computed
    _save(root / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png", np.full((20, 30, 3), 77, np.uint8))
    return root


def test_div2k_layout_splits_and_given_lr(div2k):
    train = load_images(div2k, "train")
    assert [p.name for p in train.pairs] == ["0001", "0002"]
    assert train.pairs[0].hr.shape == (90, 120, 3)  # modcrop to a multiple of 3
    assert np.array_equal(train.pairs[0].lr, imresize(train.pairs[0].hr, 1 / 3))  # made as DIV2K made it
    valid = load_images(div2k, "valid")
    assert [p.name for p in valid.pairs] == ["0801"] and (valid.pairs[0].lr == 77).all()  # DIV2K's own LR
    # the HR folder itself also works, and the valid split of a DIV2K root is the default validation source
    assert len(load_images(div2k / "DIV2K_train_HR")) == 2
    assert default_valid_source(div2k) == div2k
    assert default_valid_source(div2k / "DIV2K_train_HR") == div2k / "DIV2K_valid_HR"
    assert default_valid_source(None) == "embedded"


def test_div2k_lr_of_the_wrong_size_or_missing_is_named(div2k):
    _save(div2k / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(DataError, match=r"0801.png: its LR image is 10x10, expected 30x20"):
        load_images(div2k, "valid")
    (div2k / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png").unlink()
    with pytest.raises(DataError, match="has no 0801x3.png"):
        load_images(div2k, "valid")


def test_div2k_root_without_the_split_folder(tmp_path):
    _save(tmp_path / "DIV2K_train_HR" / "0001.png", _photo(30, 30))
    with pytest.raises(DataError, match="no DIV2K_valid_HR folder"):
        load_images(tmp_path, "valid")


def test_corrupt_file_raises_or_is_skipped_and_counted(tmp_path):
    _save(tmp_path / "a.png", _photo(48, 48))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(DataError, match="b.png: cannot decode image"):
        load_images(tmp_path)
    images = load_images(tmp_path, on_error="skip")
    assert len(images) == 1 and len(images.skipped) == 1 and images.skipped[0][0].endswith("b.png")


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no images"):
        load_images(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_images(tmp_path / "nope")
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"no usable images .* \(1 skipped\)"):
        load_images(tmp_path, on_error="skip")


def test_image_smaller_than_a_patch_is_named(tmp_path):
    _save(tmp_path / "big.png", _photo(150, 150))
    _save(tmp_path / "tiny.png", _photo(60, 90))
    images = load_images(tmp_path)
    with pytest.raises(DataError, match=r"smaller than the 48x48 LR patch .*tiny \(30x20\)"):
        PatchSampler(images, patch=48)


def test_disk_cache_serves_a_second_process_view(tmp_path):
    _save(tmp_path / "img" / "a.png", _photo(60, 60))
    first = load_images(tmp_path / "img", cache=ImageCache(tmp_path / "cache"))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    cache = ImageCache(tmp_path / "cache")
    second = load_images(tmp_path / "img", cache=cache)
    assert isinstance(second.pairs[0].hr, np.memmap)  # read from disk, not decoded again
    assert np.array_equal(second.pairs[0].lr, first.pairs[0].lr)
    assert load_images(tmp_path / "img", cache=cache).pairs[0] is second.pairs[0]  # and then from memory


def test_embedded_default_holds_out_validation_photos():
    train, valid = load_images(None, "train"), load_images("embedded", "valid")
    assert tuple(p.name for p in valid.pairs) == EMBEDDED_VALID
    assert not {p.name for p in train.pairs} & set(EMBEDDED_VALID) and len(train) == 6


def _pair_set(n=3) -> ImageSet:
    pairs = []
    for i in range(n):
        hr = _photo(150, 180, i)
        pairs.append(ImagePair(f"p{i}", hr, imresize(hr, 1 / 3)))
    return ImageSet("test", "train", 3, tuple(pairs))


@pytest.mark.parametrize("augment", [False, True])
def test_patches_are_aligned_lr_hr_pairs(augment):
    """Each LR patch is the bicubic downscale of its HR patch (away from the patch border, where the kernel
    reaches outside the patch): the pair is aligned, also after the flips and rotations."""
    sampler = PatchSampler(_pair_set(), patch=16, batch=8, seed=3, augment=augment)
    lr, hr = sampler.batch(0)
    assert lr.shape == (8, 16, 16, 3) and hr.shape == (8, 48, 48, 3) and lr.dtype == np.float32
    for b in range(8):
        down = imresize(hr[b].astype(np.uint8), 1 / 3).astype(np.float32)
        assert np.abs(down[2:-2, 2:-2] - lr[b, 2:-2, 2:-2]).max() <= 1


def test_sampler_is_seeded_per_step_and_augments():
    images = _pair_set()
    a = PatchSampler(images, 16, 8, seed=1)
    assert np.array_equal(a.batch(7)[0], PatchSampler(images, 16, 8, seed=1).batch(7)[0])
    assert not np.array_equal(a.batch(7)[0], a.batch(8)[0])
    assert not np.array_equal(a.batch(7)[0], PatchSampler(images, 16, 8, seed=2).batch(7)[0])
    plain = PatchSampler(images, 16, 8, seed=1, augment=False).batch(7)[0]
    assert not np.array_equal(a.batch(7)[0], plain)  # same crops, some of them flipped or rotated


def test_dataset_yields_the_samplers_batches_in_order():
    sampler = PatchSampler(_pair_set(), 16, 4, seed=0)
    got = [(lr.numpy(), hr.numpy()) for lr, hr in make_dataset(sampler, 5, 9)]
    assert len(got) == 4
    for k, (lr, hr) in enumerate(got):
        want_lr, want_hr = sampler.batch(5 + k)
        assert np.array_equal(lr, want_lr) and np.array_equal(hr, want_hr)


def test_cbsd68_loads_whole():
    images = load_images(shared_path("data", "CBSD68"))
    assert len(images) == 68 and images.skipped == ()
    assert all(p.hr.shape[0] == 3 * p.lr.shape[0] and p.hr.shape[1] == 3 * p.lr.shape[1] for p in images.pairs)
