"""Build Keras models from an :class:`~nas.space.ArchSpec` in training and deploy form, and fuse one into the other.

Both forms come from one skeleton, so they differ only where they must: in the training form every conv slot is
its re-parameterisable block (and, for ``skip="carry"``, the carried input is an explicit concat and the anchor an
explicit add); in the deploy form every slot is one ``Conv2D`` named as in :func:`nas.space.deploy_ops`.
The ``qat`` form is the deploy form for quantization-aware training: each conv's kernel is fake-quantized per
channel and every tensor the INT8 model stores is fake-quantized over its running range (``<op>_q`` layers), with
the output pinned to [0, 255] as the export pins it. Its conv layers carry the deploy names, so deploy weights
load into it and come back out unchanged in layout.
Weights move between processes as ``{layer name: [arrays]}``, which the deterministic names make unambiguous.
"""

from __future__ import annotations

from typing import Literal, Mapping

import numpy as np
import tf_keras as keras

from nas.errors import NasError
from nas.model._balance import folded_feature_channels
from nas.model._layers import ActQuant, Clip, DepthToSpace, PixelRange, QConv2D, block_layer, fan_in_init
from nas.model._version import TRAIN_FORM_VERSION
from nas.model._weights import Weights
from nas.space import CARRY_CHANNELS, IN_CHANNELS, ArchSpec, ClipKind, ClipWhere, Skip, deploy_ops

__all__ = ["build_model", "fuse", "deploy_weights", "set_weights", "model_weights", "count_params", "nearest_kernel",
           "qat_model", "conv_weights",
           "residual_end", "slot_starts", "RESIDUAL_MULTIPLIER", "TRAIN_FORM_VERSION"]

Form = Literal["train", "deploy", "qat"]

PIXEL_MAX = 255.0


def nearest_kernel(scale: int) -> np.ndarray:
    """NCNet's frozen 1x1 kernel 3 -> 3*scale^2: output channel k copies input channel k % 3 (depth-to-space order)."""
    out = IN_CHANNELS * scale * scale
    k = np.zeros((1, 1, IN_CHANNELS, out), np.float32)
    k[0, 0, np.arange(out) % IN_CHANNELS, np.arange(out)] = 1.0
    return k


RESIDUAL_MULTIPLIER = 0.1
"""Fixed forward multiplier on the residual end's output in the training form (folded into the fused conv): one
Adam step moves the residual by a tenth of what it would move an unscaled conv's output."""

def _has_anchor_conv(spec: ArchSpec) -> bool:
    """Whether the deploy form has an ``anchor`` conv (with weights) besides the conv slots."""
    return spec.skip in (Skip.NEAREST_CONV_ADD, Skip.CONV_ADD)


def _folds_anchor(spec: ArchSpec) -> bool:
    """Whether the last conv holds the nearest-neighbour anchor in its kernel: the input's channels reach it
    (carried, or concatenated before ``tail_1`` and carried on) and the deploy form has no add. The training form
    adds the anchor explicitly."""
    return folded_feature_channels(spec) > 0


def residual_end(spec: ArchSpec) -> int | None:
    """Index of the slot whose output is the residual over the anchor, or None for a net without one (skip none).

    In the training form it starts at exactly zero with no identity branch and its output is multiplied by
    :data:`RESIDUAL_MULTIPLIER`, so a fresh anchored network outputs exactly its anchor. Starting it as noise
    (what He init does) puts the output far from the target; L1 answers that in a few dozen steps by switching
    off the ReLUs that feed it (their inputs are all non-negative, so a channel's weights move together), and a
    dead ReLU never returns: the network stays on its anchor for good.
    """
    slots = spec.convs()
    if spec.has_anchor_add or _folds_anchor(spec):
        return len(slots) - 1
    return None


def slot_starts(spec: ArchSpec) -> tuple[str, ...]:
    """How every slot starts in the training form: ``zero`` for the residual end (the last conv of an anchored net),
    ``random`` elsewhere. (Until training form 4 a carry or concat-input net with tail convs added its anchor at
    ``tail_1`` and started the tail convs as the identity.)"""
    end = residual_end(spec)
    return tuple("zero" if i == end else "random" for i in range(len(spec.convs())))


