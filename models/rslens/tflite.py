"""Minimal reader for TFLite flatbuffers (no tflite/flatbuffers package needed).

Implements just enough of the public schema (tensorflow/lite/schema/schema.fbs):
Model -> subgraphs -> tensors (shape, type, buffer, name, quantization) and
operators (opcode, inputs, outputs, builtin options), plus Model.buffers.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

# TensorType enum
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
           6: np.bool_, 7: np.int16, 9: np.int8}

# BuiltinOperator enum (subset)
BUILTIN_NAMES = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D",
                 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED",
                 14: "LOGISTIC", 17: "MAX_POOL_2D", 19: "RELU", 21: "RELU6",
                 22: "RESHAPE", 25: "SOFTMAX", 40: "MEAN", 114: "QUANTIZE"}


class _Table:
    """A flatbuffer table at absolute position `pos` of `buf`."""

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt = vt
        self.vt_len = struct.unpack_from("<H", buf, vt)[0]

    def _field_pos(self, idx: int) -> Optional[int]:
        o = 4 + 2 * idx
        if o >= self.vt_len:
            return None
        rel = struct.unpack_from("<H", self.buf, self.vt + o)[0]
        return None if rel == 0 else self.pos + rel

    def scalar(self, idx: int, fmt: str, default=0):
        p = self._field_pos(idx)
        return default if p is None else struct.unpack_from("<" + fmt, self.buf, p)[0]

    def _indirect(self, idx: int) -> Optional[int]:
        p = self._field_pos(idx)
        return None if p is None else p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, idx: int) -> Optional["_Table"]:
        p = self._indirect(idx)
        return None if p is None else _Table(self.buf, p)

    def string(self, idx: int) -> Optional[str]:
        p = self._indirect(idx)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        return self.buf[p + 4:p + 4 + n].decode("utf-8")

    def vector_np(self, idx: int, dtype) -> Optional[np.ndarray]:
        p = self._indirect(idx)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        return np.frombuffer(self.buf, dtype=np.dtype(dtype).newbyteorder("<"), count=n, offset=p + 4)

    def vector_tables(self, idx: int) -> List["_Table"]:
        p = self._indirect(idx)
        if p is None:
            return []
        n = struct.unpack_from("<I", self.buf, p)[0]
        out = []
        for i in range(n):
            e = p + 4 + 4 * i
            out.append(_Table(self.buf, e + struct.unpack_from("<I", self.buf, e)[0]))
        return out


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: type
    buffer: int
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None
    quantized_dimension: int = 0
    data: Optional[np.ndarray] = None  # raw (quantised) constant data, if any

    def dequantize(self) -> np.ndarray:
        """real = scale * (q - zero_point), per-tensor or per-axis."""
        if self.data is None:
            raise ValueError(f"tensor {self.name} has no constant data")
        q = self.data.astype(np.float64)
        if self.scale is None or len(self.scale) == 0:
            return q.astype(np.float32)
        scale = self.scale.astype(np.float64)
        zp = self.zero_point.astype(np.float64) if self.zero_point is not None and len(self.zero_point) else np.zeros_like(scale)
        if len(scale) > 1:  # per-axis
            shp = [1] * q.ndim
            shp[self.quantized_dimension] = -1
            scale = scale.reshape(shp)
            zp = zp.reshape(shp)
        return (scale * (q - zp)).astype(np.float32)


@dataclass
class Operator:
    opcode: str
    inputs: List[int]
    outputs: List[int]
    options: Dict[str, int] = field(default_factory=dict)


# builtin options layouts: list of (name, struct fmt) by field index
_OPTIONS = {
    "CONV_2D": [("padding", "b"), ("stride_w", "i"), ("stride_h", "i"), ("activation", "b"),
                ("dilation_w", "i"), ("dilation_h", "i")],
    "DEPTHWISE_CONV_2D": [("padding", "b"), ("stride_w", "i"), ("stride_h", "i"),
                          ("depth_multiplier", "i"), ("activation", "b"),
                          ("dilation_w", "i"), ("dilation_h", "i")],
    "AVERAGE_POOL_2D": [("padding", "b"), ("stride_w", "i"), ("stride_h", "i"),
                        ("filter_w", "i"), ("filter_h", "i"), ("activation", "b")],
    "ADD": [("activation", "b")],
    "FULLY_CONNECTED": [("activation", "b")],
}
_OPTION_DEFAULTS = {"stride_w": 1, "stride_h": 1, "dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1}


@dataclass
class TFLiteModel:
    tensors: List[Tensor]
    operators: List[Operator]
    inputs: List[int]
    outputs: List[int]
    version: int


def read_tflite(path: str) -> TFLiteModel:
    with open(path, "rb") as f:
        buf = f.read()
    model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    version = model.scalar(0, "I")
    opcodes = []
    for oc in model.vector_tables(1):
        code = oc.scalar(3, "i", 0)
        dep = oc.scalar(0, "b", 0)
        code = max(code, dep)
        opcodes.append(BUILTIN_NAMES.get(code, f"OP_{code}"))
    buffers = []
    for b in model.vector_tables(4):
        d = b.vector_np(0, np.uint8)
        buffers.append(d)
    sg = model.vector_tables(2)[0]
    tensors = []
    for i, t in enumerate(sg.vector_tables(0)):
        shape = tuple(int(x) for x in (t.vector_np(0, np.int32) if t.vector_np(0, np.int32) is not None else []))
        dtype = _DTYPES[t.scalar(1, "b", 0)]
        bidx = t.scalar(2, "I", 0)
        ten = Tensor(index=i, name=t.string(3) or "", shape=shape, dtype=dtype, buffer=bidx)
        q = t.table(4)
        if q is not None:
            ten.scale = q.vector_np(2, np.float32)
            ten.zero_point = q.vector_np(3, np.int64)
            ten.quantized_dimension = q.scalar(6, "i", 0)
        raw = buffers[bidx] if bidx < len(buffers) else None
        if raw is not None and len(raw) > 0:
            ten.data = np.frombuffer(raw.tobytes(), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        tensors.append(ten)
    ops = []
    for o in sg.vector_tables(3):
        name = opcodes[o.scalar(0, "I", 0)]
        opts = {}
        ot = o.table(4)
        if ot is not None and name in _OPTIONS:
            for idx, (k, fmt) in enumerate(_OPTIONS[name]):
                opts[k] = ot.scalar(idx, fmt, _OPTION_DEFAULTS.get(k, 0))
        ops.append(Operator(name, [int(x) for x in o.vector_np(1, np.int32)],
                            [int(x) for x in o.vector_np(2, np.int32)], opts))
    return TFLiteModel(tensors, ops, [int(x) for x in sg.vector_np(1, np.int32)],
                       [int(x) for x in sg.vector_np(2, np.int32)], version)
