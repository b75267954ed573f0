"""The training form starts every anchored net on its anchor and keeps its residual alive (the proxy's mechanism).

A fresh network whose residual end starts as noise is answered by L1 switching off the ReLUs that feed it: in 10-20
steps tail_1's active share fell from 0.54 to 0.001 for a w64 d4 net, and the net stayed on its nearest-neighbour
anchor for good. These tests check the cause directly, fast: a fresh net outputs exactly its anchor, and after a
few dozen proxy steps tail_1's ReLUs are still alive in wide and deep nets of every block type.
"""

import numpy as np
import pytest

from nas.data import load_images
from nas.model import RESIDUAL_MULTIPLIER, build_model, deploy_weights, fuse, residual_end, slot_starts
from nas.space import ArchSpec
from nas.train import TrainConfig, train

ANCHORED = ("repeat_add", "nearest_conv_add", "conv_add", "concat_input", "carry")
BLOCKS = ("conv", "repconv", "ecb", "clb")


def _nearest(x: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)


@pytest.mark.parametrize("skip", ANCHORED)
@pytest.mark.parametrize("tail", [(), (3,)], ids=["no-tail", "tail3"])
def test_a_fresh_anchored_net_outputs_exactly_its_anchor(skip, tail):
    """Known answer: nearest-neighbour x3, in the training form and in the deploy form fused from it."""
    x = np.random.default_rng(0).integers(0, 256, (1, 7, 9, 3)).astype(np.float32)
    for k, block in enumerate(BLOCKS):
        spec = ArchSpec(width=32, depth=2 + k, blocks=block, skip=skip, tail=tail, clip_where="after_d2s")
        model = build_model(spec, "train", seed=k)
        np.testing.assert_allclose(model(x).numpy(), _nearest(x), atol=1e-3)
        np.testing.assert_allclose(fuse(model, spec)(x).numpy(), _nearest(x), atol=1e-3)


def test_the_residual_end_starts_at_zero_and_its_multiplier_folds_into_the_fused_conv():
    spec = ArchSpec(width=16, depth=2, blocks="ecb", skip="repeat_add", tail=(3,))
    assert residual_end(spec) == 4 and slot_starts(spec) == ("random",) * 4 + ("zero",)
    model = build_model(spec, "train", seed=0)
    assert all(np.all(w == 0) for w in deploy_weights(model, spec)["tail_2"])  # no identity branch either
    layer = model.get_layer("tail_2")
    layer.set_weights([np.full(w.shape, 0.01, np.float32) for w in layer.get_weights()])
    k, b = layer.fused()
    fused = deploy_weights(model, spec)["tail_2"]
    np.testing.assert_allclose(fused[0], k * RESIDUAL_MULTIPLIER, rtol=1e-6)
    np.testing.assert_allclose(fused[1], b * RESIDUAL_MULTIPLIER * 255.0, rtol=1e-5)
    # a folded anchor folds into the last conv (training form 4): a carry net with a tail conv ends at it, like an
    # anchor-add net, and no conv follows the anchor (form 3 folded it into tail_1 and started the tail conv as the
    # identity, whose int8 kernel lost the image's corrections)
    carry = ArchSpec(width=32, depth=1, blocks="conv", skip="carry", tail=(3,))
    assert slot_starts(carry) == ("random", "random", "random", "zero") and residual_end(carry) == 3
    assert residual_end(ArchSpec(width=32, depth=1, blocks="conv", skip="carry")) == 2
    assert residual_end(ArchSpec(width=16, depth=1, blocks="conv", skip="none")) is None


@pytest.fixture(scope="module")
def photos():
    return load_images(None, "train", limit=3)


def _live_channels(model, crop: np.ndarray) -> float:
    """Share of tail_1's ReLU channels that are positive on at least 1% of a textured crop's pixels (a dead
    channel is zero everywhere and never returns; a fresh net has them all alive)."""
    import tf_keras as keras

    probe = keras.Model(model.input, model.get_layer("tail_1").output)
    out = probe(crop[None].astype(np.float32)).numpy()
    return float(((out > 0).mean(axis=(0, 1, 2)) >= 0.01).mean())


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("width, depth", [(64, 3), (16, 8)], ids=["wide", "deep"])
def test_tail_relus_stay_alive_through_the_first_proxy_steps(photos, block, width, depth):
    """40 proxy steps leave most of tail_1's ReLU channels alive. Under the first training form (residual end
    started as noise, exact L1, a bias per branch) all but a few died within 20 steps; under form 2 (multi-branch
    blocks at full He scale beside their identity) a deep ECB kept 0.26 of them and a w64 d8 ECB or RepConv one."""
    from nas.model import set_weights

    spec = ArchSpec(width=width, depth=depth, blocks=block, skip="repeat_add", tail=(3,))
    res = train(spec, photos, TrainConfig.proxy(40, batch_size=8, patch_size=24))
    crop = photos.pairs[0].lr[100:160, 100:160]  # astronaut's face and suit: texture everywhere
    trained = build_model(spec, "deploy", seed=None)
    set_weights(trained, res.weights)
    assert _live_channels(trained, crop) >= 0.5
