"""Per-op latency features of a deployed graph (a tuple of :class:`~nas.space.Op`), computed without a model.

Every op contributes one row; the model's latency is the sum of its rows times one coefficient vector (plus a
per-inference constant), so a prediction always comes with a per-op breakdown that sums to the total.

Feature groups (all INT8, one byte per element):

=============  ==========================================================================================
``conv_gmac``  multiply-accumulates of a conv with input and output channels padded up to the board's
               channel alignment (an NPU computes 16 channels at a time: 17 channels cost as much as 32)
``conv_mb``    bytes a conv reads (activations and weights) and writes, in MB
``concat_mb``  bytes of concatenations (the ABPN anchor's 9x repeat, SCSRN's input concat)
``add_mb``     bytes of the anchor's add
``clip_mb``    bytes of a standalone clip to [0, 255] (two TFLite ops: MINIMUM and a ReLU)
``relu_mb``    bytes of a standalone ReLU (one that no conv or add could absorb)
``d2s_mb``     bytes of depth-to-space
``ops``        1 per op (dispatch and synchronisation cost, whatever the op does)
=============  ==========================================================================================

Bytes count channels padded to the alignment as well, so an elementwise op on the full-resolution 3-channel output
(a clip after depth-to-space) moves 16/3 times its size on a 16-channel NPU. MACs cannot see these ops: on the
VS680 a graph with the ABPN anchor and a clip after depth-to-space is 2-3x slower than one without at equal MACs
(Table 1 of the MAI 2022 report), and on a CPU a full-resolution clip costs as much as a small conv.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from nas.space import Op

__all__ = ["FEATURES", "FEATURE_UNITS", "op_rows", "totals", "peak_floor_ms"]

FEATURES: tuple[str, ...] = ("conv_gmac", "conv_mb", "concat_mb", "add_mb", "clip_mb", "relu_mb", "d2s_mb", "ops")
FEATURE_UNITS = {"conv_gmac": "GMAC", "ops": "ops"} | {f: "MB" for f in FEATURES if f.endswith("_mb")}

_ELEMENTWISE = {"concat": "concat_mb", "add": "add_mb", "clip": "clip_mb", "relu": "relu_mb",
                "depth_to_space": "d2s_mb"}
_IDX = {name: i for i, name in enumerate(FEATURES)}


def _pad(c: int, alignment: int) -> int:
    return -(-c // alignment) * alignment


def _row(op: Op, alignment: int) -> list[float]:
    row = [0.0] * len(FEATURES)
    h, w, c = op.out_shape
    if op.type == "depth_to_space":  # reads the low-resolution map
        s = op.kernel
        moved_in = (h // s) * (w // s) * _pad(op.in_channels[0], alignment)
    else:
        moved_in = h * w * sum(_pad(ci, alignment) for ci in op.in_channels)
    mb = (moved_in + h * w * _pad(c, alignment)) / 1e6
    if op.type == "conv":
        cin = op.in_channels[0]
        row[_IDX["conv_gmac"]] = h * w * op.kernel * op.kernel * _pad(cin, alignment) * _pad(c, alignment) / 1e9
        row[_IDX["conv_mb"]] = mb + (op.params + op.frozen_params) / 1e6
    else:
        row[_IDX[_ELEMENTWISE[op.type]]] = mb
    row[_IDX["ops"]] = 1.0
    return row


def op_rows(ops: Sequence[Op], alignment: int = 1) -> list[list[float]]:
    """One feature row per op, in the order of :data:`FEATURES`."""
    if alignment < 1:
        raise ValueError(f"channel alignment must be positive, got {alignment}")
    return [_row(op, alignment) for op in ops]


def totals(rows: Iterable[Sequence[float]]) -> list[float]:
    """Column sums of feature rows: the graph's features."""
    out = [0.0] * len(FEATURES)
    for row in rows:
        for i, v in enumerate(row):
            out[i] += v
    return out


def peak_floor_ms(op: Op, peak_tops: float | None, bandwidth_gbs: float | None) -> float:
    """The least time ``op`` can take on a board with this INT8 peak (2 ops per MAC) and memory bandwidth."""
    floor = 0.0
    if peak_tops:
        floor = max(floor, 2.0 * op.macs / (peak_tops * 1e12) * 1e3)
    if bandwidth_gbs:
        moved = op.in_elements + op.out_elements + op.params + op.frozen_params
        floor = max(floor, moved / (bandwidth_gbs * 1e9) * 1e3)
    return floor
