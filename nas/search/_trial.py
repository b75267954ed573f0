"""One trial, as a worker runs it: train the proxy, export INT8 (checked against the NPU profile), evaluate.

:func:`run_trial` takes a :class:`TrialJob` and always returns a :class:`TrialOutcome`: an architecture that
diverges, cannot be converted or fails the NPU check becomes a failed outcome with its reason, and a trial stopped by
the pruner a pruned one. It writes nothing that outlives it: the INT8 model and the weights come back as bytes, so a
worker on another machine needs no shared file system, and the driver stays the only writer of the study's files,
Optuna storage and MLflow store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Literal

from nas._logging import get_logger
from nas.data import ImageCache, default_valid_source, load_images
from nas.errors import CheckError, DivergedError, ExportError, NasError, SpecError
from nas.evaluate import Bicubic, KerasUpscaler, TfliteUpscaler, evaluate
from nas.export import export_int8
from nas.model import result_forms, save_weights
from nas.search._record import Cause
from nas.space import ArchSpec
from nas.train import FLOAT_WEIGHTS, TrainConfig, export_shipped, train

__all__ = ["TrialJob", "TrialOutcome", "run_trial", "ReportFn", "load_study_images", "load_valid_images", "reference_psnr"]

log = get_logger("search")

State = Literal["complete", "pruned", "failed"]
INFEASIBLE = (SpecError, DivergedError, ExportError, CheckError)
"""The errors that say a spec cannot work (its trial fails for good); any other error is a crash, and retried."""
ReportFn = Callable[[int, int, float], bool]  # (trial number, step, validation PSNR) -> stop?


@dataclasses.dataclass(frozen=True)
class TrialJob:
    """What a worker needs to run one trial (picklable; sent to Ray workers as is)."""

    number: int
    spec: ArchSpec
    config: "object"  # nas.search.SearchConfig (typed loosely: a worker needs only its fields)
    input_hw: tuple[int, int]
    threads: int | None = None  # TensorFlow intra-op threads (None: TensorFlow's default, all cores)
    # a folder for the training's checkpoints (every ``CHECKPOINTS`` of its steps): the same job run again resumes
    # from the last one, on a machine that sees the folder (long trainings of `nas proxy check`)
    checkpoints: str | None = None
    # "proxy": the study's proxy training (what every trial of a search runs); "full": the product's full schedule
    # (Charbonnier, L2, QAT, EMA: what `nas retrain` runs) for the proxy's number of steps, the reference arm of
    # `nas proxy check`
    schedule: Literal["proxy", "full"] = "proxy"

    def __post_init__(self) -> None:
        if self.schedule not in ("proxy", "full"):
            raise ValueError(f"unknown training schedule {self.schedule!r} (proxy or full)")


#: how many checkpoints a job with a checkpoint folder writes over its training
CHECKPOINTS = 30


@dataclasses.dataclass(frozen=True)
class TrialOutcome:
    """The result of a trial: its state, the reason when it did not complete, metrics, the validation curve and
    the files it produced (name -> bytes)."""

    number: int
    state: State
    reason: str = ""
    metrics: dict = dataclasses.field(default_factory=dict)
    curve: tuple[tuple[int, float], ...] = ()
    seconds: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)
    worker: str = ""  # where it ran: host:pid, and the Ray node on Ray
    cause: Cause | None = None  # why it did not complete (pruned: PRUNED; failed: default CRASH, retried)
    forms: str = ""  # what decided its figures besides config and data (nas.model.result_forms) when complete

    def __post_init__(self) -> None:
        if self.state not in ("complete", "pruned", "failed"):
            raise ValueError(f"unknown trial state {self.state!r}")
        if self.state != "complete" and not self.reason:
            raise ValueError(f"a {self.state} trial needs its reason")
        cause = self.cause
        if cause is None and self.state != "complete":
            cause = Cause.PRUNED if self.state == "pruned" else Cause.CRASH
        if cause is not None:
            cause = Cause(cause)
            if self.state == "complete" or (self.state == "pruned") != (cause is Cause.PRUNED):
                raise ValueError(f"a {self.state} trial cannot have cause {cause.value}")
        object.__setattr__(self, "cause", cause)

    def summary(self) -> dict:
        """Everything but the files (what ``outcome.json`` holds)."""
        return {"number": self.number, "state": self.state, "reason": self.reason, "metrics": self.metrics,
                "curve": [list(c) for c in self.curve], "seconds": self.seconds, "files": sorted(self.files),
                "worker": self.worker, "cause": None if self.cause is None else self.cause.value,
                **({"forms": self.forms} if self.forms else {})}


class _Pruned(Exception):
    def __init__(self, step: int, psnr: float):
        super().__init__(step, psnr)
        self.step, self.psnr = step, psnr


def load_study_images(config):
    """A study's (training, validation) images, as its config names them."""
    d = config.data
    cache = ImageCache(d.cache) if d.cache else None
    train = load_images(d.train, "train", limit=d.limit, cache=cache)
    return train, load_valid_images(config)


