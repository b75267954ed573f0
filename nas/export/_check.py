"""Check an INT8 TFLite model against a target NPU profile.

A profile is a YAML data file (``targets/<name>.yaml`` in this package, or any path) that lists the ops the NPU
runs, the tensor types it accepts and its convolution constraints. :func:`check_model` returns a
:class:`CheckReport` of named items; errors make the model fail, warnings do not.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nas.errors import CheckError
from nas.export._tflite import OpInfo, TfliteGraph, read_tflite

__all__ = ["TargetProfile", "load_target", "list_targets", "CheckItem", "CheckReport", "check_model", "check_graph"]

CLIP_OPS = {"MINIMUM", "MAXIMUM", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"}
CLIP_ACTS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"}
PASSTHROUGH = {"QUANTIZE", "DEQUANTIZE", "DEPTH_TO_SPACE", "RESHAPE", "TRANSPOSE", "SPACE_TO_DEPTH"}
CONV_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"}


class _OpSupport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: Literal["NN", "TP", "PPU"]


class _ConvConstraints(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stride: int = Field(1, ge=1)
    max_kernel: int = Field(15, ge=1)
    max_kernel_plus_dilation: int = Field(15, ge=1)


class TargetProfile(BaseModel):
    """A target NPU: supported TFLite ops (with the engine that runs each), tensor types, conv constraints."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    description: str = ""
    source: str = ""
    peak_tops_int8: float = Field(gt=0)
    channel_alignment: int = Field(1, ge=1)
    io_dtypes: list[str]
    tensor_dtypes: list[str]
    conv_constraints: _ConvConstraints = _ConvConstraints()
    fused_activations: list[str]
    ops: dict[str, _OpSupport]


def list_targets() -> list[str]:
    folder = resources.files("nas.export").joinpath("targets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=8)
def _load_target(key: str) -> TargetProfile:
    path = Path(key)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckError(f"cannot read target profile {path}: {exc.strerror}") from None
        where = str(path)
    else:
        res = resources.files("nas.export").joinpath("targets").joinpath(f"{key}.yaml")
        if not res.is_file():
            raise CheckError(f"unknown target '{key}' (known: {', '.join(list_targets())}; or give a profile .yaml)")
        text, where = res.read_text(encoding="utf-8"), f"target '{key}'"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CheckError(f"{where}: not valid YAML ({exc})") from None
    try:
        return TargetProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise CheckError(f"{where}: field '{loc}': {err['msg']} (got {err.get('input')!r})") from None


def load_target(name_or_path: str) -> TargetProfile:
    """A packaged profile by name (``vs680``) or a profile file by path."""
    return _load_target(str(name_or_path))


@dataclasses.dataclass(frozen=True)
class CheckItem:
    name: str
    passed: bool
    severity: Literal["error", "warning"]
    message: str
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"details": list(self.details)}


@dataclasses.dataclass(frozen=True)
class CheckReport:
    path: str
    target: str
    size_bytes: int
    items: tuple[CheckItem, ...]
    op_counts: dict[str, int]
    engines: dict[str, int]
    input: dict[str, Any]
    output: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items if i.severity == "error")

    @property
    def failures(self) -> tuple[CheckItem, ...]:
        return tuple(i for i in self.items if not i.passed and i.severity == "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "target": self.target,
            "passed": self.passed,
            "size_bytes": self.size_bytes,
            "items": [i.to_dict() for i in self.items],
            "op_counts": self.op_counts,
            "engines": self.engines,
            "input": self.input,
            "output": self.output,
        }

    def summary(self) -> str:
        if self.passed:
            return f"{Path(self.path).name}: passes the {self.target} check"
        names = ", ".join(i.name for i in self.failures)
        return f"{Path(self.path).name}: fails the {self.target} check ({names})"


def _producer(graph: TfliteGraph) -> dict[int, OpInfo]:
    return {t: op for op in graph.ops for t in op.outputs}


def _clip_item(graph: TfliteGraph) -> CheckItem:
    prod = _producer(graph)
    found = []
    for out in graph.outputs:
        op = prod.get(out)
        path = []
        while op is not None and op.type in PASSTHROUGH and op.inputs:
            path.append(op.type)
            op = prod.get(op.inputs[0])
        if op is None:
            found.append(None)
        elif op.type in CLIP_OPS:
            found.append(f"{op.type} '{graph.op_name(op)}'")
        elif op.fused_activation in CLIP_ACTS:
            found.append(f"{op.fused_activation} fused into {op.type} '{graph.op_name(op)}'")
        else:
            return CheckItem("output_clipped", False, "error",
                             f"the output comes from {op.type} '{graph.op_name(op)}' with no clip after it",
                             ("clip the output to [0, 255] (a clip or ReLU), ideally before depth-to-space",))
    if not found or None in found:
        return CheckItem("output_clipped", False, "error", "the output is not produced by any op")
    return CheckItem("output_clipped", True, "error", "output clipped by " + "; ".join(found))


