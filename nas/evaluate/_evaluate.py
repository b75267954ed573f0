"""Evaluate an upscaler (bicubic, an FP32 Keras model, an INT8 TFLite model run with LiteRT) on whole images.

Every image is processed whole, at its own size, in one call: the TFLite model's input tensor is resized to the
image (its convolutions do not care), so there are no tiles and no seams.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from nas._logging import get_logger
from nas.data import ImageSet, imresize
from nas.errors import NasError
from nas.evaluate._metrics import psnr, ssim, to_uint8
from nas.export import read_tflite
from nas.space import ArchSpec

__all__ = ["Upscaler", "Bicubic", "ModelUpscaler", "KerasUpscaler", "TfliteUpscaler", "ImageScore", "EvalResult", "evaluate"]


log = get_logger("evaluate")

class Upscaler(abc.ABC):
    """Maps an LR image (H x W x 3 uint8) to its SR image (sH x sW x 3, uint8 or float pixels).

    Subclasses set :attr:`name` (shown in reports) and :attr:`scale`.
    """

    name: str = "upscaler"
    scale: int = 3

    @abc.abstractmethod
    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """The SR image of one LR image."""


class Bicubic(Upscaler):
    """MATLAB-compatible bicubic upscaling: the baseline every SR network must beat."""

    def __init__(self, scale: int = 3):
        self.scale = int(scale)
        self.name = f"bicubic x{scale}"

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        return imresize(lr, float(self.scale))


class ModelUpscaler(Upscaler):
    """Any Keras model of this project (pixels in, pixels out; any form), at any image size."""

    def __init__(self, model, scale: int = 3, name: str | None = None):
        self.model, self.scale = model, int(scale)
        self.name = name or model.name

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        return self.model(np.asarray(lr, np.float32)[None], training=False).numpy()[0]


class KerasUpscaler(ModelUpscaler):
    """The FP32 deploy form of ``spec`` with ``weights`` (by layer name)."""

    def __init__(self, spec: ArchSpec, weights: Mapping[str, list[np.ndarray]], name: str | None = None):
        from nas.model import build_model, set_weights  # TensorFlow

        model = build_model(spec, "deploy", seed=None)
        set_weights(model, weights)
        super().__init__(model, spec.scale, name or f"{spec.hash} fp32")
        self.spec = spec


class TfliteUpscaler(Upscaler):
    """A TFLite model (INT8 or float) run with LiteRT's interpreter; its input resized to each image."""

    def __init__(self, path: str | Path, threads: int | None = None, scale: int = 3):
        self.path = Path(path)
        read_tflite(self.path)  # a clear error for a file that is not a TFLite model
        self.threads = threads
        self.scale = int(scale)
        self.name = self.path.name
        self._open(xnnpack=True)

    def _open(self, xnnpack: bool) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interp = Interpreter(model_path=str(self.path), num_threads=self.threads,
                                      experimental_op_resolver_type=resolver)
        except (ValueError, RuntimeError) as exc:
            raise NasError(f"{self.path}: LiteRT cannot load it ({exc})") from None
        self._xnnpack = xnnpack
        inputs, outputs = self.interp.get_input_details(), self.interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise NasError(f"{self.path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        self._in, self._out = inputs[0], outputs[0]
        self._shape: tuple[int, ...] | None = None

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        h, w = lr.shape[:2]
        shape = (1, h, w, 3)
        if self._shape != shape:  # (re)size the input to this image; resizing to the model's own shape is a no-op
            self.interp.resize_tensor_input(self._in["index"], list(shape), strict=False)
            try:
                self.interp.allocate_tensors()
            except RuntimeError as exc:
                if self._xnnpack is False:
                    raise NasError(f"{self.path}: LiteRT cannot run it at {w}x{h} ({exc})") from None
                # XNNPACK refuses some quantization scale ratios that TFLite's own kernels (and NPUs) accept:
                # evaluate with the built-in kernels instead (slower, same integer arithmetic)
                log.warning("%s: XNNPACK cannot prepare it (%s); using LiteRT's built-in kernels",
                            self.path.name, str(exc).strip().splitlines()[0])
                self._open(xnnpack=False)
                self.interp.resize_tensor_input(self._in["index"], list(shape), strict=False)
                self.interp.allocate_tensors()
            self._shape = shape
        dtype = self._in["dtype"]
        scale, zp = self._in["quantization"]
        x = np.asarray(lr, np.float32)[None]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / (scale or 1.0) + zp), info.min, info.max).astype(dtype)
        else:
            x = x.astype(dtype)
        self.interp.set_tensor(self._in["index"], x)
        self.interp.invoke()
        out = self.interp.get_tensor(self._out["index"])[0]
        oscale, ozp = self._out["quantization"]
        if np.issubdtype(out.dtype, np.integer):
            out = (out.astype(np.float32) - ozp) * (oscale or 1.0)
        if out.shape[:2] != (h * self.scale, w * self.scale):
            raise NasError(f"{self.path}: output of shape {out.shape} for a {w}x{h} input is not x{self.scale}")
        return out


@dataclasses.dataclass(frozen=True)
class ImageScore:
    name: str
    psnr_rgb: float
    psnr_y: float
    ssim_rgb: float | None
    ssim_y: float | None


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Mean metrics over the images (PSNR averaged in dB, as the literature does), and per image."""

    model: str
    data: str
    border: int
    images: tuple[ImageScore, ...]
    seconds: float

    def _mean(self, field: str) -> float | None:
        vals = [getattr(s, field) for s in self.images]
        return None if any(v is None for v in vals) else float(np.mean(vals))

    @property
    def psnr_rgb(self) -> float:
        return self._mean("psnr_rgb")

    @property
    def psnr_y(self) -> float:
        return self._mean("psnr_y")

    @property
    def ssim_rgb(self) -> float | None:
        return self._mean("ssim_rgb")

    @property
    def ssim_y(self) -> float | None:
        return self._mean("ssim_y")

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "n_images": len(self.images), "border": self.border,
                "psnr_rgb": self.psnr_rgb, "psnr_y": self.psnr_y, "ssim_rgb": self.ssim_rgb, "ssim_y": self.ssim_y,
                "seconds": self.seconds, "images": [dataclasses.asdict(s) for s in self.images]}


def evaluate(
    upscaler: Upscaler,
    images: ImageSet,
    *,
    border: int | None = None,
    with_ssim: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """PSNR (and SSIM) of ``upscaler`` on every image of ``images``, on RGB and on Y, ``border`` (default: the
    scale) cropped."""
    if upscaler.scale != images.scale:
        raise NasError(f"{upscaler.name} upscales x{upscaler.scale}, the images were prepared for x{images.scale}")
    border = images.scale if border is None else int(border)
    t0 = time.perf_counter()
    scores = []
    for k, pair in enumerate(images.pairs):
        sr = to_uint8(upscaler.upscale(np.asarray(pair.lr)))
        hr = np.asarray(pair.hr)
        if sr.shape != hr.shape:
            raise NasError(f"{upscaler.name} made a {sr.shape[1]}x{sr.shape[0]} image of {pair.name}, "
                           f"expected {hr.shape[1]}x{hr.shape[0]}")
        scores.append(ImageScore(
            pair.name, psnr(sr, hr, border), psnr(sr, hr, border, y=True),
            ssim(sr, hr, border) if with_ssim else None, ssim(sr, hr, border, y=True) if with_ssim else None))
        if progress is not None:
            progress(k + 1, len(images))
    return EvalResult(upscaler.name, images.source, border, tuple(scores), time.perf_counter() - t0)
