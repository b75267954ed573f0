"""Full-integer INT8 TFLite export.

The model's input and output are ``uint8`` pixels. The output's quantization is pinned to [0, 255] (scale 1, zero
point 0) by a fake-quant node at the end of the graph; the input's by a calibration sample that spans [0, 255]
smoothly (a ramp), beside real low-resolution photographs made with MATLAB-compatible bicubic downscaling.

``TFLiteConverter.convert()`` leaks memory on every call, so conversion runs in a child process that is replaced
often: a fresh one per model by default (:class:`SubprocessConverter`), or one kept for a number of models
(:class:`PersistentConverter`, which saves TensorFlow's start-up on every model of a search), or this very process
when it is itself replaced often (:class:`InProcessConverter`, for Ray workers recycled after a number of trials).
TensorFlow's logging goes to a log file whose tail is quoted when conversion fails.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from nas._logging import get_logger
from nas.data import embedded_images, imresize, modcrop
from nas.errors import ExportError, faults_named
from nas.export._check import CheckReport, check_model
from nas.export._child import DONE, run_job
from nas.model import save_weights
from nas.space import DEFAULT_INPUT_HW, ArchSpec

__all__ = ["ExportResult", "export_int8", "calibration_samples", "Converter", "SubprocessConverter",
           "PersistentConverter", "InProcessConverter"]

log = get_logger("export")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    input_hw: tuple[int, int]
    seconds: float
    report: CheckReport


def _fit(img: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random ``hw`` window of ``img``, mirror-padding dimensions that are too small."""
    h, w = hw
    ph, pw = max(0, h - img.shape[0]), max(0, w - img.shape[1])
    if ph or pw:
        img = np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")
    y = int(rng.integers(0, img.shape[0] - h + 1))
    x = int(rng.integers(0, img.shape[1] - w + 1))
    return img[y:y + h, x:x + w]


def calibration_samples(images: Sequence[np.ndarray], input_hw: tuple[int, int], scale: int = 3, n: int = 8,
                        seed: int = 0) -> np.ndarray:
    """``n`` low-resolution crops of real photographs plus one 0..255 ramp, float32 N x H x W x 3 in [0, 255]."""
    if not images:
        raise ExportError("no images to calibrate the INT8 conversion with")
    if n < 1:
        raise ExportError(f"calibration needs at least 1 sample, got {n}")
    rng = np.random.default_rng(seed)
    lrs = [imresize(modcrop(img, scale), 1.0 / scale) for img in images]
    out = np.empty((n + 1, *input_hw, 3), np.float32)
    for i in range(n):
        out[i] = _fit(lrs[i % len(lrs)], input_hw, rng)
    ramp = np.linspace(0.0, 255.0, input_hw[1], dtype=np.float32)
    out[n] = ramp[None, :, None]
    return out


def _tail(path: Path, n: int = 6) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def _child_env() -> dict:
    # quiet C++ logging, and no GPU: conversion runs on the CPU, a GPU would only cost start-up time and memory
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