def _pixel_item(graph: TfliteGraph, idx: int, role: str) -> CheckItem:
    t = graph.tensors[idx]
    if t.dtype == "uint8" and t.scale == (1.0,) and t.zero_point == (0,):
        return CheckItem(f"{role}_pixels", True, "warning", f"{role} uint8 maps 1:1 to pixel values (scale 1, zero point 0)")
    q = f"scale {t.scale[0]:.6g}, zero point {t.zero_point[0]}" if t.scale else "no quantization"
    return CheckItem(f"{role}_pixels", False, "warning",
                     f"{role} {t.dtype} has {q}: raw values are not pixel values; (de)quantize with these parameters")


def check_graph(graph: TfliteGraph, target: TargetProfile) -> CheckReport:
    """Run every check of ``target`` on a parsed model."""
    items: list[CheckItem] = []
    name = graph.op_name
    unsupported = [f"{op.type} '{name(op)}'" for op in graph.ops if op.type not in target.ops]
    items.append(CheckItem(
        "ops_supported", not unsupported, "error",
        f"all {len(graph.ops)} ops run on the {target.name} NPU" if not unsupported
        else f"{len(unsupported)} op(s) not supported by {target.name}: "
             + ", ".join(sorted({u.split(' ')[0] for u in unsupported})),
        tuple(unsupported[:20])))
    bad_act = [f"{op.type} '{name(op)}' ({op.fused_activation})" for op in graph.ops
               if op.fused_activation not in target.fused_activations]
    items.append(CheckItem("fused_activations", not bad_act, "error",
                           "fused activations supported" if not bad_act
                           else f"{len(bad_act)} op(s) with an unsupported fused activation", tuple(bad_act[:20])))
    floats = [f"{t.name} ({t.dtype})" for t in graph.tensors if t.dtype not in target.tensor_dtypes]
    items.append(CheckItem("integer_only", not floats, "error",
                           f"all {len(graph.tensors)} tensors are integer ({', '.join(sorted({t.dtype for t in graph.tensors}))})"
                           if not floats else f"{len(floats)} tensor(s) are not integer-quantized", tuple(floats[:20])))
    unq = [t.name for t in graph.tensors if t.dtype in ("int8", "uint8") and not t.quantized]
    items.append(CheckItem("quantization_params", not unq, "error",
                           "every 8-bit tensor has quantization parameters" if not unq
                           else f"{len(unq)} 8-bit tensor(s) without quantization parameters", tuple(unq[:20])))
    io_bad = [f"{role} {graph.tensors[i].name}: {graph.tensors[i].dtype}"
              for role, idxs in (("input", graph.inputs), ("output", graph.outputs)) for i in idxs
              if graph.tensors[i].dtype not in target.io_dtypes]
    items.append(CheckItem("io_dtype", not io_bad, "error",
                           f"input and output are {'/'.join(sorted({graph.tensors[i].dtype for i in graph.inputs + graph.outputs}))}"
                           if not io_bad else "input/output type not accepted: " + "; ".join(io_bad)))
    dyn = [f"{graph.tensors[i].name} {graph.tensors[i].shape}" for i in graph.inputs
           if not graph.tensors[i].shape or any(d <= 0 for d in graph.tensors[i].shape) or graph.tensors[i].shape[0] != 1]
    items.append(CheckItem("static_shape", not dyn, "error",
                           "input shape is static with batch 1" if not dyn else "input shape is dynamic or batch != 1: "
                           + "; ".join(dyn)))
    items.append(_clip_item(graph))
    cc = target.conv_constraints
    slow = []
    for op in graph.ops:
        if op.type not in CONV_OPS or len(op.inputs) < 2:
            continue
        kshape = graph.tensors[op.inputs[1]].shape
        k = max(kshape[1:3]) if len(kshape) == 4 else 0
        dil = max(op.dilation or (1, 1))
        if (op.stride and max(op.stride) != cc.stride) or k > cc.max_kernel or k + dil - 1 > cc.max_kernel_plus_dilation:
            slow.append(f"{op.type} '{name(op)}' kernel {k} stride {op.stride} dilation {op.dilation}")
    items.append(CheckItem("conv_on_nn_engine", not slow, "warning",
                           "every convolution fits the NN engine (stride 1, kernel <= 15)" if not slow
                           else f"{len(slow)} convolution(s) fall back to the slower TP engine", tuple(slow[:20])))
    for i in graph.inputs:
        items.append(_pixel_item(graph, i, "input"))
    for i in graph.outputs:
        items.append(_pixel_item(graph, i, "output"))
    engines = Counter(target.ops[op.type].engine if op.type in target.ops else "unsupported" for op in graph.ops)

    def io(i: int) -> dict[str, Any]:
        t = graph.tensors[i]
        return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "scale": list(t.scale),
                "zero_point": list(t.zero_point)}

    return CheckReport(
        path=graph.path,
        target=target.name,
        size_bytes=graph.size_bytes,
        items=tuple(items),
        op_counts=dict(Counter(op.type for op in graph.ops)),
        engines=dict(engines),
        input=io(graph.inputs[0]) if graph.inputs else {},
        output=io(graph.outputs[0]) if graph.outputs else {},
    )


def check_model(path: str | Path, target: str = "vs680") -> CheckReport:
    """Check the TFLite model at ``path`` against ``target`` (a profile name or a profile file)."""
    profile = load_target(target)
    return check_graph(read_tflite(path), profile)
