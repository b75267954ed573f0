"""Per-op kernels, the nn-Meter way: every op of the deployed graphs exported and timed on its own, a spec predicted
as the sum of its ops' kernel times; against the per-op feature model on the same held-out specs, timed interleaved.

    python -m bench.latency_kernels [--boards litert-cpu-1t] [--rounds 2] [--runs 10] [--input-size 180x320]
                                    [--work runs/bench-latency-kernels] [--models runs/bench-latency-boards/models]

Specs: the design of bench/latency_boards.py (60 space-filling calibration specs, 30 held-out specs drawn uniformly
over the choices). Kernels: the distinct (type, shape, channels, kernel, activation) ops of all 90 deployed graphs,
each a one-op INT8 model with int8 input and output (no quantize ops; the whole models' two are in the fitted
constant). Timing: every kernel and every whole model (exported by bench/latency_boards.py, re-used from
``--models``, exported again if missing) on every board, ``--rounds`` shuffled rounds, median of the rounds.

Predictors fitted on the 60 calibration specs and scored on the 30 held-out ones: the kernel sum alone, the kernel
sum times a fitted factor plus a fitted constant, and the per-op feature model (``fit_model``), with the machine's
repeatability (spread of a model's per-round medians) beside them. Printed too: what the kernels cost (how many,
seconds to export, seconds to time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench._harness import ROOT
from bench.latency_boards import BOARDS, design
from nas.export import full_integer
from nas.latency import Accuracy, LiteRTCPUBoard, Sample, fit_model, measure_specs
from nas.space import deploy_ops


def kernel_key(op) -> str:
    h, w, c = op.out_shape
    return f"{op.type}-{h}x{w}x{c}-in{'+'.join(map(str, op.in_channels))}-k{op.kernel}-{op.act}"


def build_kernel(op):
    """A one-op tf_keras model of ``op`` (its input shapes and its output)."""
    import tensorflow as tf
    import tf_keras as keras

    h, w, c = op.out_shape
    if op.type == "depth_to_space":
        x = keras.Input((h // 3, w // 3, op.in_channels[0]), batch_size=1)
        return keras.Model(x, keras.layers.Lambda(lambda t: tf.nn.depth_to_space(t, 3))(x))
    ins = [keras.Input((h, w, ch), batch_size=1) for ch in op.in_channels]
    x = ins[0]
    if op.type == "conv":
        y = keras.layers.Conv2D(c, op.kernel, padding="same", activation="relu" if op.act == "relu" else None)(x)
    elif op.type == "add":
        y = keras.layers.Add()(ins)
    elif op.type == "concat":
        y = keras.layers.Concatenate()(ins)
    elif op.type == "clip":
        y = keras.layers.Lambda(lambda t: tf.clip_by_value(t, 0.0, 255.0))(x)
    elif op.type == "relu":
        y = keras.layers.ReLU()(x)
    else:
        raise ValueError(f"no kernel for op type {op.type}")
    return keras.Model(ins, y)


def convert_kernel(model, seed: int = 0) -> bytes:
    import warnings

    import tensorflow as tf

    warnings.filterwarnings("ignore", message="Statistics for quantized inputs")  # int8 input: none to give

    rng = np.random.default_rng(seed)
    shapes = [tuple(int(d) for d in i.shape) for i in model.inputs]

    def representative():
        for _ in range(4):
            yield [rng.uniform(0, 255, s).astype(np.float32) for s in shapes]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    full_integer(conv, representative, tf.int8)  # the product's settings, int8 at both ends (no quantize ops)
    return bytes(conv.convert())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", default="litert-cpu-1t")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--input-size", default="180x320")
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench-latency-kernels"))
    ap.add_argument("--models", default=str(ROOT / "runs" / "bench-latency-boards"))
    a = ap.parse_args()
    hw = tuple(int(v) for v in a.input_size.lower().split("x"))
    work = Path(a.work)
    (work / "kernels").mkdir(parents=True, exist_ok=True)
    boards = a.boards.split(",")
    cal, test = design(60, 30)
    specs = cal + test
    ops = {s.hash: deploy_ops(s, *hw) for s in specs}
    kernels = {}
    for s in specs:
        for op in ops[s.hash]:
            kernels.setdefault(kernel_key(op), op)
    # export: the kernels here, the whole models where bench/latency_boards.py put them
    t0 = time.perf_counter()
    made = 0
    for key, op in kernels.items():
        path = work / "kernels" / f"{key}.tflite"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(convert_kernel(build_kernel(op)))
            tmp.rename(path)
            made += 1
    export_s = time.perf_counter() - t0
    models = Path(a.models)
    measure_specs(specs, None, models, input_hw=hw)  # (exports only what is missing)
    print(f"{len(kernels)} distinct kernels in the {len(specs)} deployed graphs ({made} exported now, "
          f"{export_s:.0f} s)")
    # time everything, shuffled rounds
    timings = work / "timings.csv"
    have: dict = {}
    if timings.exists():
        for r in csv.DictReader(open(timings, encoding="utf-8")):
            have.setdefault((r["board"], r["item"]), []).append(float(r["median_ms"]))
    items = [("kernel", k, work / "kernels" / f"{k}.tflite") for k in kernels]
    items += [("model", s.hash, models / "models" / f"{s.hash}.tflite") for s in specs]
    t0 = time.perf_counter()
    timed_kernels = 0.0
    new = not timings.exists()
    with open(timings, "a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["board", "kind", "item", "round", "median_ms"])
        for rnd in range(a.rounds):
            todo = [(b, it) for b in boards for it in items if len(have.get((b, it[1]), [])) <= rnd]
            random.Random(rnd).shuffle(todo)
            for b, (kind, name, path) in todo:
                t = time.perf_counter()
                ms = LiteRTCPUBoard(runs=a.runs, **BOARDS[b]).measure(path).median_ms
                if kind == "kernel":
                    timed_kernels += time.perf_counter() - t
                have.setdefault((b, name), []).append(ms)
                w.writerow([b, kind, name, rnd, f"{ms:.6g}"])
                fh.flush()
    print(f"timed in {time.perf_counter() - t0:.0f} s (kernels {timed_kernels:.0f} s of it)")
    out = {}
    for b in boards:
        med = {k: statistics.median(v) for (bb, k), v in have.items() if bb == b}
        spread = [(max(v) - min(v)) / statistics.median(v) for (bb, k), v in have.items()
                  if bb == b and len(v) > 1 and k in {s.hash for s in specs}]
        ksum = {s.hash: sum(med[kernel_key(op)] for op in ops[s.hash]) for s in specs}
        y_cal = np.array([med[s.hash] for s in cal])
        x_cal = np.array([ksum[s.hash] for s in cal])
        # whole = a * kernel sum + b, least squares on relative error
        A = np.stack([x_cal, np.ones_like(x_cal)], axis=1) / y_cal[:, None]
        (fa, fb), *_ = np.linalg.lstsq(A, np.ones_like(y_cal), rcond=None)
        y = [med[s.hash] for s in test]
        feat = fit_model([Sample(s.hash, ops[s.hash], med[s.hash]) for s in cal], board=b, input_hw=hw,
                         alignment=None, baselines=False, folds=5)
        rows = {
            "kernel sum": [ksum[s.hash] for s in test],
            f"kernel sum x {fa:.3f} + {fb:.2f} ms (fitted)": [fa * ksum[s.hash] + fb for s in test],
            "per-op feature model (60 specs)": [feat.predict_ops(ops[s.hash]).mean_ms for s in test],
        }
        print(f"\n{b}: 30 held-out specs; repeatability of the whole models: median spread "
              f"{100 * statistics.median(spread):.1f}%, 90th percentile {100 * np.percentile(spread, 90):.1f}%")
        print(f"  {'predictor':<44} {'+-10%':>7} {'Spearman':>8} {'MAPE':>7} {'max':>7}")
        out[b] = {"repeatability_median": statistics.median(spread)}
        for name, pred in rows.items():
            acc = Accuracy.of(y, pred, 1)
            out[b][name] = acc.to_dict()
            print(f"  {name:<44} {100 * acc.within_10:6.1f}% {acc.spearman:8.3f} {100 * acc.mape:6.1f}% "
                  f"{100 * acc.max_ape:6.1f}%")
    (work / "report.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
