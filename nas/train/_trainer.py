"""The training loop: stages of Adam with cosine decay, optional EMA of weights, checkpoints and resume, NaN stop.

Stages before the first QAT stage train the training form (multi-branch blocks). A QAT stage fuses the model,
rescales it as the INT8 export will (:func:`nas.model.int8_ready` without its rounding: exact in float, so the fake
quantizers see the ranges the deployed tensors get) and trains the ``qat`` form (fake-quantized weights and
activations, see :mod:`nas.model`). The result is always the deploy form's weights by layer name, ready for
:func:`nas.export.export_int8`; after QAT it also holds the float stages' weights (the float model), kept in the
checkpoint folder when QAT starts so that a resumed run still has them.

With ``out_dir``, checkpoints go to ``out_dir/checkpoints`` (TensorFlow's checkpoint format: model, optimizer,
EMA; no pickles) beside ``progress.json`` naming the latest one, which is replaced atomically after the
checkpoint is complete. A run started again with the same spec and config resumes from there; since batch ``i``
depends only on the seed and ``i``, the resumed run sees the batches the interrupted one would have seen.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from nas._files import write_json
from nas._logging import get_logger
from nas.data import ImageSet, PatchSampler, make_dataset
from nas.errors import DivergedError, TrainError
from nas.evaluate import ModelUpscaler, evaluate
from nas.export import calibration_samples
from nas.model import load_weights, save_weights, train_form
from nas.space import ArchSpec
from nas.train._config import CHARBONNIER_EPS, Stage, TrainConfig

__all__ = ["TrainEvent", "TrainResult", "train", "set_threads"]

log = get_logger("train")

PROGRESS = "progress.json"
FLOAT_WEIGHTS = "float_weights.npz"


@dataclasses.dataclass(frozen=True)
class TrainEvent:
    """Reported to the callback after every step (``val_psnr`` on validation steps only)."""

    step: int
    total: int
    stage: str
    loss: float
    lr: float
    val_psnr: float | None = None


@dataclasses.dataclass(frozen=True)
class TrainResult:
    spec: ArchSpec
    config: TrainConfig
    weights: dict  # deploy form, {layer name: [kernel, bias]}
    steps: int
    seconds: float  # training time, summed over resumed runs
    final_loss: float
    resumed_from: int  # step this run started at (0: fresh)
    history: tuple[tuple[int, str, float], ...]  # (step, stage, mean loss over the last log interval)
    val_psnr: float | None  # last validation PSNR (RGB, dB) when validation ran
    float_weights: dict | None = None  # a config with QAT: the deploy form at the end of its float stages

    @property
    def quantization_trained(self) -> bool:
        """Whether ``weights`` come out of a QAT stage: trained for their INT8 form (export them as trained, see
        :func:`nas.export.export_int8`). Run in float without their quantizers they are no float model (a carried
        image, for one, is clipped to its range only by its quantizer); :attr:`float_model` is."""
        return self.config.has_qat

    @property
    def float_model(self) -> dict | None:
        """The deploy-form weights of the float model the run trained: ``weights`` without a QAT stage, else the
        weights the float stages ended with (``None`` for a run resumed from a QAT checkpoint that predates their
        keeping)."""
        return self.float_weights if self.quantization_trained else self.weights


def set_threads(threads: int | None) -> None:
    """Set TensorFlow's intra-op threads (before TensorFlow starts; later a differing request is logged)."""
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:
        have = tf.config.threading.get_intra_op_parallelism_threads()
        if have != threads:
            log.warning("TensorFlow already started with %s intra-op threads; %d requested", have or "default", threads)


def _schedule(stage: Stage, steps: int):
    import tf_keras as keras

    warm = int(round(stage.warmup * steps))
    alpha = stage.final_lr / stage.lr
    if warm:  # linear from lr/warm (step 0 already moves the weights) to lr, then cosine
        return keras.optimizers.schedules.CosineDecay(stage.lr / (warm + 1), max(1, steps - warm), alpha=alpha,
                                                      warmup_target=stage.lr, warmup_steps=warm)
    return keras.optimizers.schedules.CosineDecay(stage.lr, steps, alpha=alpha)


