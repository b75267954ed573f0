"""Exact fusion: for every block type the deploy form equals the training form (max abs error <= 1e-4), the
training form's definition branch by branch (``branches``, ``merged = False``) being the reference; the merged
kernel the training form trains through equals it, and so do its gradients."""

import numpy as np
import pytest
import tensorflow as tf

from nas.model import CLB, ECB, RepConv, build_model, count_params, deploy_weights, fuse, nearest_kernel
from nas.space import ArchSpec, deploy_ops, zoo_entries, zoo_get

# Whole models, in pixels (an 8-bit step is 1): random weights drive pre-clip values into the thousands, where
# float32 rounding over a dozen layers reaches a few 1e-3; a wrong fusion is off by whole pixels.
PIXEL_TOL = 1e-2
TOL = 1e-4


def _randomise(layer, rng, std):
    layer.set_weights([rng.normal(0, std, w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.mark.parametrize("cls", [RepConv, ECB, CLB])
@pytest.mark.parametrize("cin, cout", [(16, 16), (8, 24), (3, 16)])
def test_block_fuses_exactly(cls, cin, cout):
    rng = np.random.default_rng(0)
    block = cls(cout, activation=None, seed=1)
    x = rng.normal(0, 1, (2, 11, 13, cin)).astype(np.float32)  # odd sizes: borders matter
    block(x)
    _randomise(block, rng, 0.2)
    k, b = block.fused()
    assert k.shape == (3, 3, cin, cout) and b.shape == (cout,)
    fused = tf.nn.conv2d(x, k, 1, "SAME").numpy() + b
    ref = block.branches(x).numpy()
    assert np.abs(ref - fused).max() <= TOL
    assert np.abs(block(x).numpy() - ref).max() <= TOL  # what training computes: the merged kernel
    # the comparison is sensitive: a 1e-3 change in one fused weight is seen
    k2 = k.copy()
    k2[0, 0, 0, 0] += 1e-3
    assert np.abs(ref - (tf.nn.conv2d(x, k2, 1, "SAME").numpy() + b)).max() > TOL


@pytest.mark.parametrize("cls", [RepConv, ECB, CLB])
def test_training_through_the_merged_kernel_has_the_branches_gradients(cls):
    """Online re-parameterisation: the gradient of a loss with respect to every branch weight is the same whether
    the block computes its branches or the one merged conv."""
    rng = np.random.default_rng(2)
    block = cls(16, activation="relu", seed=1)
    x = tf.constant(rng.normal(0, 1, (2, 9, 10, 16)).astype(np.float32))
    block(x)
    _randomise(block, rng, 0.2)
    grads = {}
    for merged in (True, False):
        block.merged = merged
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(block(x)))
        grads[merged] = tape.gradient(loss, block.trainable_weights)
    assert len(grads[True]) == len(block.trainable_weights) >= 3
    for w, a, b in zip(block.trainable_weights, grads[True], grads[False]):
        assert np.abs(a.numpy() - b.numpy()).max() <= 1e-3 * (1.0 + np.abs(b.numpy()).max()), w.name
    assert max(np.abs(g.numpy()).max() for g in grads[False]) > 0.1  # not a comparison of zeros


def test_ecb_border_needs_bias_padding():
    """With zero padding of the 1x1 branches the fusion would be wrong at the border: the block pads with the bias."""
    rng = np.random.default_rng(1)
    block = ECB(8, seed=0)
    x = rng.normal(0, 1, (1, 9, 9, 8)).astype(np.float32)
    block(x)
    _randomise(block, rng, 0.3)
    k, b = block.fused()
    err = np.abs(block.branches(x).numpy() - (tf.nn.conv2d(x, k, 1, "SAME").numpy() + b))
    assert err.max() <= TOL
    assert np.abs(block.eb0.numpy()).max() > 0.1  # the intermediate bias is non-trivial, so the padding matters


def _model_specs():
    specs = [(e.name, e.spec) for e in zoo_entries()]
    for block in ("repconv", "ecb", "clb"):
        for skip in ("carry", "conv_add", "concat_input", "nearest_conv_add", "none"):
            for kind, where in (("relu", "before_d2s"), ("clip", "after_d2s")):
                specs.append((f"{block}-{skip}-{kind}", ArchSpec(width=16, depth=2, blocks=block, skip=skip, tail=(3,),
                                                                 clip_kind=kind, clip_where=where)))
    for block in ("repconv", "ecb", "clb"):  # per-layer widths: a block between unequal widths has no identity
        for skip in ("carry", "concat_input", "repeat_add"):
            specs.append((f"layers-{block}-{skip}", ArchSpec(width=32, depth=3, blocks=block, skip=skip, tail=(3,),
                                                              widths=(16, 32, 16, 16))))
    return specs


@pytest.mark.parametrize("name, spec", _model_specs(), ids=[n for n, _ in _model_specs()])
def test_whole_model_deploy_equals_training(name, spec):
    rng = np.random.default_rng(0)
    train = build_model(spec, "train", seed=3)
    for layer in train.layers:
        if layer.trainable_weights:
            _randomise(layer, rng, 0.1)
    deploy = fuse(train, spec)
    x = rng.uniform(0, 255, (2, 12, 14, 3)).astype(np.float32)  # pixels, as both forms take them
    merged = train(x).numpy()
    for layer in train.layers:  # the reference: every block computes its branches
        if isinstance(layer, (RepConv, ECB, CLB)):
            layer.merged = False
    a, b = train(x).numpy(), deploy(x).numpy()
    assert np.abs(merged - a).max() <= PIXEL_TOL
    assert a.shape == (2, 12 * spec.scale, 14 * spec.scale, 3)
    assert np.abs(a - b).max() <= PIXEL_TOL
    assert (a != 0).mean() > 0.2  # not a comparison of two clipped-to-zero images


@pytest.mark.parametrize("name", ["abpn", "ncnet", "pureconvsr", "scsrn", "tovb", "icl", "layers"])
def test_deploy_model_layers_match_the_op_table(name):
    spec = (ArchSpec(width=48, depth=2, blocks=["ecb"] * 4 + ["conv"], skip="carry", widths=(16, 48, 32), tail=(1,))
            if name == "layers" else zoo_get(name).spec)
    deploy = build_model(spec, "deploy")
    for op in deploy_ops(spec):
        if op.type == "conv":
            layer = deploy.get_layer(op.name)
            assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == op.params
    trainable, frozen = count_params(deploy)
    ops = deploy_ops(spec)
    assert (trainable, frozen) == (sum(o.params for o in ops), sum(o.frozen_params for o in ops))


@pytest.mark.parametrize("name", ["abpn", "ncnet"])
def test_zero_body_gives_nearest_neighbour_upscaling(name):
    """Known answer: with all trainable weights zero, an anchored net is exactly nearest-neighbour x3."""
    spec = zoo_get(name).spec
    model = build_model(spec, "deploy")
    for layer in model.layers:
        if layer.trainable_weights:
            layer.set_weights([np.zeros(w.shape, np.float32) for w in layer.get_weights()])
    x = np.random.default_rng(0).integers(0, 256, (1, 7, 9, 3)).astype(np.float32)
    want = np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)
    np.testing.assert_array_equal(model(x).numpy(), want)


def test_nearest_kernel_copies_channel_k_mod_3():
    k = nearest_kernel(3)
    assert k.shape == (1, 1, 3, 27) and k.sum() == 27
    assert all(k[0, 0, c % 3, c] == 1 for c in range(27))


def test_deploy_weights_are_keyed_by_deterministic_layer_names():
    spec = zoo_get("tovb").spec
    w = deploy_weights(build_model(spec, "train", seed=0), spec)
    assert list(w) == list(spec.conv_names())
    a = deploy_weights(build_model(spec, "train", seed=0), spec)
    assert all(np.array_equal(a[n][0], w[n][0]) for n in w)  # seeded: same initial weights
