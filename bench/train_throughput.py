"""Training throughput on this machine's cores: one training on 1 or 2 threads against two single-thread trainings
at once (what ``--workers 2`` does), for a plain-conv and an ECB net; and, for re-parameterisable blocks, training
through the merged kernel (the default, online re-parameterisation) against computing every branch.

    python -m bench.train_throughput [--blocks conv,ecb,clb,repconv] [--width 48] [--depth 6] [--steps 5]
                                     [--only merge] [--train 300]

Each figure is the seconds of one step of 16 patches 48x48 (median of --steps after two warm-up steps); the merged
and branch-by-branch runs alternate, two of each. ``--train 300`` trains each block's net for real (the default
proxy, embedded photographs) both ways from the same seed and compares its validation PSNR: the same function of
the same weights, so the same result up to float rounding. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def _child(block: str, width: int, depth: int, steps: int, threads: int, merged: bool = True) -> float:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    import tf_keras

    from nas.model import build_model
    from nas.space import ArchSpec

    spec = ArchSpec(width=width, depth=depth, blocks=block, skip="repeat_add")
    model = build_model(spec, "train")
    for layer in model.layers:
        if hasattr(layer, "merged"):
            layer.merged = merged
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


def _train_child(block: str, width: int, depth: int, steps: int, merged: bool, spec_json: str | None = None) -> str:
    """A real proxy training (the study's default proxy config at ``steps``, embedded photographs, 1 thread); its
    final validation PSNR and seconds, as JSON."""
    import json

    from nas.model._layers import _Block
    from nas.search import SearchConfig, load_study_images
    from nas.search import proxy_train_config
    from nas.space import ArchSpec
    from nas.train import train

    _Block.merged = merged  # (this child process only)
    cfg = SearchConfig(proxy={"steps": steps})
    images, valid = load_study_images(cfg)
    spec = (ArchSpec.from_json(spec_json) if spec_json else
            ArchSpec(width=width, depth=depth, blocks=block, skip="repeat_add"))
    res = train(spec, images, proxy_train_config(cfg, 1), valid=valid)
    return json.dumps({"psnr": res.val_psnr, "seconds": res.seconds})


def _run(args, threads: int, n: int, merged: bool = True) -> list[float]:
    cmd = [sys.executable, __file__, "--child", str(threads), "--blocks", args.block, "--width", str(args.width),
           "--depth", str(args.depth), "--steps", str(args.steps)] + ([] if merged else ["--branches"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", default="conv,ecb,clb,repconv")
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", type=int, default=0)
    ap.add_argument("--branches", action="store_true", help=argparse.SUPPRESS)  # (a child computing every branch)
    ap.add_argument("--only", choices=("threads", "merge"), default=None)
    ap.add_argument("--train", type=int, default=0, help="instead: train each block's net for this many proxy steps "
                                                         "both ways and compare the validation PSNR and time")
    ap.add_argument("--spec", default=None, help="with --train: this spec (JSON) instead of --blocks/--width/--depth")
    ap.add_argument("--train-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.train_child:
        print(_train_child(a.blocks, a.width, a.depth, a.train, merged=not a.branches, spec_json=a.spec))
        return 0
    if a.train:
        import json

        from nas.space import ArchSpec

        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        for block in a.blocks.split(","):
            got = {}
            for merged in (True, False):
                cmd = [sys.executable, __file__, "--train-child", "--train", str(a.train), "--blocks", block,
                       "--width", str(a.width), "--depth", str(a.depth)] + ([] if merged else ["--branches"]) + (
                       ["--spec", a.spec] if a.spec else [])
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
                got[merged] = json.loads(out.strip().splitlines()[-1])
            m, b = got[True], got[False]
            name = ArchSpec.from_json(a.spec).describe() if a.spec else f"{block} w{a.width} d{a.depth}"
            print(f"{name}, {a.train} proxy steps, 1 thread: merged kernel {m['psnr']:.3f} dB "
                  f"in {m['seconds']:.0f} s, every branch {b['psnr']:.3f} dB in {b['seconds']:.0f} s "
                  f"(difference {m['psnr'] - b['psnr']:+.3f} dB, {b['seconds'] / m['seconds']:.2f}x faster)",
                  flush=True)
        return 0
    if a.child:
        print(_child(a.blocks, a.width, a.depth, a.steps, a.child, merged=not a.branches))
        return 0
    for block in a.blocks.split(","):
        a.block = block
        if block != "conv" and a.only != "threads":
            runs = {True: [], False: []}
            for merged in (True, False, True, False):
                runs[merged] += _run(a, 1, 1, merged)
            m, b = min(runs[True]), min(runs[False])
            print(f"{block} w{a.width} d{a.depth}, 1 thread: through the merged kernel {m:.3f} s/step "
                  f"({' '.join(f'{v:.3f}' for v in runs[True])}), every branch {b:.3f} "
                  f"({' '.join(f'{v:.3f}' for v in runs[False])}): {b / m:.2f}x faster", flush=True)
        if a.only == "merge":
            continue
        one, two = _run(a, 1, 1)[0], _run(a, 2, 1)[0]
        pair = _run(a, 1, 2)
        print(f"{block} w{a.width} d{a.depth}: 1 thread {one:.3f} s/step, 2 threads {two:.3f}, two 1-thread "
              f"trainings at once {pair[0]:.3f} and {pair[1]:.3f}: throughput of the pair / 2 threads "
              f"{(1 / pair[0] + 1 / pair[1]) * two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