def build_model(
    spec: ArchSpec,
    form: Form = "train",
    input_hw: tuple[int, int] | None = None,
    batch_size: int | None = None,
    seed: int | None = 0,
) -> keras.Model:
    """A Keras model of ``spec``: float input and output in pixel units [0, 255], NHWC.

    ``input_hw=None`` builds a fully convolutional model for any image size. ``seed`` makes initial weights
    reproducible (each layer gets its own seed derived from it).
    """
    if form not in ("train", "deploy", "qat"):
        raise NasError(f"unknown model form '{form}' (train, deploy or qat)")
    qat = form == "qat"
    conv_cls = QConv2D if qat else keras.layers.Conv2D

    def q(t, name):  # fake-quantize a tensor the INT8 model stores (qat form only)
        return ActQuant(name=f"{name}_q")(t) if qat else t

    h, w = input_hw if input_hw else (None, None)
    s = spec.scale
    acts = {op.name: op.act for op in deploy_ops(spec, 1, 1)}
    pixels = keras.Input((h, w, IN_CHANNELS), batch_size=batch_size, name="lr")
    train = form == "train"
    # The training form works in [0, 1] units (its biases are 1/255 of the deployed ones): Adam's steps are the
    # same size for weights and biases only when both live on the scale of the data.
    inp = keras.layers.Rescaling(1.0 / PIXEL_MAX, name="to_unit")(pixels) if train else pixels
    top = 1.0 if train else PIXEL_MAX
    x = inp
    slots = spec.convs()
    tail_1 = 1 + spec.depth
    end = residual_end(spec)
    starts = slot_starts(spec)
    for i, slot in enumerate(slots):
        lseed = None if seed is None else seed * 1000 + i
        if i == tail_1 and spec.skip is Skip.CONCAT_INPUT:
            x = q(keras.layers.Concatenate(name="concat_input")([x, inp]), "concat_input")
        act = "relu" if acts[slot.name] == "relu" else None
        if form != "train":
            x = q(conv_cls(slot.cout, slot.kernel, padding="same", activation=act, name=slot.name,
                           kernel_initializer=fan_in_init(lseed))(x), slot.name)
            continue
        cout = slot.cout - (CARRY_CHANNELS if slot.carry_out else 0)
        anchor_here = _folds_anchor(spec) and i == len(slots) - 1
        x = block_layer(slot.block.value, cout, slot.kernel, None if anchor_here else act, spec.expansion, lseed,
                        slot.name, starts[i])(x)
        if i == end:
            x = keras.layers.Rescaling(RESIDUAL_MULTIPLIER, name=f"{slot.name}_mult")(x)
        if slot.carry_out:
            x = keras.layers.Concatenate(name=f"{slot.name}_carry")([x, inp])
        if anchor_here:
            rep = keras.layers.Concatenate(name="folded_anchor")([inp] * (s * s))
            x = keras.layers.Add(name="folded_anchor_add")([x, rep])
            if act:
                x = keras.layers.ReLU(name=f"{slot.name}_relu")(x)
    if spec.skip is Skip.REPEAT_ADD:
        anchor = keras.layers.Concatenate(name="anchor")([inp] * (s * s))
    elif spec.skip is Skip.NEAREST_CONV_ADD:
        anchor = keras.layers.Conv2D(spec.out_channels, 1, use_bias=False, trainable=False, name="anchor",
                                     kernel_initializer=keras.initializers.Constant(nearest_kernel(s)))(inp)
        anchor = q(anchor, "anchor")
    elif spec.skip is Skip.CONV_ADD:  # a learnt 3x3 anchor that starts as the nearest-neighbour copy
        nearest3 = np.zeros((3, 3, IN_CHANNELS, spec.out_channels), np.float32)
        nearest3[1, 1] = nearest_kernel(s)[0, 0]
        init = keras.initializers.Constant(nearest3)
        anchor = q(conv_cls(spec.out_channels, 3, padding="same", name="anchor", kernel_initializer=init)(inp), "anchor")
    if spec.has_anchor_add:
        x = keras.layers.Add(name="anchor_add")([x, anchor])
        if acts["anchor_add"] == "relu":
            x = keras.layers.ReLU(name="anchor_add_relu")(x)
        x = q(x, "anchor_add")
    before = spec.clip_where is ClipWhere.BEFORE_D2S
    if before and spec.clip_kind is ClipKind.CLIP:
        x = q(Clip(top, straight_through=train, name="clip")(x), "clip")
    x = DepthToSpace(s, name="d2s")(x)
    if not before:
        if spec.clip_kind is ClipKind.CLIP:
            x = Clip(top, straight_through=train, name="clip")(x)
        else:
            x = Clip(None, straight_through=True, name="clip")(x) if train else keras.layers.ReLU(name="clip")(x)
    if train:
        x = keras.layers.Rescaling(PIXEL_MAX, name="to_pixels")(x)
    if qat:
        x = PixelRange(name="pixel_range")(x)
    return keras.Model(pixels, x, name=f"sr_{spec.hash}_{form}")


