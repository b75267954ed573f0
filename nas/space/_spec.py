"""ArchSpec: the one value that describes a super-resolution network.

Layout of every network in the vocabulary (section 4 of the MAI 2022 report)::

    input (H x W x 3)
      head      conv 3x3, 3 -> width, ReLU
      body_01.. depth convs 3x3, width -> width, ReLU
      [concat_input: the input is concatenated, +3 channels]
      tail_1    conv 3x3, width -> 3*scale^2 (ReLU when another tail conv follows)
      tail_2..  optional extra convs 3*scale^2 -> 3*scale^2 (kernel 3 as in ABPN, 1 as in PureConvSR)
      [anchor: repeat_add | nearest_conv_add | conv_add, added to the 27-channel map]
      [clip before depth-to-space]
      depth_to_space (block = scale)
      [clip after depth-to-space]

``widths`` (optional) gives every feature conv (head, body) its own output width: a per-layer net, as the
challenge's teams pruned theirs per layer. Without it every feature conv is ``width`` wide, and the JSON of such a
uniform spec is what it always was (its hash unchanged).

``blocks`` holds the re-parameterisable block type of every conv in that order (head, body, tails): a block is
trained in its multi-branch form and fused into one conv for deployment. ``skip="carry"`` (PureConvSR) keeps the
input in 3 extra channels of every feature conv (``width`` counts them) and folds the anchor into ``tail_1``, so the
deployed graph has no add and no concat.

The spec is frozen and validated on construction; :meth:`ArchSpec.to_json` / :meth:`ArchSpec.from_json` round-trip
exactly and :attr:`ArchSpec.hash` is a stable content hash of the canonical JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from enum import Enum
from typing import Any, Mapping, Sequence

from nas._validation import one_line
from nas.errors import SpecError

__all__ = ["ArchSpec", "Block", "Skip", "ClipWhere", "ClipKind", "SPEC_VERSION"]

SPEC_VERSION = 1
IN_CHANNELS = 3
CARRY_CHANNELS = 3
MAX_KERNEL = 3


class Block(str, Enum):
    """Training form of one conv; every one fuses into a single conv for deployment."""

    CONV = "conv"  # a plain conv
    REPCONV = "repconv"  # 3x3 + 1x1 + identity (RepVGG-style, TOVB / Rtsisr2022)
    ECB = "ecb"  # edge-oriented block: 3x3, 1x1->3x3, 1x1->Sobel-x, 1x1->Sobel-y, 1x1->Laplacian (+identity)
    CLB = "clb"  # collapsible linear block: 3x3 to expansion*C, 1x1 back (+identity) (SESR / TCLResearchEurope)


class Skip(str, Enum):
    NONE = "none"
    REPEAT_ADD = "repeat_add"  # ABPN: input repeated scale^2 times, added to the 27-channel map
    NEAREST_CONV_ADD = "nearest_conv_add"  # NCNet: frozen 1x1 conv 3 -> 27 that copies the input, added
    CONV_ADD = "conv_add"  # a trainable 3x3 conv 3 -> 27 on the input, added (DoubleZ)
    CONCAT_INPUT = "concat_input"  # SCSRN: input concatenated to the last feature map
    CARRY = "carry"  # PureConvSR: input carried in extra channels, anchor folded into tail_1


class ClipWhere(str, Enum):
    BEFORE_D2S = "before_d2s"
    AFTER_D2S = "after_d2s"


class ClipKind(str, Enum):
    CLIP = "clip"  # explicit clip to [0, 255] (MINIMUM + RELU in TFLite)
    RELU = "relu"  # ReLU (fused where possible); the uint8 output saturates at 255


def _enum(cls: type[Enum], field: str, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise SpecError(f"field '{field}': {value!r} is not one of {allowed}") from None


def _int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"field '{field}': {value!r} is not an integer")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise SpecError(f"field '{field}': {value} must be {bound}")
    return value


@dataclasses.dataclass(frozen=True)
class ConvSlot:
    """One conv of the layout, as the spec determines it (names are the deployed layer names)."""

    name: str
    kernel: int
    cin: int  # deployed input channels (carry channels included)
    cout: int  # deployed output channels (carry channels included)
    relu: bool  # ReLU fused after the conv (the clip's ReLU is accounted for separately)
    block: Block
    carry_in: bool  # the last 3 input channels are the input image (carried, or concatenated before tail_1)
    carry_out: bool  # the last 3 output channels carry the input on


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """A validated, immutable description of one x``scale`` super-resolution network.

    Args:
        width: channels of the feature convs (head and body); with ``skip="carry"`` it includes the 3 carry channels.
            With ``widths``, the largest of them.
        depth: number of body convs (width -> width); 0 is allowed.
        blocks: block type of each conv in layout order (head, body_01.., tail_1, tail_2..). A single
            :class:`Block` or string means "the same for every conv". Kernel-1 convs must be ``conv``.
        skip: the skip/anchor design (:class:`Skip`).
        clip_where, clip_kind: where the output is clipped to [0, 255] and how (:class:`ClipWhere`, :class:`ClipKind`).
        tail: kernel sizes of the extra 27 -> 27 convs after ``tail_1`` (``(3,)`` in ABPN, ``(1,)`` in PureConvSR).
        expansion: inner width multiplier of the ECB and CLB training forms.
        scale: upscaling factor (the challenge's is 3).
        widths: output channels of each feature conv (head, body_01, ...), ``depth + 1`` of them; empty (the
            default) for ``width`` everywhere. Equal widths are stored as ``width`` alone (one spec, one hash).
    """

    width: int
    depth: int
    blocks: tuple[Block, ...]
    skip: Skip = Skip.NONE
    clip_where: ClipWhere = ClipWhere.BEFORE_D2S
    clip_kind: ClipKind = ClipKind.CLIP
    tail: tuple[int, ...] = ()
    expansion: int = 2
    scale: int = 3
    widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "width", _int("width", self.width, 1, 1024))
        set_(self, "depth", _int("depth", self.depth, 0, 64))
        widths = self.widths
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise SpecError(f"field 'widths': {widths!r} is not a list of widths")
        widths = tuple(_int(f"widths[{i}]", v, 1, 1024) for i, v in enumerate(widths))
        if widths:
            if len(widths) != self.depth + 1:
                raise SpecError(f"field 'widths': {len(widths)} entries, but the layout has {self.depth + 1} feature "
                                f"convs (head + {self.depth} body)")
            if self.width != max(widths):
                raise SpecError(f"field 'width': {self.width}, but the widest of 'widths' is {max(widths)} (width "
                                "is the widest feature conv)")
            if len(set(widths)) == 1:  # uniform: stored as width alone
                widths = ()
        set_(self, "widths", widths)
        set_(self, "scale", _int("scale", self.scale, 2, 4))
        set_(self, "expansion", _int("expansion", self.expansion, 1, 16))
        set_(self, "skip", _enum(Skip, "skip", self.skip))
        set_(self, "clip_where", _enum(ClipWhere, "clip_where", self.clip_where))
        set_(self, "clip_kind", _enum(ClipKind, "clip_kind", self.clip_kind))
        tail = self.tail
        if isinstance(tail, (str, bytes)) or not isinstance(tail, Sequence):
            raise SpecError(f"field 'tail': {tail!r} is not a list of kernel sizes")
        tail = tuple(_int(f"tail[{i}]", k, 1, MAX_KERNEL) for i, k in enumerate(tail))
        for i, k in enumerate(tail):
            if k % 2 == 0:
                raise SpecError(f"field 'tail[{i}]': kernel {k} must be odd")
        if len(tail) > 4:
            raise SpecError(f"field 'tail': {len(tail)} extra convs, at most 4")
        set_(self, "tail", tail)
        if self.skip is Skip.CARRY and min(self.feature_widths) <= CARRY_CHANNELS:
            raise SpecError(f"field 'width': {min(self.feature_widths)} leaves no feature channels beside the 3 carry "
                            "channels")
        n = self.n_convs
        blocks = self.blocks
        if isinstance(blocks, (str, Block)):
            blocks = (blocks,) * n
        if not isinstance(blocks, Sequence):
            raise SpecError(f"field 'blocks': {blocks!r} is not a block type or a list of them")
        blocks = tuple(_enum(Block, f"blocks[{i}]", b) for i, b in enumerate(blocks))
        if len(blocks) != n:
            raise SpecError(
                f"field 'blocks': {len(blocks)} entries, but the layout has {n} convs "
                f"(head + {self.depth} body + {1 + len(tail)} tail)"
            )
        set_(self, "blocks", blocks)
        for slot in self.convs():
            if slot.kernel == 1 and slot.block is not Block.CONV:
                raise SpecError(f"field 'blocks': {slot.name} is a 1x1 conv and must be 'conv', not '{slot.block.value}'")

    # ----------------------------------------------------------------------------------------------- layout
    @property
    def out_channels(self) -> int:
        """Channels of the map that depth-to-space turns into the RGB image (27 for x3)."""
        return IN_CHANNELS * self.scale * self.scale

    @property
    def feature_widths(self) -> tuple[int, ...]:
        """The output width of every feature conv (head, body_01, ...)."""
        return self.widths or (self.width,) * (self.depth + 1)

    @property
    def per_layer(self) -> bool:
        """Whether the feature convs differ in width."""
        return bool(self.widths)

    @property
    def n_convs(self) -> int:
        return 1 + self.depth + 1 + len(self.tail)

    def conv_names(self) -> tuple[str, ...]:
        body = tuple(f"body_{i + 1:02d}" for i in range(self.depth))
        tails = tuple(f"tail_{i + 1}" for i in range(1 + len(self.tail)))
        return ("head", *body, *tails)

    def convs(self) -> tuple[ConvSlot, ...]:
        """The convs of the deployed graph, in order, with their deployed channel counts.

        A net that folds the anchor into a conv (``carry``, ``concat_input``) folds it into its last conv: where
        extra tail convs follow ``tail_1``, the image rides on past ``tail_1`` in 3 more channels of every tail conv
        but the last, so no conv before the last passes the image through its weights (an int8 kernel of identity
        plus small corrections loses the corrections: 1.5-3.7 dB, ``bench/int8_probes.py``).
        """
        carry = self.skip is Skip.CARRY
        folded = carry or self.skip is Skip.CONCAT_INPUT
        ws, out = self.feature_widths, self.out_channels
        names = self.conv_names()
        slots: list[ConvSlot] = []
        n_feature = 1 + self.depth
        for i, name in enumerate(names):
            last = i == len(names) - 1
            if i < n_feature:  # head and body
                cin = IN_CHANNELS if i == 0 else ws[i - 1]
                slots.append(ConvSlot(name, 3, cin, ws[i], True, self.blocks[i], carry and i > 0, carry))
            elif i == n_feature:  # tail_1
                cin = ws[-1] + (IN_CHANNELS if self.skip is Skip.CONCAT_INPUT else 0)
                on = folded and not last  # the image rides on to the last conv
                slots.append(ConvSlot(name, 3, cin, out + (CARRY_CHANNELS if on else 0), bool(self.tail),
                                      self.blocks[i], folded, on))
            else:  # extra tails
                k = self.tail[i - n_feature - 1]
                on = folded and not last
                slots.append(ConvSlot(name, k, out + (CARRY_CHANNELS if folded else 0),
                                      out + (CARRY_CHANNELS if on else 0), not last, self.blocks[i], folded, on))
        return tuple(slots)

    @property
    def has_anchor_add(self) -> bool:
        return self.skip in (Skip.REPEAT_ADD, Skip.NEAREST_CONV_ADD, Skip.CONV_ADD)

    # ---------------------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-data form (the block list is always written out in full; ``widths`` only for a
        per-layer spec, so a uniform spec's form and hash are what they were before per-layer widths)."""
        return {
            **({"widths": list(self.widths)} if self.widths else {}),
            "version": SPEC_VERSION,
            "scale": self.scale,
            "width": self.width,
            "depth": self.depth,
            "blocks": [b.value for b in self.blocks],
            "expansion": self.expansion,
            "tail": list(self.tail),
            "skip": self.skip.value,
            "clip_where": self.clip_where.value,
            "clip_kind": self.clip_kind.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchSpec":
        """Build from plain data; ``block: X`` is accepted as shorthand for the same block everywhere."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a spec must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(f"field 'version': {version!r} is not a supported spec version ({SPEC_VERSION})")
        if "block" in data:
            if "blocks" in data:
                raise SpecError("fields 'block' and 'blocks' are both given; give one")
            data["blocks"] = data.pop("block")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(one_line(f"unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})"))
        if "widths" in data and "width" not in data and isinstance(data["widths"], Sequence) and data["widths"] \
                and all(isinstance(v, int) for v in data["widths"]):
            data["width"] = max(data["widths"])  # (the widest: what width means for a per-layer spec)
        missing = [k for k in ("width", "depth", "blocks") if k not in data]
        if missing:
            raise SpecError(f"missing field '{missing[0]}'")
        return cls(**data)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=indent is None)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return cls.from_dict(data)

    @property
    def hash(self) -> str:
        """Stable 12-hex-digit content hash of the canonical JSON (equal specs, equal hashes)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> "ArchSpec":
        """A new spec with some fields changed; a changed depth or tail with uniform blocks keeps them uniform, and
        new ``widths`` set ``width`` to their widest."""
        if "blocks" not in changes and ({"depth", "tail"} & set(changes)) and len(set(self.blocks)) == 1:
            changes["blocks"] = self.blocks[0]
        if changes.get("widths") and "width" not in changes:
            changes["width"] = max(changes["widths"])
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One short line, e.g. ``w32 d4 repconv repeat_add clip:after_d2s tail(3)`` (``w16-32-32`` for per-layer
        widths)."""
        kinds = sorted({b.value for b in self.blocks})
        block = kinds[0] if len(kinds) == 1 else "mixed(" + "/".join(kinds) + ")"
        tail = f" tail({','.join(map(str, self.tail))})" if self.tail else ""
        width = "-".join(map(str, self.widths)) if self.widths else str(self.width)
        return f"w{width} d{self.depth} {block} {self.skip.value} {self.clip_kind.value}:{self.clip_where.value}{tail}"