class _Checkpoints:
    """Checkpoint files plus ``progress.json`` (the latest complete one) in one folder."""

    def __init__(self, folder: Path | None, spec: ArchSpec, config: TrainConfig):
        self.folder = folder
        self.spec, self.config = spec, config

    def load(self) -> dict | None:
        if self.folder is None or not (self.folder / PROGRESS).exists():
            return None
        path = self.folder / PROGRESS
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrainError(f"{path}: unreadable ({exc}); remove it to start over") from None
        if state.get("spec") != self.spec.hash or state.get("config") != self.config.hash:
            raise TrainError(
                f"{self.folder} holds a checkpoint of another run (spec {state.get('spec')}, config "
                f"{state.get('config')}; this run: spec {self.spec.hash}, config {self.config.hash}): "
                "use another output folder, or --no-resume to start over")
        if state.get("form", 3) != train_form(self.spec):
            raise TrainError(
                f"{self.folder} holds a checkpoint of training form {state.get('form', 3)}; this version trains "
                f"{self.spec.describe()} in form {train_form(self.spec)} (another network): use another output "
                "folder, or --no-resume to start over")
        return state

    def save_float(self, weights: dict) -> None:
        """Keep the float stages' result (deploy form) for a run that goes on into QAT."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_weights(weights, self.folder / FLOAT_WEIGHTS)

    def load_float(self) -> dict | None:
        if self.folder is None or not (self.folder / FLOAT_WEIGHTS).exists():
            return None
        return load_weights(self.folder / FLOAT_WEIGHTS)

    def save(self, ckpt, stage: int, done: int, step: int, seconds: float) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        prefix = ckpt.write(str(self.folder / f"stage{stage}-{done:07d}"))
        write_json(self.folder / PROGRESS, {"spec": self.spec.hash, "config": self.config.hash,
                                            "form": train_form(self.spec), "stage": stage,
                                            "done": done, "step": step, "path": Path(prefix).name, "seconds": seconds})
        for f in self.folder.glob("stage*-*"):  # older checkpoints, and what a write cut short left behind
            if f.name.startswith(Path(prefix).name + "."):
                continue
            if f.is_dir():  # TensorFlow writes shards into "<prefix>_temp/" before merging them
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
        log.debug("checkpoint at step %d: %s", step, prefix)


def validation_psnr(model, images: ImageSet) -> float:
    """Mean RGB PSNR (border = scale) of a Keras model on whole validation images."""
    return evaluate(ModelUpscaler(model, images.scale), images, with_ssim=False).psnr_rgb


QAT_CALIBRATION_HW = (96, 96)
"""Size of the low-resolution crops a QAT stage's rescaling is measured on (as many as the export's calibration)."""


def _qat_start(spec: ArchSpec, weights, images: ImageSet, seed: int):
    """The ``qat`` form holding deploy ``weights`` rescaled as the INT8 export rescales them (exact in float)."""
    from nas.model import int8_ready, qat_model  # TensorFlow

    calib = calibration_samples([p.hr for p in images.pairs[:16]], QAT_CALIBRATION_HW, scale=spec.scale, seed=seed)
    return qat_model(int8_ready(spec, weights, calib, rounding=False), spec)


def train(
    spec: ArchSpec,
    images: ImageSet,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = True,
    valid: ImageSet | None = None,
    callback: Callable[[TrainEvent], None] | None = None,
    log_every: int = 50,
    init: dict | None = None,
) -> TrainResult:
    """Train ``spec`` on patches of ``images`` following ``config``; return the deploy-form weights.

    ``callback`` is called after every step; it may raise (a search's pruner does) and the exception propagates
    after nothing more than the last checkpoint is kept. A NaN or infinite loss raises :class:`DivergedError`.
    ``init`` (deploy-form weights, e.g. of a proxy training) starts a config whose first stage is QAT from a
    trained model: quantization-aware fine-tuning.
    """
    import tensorflow as tf
    import tf_keras as keras

    from nas.model import build_model, conv_weights, deploy_weights  # TensorFlow

    config = config or TrainConfig.proxy()
    if init is not None and not config.stages[0].qat:
        raise TrainError("starting weights (deploy form) can only start a config whose first stage is QAT")
    if images.scale != spec.scale:
        raise TrainError(f"images were prepared for x{images.scale}, the spec is x{spec.scale}")
    set_threads(config.threads)
    sampler = PatchSampler(images, config.patch_size, config.batch_size, config.seed, config.augment)
    ckpts = _Checkpoints(Path(out_dir) / "checkpoints" if out_dir else None, spec, config)
    if not resume and ckpts.folder is not None and (ckpts.folder / PROGRESS).exists():
        (ckpts.folder / PROGRESS).unlink()
    state = ckpts.load() if resume else None
    steps = config.stage_steps()
    offsets = np.concatenate([[0], np.cumsum(steps)]).astype(int)
    first = state["stage"] if state else 0
    seconds_before = float(state["seconds"]) if state else 0.0
    resumed_from = int(state["step"]) if state else 0
    if state:
        log.info("resuming %s at step %d of %d (stage %s)", spec.hash, resumed_from, config.steps,
                 config.stages[first].label)
    qat_form = config.stages[first].qat
    float_weights = ckpts.load_float() if state and qat_form else None
    if state and qat_form and float_weights is None:
        log.warning("%s: resumed in a QAT stage with no float weights kept; the float model is not known",
                    ckpts.folder)
    if init is not None and not state:
        float_weights = init
        ckpts.save_float(init)
        model = _qat_start(spec, init, images, config.seed)
    else:
        model = build_model(spec, "qat" if qat_form else "train", seed=None if qat_form else config.seed)
    history: list[tuple[int, str, float]] = []
    val_psnr = None
    loss_value = float("nan")
    t0 = time.perf_counter()
    for i in range(first, len(config.stages)):
        stage, n = config.stages[i], steps[i]
        if stage.qat and not qat_form:
            float_weights = deploy_weights(model, spec)
            ckpts.save_float(float_weights)  # (before QAT's first checkpoint: a resumed QAT stage finds it)
            model = _qat_start(spec, float_weights, images, config.seed)
            qat_form = True
        schedule = _schedule(stage, n)
        opt = keras.optimizers.Adam(schedule)
        tv = model.trainable_variables
        opt.build(tv)
        shadows = [tf.Variable(v, trainable=False) for v in tv] if config.ema else []
        ckpt = tf.train.Checkpoint(model=model, optimizer=opt, ema=shadows)
        done = 0
        if state and i == first:
            ckpt.read(str(ckpts.folder / state["path"])).assert_existing_objects_matched()
            done = int(state["done"])
        if done < n:
            step_fn = _step_fn(model, opt, shadows, stage.loss, config.ema)
            ds = make_dataset(sampler, offsets[i] + done, offsets[i] + n)
            window: list[float] = []
            for lr_b, hr_b in ds:
                loss_value = float(step_fn(lr_b, hr_b))
                done += 1
                g = int(offsets[i]) + done
                if not math.isfinite(loss_value):
                    raise DivergedError(
                        f"training of {spec.hash} diverged at step {g} ({stage.label} stage): the loss is "
                        f"{loss_value} (learning rate {stage.lr:g}); lower the learning rate or check the data")
                window.append(loss_value)
                if g % log_every == 0 or done == n:
                    history.append((g, stage.label, float(np.mean(window))))
                    window = []
                val = None
                if valid is not None and config.eval_every and (g % config.eval_every == 0 or g == config.steps):
                    val = val_psnr = validation_psnr(model, valid)
                if callback is not None:
                    callback(TrainEvent(g, config.steps, stage.label, loss_value, float(schedule(opt.iterations)), val))
                if config.checkpoint_every and g % config.checkpoint_every == 0 and done < n:
                    ckpts.save(ckpt, i, done, g, seconds_before + time.perf_counter() - t0)
            # the stage's end: its weights become the EMA's, and the checkpoint says the stage is done (a stage
            # restored as done has had both already)
            if config.ema:
                for s, v in zip(shadows, tv):
                    v.assign(s)
            ckpts.save(ckpt, i, done, int(offsets[i]) + done, seconds_before + time.perf_counter() - t0)
    weights = conv_weights(model, spec) if qat_form else deploy_weights(model, spec)
    elapsed = time.perf_counter() - t0
    ran = config.steps - resumed_from
    if ran:
        log.info("trained %s: %d steps in %.1f s (%.1f steps/s), loss %.4f", spec.hash, ran, elapsed,
                 ran / max(elapsed, 1e-9), loss_value)
    return TrainResult(spec, config, weights, config.steps, seconds_before + elapsed, loss_value, resumed_from,
                       tuple(history), val_psnr, float_weights if qat_form else None)


def _step_fn(model, opt, shadows, loss: str, ema: float | None):
    import tensorflow as tf

    tv = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            d = (model(x, training=True) - y) * (1.0 / 255.0)
            if loss == "l1":
                value = tf.reduce_mean(tf.abs(d))
            elif loss == "l2":
                value = tf.reduce_mean(tf.square(d))
            else:  # charbonnier, in the same [0, 1] units
                eps = CHARBONNIER_EPS / 255.0
                value = tf.reduce_mean(tf.sqrt(tf.square(d) + eps * eps)) - eps
        grads = tape.gradient(value, tv)
        opt.apply_gradients(zip(grads, tv))
        if ema:
            it = tf.cast(opt.iterations, tf.float32)
            decay = tf.minimum(ema, (1.0 + it) / (10.0 + it))
            for s, v in zip(shadows, tv):
                s.assign(decay * s + (1.0 - decay) * v)
        return value

    return step