def load_valid_images(config):
    """The study's validation images (what its trials are measured on)."""
    d = config.data
    valid_src = d.valid if d.valid is not None else default_valid_source(d.train)
    return load_images(valid_src, "valid", limit=d.valid_limit, cache=ImageCache(d.cache) if d.cache else None)


def reference_psnr(valid) -> dict[str, float]:
    """Baselines on a study's validation images ``valid``, drawn on its front: bicubic x3 (RGB PSNR)."""
    return {"bicubic x3": evaluate(Bicubic(), valid, with_ssim=False).psnr_rgb}


def proxy_train_config(config, threads: int | None = None, checkpoint_every: int = 0):
    """The :class:`~nas.train.TrainConfig` of a study's proxy training."""
    p = config.proxy
    base = TrainConfig.proxy(steps=p.steps, batch_size=p.batch_size, patch_size=p.patch_size, seed=config.seed,
                             eval_every=p.report_every, threads=threads, checkpoint_every=checkpoint_every)
    stage = base.stages[0].model_copy(update={"lr": p.lr, "lr_end": min(p.lr, 1e-5), "loss": p.loss, "name": p.loss})
    return base.model_copy(update={"stages": (stage,)})


def full_train_config(config, threads: int | None = None, checkpoint_every: int = 0):
    """The :class:`~nas.train.TrainConfig` of the product's full schedule (:meth:`~nas.train.TrainConfig.full`: what
    ``nas retrain`` runs) for the length, batches and patches of a study's proxy."""
    p = config.proxy
    return TrainConfig.full(steps=p.steps, batch_size=p.batch_size, patch_size=p.patch_size, seed=config.seed,
                            eval_every=p.report_every, threads=threads, checkpoint_every=checkpoint_every)


def _where() -> str:
    where = f"{socket.gethostname()}:{os.getpid()}"
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            where += f" node {ray.get_runtime_context().get_node_id()}"
    return where


def run_trial(job: TrialJob, report: ReportFn | None = None, converter=None, images=None) -> TrialOutcome:
    """Run ``job``; ``report(number, step, val_psnr)`` is called at each validation step and returns True to stop.
    ``converter`` (a :class:`nas.export.Converter`) runs the INT8 conversion (default: a fresh child process);
    ``images`` ((train, valid) :class:`~nas.data.ImageSet` pair) spares loading the config's data again."""
    return dataclasses.replace(_run(job, report, converter, images), worker=_where())


