"""Free the spatial size of an ONNX model's image input, without the ``onnx`` package.

Fully convolutional exports (YOLOX's official ``yolox_nano.onnx``) declare a fixed input such
as [1, 3, 416, 416] although the graph computes any multiple of 32. ONNX Runtime refuses other
sizes for a fixed input, so to run a camera at its native size the input's height and width are
renamed to symbolic dimensions in the model bytes before the session is built. The installed
file itself is never changed (its sha256 is what was checked at install).

``onnx`` is an optional (training) dependency and serving may not import it, so the few fields
on the way (ModelProto.graph -> GraphProto.input -> ValueInfoProto.type -> TypeProto.tensor_type
-> TypeProto.Tensor.shape -> TensorShapeProto.dim) are edited in protobuf's wire format, which
is stable and documented (protobuf.dev, "Encoding").
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["free_spatial_dims"]

# field numbers from onnx/onnx.proto
_MODEL_GRAPH, _GRAPH_INPUT, _VALUE_TYPE, _TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM = 7, 11, 2, 1, 2, 1
_DIM_PARAM = 2
_LEN = 2  # wire type of length-delimited fields (messages, strings, bytes)

Field = tuple[int, int, bytes]
"""(field number, wire type, payload): the payload of a length-delimited field without its length,
of any other field its encoded value."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _split(buf: bytes) -> list[Field]:
    """The top-level fields of one message, in order."""
    fields, i = [], 0
    while i < len(buf):
        key, j = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, end = _varint(buf, j)
        elif wire == 1:
            end = j + 8
        elif wire == 5:
            end = j + 4
        elif wire == _LEN:
            size, j = _varint(buf, j)
            end = j + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {num})")
        if end > len(buf):
            raise ValueError("truncated protobuf message")
        fields.append((num, wire, buf[j:end]))
        i = end
    return fields


def _join(fields: list[Field]) -> bytes:
    out = bytearray()
    for num, wire, payload in fields:
        out += _encode_varint(num << 3 | wire)
        if wire == _LEN:
            out += _encode_varint(len(payload))
        out += payload
    return bytes(out)


def _edit_first(buf: bytes, num: int, edit: Callable[[bytes], bytes]) -> bytes:
    """``buf`` with its first length-delimited field ``num`` replaced by ``edit(payload)``."""
    fields = _split(buf)
    for k, (n, wire, payload) in enumerate(fields):
        if n == num and wire == _LEN:
            fields[k] = (n, wire, edit(payload))
            return _join(fields)
    raise ValueError(f"the model has no field {num} where an image input was expected")


def _free_dims(shape: bytes, names: tuple[str, str]) -> bytes:
    """A TensorShapeProto whose 3rd and 4th dims (H, W of NCHW) are named, not fixed."""
    fields = _split(shape)
    dims = [k for k, (n, w, _) in enumerate(fields) if n == _SHAPE_DIM and w == _LEN]
    if len(dims) != 4:
        raise ValueError(f"the image input has {len(dims)} dimensions, not 4 (N, C, H, W)")
    for k, name in zip(dims[2:], names, strict=True):
        fields[k] = (_SHAPE_DIM, _LEN, _join([(_DIM_PARAM, _LEN, name.encode())]))
    return _join(fields)


def free_spatial_dims(model: bytes, names: tuple[str, str] = ("height", "width")) -> bytes:
    """The model bytes with the first graph input's H and W made symbolic (NCHW layout).

    Raises ``ValueError`` when the bytes are not a model with a rank-4 first input, so the
    caller can report the file rather than a protobuf detail.
    """

    def graph(buf: bytes) -> bytes:
        return _edit_first(buf, _GRAPH_INPUT, value_info)

    def value_info(buf: bytes) -> bytes:
        return _edit_first(buf, _VALUE_TYPE, type_proto)

    def type_proto(buf: bytes) -> bytes:
        return _edit_first(buf, _TYPE_TENSOR, tensor)

    def tensor(buf: bytes) -> bytes:
        return _edit_first(buf, _TENSOR_SHAPE, lambda s: _free_dims(s, names))

    try:
        return _edit_first(model, _MODEL_GRAPH, graph)
    except IndexError as err:  # a varint running off the end
        raise ValueError("truncated protobuf message") from err
