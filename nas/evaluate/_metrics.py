"""PSNR and SSIM as the SR literature and the challenge compute them.

Both compare 8-bit images: a float SR output is rounded and clipped to [0, 255] first (what saving it as PNG does).
``border`` pixels are cropped on every side (the scale, by convention). On RGB the metrics use all three channels
(the challenge's convention); on Y they use MATLAB's ``rgb2ycbcr`` luma rounded to 8 bits (the literature's).
SSIM is Wang et al.'s: Gaussian window of sigma 1.5, population covariances, averaged over channels.
"""

from __future__ import annotations

import numpy as np

from nas.data import rgb_to_y
from nas.errors import NasError

__all__ = ["psnr", "ssim", "to_uint8"]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip to 8-bit pixels."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.round(a.astype(np.float64)), 0, 255).astype(np.uint8)


def _prepare(sr: np.ndarray, hr: np.ndarray, border: int, y: bool) -> tuple[np.ndarray, np.ndarray]:
    sr, hr = to_uint8(sr), to_uint8(hr)
    if sr.shape != hr.shape:
        raise NasError(f"SR image of shape {sr.shape} does not match its HR image {hr.shape}")
    if border < 0 or 2 * border >= min(hr.shape[:2]):
        raise NasError(f"border {border} leaves nothing of a {hr.shape[1]}x{hr.shape[0]} image")
    if border:
        sr, hr = sr[border:-border, border:-border], hr[border:-border, border:-border]
    if y:
        return np.round(rgb_to_y(sr)), np.round(rgb_to_y(hr))
    return sr.astype(np.float64), hr.astype(np.float64)


def psnr(sr: np.ndarray, hr: np.ndarray, border: int = 0, y: bool = False) -> float:
    """PSNR in dB between an SR image and its HR reference (identical images: ``inf``)."""
    a, b = _prepare(sr, hr, border, y)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def ssim(sr: np.ndarray, hr: np.ndarray, border: int = 0, y: bool = False) -> float:
    """SSIM (Gaussian window, sigma 1.5, data range 255) between an SR image and its HR reference."""
    from skimage.metrics import structural_similarity

    a, b = _prepare(sr, hr, border, y)
    if min(a.shape[:2]) < 11:
        raise NasError(f"SSIM needs at least 11x11 pixels after the border crop, the image has {a.shape[1]}x{a.shape[0]}")
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0)
    if a.ndim == 3:
        kw["channel_axis"] = -1
    return float(structural_similarity(a, b, **kw))
