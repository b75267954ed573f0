"""Training throughput on this machine's cores: one training on 1 or 2 threads against two single-thread trainings
at once (what ``--workers 2`` does), for a plain-conv and an ECB net.

    python bench/train_throughput.py [--blocks conv,ecb] [--width 48] [--depth 6] [--steps 5]

Each line is the seconds of one step of 16 patches 48x48 (median of --steps after two warm-up steps). Nothing else
should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(block: str, width: int, depth: int, steps: int, threads: int) -> float:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    sys.path.insert(0, str(ROOT))
    import tf_keras

    from nas.model import build_model
    from nas.space import ArchSpec

    spec = ArchSpec(width=width, depth=depth, blocks=block, skip="repeat_add")
    model = build_model(spec, "train")
    opt, tv = tf_keras.optimizers.Adam(1e-3), model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(x, training=True) - y))
        opt.apply_gradients(zip(tape.gradient(loss, tv), tv))
        return loss

    x, y = tf.random.uniform((16, 48, 48, 3), 0, 255), tf.random.uniform((16, 144, 144, 3), 0, 255)
    step(x, y), step(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def _run(args, threads: int, n: int) -> list[float]:
    cmd = [sys.executable, __file__, "--child", str(threads), "--blocks", args.block, "--width", str(args.width),
           "--depth", str(args.depth), "--steps", str(args.steps)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", default="conv,ecb")
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", type=int, default=0)
    a = ap.parse_args()
    if a.child:
        print(_child(a.blocks, a.width, a.depth, a.steps, a.child))
        return 0
    for block in a.blocks.split(","):
        a.block = block
        one, two = _run(a, 1, 1)[0], _run(a, 2, 1)[0]
        pair = _run(a, 1, 2)
        print(f"{block} w{a.width} d{a.depth}: 1 thread {one:.3f} s/step, 2 threads {two:.3f}, two 1-thread "
              f"trainings at once {pair[0]:.3f} and {pair[1]:.3f}: throughput of the pair / 2 threads "
              f"{(1 / pair[0] + 1 / pair[1]) * two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
