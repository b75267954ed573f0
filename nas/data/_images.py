"""Image sources: the embedded default (photographs shipped with scikit-image), folders of images, single files.

Every image comes back as an H x W x 3 ``uint8`` RGB array. Grayscale is replicated to RGB, 16-bit is scaled to
8-bit, an alpha channel is dropped; a file that cannot be decoded raises :class:`~nas.errors.DataError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.errors import DataError

__all__ = ["read_image", "list_images", "embedded_images", "IMAGE_SUFFIXES", "EMBEDDED_NAMES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Colour photographs that scikit-image installs with itself (no download).
EMBEDDED_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble_deep_field",
                  "immunohistochemistry", "retina")


def to_rgb8(arr: np.ndarray, where: str) -> np.ndarray:
    """Normalise a decoded image to H x W x 3 uint8."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{where}: unsupported image shape {tuple(np.shape(arr))} (expected H x W x 1, 3 or 4)")
    if a.shape[2] in (2, 4):  # drop alpha
        a = a[..., :-1]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.max(initial=0) > 255):
        return np.round(a.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        return np.clip(np.round(a * 255.0 if a.max(initial=0) <= 1.0 else a), 0, 255).astype(np.uint8)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    return np.clip(a, 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file to H x W x 3 uint8 RGB."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.uint16 if mode.startswith("I;16") else np.int32)
                if mode == "I":
                    arr = np.clip(arr, 0, 65535).astype(np.uint16)
            elif mode in ("RGB", "RGBA", "L", "LA"):
                arr = np.asarray(im)
            else:
                arr = np.asarray(im.convert("RGBA" if "A" in mode else "RGB"))
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc.__class__.__name__}: {exc})") from None
    return to_rgb8(arr, str(path))


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; a missing or image-less folder is an error."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"data folder not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def embedded_images(names: tuple[str, ...] = EMBEDDED_NAMES) -> list[tuple[str, np.ndarray]]:
    """The embedded default: colour photographs installed with scikit-image, as (name, uint8 RGB)."""
    import skimage.data as skdata

    unknown = sorted(set(names) - set(EMBEDDED_NAMES))
    if unknown:
        raise DataError(f"no embedded image named {', '.join(unknown)} (known: {', '.join(EMBEDDED_NAMES)})")
    out = []
    for name in names:
        if name == "motorcycle":
            arr = skdata.stereo_motorcycle()[0]
        else:
            arr = getattr(skdata, name)()
        out.append((name, to_rgb8(arr, f"skimage.data.{name}")))
    return out