def _run(job: TrialJob, report: ReportFn | None, converter, data) -> TrialOutcome:
    cfg = job.config
    seconds: dict[str, float] = {}
    curve: list[tuple[int, float]] = []
    t_all = time.perf_counter()

    def on_event(ev) -> None:
        if ev.val_psnr is None:
            return
        curve.append((ev.step, float(ev.val_psnr)))
        if report is not None and ev.step < ev.total and report(job.number, ev.step, float(ev.val_psnr)):
            raise _Pruned(ev.step, float(ev.val_psnr))

    try:
        t0 = time.perf_counter()
        images, valid = data if data is not None else load_study_images(cfg)
        seconds["data"] = time.perf_counter() - t0
        every = max(1, cfg.proxy.steps // CHECKPOINTS) if job.checkpoints else 0
        make = full_train_config if job.schedule == "full" else proxy_train_config
        tcfg = make(cfg, job.threads, every)
        t0 = time.perf_counter()
        result = train(job.spec, images, tcfg, valid=valid, callback=on_event, out_dir=job.checkpoints)
        # (a training resumed from a checkpoint: its seconds over every run)
        seconds["train"] = result.seconds if result.resumed_from else time.perf_counter() - t0
        if report is not None and curve:
            step, value = curve[-1]  # the final validation: the pruner sees the whole curve
            report(job.number, step, value)
        with tempfile.TemporaryDirectory(prefix="nas-trial-") as tmp:
            t0 = time.perf_counter()
            model_path = Path(tmp) / "model_int8.tflite"

            def convert(weights, path, quantization_trained):
                return export_int8(job.spec, path, weights=weights, input_hw=job.input_hw,
                                   images=[p.hr for p in images.pairs[:16]], seed=cfg.seed, target=cfg.export.target,
                                   threads=job.threads or 0, converter=converter, timeout_s=cfg.export.timeout_s,
                                   quantization_trained=quantization_trained)

            choice = export_shipped(result, model_path, images, convert, threads=job.threads)
            res = choice.export
            seconds["export"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            fp32 = evaluate(KerasUpscaler(job.spec, result.float_model or result.weights), valid)  # (see TrainResult)
            int8 = evaluate(TfliteUpscaler(model_path, threads=job.threads), valid)
            seconds["evaluate"] = time.perf_counter() - t0
            save_weights(choice.weights, Path(tmp) / "weights.npz")  # (what was converted)
            files = {
                "model_int8.tflite": model_path.read_bytes(),
                "weights.npz": (Path(tmp) / "weights.npz").read_bytes(),
                "npu_check.json": json.dumps(res.report.to_dict(), indent=2).encode(),
            }
            if result.quantization_trained and result.float_model is not None:  # (the float model QAT started from)
                save_weights(result.float_model, Path(tmp) / FLOAT_WEIGHTS)
                files[FLOAT_WEIGHTS] = (Path(tmp) / FLOAT_WEIGHTS).read_bytes()
        metrics = {
            "fp32_psnr": fp32.psnr_rgb, "fp32_ssim": fp32.ssim_rgb, "fp32_psnr_y": fp32.psnr_y,
            "int8_psnr": int8.psnr_rgb, "int8_ssim": int8.ssim_rgb, "int8_psnr_y": int8.psnr_y,
            "int8_ssim_y": int8.ssim_y, "int8_drop_db": fp32.psnr_rgb - int8.psnr_rgb,
            "final_loss": result.final_loss, "train_steps": result.steps, "tflite_bytes": len(files["model_int8.tflite"]),
            "valid_images": len(valid), **({"train_resumed_from": result.resumed_from} if result.resumed_from else {}),
            **({"int8_qat_shipped": float(choice.quantization_trained),
                **{f"int8_select_psnr_{k}": v for k, v in choice.selection_psnr.items()}}
               if choice.selection_psnr else {}),
        }
        seconds["total"] = time.perf_counter() - t_all
        return TrialOutcome(job.number, "complete", "", metrics, tuple(curve), seconds, files,
                            forms=result_forms(job.spec, qat=result.quantization_trained))
    except _Pruned as p:
        seconds["total"] = time.perf_counter() - t_all
        return TrialOutcome(job.number, "pruned", f"pruned at step {p.step}: validation PSNR {p.psnr:.2f} dB",
                            {}, tuple(curve), seconds)
    except NasError as exc:  # infeasible architecture (diverged, not convertible, fails the NPU check) or not
        seconds["total"] = time.perf_counter() - t_all
        cause = Cause.INFEASIBLE if isinstance(exc, INFEASIBLE) else Cause.CRASH  # e.g. data missing on a worker
        return TrialOutcome(job.number, "failed", f"{type(exc).__name__}: {exc}", {}, tuple(curve), seconds,
                            cause=cause)
    except Exception as exc:  # a bug or an environment fault: the trial fails with where it happened
        seconds["total"] = time.perf_counter() - t_all
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(tb.filename).name}:{tb.lineno}"
        log.exception("trial %d crashed", job.number)
        return TrialOutcome(job.number, "failed", f"{type(exc).__name__} at {where}: {exc}", {}, tuple(curve),
                            seconds, cause=Cause.CRASH)
