"""Input pipeline benchmark: training steps per second fed by the real pipeline vs by tensors already in memory.

Same model (ABPN's training form), same optimizer, same batch shape, one process; the two feeds alternate in
rounds so that machine noise hits both. The real pipeline decodes nothing during timing (images are decoded and
cached once, as in training) but samples, augments and batches every patch on the fly through tf.data.

    python -m bench.pipeline [--data ../shared/data/CBSD68] [--steps 150] [--rounds 3]

Goal: ratio >= 0.95 (the pipeline keeps training busy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench._harness import ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "CBSD68"))
    ap.add_argument("--spec", default="zoo:abpn")
    ap.add_argument("--steps", type=int, default=150, help="steps per round and feed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    args = ap.parse_args()

    import tensorflow as tf
    import tf_keras as keras

    from nas.data import PatchSampler, load_images, make_dataset
    from nas.model import build_model
    from nas.space import load_spec
    from nas.train._trainer import _step_fn

    t0 = time.perf_counter()
    images = load_images(args.data)
    print(f"data: {args.data}: {len(images)} images decoded in {time.perf_counter() - t0:.1f} s")
    spec = load_spec(args.spec)
    model = build_model(spec, "train", seed=0)
    opt = keras.optimizers.Adam(1e-4)
    step = _step_fn(model, opt, [], "l1", None)
    sampler = PatchSampler(images, args.patch, args.batch, seed=0)
    memory = [tuple(tf.constant(a) for a in sampler.batch(10_000 + i)) for i in range(32)]
    for lr, hr in memory[:5]:  # trace and warm up
        step(lr, hr).numpy()

    def run_memory(n: int) -> float:
        t = time.perf_counter()
        for i in range(n):
            lr, hr = memory[i % len(memory)]
            loss = step(lr, hr)
        loss.numpy()
        return time.perf_counter() - t

    def run_pipeline(n: int, start: int) -> float:
        ds = make_dataset(sampler, start, start + n)
        t = time.perf_counter()
        for lr, hr in ds:
            loss = step(lr, hr)
        loss.numpy()
        return time.perf_counter() - t

    t_mem = t_pipe = 0.0
    for r in range(args.rounds):
        a = run_memory(args.steps)
        b = run_pipeline(args.steps, r * args.steps)
        t_mem, t_pipe = t_mem + a, t_pipe + b
        print(f"round {r + 1}: in memory {args.steps / a:6.2f} steps/s   pipeline {args.steps / b:6.2f} steps/s")
    n = args.steps * args.rounds
    sampler_t = time.perf_counter()
    for i in range(50):
        sampler.batch(i)
    per_batch = (time.perf_counter() - sampler_t) / 50
    print(f"\n{spec.describe()}, batch {args.batch} x {args.patch}x{args.patch} LR, {n} steps per feed, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads")
    print(f"{'feed':<28}{'steps/s':>10}{'s/step':>10}")
    print(f"{'tensors in memory':<28}{n / t_mem:>10.2f}{t_mem / n:>10.4f}")
    print(f"{'real pipeline (tf.data)':<28}{n / t_pipe:>10.2f}{t_pipe / n:>10.4f}")
    print(f"ratio pipeline / memory: {t_mem / t_pipe:.3f} (goal >= 0.95); "
          f"sampling one batch in Python alone takes {per_batch * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