def _conv_weights(layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(layer, "fused"):
        return layer.fused()
    kernel, bias = layer.get_weights()
    return kernel, bias


def deploy_weights(train_model: keras.Model, spec: ArchSpec) -> Weights:
    """Fuse every block of a training-form model: the deploy form's weights, by layer name.

    The training form computes in [0, 1] units and the deploy form in pixels; every layer is positively
    homogeneous (convs, ReLU, adds, concats, clip at the top of the range), so only the biases scale, by 255.
    """
    out: Weights = {}
    slots = spec.convs()
    end = residual_end(spec)
    for i, slot in enumerate(slots):
        try:
            layer = train_model.get_layer(slot.name)
        except ValueError:
            raise NasError(f"model has no layer '{slot.name}': it was not built from this spec") from None
        k, b = _conv_weights(layer)
        if i == end:  # the forward multiplier (ReLU commutes with a positive scale)
            k, b = k * RESIDUAL_MULTIPLIER, b * RESIDUAL_MULTIPLIER
        if slot.carry_out:  # the carried input rides in the last 3 output channels: centre-tap identity
            kc = np.zeros(k.shape[:2] + (slot.cin, CARRY_CHANNELS), np.float32)
            src = np.arange(CARRY_CHANNELS) + (slot.cin - CARRY_CHANNELS if slot.carry_in else 0)
            kc[slot.kernel // 2, slot.kernel // 2, src, np.arange(CARRY_CHANNELS)] = 1.0
            k = np.concatenate([k, kc], axis=-1)
            b = np.concatenate([b, np.zeros(CARRY_CHANNELS, np.float32)])
        if _folds_anchor(spec) and i == len(slots) - 1:  # fold the repeat anchor in (its last 3 inputs: the image)
            k = k.copy()
            c = np.arange(slot.cout)
            k[slot.kernel // 2, slot.kernel // 2, slot.cin - IN_CHANNELS + c % IN_CHANNELS, c] += 1.0
        out[slot.name] = [k.astype(np.float32), (b * PIXEL_MAX).astype(np.float32)]
    if _has_anchor_conv(spec):
        arrays = [np.asarray(a) for a in train_model.get_layer("anchor").get_weights()]
        if len(arrays) == 2:  # a learnt anchor's bias, like every bias, is in [0, 1] units in the training form
            arrays[1] = (arrays[1] * PIXEL_MAX).astype(np.float32)
        out["anchor"] = arrays
    return out


def set_weights(model: keras.Model, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Load ``{layer name: arrays}`` into ``model``; every named layer must exist and match in shape."""
    for name, arrays in weights.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise NasError(f"weights name layer '{name}', which the model does not have") from None
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(np.shape(a)) for a in arrays]
        if want != got:
            raise NasError(f"layer '{name}': weights of shapes {got} do not fit the layer's {want}")
        layer.set_weights(list(arrays))


def fuse(train_model: keras.Model, spec: ArchSpec, input_hw: tuple[int, int] | None = None,
         batch_size: int | None = None) -> keras.Model:
    """The deploy form of a trained training-form model: every block fused into one conv (exact)."""
    model = build_model(spec, "deploy", input_hw=input_hw, batch_size=batch_size, seed=None)
    set_weights(model, deploy_weights(train_model, spec))
    return model


def qat_model(deploy_weights_: Mapping[str, list[np.ndarray]], spec: ArchSpec,
              input_hw: tuple[int, int] | None = None) -> keras.Model:
    """The ``qat`` form of ``spec`` holding the given deploy-form weights (its quantizer ranges not yet seen)."""
    model = build_model(spec, "qat", input_hw=input_hw, seed=None)
    set_weights(model, deploy_weights_)
    return model


def conv_weights(model: keras.Model, spec: ArchSpec) -> Weights:
    """The deploy-form weights of a deploy- or qat-form model (its convs by name; quantizer state left out)."""
    names = [slot.name for slot in spec.convs()] + (["anchor"] if _has_anchor_conv(spec) else [])
    return {n: [np.asarray(w) for w in model.get_layer(n).get_weights()] for n in names}


def model_weights(model: keras.Model) -> Weights:
    """``{layer name: arrays}`` for every layer that has weights."""
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights}


def count_params(model: keras.Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return trainable, frozen
