"""Image sources for training and validation: the embedded default, DIV2K's folder layout, any folder of images.

A source resolves to an :class:`ImageSet`: high-resolution images cropped to a multiple of the scale, each with
its low-resolution twin. The LR image is DIV2K's own (``DIV2K_*_LR_bicubic/X3/0001x3.png``) where that folder
exists, and otherwise made the way DIV2K made it (MATLAB-compatible antialiased bicubic). Decoded pairs are kept in
an :class:`ImageCache` the caller owns: in memory, and with a directory also on disk as ``.npy`` files keyed by the
source file's path, size and modification time, so a second process (a search trial) maps them instead of decoding
PNGs again.

Bad files: with ``on_error="raise"`` (the default) the first unreadable file stops with a :class:`DataError`
naming it; with ``"skip"`` it is left out, counted in :attr:`ImageSet.skipped` and logged as a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Literal

import numpy as np

from nas._files import atomic_write
from nas._logging import get_logger
from nas.data._images import EMBEDDED_NAMES, embedded_images, list_images, read_image
from nas.data._resize import imresize, modcrop
from nas.errors import DataError

__all__ = ["ImagePair", "ImageSet", "ImageCache", "load_images", "EMBEDDED_VALID", "describe_source",
           "default_valid_source"]

log = get_logger("data")

Split = Literal["train", "valid"]
OnError = Literal["raise", "skip"]

# The embedded default holds two of its eight photographs out for validation.
EMBEDDED_VALID = ("coffee", "chelsea")


@dataclasses.dataclass(frozen=True)
class ImagePair:
    """One image: ``hr`` (H x W x 3 uint8, H and W multiples of the scale) and ``lr`` (H/s x W/s x 3 uint8)."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Decoded image pairs of one source and split, plus the files left out (path, reason)."""

    source: str
    split: str
    scale: int
    pairs: tuple[ImagePair, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.pairs)


class ImageCache:
    """Decoded image pairs by key: in memory, and on disk under ``directory`` when one is given."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory).expanduser() if directory else None
        self._memory: dict[str, ImagePair] = {}

    def __len__(self) -> int:
        return len(self._memory)

    def get(self, key: str, name: str, make) -> ImagePair:
        """The pair cached under ``key``, or ``make()`` stored under it."""
        if key in self._memory:
            return self._memory[key]
        hit = self._read(key, name) if self.directory else None
        if hit is None:
            hit = make()
            if self.directory:
                self._write(key, hit)
        self._memory[key] = hit
        return hit

    def _read(self, key: str, name: str) -> ImagePair | None:
        hr_c, lr_c = self.directory / f"{key}.hr.npy", self.directory / f"{key}.lr.npy"
        if not (hr_c.exists() and lr_c.exists()):
            return None
        try:
            return ImagePair(name, np.load(hr_c, mmap_mode="r", allow_pickle=False),
                             np.load(lr_c, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError):
            return None  # a torn cache file: decode again and overwrite it

    def _write(self, key: str, pair: ImagePair) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for suffix, arr in ((".hr.npy", pair.hr), (".lr.npy", pair.lr)):
            with atomic_write(self.directory / f"{key}{suffix}") as fh:
                np.save(fh, arr, allow_pickle=False)


def _is_embedded(source: str | Path | None) -> bool:
    return source is None or str(source) == "embedded"


def _embedded_names(split: Split) -> list[str]:
    return [n for n in EMBEDDED_NAMES if (n in EMBEDDED_VALID) == (split == "valid")]


def div2k_dirs(root: Path, split: Split, scale: int) -> tuple[Path, Path | None] | None:
    """(HR folder, LR folder or None) when ``root`` follows DIV2K's layout, else None.

    ``root`` is the DIV2K folder (holding ``DIV2K_train_HR`` ...) or one of its HR folders, which is then used
    for whichever split is asked (the user named it).
    """
    name = "train" if split == "train" else "valid"
    if root.name in ("DIV2K_train_HR", "DIV2K_valid_HR"):
        hr = root
    elif (root / f"DIV2K_{name}_HR").is_dir():
        hr = root / f"DIV2K_{name}_HR"
    elif (root / "DIV2K_train_HR").is_dir() or (root / "DIV2K_valid_HR").is_dir():
        raise DataError(f"{root} has DIV2K's layout but no DIV2K_{name}_HR folder for the '{split}' split")
    else:
        return None
    lr = hr.parent / hr.name.replace("_HR", "_LR_bicubic") / f"X{scale}"
    return hr, (lr if lr.is_dir() else None)


def describe_source(source: str | Path | None, split: Split = "train", scale: int = 3) -> str:
    """One line saying what a source resolves to (for logs and the CLI)."""
    if _is_embedded(source):
        return f"embedded photographs ({split}: {', '.join(_embedded_names(split))})"
    root = Path(source)
    dirs = div2k_dirs(root, split, scale) if root.is_dir() else None
    if dirs:
        return f"DIV2K {dirs[0]}" + (f" with LR from {dirs[1]}" if dirs[1] else " (LR made by bicubic x1/3)")
    return f"folder {root}"


def default_valid_source(source: str | Path | None) -> str | Path | None:
    """Where validation images come from when none are named: DIV2K's valid split for a DIV2K root, the embedded
    default's held-out photographs for the embedded default and for a plain folder (never the training images)."""
    if _is_embedded(source):
        return "embedded"
    root = Path(source)
    if (root / "DIV2K_valid_HR").is_dir():
        return root
    if root.name in ("DIV2K_train_HR", "DIV2K_valid_HR") and (root.parent / "DIV2K_valid_HR").is_dir():
        return root.parent / "DIV2K_valid_HR"
    return "embedded"


