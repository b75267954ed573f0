"""Why does the full schedule's QAT stage lose INT8 PSNR against its own float model? One factor at a time.

    python -m bench.qat_probes [--results runs/bench-fidelity/fidelity/proxy-check/results] [--key PREFIX]
                               [--steps 300] [--json bench/results/qat-probes.json] [--print-only]

Takes a full-schedule training the fidelity bench kept with its float model (``<key>.float.npz``: the float stages'
result, which the QAT stage starts from) and measures, on the validation photographs, INT8 PSNR of:

* the float model exported as float weights are (post-training quantization: rescaled, every kernel rounded for its
  output, GPTQ), with nearest rounding instead, and converted as given (neither);
* the QAT stage again (``--steps``, the schedule's learning rate, EMA) with its L1 loss and with L2 instead;
* the same QAT stage started from the GPTQ-rounded weights (on the grid, so its fake quantizers start at that
  rounding), and those weights before any QAT step;
* the activation ranges: the QAT stage's model in Keras with its fake quantizers, once with the ranges it learnt
  (moving averages over 48x48 training patches), once with the ranges the converter calibrates (the extremes over its
  360x640 calibration crops), beside its TFLite model; and the QAT stage trained with those calibration ranges frozen;
* the steps themselves: the same steps in float (no quantizer), FP32 before and after;
* gentler QAT: from the GPTQ rounding calibrated as the export calibrates it, L2 at 1e-6 and 1e-5.

And, for every full-schedule reference with a float model (``references``): QAT's weights converted as trained against
the float model quantized after training, on the training photographs (what ``nas.train.export_shipped`` chooses on)
and on the validation photographs. Each arm is measured once and kept in the JSON (a second run measures only what
is missing); ``--print-only`` prints it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from bench._harness import RESULTS, read_result, write_result
from nas.data import PatchSampler, load_images, make_dataset
from nas.evaluate import KerasUpscaler, ModelUpscaler, TfliteUpscaler, evaluate
from nas.export import calibration_samples, export_int8
from nas.model import ActQuant, QConv2D, conv_weights, int8_ready, load_weights, qat_model
from nas.space import DEFAULT_INPUT_HW, ArchSpec
from nas.train import QAT_CALIBRATION_HW, Stage, TrainConfig, set_threads, train

QAT_LR, QAT_LR_END = 2e-5, 1e-7  # the full schedule's QAT stage (nas.train.TrainConfig.full)


def _quantizers(model, kind: type) -> list:
    return [layer for layer in model.layers if isinstance(layer, kind)]


def _fine_tune(spec, start: dict, train_set, steps: int, loss: str, lr: float, lr_end: float, *, quantized: bool = True,
               frozen_ranges=None):
    """The QAT stage's steps on the ``qat`` form holding ``start`` (deploy weights), kept as a Keras model: the same
    patches (the schedule's last steps), Adam with cosine decay, EMA 0.999 of the weights. ``quantized=False`` runs
    them in float (no quantizer); ``frozen_ranges`` (calibration samples) fixes every activation range first."""
    import tensorflow as tf
    import tf_keras as keras

    model = qat_model(start, spec)
    for layer in _quantizers(model, QConv2D):
        layer.fake_quant = quantized
    if frozen_ranges is not None:
        _calibrate(model, frozen_ranges)
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=lr_end / lr)
    opt = keras.optimizers.Adam(sched)
    weights = model.trainable_variables
    opt.build(weights)
    ema = [tf.Variable(w, trainable=False) for w in weights]

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            d = (model(x, training=quantized) - y) / 255.0
            value = tf.reduce_mean(tf.abs(d) if loss == "l1" else tf.square(d))
        opt.apply_gradients(zip(tape.gradient(value, weights), weights))
        it = tf.cast(opt.iterations, tf.float32)
        decay = tf.minimum(0.999, (1.0 + it) / (10.0 + it))
        for e, w in zip(ema, weights):
            e.assign(decay * e + (1.0 - decay) * w)

    full = TrainConfig.full(steps=10 * steps)  # (a schedule whose last tenth is these steps)
    for x, y in make_dataset(PatchSampler(train_set, full.patch_size, full.batch_size, 0, True), 9 * steps, 10 * steps):
        step(x, y)
    for e, w in zip(ema, weights):
        w.assign(e)
    return model


def _calibrate(model, samples) -> None:
    """Set every activation quantizer's range to the extremes over ``samples`` (what the converter calibrates) and
    keep it there while training."""
    acts = _quantizers(model, ActQuant)
    for layer in acts:
        layer.momentum = 0.0
    model(samples, training=True)
    for layer in acts:
        layer.momentum = 1.0


def measure(float_npz: Path, steps: int, have: dict) -> dict:
    key = float_npz.name[:-len(".float.npz")]
    spec = ArchSpec.from_dict(json.loads(float_npz.with_name(f"{key}.json").read_text(encoding="utf-8"))["spec"])
    fw = load_weights(float_npz)
    train_set, valid = load_images("embedded", "train"), load_images("embedded", "valid")
    calib = [p.hr for p in train_set.pairs[:16]]
    export_calib = calibration_samples(calib, DEFAULT_INPUT_HW, scale=spec.scale, seed=0)
    same = have.get("key") == key and have.get("steps") == steps
    out = {k: v for k, v in have.items() if same and k != "references"}
    out.update({"key": key, "spec": spec.describe(), "steps": steps})

    def arm(name: str, measure_it) -> None:
        if name not in out:
            out[name] = measure_it()
        print(f"  {name:<62} {out[name]:7.3f} dB", flush=True)

    def keras_psnr(model) -> float:
        return evaluate(ModelUpscaler(model, spec.scale), valid, with_ssim=False).psnr_rgb

    def qat(start, loss: str) -> dict:
        cfg = TrainConfig(steps=steps, ema=0.999, threads=1,
                          stages=(Stage(name="qat", loss=loss, lr=QAT_LR, lr_end=QAT_LR_END, qat=True),))
        return train(spec, train_set, cfg, init=start).weights

    print(f"{spec.describe()} ({key})", flush=True)
    arm("float model FP32", lambda: evaluate(KerasUpscaler(spec, fw), valid, with_ssim=False).psnr_rgb)
    with tempfile.TemporaryDirectory(prefix="qat-probes-") as tmp:
        def int8(weights, **kw) -> float:
            path = export_int8(spec, Path(tmp) / "m.tflite", weights=weights, images=calib, seed=0, **kw).path
            return evaluate(TfliteUpscaler(path), valid, with_ssim=False).psnr_rgb

        def qat_start():
            return int8_ready(spec, fw, calibration_samples(calib, QAT_CALIBRATION_HW, scale=spec.scale, seed=0),
                              rounding=False)

        arm("PTQ (rescaled, GPTQ)", lambda: int8(fw))
        arm("PTQ (rescaled, nearest)", lambda: int8(fw, rounding=False))
        arm("PTQ (as given)", lambda: int8(fw, quantization_trained=True))
        arm("QAT L1 (the schedule's)", lambda: int8(qat(fw, "l1"), quantization_trained=True))
        arm("QAT L2", lambda: int8(qat(fw, "l2"), quantization_trained=True))
        start = int8_ready(spec, fw, calibration_samples(calib, QAT_CALIBRATION_HW, scale=spec.scale, seed=0))
        arm("GPTQ-rounded start, no QAT step", lambda: int8(start, quantization_trained=True))
        arm("QAT L1 from the GPTQ-rounded start", lambda: int8(qat(start, "l1"), quantization_trained=True))
        if "ranges: QAT in Keras, its own ranges" not in out:
            model = _fine_tune(spec, qat_start(), train_set, steps, "l1", QAT_LR, QAT_LR_END)
            out["ranges: QAT in Keras, its own ranges"] = keras_psnr(model)
            _calibrate(model, export_calib)
            out["ranges: QAT in Keras, the converter's ranges"] = keras_psnr(model)
            out["ranges: QAT, TFLite"] = int8(conv_weights(model, spec), quantization_trained=True)
        for name in ("ranges: QAT in Keras, its own ranges", "ranges: QAT in Keras, the converter's ranges",
                     "ranges: QAT, TFLite"):
            arm(name, None)
        arm("ranges: QAT with the converter's ranges frozen, TFLite", lambda: int8(conv_weights(
            _fine_tune(spec, qat_start(), train_set, steps, "l1", QAT_LR, QAT_LR_END, frozen_ranges=export_calib),
            spec), quantization_trained=True))
        arm("steps: the QAT stage's steps in float, FP32 after", lambda: keras_psnr(
            _fine_tune(spec, qat_start(), train_set, steps, "l1", QAT_LR, QAT_LR_END, quantized=False)))
        gptq = int8_ready(spec, fw, export_calib)
        arm("gentle: GPTQ start (export calibration), no step", lambda: int8(gptq, quantization_trained=True))
        for lr in (1e-6, 1e-5):
            arm(f"gentle: that start, QAT L2 {lr:g} -> {lr / 100:g}", lambda lr=lr: int8(conv_weights(
                _fine_tune(spec, gptq, train_set, steps, "l2", lr, lr / 100), spec), quantization_trained=True))
    return out


def references(results: Path, have: dict) -> dict:
    """QAT's weights (as trained) against the float model quantized after training, on the training photographs
    (``nas.train.export_shipped``'s choice) and the validation ones, for every full-schedule reference kept."""
    train_set, valid = load_images("embedded", "train"), load_images("embedded", "valid")
    calib = [p.hr for p in train_set.pairs[:16]]
    out = dict(have)
    trainings = {re.sub(r"-qatv\d+", "", k) for k in out}
    for float_npz in sorted(results.glob("*-full-*.float.npz")):
        key = float_npz.name[:-len(".float.npz")]
        qat_npz = float_npz.with_name(f"{key}.npz")
        rec = json.loads(float_npz.with_name(f"{key}.json").read_text(encoding="utf-8"))
        if (re.sub(r"-qatv\d+", "", key) in trainings or not qat_npz.exists()
                or rec.get("int8_qat_shipped") == 0.0):  # (one row a training; a v3 result may ship its float model)
            continue
        trainings.add(re.sub(r"-qatv\d+", "", key))
        spec = ArchSpec.from_dict(rec["spec"])
        row = {"spec": spec.describe(), "fp32": rec["fp32_psnr"]}
        with tempfile.TemporaryDirectory(prefix="qat-probes-") as tmp:
            for form, weights, trained in (("qat", load_weights(qat_npz), True), ("ptq", load_weights(float_npz), False)):
                path = export_int8(spec, Path(tmp) / f"{form}.tflite", weights=weights, images=calib, seed=0,
                                   quantization_trained=trained).path
                row[f"{form} train"] = evaluate(TfliteUpscaler(path), train_set, with_ssim=False).psnr_rgb
                row[f"{form} valid"] = evaluate(TfliteUpscaler(path), valid, with_ssim=False).psnr_rgb
        out[key] = row
    for r in out.values():
        print(f"  {r['spec']:<46} FP32 {r['fp32']:.3f}  valid: QAT {r['qat valid']:.3f} (loss {r['fp32'] - r['qat valid']:.3f}),"
              f" PTQ {r['ptq valid']:.3f} (loss {r['fp32'] - r['ptq valid']:.3f});  train: QAT {r['qat train']:.3f},"
              f" PTQ {r['ptq train']:.3f}", flush=True)
    return out


def _print(data: dict) -> None:
    for k, v in data.items():
        if k == "references":
            for r in v.values():
                print(f"  {r['spec']:<46} FP32 {r['fp32']:.3f}  valid: QAT {r['qat valid']:.3f}, PTQ {r['ptq valid']:.3f};"
                      f"  train: QAT {r['qat train']:.3f}, PTQ {r['ptq train']:.3f}")
        else:
            print(f"  {k:<62} {v:7.3f} dB" if isinstance(v, float) else f"  {k}: {v}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default="runs/bench-fidelity/fidelity/proxy-check/results")
    ap.add_argument("--key", default="", help="the training's key prefix (default: the first with a float model)")
    ap.add_argument("--steps", type=int, default=300, help="QAT steps (the 3,000-step schedule's)")
    ap.add_argument("--json", default=str(RESULTS / "qat-probes.json"))
    ap.add_argument("--print-only", action="store_true")
    a = ap.parse_args()
    have = read_result(Path(a.json).resolve(), {}) or {}
    if a.print_only:
        _print(have)
        return 0
    results = Path(a.results)
    found = sorted(results.glob(f"{a.key}*-full-*.float.npz"))
    if not found:
        print(f"no full-schedule training with a float model in {a.results}: run python -m bench.fidelity --part tau "
              "first, or --print-only", file=sys.stderr)
        return 1
    set_threads(1)
    data = measure(found[0], a.steps, have)
    write_result(a.json, {**data, "references": have.get("references", {})})
    data["references"] = references(results, have.get("references", {}))
    write_result(a.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
