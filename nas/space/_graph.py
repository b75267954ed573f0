"""The deployed inference graph of a spec as a list of ops, computed without building a model.

The op names are the layer names of the deploy-form Keras model (and so of the TFLite ops), which lets the
builder, the NPU check and the latency predictor line up op by op.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from nas.errors import SpecError
from nas.space._spec import IN_CHANNELS, ArchSpec, ClipKind, ClipWhere, Skip

__all__ = ["Op", "deploy_ops", "DEFAULT_INPUT_HW"]

DEFAULT_INPUT_HW = (360, 640)  # the challenge's measurement input: 640x360 -> 1920x1080

OpType = Literal["conv", "concat", "add", "clip", "relu", "depth_to_space"]


@dataclasses.dataclass(frozen=True)
class Op:
    """One op of the deployed graph at a fixed input size.

    ``params`` counts trainable weights and biases; ``frozen_params`` constants such as NCNet's nearest-conv anchor.
    ``act`` is the activation fused into the op (``relu`` or ``none``).
    """

    name: str
    type: OpType
    out_shape: tuple[int, int, int]  # (H, W, C)
    in_channels: tuple[int, ...]  # channels of each input
    kernel: int = 0
    act: str = "none"
    params: int = 0
    frozen_params: int = 0

    @property
    def out_elements(self) -> int:
        h, w, c = self.out_shape
        return h * w * c

    @property
    def in_elements(self) -> int:
        h, w, _ = self.out_shape
        if self.type == "depth_to_space":
            return self.out_elements
        return h * w * sum(self.in_channels)

    @property
    def macs(self) -> int:
        if self.type != "conv":
            return 0
        h, w, cout = self.out_shape
        return h * w * self.kernel * self.kernel * self.in_channels[0] * cout


def deploy_ops(spec: ArchSpec, height: int = DEFAULT_INPUT_HW[0], width: int = DEFAULT_INPUT_HW[1]) -> tuple[Op, ...]:
    """The ops of ``spec``'s deployed graph for an input of ``height`` x ``width`` pixels, in execution order."""
    if height < 1 or width < 1:
        raise SpecError(f"input size {height}x{width} must be positive")
    h, w, s = height, width, spec.scale
    out_c = spec.out_channels
    ops: list[Op] = []
    slots = spec.convs()
    last_conv = slots[-1].name
    tail_1 = slots[1 + spec.depth].name
    clip_before = spec.clip_where is ClipWhere.BEFORE_D2S
    relu_clip = spec.clip_kind is ClipKind.RELU
    for slot in slots:
        if slot.name == tail_1 and spec.skip is Skip.CONCAT_INPUT:
            ops.append(Op("concat_input", "concat", (h, w, slot.cin), (slot.cin - IN_CHANNELS, IN_CHANNELS)))
        relu = slot.relu
        if slot.name == last_conv and clip_before and relu_clip and not spec.has_anchor_add:
            relu = True  # the clip's ReLU is fused into the last conv
        params = slot.kernel * slot.kernel * slot.cin * slot.cout + slot.cout
        ops.append(Op(slot.name, "conv", (h, w, slot.cout), (slot.cin,), slot.kernel, "relu" if relu else "none", params))
    if spec.skip is Skip.REPEAT_ADD:
        ops.append(Op("anchor", "concat", (h, w, out_c), (IN_CHANNELS,) * (s * s)))
    elif spec.skip is Skip.NEAREST_CONV_ADD:
        ops.append(Op("anchor", "conv", (h, w, out_c), (IN_CHANNELS,), 1, frozen_params=IN_CHANNELS * out_c))
    elif spec.skip is Skip.CONV_ADD:
        ops.append(Op("anchor", "conv", (h, w, out_c), (IN_CHANNELS,), 3, params=9 * IN_CHANNELS * out_c + out_c))
    if spec.has_anchor_add:
        act = "relu" if clip_before and relu_clip else "none"
        ops.append(Op("anchor_add", "add", (h, w, out_c), (out_c, out_c), act=act))
    if clip_before and not relu_clip:
        ops.append(Op("clip", "clip", (h, w, out_c), (out_c,)))
    ops.append(Op("d2s", "depth_to_space", (h * s, w * s, IN_CHANNELS), (out_c,), kernel=s))
    if not clip_before:
        kind: OpType = "relu" if relu_clip else "clip"
        ops.append(Op("clip", kind, (h * s, w * s, IN_CHANNELS), (IN_CHANNELS,)))
    return tuple(ops)