class Converter(abc.ABC):
    """Runs conversion jobs (files read by :mod:`nas.export._child`).

    :meth:`run` converts the job at ``job_path`` within ``timeout_s`` and returns ``(status, log_path)``: status 0
    (the model is at the job's ``out``), 3 (a converter error, its message in the job's ``error`` file), another
    value for a process that died (negative: the signal), or None when it timed out; ``log_path`` holds
    TensorFlow's output. :meth:`close` stops what the converter started.
    """

    @abc.abstractmethod
    def run(self, job_path: Path, timeout_s: float) -> tuple[int | None, Path]: ...

    def close(self) -> None:
        """Stop the converter's processes (nothing by default)."""

    def __enter__(self) -> "Converter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SubprocessConverter(Converter):
    """A fresh ``python -m nas.export._child`` per model: nothing leaks, TensorFlow starts every time (~4 s)."""

    def run(self, job_path: Path, timeout_s: float) -> tuple[int | None, Path]:
        log_path = job_path.with_name("convert.log")
        with open(log_path, "wb") as logf:
            try:
                proc = subprocess.run([sys.executable, "-m", "nas.export._child", str(job_path)], stdout=logf,
                                      stderr=subprocess.STDOUT, env=_child_env(), timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                return None, log_path
        return proc.returncode, log_path


class PersistentConverter(Converter):
    """One child process (``--serve``) converts up to ``max_jobs`` models, then a new one replaces it."""

    def __init__(self, max_jobs: int = 16):
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self.max_jobs = int(max_jobs)
        self._proc: subprocess.Popen | None = None
        self._jobs = 0
        self._dir = Path(tempfile.mkdtemp(prefix="nas-converter-"))
        self.log_path = self._dir / "convert.log"
        self.started = 0  # child processes started so far

    def _start(self) -> subprocess.Popen:
        self.close_child()
        logf = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "nas.export._child", "--serve"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
                                          env=_child_env(), text=True, bufsize=1)
        finally:
            logf.close()
        self._jobs = 0
        self.started += 1
        return self._proc

    def run(self, job_path: Path, timeout_s: float) -> tuple[int | None, Path]:
        proc = self._proc
        if proc is None or proc.poll() is not None or self._jobs >= self.max_jobs:
            proc = self._start()
        self._jobs += 1
        try:
            proc.stdin.write(f"{job_path}\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            rc = proc.wait()
            self._proc = None
            return rc, self.log_path
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    self.close_child(kill=True)
                    return None, self.log_path
                line = proc.stdout.readline()
                if not line:  # the child died
                    rc = proc.wait()
                    self._proc = None
                    return rc, self.log_path
                if line.startswith(DONE):
                    return int(line.split()[1]), self.log_path

    def close_child(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            try:
                proc.stdin.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.close_child()
        shutil.rmtree(self._dir, ignore_errors=True)


class InProcessConverter(Converter):
    """Converts in this process: only for processes that are replaced after a few models (the converter leaks)."""

    def run(self, job_path: Path, timeout_s: float) -> tuple[int | None, Path]:
        log_path = job_path.with_name("convert.log")
        log_path.write_text("(converted in process; TensorFlow's messages went to its stderr)\n")
        return run_job(str(job_path)), log_path


def export_int8(
    spec: ArchSpec,
    out: str | Path,
    *,
    weights: Mapping[str, list[np.ndarray]] | None = None,
    input_hw: tuple[int, int] = DEFAULT_INPUT_HW,
    images: Sequence[np.ndarray] | None = None,
    n_calibration: int = 8,
    seed: int = 0,
    target: str = "vs680",
    require_pass: bool = True,
    timeout_s: float = 900.0,
    threads: int = 0,
    converter: "Converter | None" = None,
    balance: bool = True,
    rounding: bool = True,
    quantization_trained: bool = False,
) -> ExportResult:
    """Convert ``spec`` (deploy-form ``weights`` by layer name, or seeded initial weights) to an INT8 ``.tflite``.

    The model is checked against ``target``; with ``require_pass`` a model that fails is not written and
    :class:`ExportError` lists why. ``converter`` runs the conversion (default: a fresh child process). The file
    appears at ``out`` only when complete (written beside it, then renamed). ``balance`` rescales the features
    entering a folded anchor's ``tail_1`` so that INT8 keeps the residual (exact in float; see
    :mod:`nas.model._balance`); ``False`` converts the weights as given. ``rounding`` rounds every kernel onto
    the int8 grid for least change of its output (see :mod:`nas.model._int8`); ``False`` leaves the rounding to
    the converter (each weight to its nearest level). ``quantization_trained``: the weights come out of a QAT stage
    (:attr:`nas.train.TrainResult.quantization_trained`), which trained them in the rescaled form and on the grid of
    the converter's nearest rounding; they are converted as trained (neither ``balance`` nor ``rounding``: either
    would move them off the grid their training chose).
    """
    if quantization_trained:
        balance = rounding = False
    h, w = int(input_hw[0]), int(input_hw[1])
    if h < 1 or w < 1:
        raise ExportError(f"input size {h}x{w} must be positive")
    out = Path(out)
    if out.suffix != ".tflite":
        raise ExportError(f"output file must end in .tflite: {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if images is None:
        images = [img for _, img in embedded_images()]
    calib = calibration_samples(images, (h, w), spec.scale, n_calibration, seed)
    with tempfile.TemporaryDirectory(prefix="nas-export-") as tmp:
        tmpd = Path(tmp)
        calib_path = tmpd / "calibration.npy"
        np.save(calib_path, calib)
        weights_path = None
        if weights is not None:
            weights_path = str(save_weights(weights, tmpd / "weights.npz"))
        err_path = tmpd / "error.json"
        blob_path = tmpd / "model.tflite"
        job = {"spec": spec.to_json(), "weights": weights_path, "calibration": str(calib_path), "input_hw": [h, w],
               "out": str(blob_path), "error": str(err_path), "threads": threads, "balance": bool(balance),
               "rounding": bool(rounding)}
        job_path = tmpd / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        log.info("converting %s at %dx%d (%d calibration samples)", spec.describe(), h, w, len(calib))
        conv = converter if converter is not None else SubprocessConverter()
        rc, log_path = conv.run(job_path, timeout_s)
        if rc is None:
            raise ExportError(f"INT8 conversion of {spec.hash} timed out after {timeout_s:.0f} s")
        if rc != 0:
            if err_path.exists():
                msg = json.loads(err_path.read_text(encoding="utf-8"))["error"]
                raise ExportError(f"INT8 conversion of {spec.hash} failed: {msg}")
            how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
            raise ExportError(f"the converter process died ({how}) converting {spec.hash}: {_tail(log_path)}")
        blob = blob_path.read_bytes()
        partial = out.with_name(f".{out.name}.partial")
        try:  # (a full disk: one line naming the model; no half-written file is left beside it)
            with faults_named(f"the model {out}"):
                partial.write_bytes(blob)
                report = check_model(partial, target)
                if require_pass and not report.passed:
                    why = "; ".join(f"{i.name}: {i.message}" for i in report.failures)
                    raise ExportError(f"the exported model fails the {report.target} check ({why}); not written "
                                      "(use --force to keep it)")
                os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    report = dataclasses.replace(report, path=str(out))
    secs = time.perf_counter() - t0
    log.info("wrote %s (%d bytes) in %.1f s", out, len(blob), secs)
    return ExportResult(out, len(blob), (h, w), secs, report)
