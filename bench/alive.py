"""tail_1's ReLU channels alive after the first proxy steps, training form 2 against form 3, side by side.

The mechanism behind training form 3 (nas/model/_layers.py ``BRANCH_GAIN``): at full He scale beside its identity
branch, each RepConv/ECB/CLB block multiplied the activations' spread by about 1.4, and Adam's first steps then
switched off most of tail_1's ReLUs (a dead ReLU never returns: the net stays on its nearest-neighbour anchor). This
bench trains each spec for ``--steps`` proxy steps (batch 8 of 24x24 patches, as tests/model/test_trainability.py)
with the non-identity branches started at gain 1.0 (form 2) and at ``BRANCH_GAIN`` (form 3), and prints, per spec
and form: the spread (std) of the body's output at initialisation and the share of tail_1's channels alive after
training (positive on >= 1% of a textured crop's pixels), with the ratio form 3 / form 2.

    python -m bench.alive [--steps 40] [--seeds 0]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPECS = (("ecb", 64, 8), ("repconv", 64, 8), ("ecb", 16, 8), ("ecb", 64, 3), ("clb", 64, 8))


def _measure(spec, photos, steps: int, seed: int, gain: float) -> tuple[float, float]:
    import numpy as np
    import tf_keras as keras

    from nas.model import _layers, build_model, set_weights
    from nas.train import TrainConfig, train

    saved = _layers.BRANCH_GAIN
    _layers.BRANCH_GAIN = gain  # the builder reads it when it makes each block
    try:
        crop = photos.pairs[0].lr[100:160, 100:160][None].astype(np.float32)  # astronaut: texture everywhere
        fresh = build_model(spec, "train", seed=seed)
        body = keras.Model(fresh.input, fresh.get_layer(f"body_{spec.depth:02d}").output)
        spread = float(np.std(body(crop).numpy()))  # the training form takes pixels, computes in [0, 1] units
        res = train(spec, photos, TrainConfig.proxy(steps, batch_size=8, patch_size=24, seed=seed))
    finally:
        _layers.BRANCH_GAIN = saved
    trained = build_model(spec, "deploy", seed=None)
    set_weights(trained, res.weights)
    out = keras.Model(trained.input, trained.get_layer("tail_1").output)(crop).numpy()
    return spread, float(((out > 0).mean(axis=(0, 1, 2)) >= 0.01).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    args = ap.parse_args()

    from nas.data import load_images
    from nas.model._layers import BRANCH_GAIN
    from nas.space import ArchSpec

    photos = load_images(None, "train", limit=3)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.steps} proxy steps, seeds {seeds}; form 2: branch gain 1.0, form 3: {BRANCH_GAIN}")
    print(f"  {'spec':<50} {'body std f2':>11} {'f3':>6} {'alive f2':>9} {'f3':>6} {'f3/f2':>6}")
    for block, width, depth in SPECS:
        spec = ArchSpec(width=width, depth=depth, blocks=block, skip="repeat_add", tail=(3,))
        rows = {g: [_measure(spec, photos, args.steps, s, g) for s in seeds] for g in (1.0, BRANCH_GAIN)}
        (s2, a2), (s3, a3) = ([sum(v) / len(v) for v in zip(*rows[g])] for g in (1.0, BRANCH_GAIN))
        ratio = f"{a3 / a2:6.1f}" if a2 > 0 else "   inf"
        print(f"  {spec.describe():<50} {s2:>11.2f} {s3:>6.2f} {a2:>9.2f} {a3:>6.2f} {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
