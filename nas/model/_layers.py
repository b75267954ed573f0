"""Keras layers of the two model forms: re-parameterisable blocks (training form) and graph ops.

Every block knows its exact fusion into one conv: :meth:`fused` returns ``(kernel, bias)`` as numpy arrays such
that ``conv(x, kernel) + bias`` (same padding, then the block's activation) equals the block's output. Branches
whose 1x1 conv feeds a 3x3 pad their intermediate map with the 1x1 bias (not zeros), which is what makes the
fusion exact at the image border (as in ECBSR).

Since the fusion is exact, a block also *trains* through it (online re-parameterisation, as in OREPA): each step
merges the branches' weights into one kernel and bias (a few small tensor products) and runs one 3x3 conv. The
function of the weights, and so every gradient, is the block's multi-branch definition (:meth:`branches`, kept
as the reference the tests hold it to); the work per step is a plain conv's instead of every branch's (ECB: about
32 C^2 multiply-adds per pixel -> 9 C^2, and no 2C-wide intermediate map). ``merged = False`` on a block computes
the branches instead (the bench's comparison).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import tensorflow as tf
import tf_keras as keras

__all__ = ["RepConv", "ECB", "CLB", "Clip", "DepthToSpace", "PixelRange", "QConv2D", "ActQuant", "block_layer", "Start", "SOBEL_X", "SOBEL_Y", "LAPLACIAN"]

SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
SOBEL_Y = SOBEL_X.T.copy()
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
EDGE_MASKS = (("sx", SOBEL_X), ("sy", SOBEL_Y), ("lap", LAPLACIAN))
BRANCH_GAIN = 0.25
"""Initial scale of a multi-branch block's other branches beside its identity branch (training form 3). Probed at
40 proxy steps, tail_1's ReLU channels alive: RepConv w64 d8 0.04 -> 0.59, ECB w64 d8 0.04 -> 0.81 (1/sqrt(depth)
gave 0.30), ECB w16 d8 0.26 -> 0.96, ECB w64 d3 0.56 -> 0.67."""


def fan_in_init(seed: int | None, variance: float = 2.0) -> keras.initializers.Initializer:
    """Truncated-normal init with ``variance / fan_in`` (He init at the default 2.0), seeded; zeros at variance 0."""
    if variance == 0.0:
        return keras.initializers.Zeros()
    return keras.initializers.VarianceScaling(variance, "fan_in", "truncated_normal", seed=seed)


def _identity_kernel(k: int, c: int) -> np.ndarray:
    kern = np.zeros((k, k, c, c), np.float32)
    kern[k // 2, k // 2, np.arange(c), np.arange(c)] = 1.0
    return kern


def _pad_with(x: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """Pad H and W by one pixel whose value is ``value`` (per channel)."""
    return tf.pad(x - value, [[0, 0], [1, 1], [1, 1], [0, 0]]) + value


class _Block(keras.layers.Layer):
    """Base of the training-form blocks: ``filters`` outputs, optional ReLU, exact :meth:`fused`.

    ``gain`` scales the initial output of the non-identity branches (0: the block starts as its identity branch,
    or as exactly zero without one); ``identity=False`` leaves the identity branch out even where the channels
    allow it (a residual end must start at zero, not pass its input on). A block that has its identity branch
    starts the others at a further :data:`BRANCH_GAIN`: at full He scale each such block multiplied the
    activations' spread by about 1.4 (RepConv w64 d8: 0.26 -> 7.2 through the body), Adam's first steps then
    moved tail_1 far enough to switch off all but one of its ReLUs, and the net stayed on its anchor.
    """

    def __init__(self, filters: int, activation: str | None = None, seed: int | None = None, gain: float = 1.0,
                 identity: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.activation = activation or None
        self.seed = seed
        self.gain = float(gain)
        self.use_identity = bool(identity)

    def _seed(self, offset: int) -> int | None:
        return None if self.seed is None else self.seed * 101 + offset

    def _init(self, offset: int, scale: float = 1.0) -> keras.initializers.Initializer:
        return fan_in_init(self._seed(offset), 2.0 * scale * scale)

    def _branch_gain(self) -> float:
        """The initial scale of the non-identity branches' outputs (call after ``self.identity`` is set)."""
        return self.gain * (BRANCH_GAIN if self.identity else 1.0)

    #: train through the merged kernel (see the module docstring); False: compute every branch
    merged = True

    def _act(self, y: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(y) if self.activation == "relu" else y

    def call(self, x):
        if not self.merged:
            return self._act(self.branches(x))
        k, b = self.kernel_bias()
        return self._act(tf.nn.conv2d(x, k, 1, "SAME") + b)

    def kernel_bias(self, dtype=tf.float32) -> tuple[tf.Tensor, tf.Tensor]:  # pragma: no cover - abstract
        """The one 3x3 kernel and bias the branches sum to (identity included), as tensors of ``dtype``."""
        raise NotImplementedError

    def branches(self, x) -> tf.Tensor:  # pragma: no cover - abstract
        """The block's definition, branch by branch, before the activation."""
        raise NotImplementedError

    def _identity(self, dtype) -> tf.Tensor | float:
        return tf.constant(_identity_kernel(3, self.filters), dtype) if self.identity else 0.0

    def fused(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`kernel_bias` as float32 numpy arrays, merged in float64."""
        k, b = self.kernel_bias(tf.float64)
        return k.numpy().astype(np.float32), b.numpy().astype(np.float32)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(filters=self.filters, activation=self.activation, seed=self.seed, gain=self.gain,
                   identity=self.use_identity)
        return cfg


class _ExpandedBlock(_Block):
    """A block with an inner width of ``expansion * filters`` (ECB's 1x1 -> 3x3 branch, CLB)."""

    def __init__(self, filters: int, activation: str | None = None, seed: int | None = None, expansion: int = 2, **kw):
        super().__init__(filters, activation, seed, **kw)
        self.expansion = int(expansion)

    def get_config(self) -> dict:
        return {**super().get_config(), "expansion": self.expansion}


class RepConv(_Block):
    """3x3 + 1x1 + identity (when channels in == out), summed, then the activation.

    One bias for the sum: a bias per branch adds nothing the fused conv can use, but under Adam each moves by a
    full step, so the block's effective bias would move several times faster than a plain conv's (in ECB, with
    five, tail_1's ReLUs died within 40 proxy steps)."""

    def build(self, input_shape):
        cin = int(input_shape[-1])
        self.identity = self.use_identity and cin == self.filters
        g = self._branch_gain()
        self.k3 = self.add_weight("k3", (3, 3, cin, self.filters), initializer=self._init(0, 0.7 * g))
        self.b3 = self.add_weight("b3", (self.filters,), initializer="zeros")
        self.k1 = self.add_weight("k1", (1, 1, cin, self.filters), initializer=self._init(1, 0.7 * g))
        super().build(input_shape)

    def branches(self, x):
        y = tf.nn.conv2d(x, self.k3, 1, "SAME") + self.b3 + tf.nn.conv2d(x, self.k1, 1, "SAME")
        return y + x if self.identity else y

    def kernel_bias(self, dtype=tf.float32):
        k1 = tf.pad(tf.cast(self.k1, dtype), [[1, 1], [1, 1], [0, 0], [0, 0]])
        return tf.cast(self.k3, dtype) + k1 + self._identity(dtype), tf.cast(self.b3, dtype)


class ECB(_ExpandedBlock):
    """Edge-oriented block (ECBSR): 3x3; 1x1 -> 3x3; 1x1 -> Sobel-x, Sobel-y, Laplacian (scaled); identity.

    The output has one bias (``b3``); the 1x1 convs keep theirs, which pad their maps (exact fusion at the border).
    See :class:`RepConv` for why the branches' own output biases are left out."""

    def build(self, input_shape):
        cin, c = int(input_shape[-1]), self.filters
        m = self.expansion * c
        self.identity = self.use_identity and cin == c
        w, g = self.add_weight, self._branch_gain()
        self.k3 = w("k3", (3, 3, cin, c), initializer=self._init(0, 0.6 * g))
        self.b3 = w("b3", (c,), initializer="zeros")
        self.e0 = w("e0", (1, 1, cin, m), initializer=self._init(1, 0.6))
        self.eb0 = w("eb0", (m,), initializer="zeros")
        self.e1 = w("e1", (3, 3, m, c), initializer=self._init(2, 0.6 * g))
        self.edges = []
        for j, (name, _) in enumerate(EDGE_MASKS):
            k0 = w(f"{name}_k0", (1, 1, cin, c), initializer=self._init(3 + j, 0.6))
            b0 = w(f"{name}_b0", (c,), initializer="zeros")
            sc = w(f"{name}_scale", (c,), initializer=keras.initializers.RandomNormal(0.0, 1e-2 * g, seed=self._seed(10 + j)))
            self.edges.append((k0, b0, sc))
        super().build(input_shape)

    def branches(self, x):
        y = tf.nn.conv2d(x, self.k3, 1, "SAME") + self.b3
        t = tf.nn.conv2d(x, self.e0, 1, "VALID") + self.eb0
        y += tf.nn.conv2d(_pad_with(t, self.eb0), self.e1, 1, "VALID")
        for (_, mask), (k0, b0, sc) in zip(EDGE_MASKS, self.edges):
            t = tf.nn.conv2d(x, k0, 1, "VALID") + b0
            dw = tf.constant(mask)[:, :, None, None] * sc[None, None, :, None]
            y += tf.nn.depthwise_conv2d(_pad_with(t, b0), dw, [1, 1, 1, 1], "VALID")
        return y + x if self.identity else y

    def kernel_bias(self, dtype=tf.float32):
        c = lambda v: tf.cast(v, dtype)  # noqa: E731
        e1 = c(self.e1)
        k = c(self.k3) + tf.einsum("im,uvmo->uvio", c(self.e0)[0, 0], e1)
        b = c(self.b3) + tf.einsum("m,uvmo->o", c(self.eb0), e1)
        for (_, mask), (k0, b0, sc) in zip(EDGE_MASKS, self.edges):
            k += tf.einsum("io,uv->uvio", c(k0)[0, 0] * c(sc)[None, :], tf.constant(mask, dtype))
            b += c(b0) * c(sc) * float(mask.sum())
        return k + self._identity(dtype), b


class CLB(_ExpandedBlock):
    """Collapsible linear block (SESR): 3x3 to ``expansion * filters``, 1x1 back, identity when in == out."""

    def build(self, input_shape):
        cin, c = int(input_shape[-1]), self.filters
        m = self.expansion * c
        self.identity = self.use_identity and cin == c
        self.k3 = self.add_weight("k3", (3, 3, cin, m), initializer=self._init(0))
        self.b3 = self.add_weight("b3", (m,), initializer="zeros")
        self.k1 = self.add_weight("k1", (1, 1, m, c), initializer=self._init(1, 0.5 * self._branch_gain()))
        self.b1 = self.add_weight("b1", (c,), initializer="zeros")
        super().build(input_shape)

    def branches(self, x):
        y = tf.nn.conv2d(tf.nn.conv2d(x, self.k3, 1, "SAME") + self.b3, self.k1, 1, "SAME") + self.b1
        return y + x if self.identity else y

    def kernel_bias(self, dtype=tf.float32):
        k1 = tf.cast(self.k1, dtype)[0, 0]
        k = tf.einsum("uvim,mo->uvio", tf.cast(self.k3, dtype), k1)
        b = tf.linalg.matvec(k1, tf.cast(self.b3, dtype), transpose_a=True) + tf.cast(self.b1, dtype)
        return k + self._identity(dtype), b


class Clip(keras.layers.Layer):
    """Clip to the 8-bit pixel range [0, 255] (MINIMUM + RELU in TFLite), or only from below (``high=None``).

    The training form passes gradients straight through (``straight_through=True``): the forward pass is the same
    clip, but a saturated output still learns which way to move. Without it a freshly initialised network whose
    outputs start outside [0, 255] gets no gradient at all and never trains.
    """

    def __init__(self, high: float | None = 255.0, straight_through: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.high = None if high is None else float(high)
        self.straight_through = bool(straight_through)

    def get_config(self) -> dict:
        return {**super().get_config(), "high": self.high, "straight_through": self.straight_through}

    def call(self, x):
        y = tf.nn.relu(x) if self.high is None else tf.clip_by_value(x, 0.0, self.high)
        return x + tf.stop_gradient(y - x) if self.straight_through else y


class DepthToSpace(keras.layers.Layer):
    def __init__(self, block: int, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def get_config(self) -> dict:
        return {**super().get_config(), "block": self.block}

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block)


class QConv2D(keras.layers.Conv2D):
    """``Conv2D`` whose kernel is fake-quantized as TFLite quantizes it: per output channel, symmetric int8 with
    scale ``max|w| / 127``. Gradients pass straight through (quantization-aware training). ``fake_quant = False``
    on a layer leaves its kernel in float (the INT8 probes switch one quantizer at a time)."""

    fake_quant = True

    def convolution_op(self, inputs, kernel):
        if not self.fake_quant:
            return super().convolution_op(inputs, kernel)
        m = tf.maximum(tf.stop_gradient(tf.reduce_max(tf.abs(kernel), axis=[0, 1, 2])), 1e-8)
        kq = tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -m, m, num_bits=8, narrow_range=True)
        return super().convolution_op(inputs, kq)


class ActQuant(keras.layers.Layer):
    """Fake-quantizes a tensor to 8 bits over its running [min, max] (an exponential moving average of batch
    extremes while training, fixed at inference), as the INT8 converter quantizes each activation tensor."""

    def __init__(self, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum}

    def build(self, input_shape):
        kw = dict(shape=(), initializer="zeros", trainable=False)
        self.lo = self.add_weight("lo", **kw)
        self.hi = self.add_weight("hi", **kw)
        self.seen = self.add_weight("seen", **kw)
        super().build(input_shape)

    def call(self, x, training=None):
        if training:
            lo, hi = tf.reduce_min(x), tf.reduce_max(x)
            m = tf.where(self.seen > 0, self.momentum, 0.0)
            self.lo.assign(m * self.lo + (1.0 - m) * lo)
            self.hi.assign(m * self.hi + (1.0 - m) * hi)
            self.seen.assign(1.0)
        lo, hi = tf.minimum(self.lo, 0.0), tf.maximum(self.hi, 0.0)
        q = tf.quantization.fake_quant_with_min_max_vars(x, lo, tf.maximum(hi, lo + 1e-6), num_bits=8)
        return tf.where(self.seen > 0, q, x)


class PixelRange(keras.layers.Layer):
    """Identity in float; at INT8 conversion it pins the tensor's quantization to [0, 255] (scale 1, zero point 0)."""

    def call(self, x):
        return tf.quantization.fake_quant_with_min_max_args(x, 0.0, 255.0, num_bits=8)


Start = Literal["random", "zero"]


def block_layer(block: str, filters: int, kernel: int, activation: str | None, expansion: int, seed: int | None,
                name: str, start: Start = "random"):
    """The training-form layer of one conv slot.

    ``start``: ``random`` (He init, identity branch where the channels allow one); ``zero`` (every weight that
    reaches the output starts at zero and there is no identity branch: the block outputs exactly 0 until trained;
    its inner weights stay random so that it learns after one step). (Until training form 4 an ``identity`` start
    began the tail convs after a folded anchor; no conv starts so now.)
    """
    if start not in ("random", "zero"):
        raise ValueError(f"unknown start {start!r}")
    if block == "conv":
        init = fan_in_init(None if seed is None else seed * 101, 0.0 if start == "zero" else 2.0)
        return keras.layers.Conv2D(filters, kernel, padding="same", activation=activation, name=name,
                                   kernel_initializer=init)
    cls = {"repconv": RepConv, "ecb": ECB, "clb": CLB}[block]
    extra = {} if cls is RepConv else {"expansion": expansion}
    gain = 1.0 if start == "random" else 0.0
    return cls(filters, activation=activation, seed=seed, gain=gain, identity=start != "zero", name=name, **extra)


CUSTOM_OBJECTS = {c.__name__: c for c in (RepConv, ECB, CLB, Clip, DepthToSpace, PixelRange, QConv2D, ActQuant)}
