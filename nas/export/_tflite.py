"""Read a ``.tflite`` flatbuffer into plain values (ops, tensors, quantization) without importing TensorFlow."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

from nas.errors import CheckError

__all__ = ["TensorInfo", "OpInfo", "TfliteGraph", "read_tflite"]


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: str  # "int8", "uint8", "int32", "float32", ...
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    constant: bool  # holds data in the file (weights, biases)

    @property
    def quantized(self) -> bool:
        return bool(self.scale) and any(s != 0 for s in self.scale)


@dataclasses.dataclass(frozen=True)
class OpInfo:
    index: int
    type: str  # builtin name, e.g. "CONV_2D"
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    fused_activation: str  # "NONE", "RELU", "RELU6", ...
    stride: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class TfliteGraph:
    path: str
    size_bytes: int
    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def op_name(self, op: OpInfo) -> str:
        """The name of an op's first output tensor (carries the Keras layer name)."""
        return self.tensors[op.outputs[0]].name if op.outputs else ""


@lru_cache(maxsize=1)
def _enums() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    from ai_edge_litert import schema_py_generated as s

    def rev(cls) -> dict[int, str]:
        return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}

    return rev(s.BuiltinOperator), rev(s.TensorType), rev(s.ActivationFunctionType)


def read_tflite(path: str | Path) -> TfliteGraph:
    """Parse ``path``; a missing file or one that is not a TFLite model raises :class:`CheckError`."""
    from ai_edge_litert import schema_py_generated as s

    path = Path(path)
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise CheckError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise CheckError(f"{path} is a folder, not a .tflite file") from None
    if len(buf) < 8 or not s.Model.ModelBufferHasIdentifier(buf, 0):
        raise CheckError(f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        model = s.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # a truncated or corrupt flatbuffer raises anything from struct/index errors
        raise CheckError(f"{path}: corrupt TFLite model ({exc.__class__.__name__})") from None
    if not model.subgraphs:
        raise CheckError(f"{path}: TFLite model has no subgraph")
    ops_names, types, acts = _enums()
    g = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = []
    for i, t in enumerate(g.tensors or []):
        q = t.quantization
        data = buffers[t.buffer].data if 0 <= t.buffer < len(buffers) and buffers[t.buffer] is not None else None
        const = (data is not None and len(data) > 0) or (0 <= t.buffer < len(buffers) and buffers[t.buffer] is not None
                                                         and getattr(buffers[t.buffer], "size", 0) > 0)
        tensors.append(TensorInfo(
            index=i,
            name=(t.name.decode() if isinstance(t.name, bytes) else t.name) or "",
            dtype=types.get(t.type, f"type{t.type}").lower(),
            shape=tuple(int(d) for d in (t.shape if t.shape is not None else ())),
            scale=tuple(float(x) for x in (q.scale if q is not None and q.scale is not None else ())),
            zero_point=tuple(int(x) for x in (q.zeroPoint if q is not None and q.zeroPoint is not None else ())),
            constant=bool(const),
        ))
    codes = model.operatorCodes or []
    ops = []
    for i, op in enumerate(g.operators or []):
        code = codes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = ops_names.get(builtin, f"OP_{builtin}")
        if name == "CUSTOM":
            cc = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"CUSTOM:{cc}"
        opts = op.builtinOptions
        act = acts.get(getattr(opts, "fusedActivationFunction", 0), "NONE") if opts is not None else "NONE"
        stride = (opts.strideH, opts.strideW) if hasattr(opts, "strideH") else None
        dil = (opts.dilationHFactor, opts.dilationWFactor) if hasattr(opts, "dilationHFactor") else None
        ops.append(OpInfo(i, name, tuple(int(x) for x in (op.inputs if op.inputs is not None else ())),
                          tuple(int(x) for x in (op.outputs if op.outputs is not None else ())), act, stride, dil))
    return TfliteGraph(
        path=str(path),
        size_bytes=len(buf),
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(int(x) for x in (g.inputs if g.inputs is not None else ())),
        outputs=tuple(int(x) for x in (g.outputs if g.outputs is not None else ())),
    )