def _cache_key(path: Path, scale: int, lr_path: Path | None) -> str:
    parts = []
    for p in (path, lr_path):
        if p is None:
            continue
        st = p.stat()
        parts.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
    parts.append(f"x{scale}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _make_pair(name: str, hr: np.ndarray, scale: int, lr: np.ndarray | None, where: str) -> ImagePair:
    if hr.shape[0] < scale or hr.shape[1] < scale:
        raise DataError(f"{where}: image of {hr.shape[1]}x{hr.shape[0]} pixels is too small for x{scale} (needs at "
                        f"least {scale}x{scale})")
    hr = modcrop(hr, scale)
    want = (hr.shape[0] // scale, hr.shape[1] // scale)
    if lr is None:
        lr = imresize(hr, 1.0 / scale)
    elif lr.shape[:2] != want:
        raise DataError(f"{where}: its LR image is {lr.shape[1]}x{lr.shape[0]}, expected {want[1]}x{want[0]} for x{scale}")
    return ImagePair(name, np.ascontiguousarray(hr), np.ascontiguousarray(lr))


def _load_file(path: Path, lr_path: Path | None, scale: int, cache: ImageCache) -> ImagePair:
    def make() -> ImagePair:
        lr = read_image(lr_path) if lr_path is not None else None
        return _make_pair(path.stem, read_image(path), scale, lr, str(path))

    return cache.get(_cache_key(path, scale, lr_path), path.stem, make)


def _div2k_lr_file(lr_dir: Path | None, hr_path: Path, scale: int) -> Path | None:
    if lr_dir is None:
        return None
    cand = lr_dir / f"{hr_path.stem}x{scale}{hr_path.suffix}"
    if not cand.exists():
        raise DataError(f"DIV2K LR folder {lr_dir} has no {cand.name} for {hr_path.name}")
    return cand


def load_images(
    source: str | Path | None = None,
    split: Split = "train",
    *,
    scale: int = 3,
    on_error: OnError = "raise",
    cache: ImageCache | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Decode the images of ``source`` for ``split``.

    ``source``: ``None`` or ``"embedded"`` (scikit-image's photographs; ``valid`` is :data:`EMBEDDED_VALID`, ``train``
    the rest), a DIV2K root (or its ``DIV2K_train_HR`` / ``DIV2K_valid_HR`` folder), or any folder of images (the
    same images for either split). ``limit`` keeps the first ``limit`` files (sorted by name). Pass one
    ``cache`` to several calls (or trials) to decode each file once.
    """
    cache = cache if cache is not None else ImageCache()
    if split not in ("train", "valid"):
        raise DataError(f"unknown split '{split}' (train or valid)")
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error must be 'raise' or 'skip', got '{on_error}'")
    if scale < 1:
        raise DataError(f"scale must be at least 1, got {scale}")
    if _is_embedded(source):
        names = _embedded_names(split)[:limit]

        def make(name: str) -> ImagePair:
            (_, img), = embedded_images((name,))
            return _make_pair(name, img, scale, None, f"skimage.data.{name}")

        pairs = [cache.get(f"embedded-{n}-x{scale}", n, lambda n=n: make(n)) for n in names]
        return ImageSet("embedded", split, scale, tuple(pairs))
    root = Path(source).expanduser()
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    dirs = div2k_dirs(root, split, scale) if root.is_dir() else None
    hr_dir, lr_dir = dirs if dirs else (root, None)
    files = list_images(hr_dir)
    if limit:
        files = files[:limit]
    pairs, skipped = [], []
    for path in files:
        try:
            pairs.append(_load_file(path, _div2k_lr_file(lr_dir, path, scale), scale, cache))
        except DataError as exc:
            if on_error == "raise":
                raise
            skipped.append((str(path), str(exc)))
            log.warning("skipping %s", exc)
    if skipped:
        log.warning("%d of %d files in %s skipped (unreadable or unusable)", len(skipped), len(files), hr_dir)
    if not pairs:
        raise DataError(f"no usable images in {hr_dir} ({len(skipped)} skipped)")
    return ImageSet(str(root), split, scale, tuple(pairs), tuple(skipped))
