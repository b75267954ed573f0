"""MATLAB-compatible ``imresize`` (bicubic, antialiased when shrinking) and colour conversions.

DIV2K's low-resolution images were made with MATLAB's ``imresize(hr, 1/scale, 'bicubic')``; the SR literature's
PSNR is computed on MATLAB's ``rgb2ycbcr`` luma. Reproducing both exactly is what makes PSNR figures comparable.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["imresize", "rgb_to_y", "modcrop"]


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))


def _contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len x P) and 0-based source indices (out_len x P), as MATLAB's ``contributions``."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    dist = u[:, None] - idx
    if scale < 1 and antialias:
        w = scale * _cubic(dist * scale)
    else:
        w = _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric padding
    idx0 = aux[np.mod(idx.astype(np.int64) - 1, aux.size)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx0[:, keep]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    w, idx = _contributions(img.shape[axis], out_len, scale, antialias)
    matrix = np.zeros((out_len, img.shape[axis]))
    np.add.at(matrix, (np.repeat(np.arange(out_len), w.shape[1]), idx.ravel()), w.ravel())
    out = np.tensordot(matrix, np.moveaxis(img, axis, 0), axes=(1, 0))
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """Resize an H x W (x C) image by ``scale`` like MATLAB's bicubic ``imresize``.

    A ``uint8`` image gives a ``uint8`` result rounded as MATLAB does; a float image a float64 result.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64)
    out_h, out_w = int(math.ceil(img.shape[0] * scale)), int(math.ceil(img.shape[1] * scale))
    # MATLAB resizes the dimension that shrinks most first; for equal scales, rows first.
    x = _resize_axis(x, 0, out_h, scale, antialias)
    x = _resize_axis(x, 1, out_w, scale, antialias)
    if is_uint8:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of an RGB image in [0, 255], as float64 in [16, 235]."""
    x = img.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` (top-left anchored), as SR benchmarks do."""
    h, w = img.shape[0] - img.shape[0] % scale, img.shape[1] - img.shape[1] % scale
    return img[:h, :w]
