"""Published board measurements as fitting samples: the MAI 2022 challenge's VS680 runtimes.

The measurement file (``../shared/latency/vs680-published.yaml`` in this project's layout) reconstructs each
team's inference graph as a list of layers; :func:`ops_from_layers` turns one into the same :class:`~nas.space.Op`
tuple that :func:`~nas.space.deploy_ops` gives for an ArchSpec, so published rows and searched specs share features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from nas.errors import LatencyError
from nas.latency._model import Sample
from nas.space import DEFAULT_INPUT_HW, Op

__all__ = ["ops_from_layers", "published_samples", "FITTING_CONFIDENCE"]

FITTING_CONFIDENCE = ("high", "medium")
_IN = 3


def ops_from_layers(layers: Sequence[Mapping[str, Any]], height: int = DEFAULT_INPUT_HW[0],
                    width: int = DEFAULT_INPUT_HW[1], scale: int = 3, where: str = "layers") -> tuple[Op, ...]:
    """The deployed ops of a graph written in the measurement file's layer vocabulary."""
    h, w, out_c = height, width, _IN * scale * scale
    ops: list[Op] = []
    channels = _IN
    after_d2s = False
    n_conv = 0

    def need(layer: Mapping[str, Any], key: str) -> Any:
        if key not in layer:
            raise LatencyError(f"{where}: {layer.get('op')} layer needs '{key}'")
        return layer[key]

    for layer in layers:
        if not isinstance(layer, Mapping) or "op" not in layer:
            raise LatencyError(f"{where}: every layer is a mapping with an 'op', got {layer!r}")
        kind = layer["op"]
        if kind == "conv":
            k, cin, cout = (int(need(layer, key)) for key in ("k", "in", "out"))
            if cin != channels:
                raise LatencyError(f"{where}: conv expects {cin} input channels, the graph has {channels} there")
            for _ in range(int(layer.get("repeat", 1))):
                n_conv += 1
                ops.append(Op(f"conv_{n_conv:02d}", "conv", (h, w, cout), (cin,), k, str(layer.get("act", "none")),
                              k * k * cin * cout + cout))
                cin = channels = cout
        elif kind == "anchor":
            anchor = need(layer, "kind")
            if anchor == "repeat_add":
                ops.append(Op("anchor", "concat", (h, w, out_c), (_IN,) * (scale * scale)))
            elif anchor == "nearest_conv_add":
                ops.append(Op("anchor", "conv", (h, w, out_c), (_IN,), 1, frozen_params=_IN * out_c))
            elif anchor == "conv_add":
                k = int(layer.get("k", 3))
                ops.append(Op("anchor", "conv", (h, w, out_c), (_IN,), k, params=k * k * _IN * out_c + out_c))
            else:
                raise LatencyError(f"{where}: unknown anchor kind {anchor!r}")
            ops.append(Op("anchor_add", "add", (h, w, out_c), (out_c, out_c)))
        elif kind == "concat_input":
            ops.append(Op("concat_input", "concat", (h, w, channels + _IN), (channels, _IN)))
            channels += _IN
        elif kind == "clip":
            if after_d2s:
                ops.append(Op("clip", "clip", (h * scale, w * scale, _IN), (_IN,)))
            else:
                ops.append(Op("clip", "clip", (h, w, channels), (channels,)))
        elif kind == "depth_to_space":
            if channels != out_c:
                raise LatencyError(f"{where}: depth_to_space needs {out_c} channels, the graph has {channels}")
            ops.append(Op("d2s", "depth_to_space", (h * scale, w * scale, _IN), (out_c,), kernel=scale))
            after_d2s = True
        else:
            raise LatencyError(f"{where}: layer op {kind!r} is not supported by the latency features")
    if not after_d2s:
        raise LatencyError(f"{where}: the graph has no depth_to_space")
    return tuple(ops)


def _entries(path: Path) -> list[Mapping[str, Any]]:
    if not path.exists():
        raise LatencyError(f"published measurements not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LatencyError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LatencyError(f"{path}: expected a mapping with a list of 'entries'")
    return entries


def published_samples(path: str | Path, *, column: str = "npu_ms", confidence: Iterable[str] = FITTING_CONFIDENCE,
                      input_hw: tuple[int, int] = DEFAULT_INPUT_HW, scale: int = 3) -> list[Sample]:
    """Fitting samples from a published-measurement file: rows with ``layers`` and one of the ``confidence`` levels."""
    path = Path(path)
    keep = set(confidence)
    out = []
    for i, e in enumerate(_entries(path)):
        name = e.get("name", f"entry {i + 1}") if isinstance(e, Mapping) else f"entry {i + 1}"
        if not isinstance(e, Mapping):
            raise LatencyError(f"{path}: {name} is not a mapping")
        if e.get("confidence") not in keep or not e.get("layers"):
            continue
        if column not in e:
            raise LatencyError(f"{path}: {name} has no '{column}'")
        try:
            ms = float(e[column])
        except (TypeError, ValueError):
            raise LatencyError(f"{path}: {name}: '{column}' is not a number: {e[column]!r}") from None
        ops = ops_from_layers(e["layers"], *input_hw, scale=scale, where=f"{path}: {name}")
        out.append(Sample(str(name), ops, ms))
    if not out:
        raise LatencyError(f"{path}: no rows with layers and confidence {' or '.join(sorted(keep))}")
    return out
