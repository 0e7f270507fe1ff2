"""Bias correction of a static QDQ INT8 model: each INT8 conv's mean output made the FP32 one's.

Quantization shifts the *mean* of a conv's output, channel by channel: BN-folded weights
rounded to 8 bits, and inputs clipped to the calibrated range and rounded, do not average out
(Nagel et al., "Data-Free Quantization", ICCV 2019; MobileNetV2's depthwise convs are the
classic case). The shift is systematic, so it passes down the network and accumulates. This
module measures it on real crops and moves each conv's INT32 bias to cancel it:

- a conv is linear, so the mean of its output over crops and positions is the conv of the
  mean input map: ``mean(conv(E[x], W)) + b`` (FP32 model) against ``mean(conv(E[x_q], W_q))``
  (INT8 model, what that conv really reads), padding and stride included exactly;
- convs are corrected one at a time in forward order, each with the inputs the INT8 model
  produces with every earlier correction already in place (*empirical* correction). Correcting
  all convs at once from one measurement double-counts the error each conv inherits from the
  convs before it, which later convs then "correct" again: on the shipped model that collapsed
  the embeddings (cosine to FP32 near 0).

Only the INT32 bias initializers change: the graph, the scales and the INT8 weights do not, so
the file runs exactly as fast as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

__all__ = ["correct_biases"]

Progress = Callable[[str, int, int], None]


@dataclass
class _Conv:
    q: onnx.NodeProto  # the conv in the INT8 model
    fp_input: str  # its input tensor in the FP32 model
    weight: np.ndarray  # FP32 weight
    bias: np.ndarray  # FP32 bias
    weight_q: np.ndarray  # dequantized INT8 weight
    bias_init: onnx.TensorProto  # the INT32 bias initializer (changed in place)
    bias_scale: np.ndarray
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    group: int


def _session(model: onnx.ModelProto, outputs: list[str], threads: int) -> ort.InferenceSession:
    """A session on ``model`` whose graph outputs are ``outputs`` (intermediate tensors)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in outputs)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _mean_maps(
    model: onnx.ModelProto, names: list[str], images: np.ndarray, threads: int, batch: int = 16
) -> dict[str, np.ndarray]:
    """Each named tensor averaged over the batch axis of ``images``: one (C, H, W) map each."""
    sess = _session(model, names, threads)
    inp = sess.get_inputs()[0].name
    sums: dict[str, np.ndarray] = {}
    for lo in range(0, len(images), batch):
        for n, x in zip(names, sess.run(names, {inp: images[lo : lo + batch]}), strict=True):
            s = x.astype(np.float64).sum(0)
            sums[n] = sums[n] + s if n in sums else s
    return {n: v / len(images) for n, v in sums.items()}


def _mean_output(x: np.ndarray, w: np.ndarray, c: _Conv) -> np.ndarray:
    """Per output channel, the mean over positions of ``conv(x, w)`` without bias, for one
    (C, H, W) map: the window sums of the padded map, weighted by the kernel."""
    top, left, bottom, right = c.pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    k_h, k_w = w.shape[2:]
    s_h, s_w = c.strides
    h_out = (xp.shape[1] - k_h) // s_h + 1
    w_out = (xp.shape[2] - k_w) // s_w + 1
    # win[c, i, j]: mean of the input pixels that kernel tap (i, j) sees over all positions
    win = np.empty((x.shape[0], k_h, k_w))
    for i in range(k_h):
        for j in range(k_w):
            rows = slice(i, i + s_h * (h_out - 1) + 1, s_h)
            cols = slice(j, j + s_w * (w_out - 1) + 1, s_w)
            win[:, i, j] = xp[:, rows, cols].mean((1, 2))
    out_ch, in_per_group = w.shape[:2]
    per_out = out_ch // c.group
    win = win.reshape(c.group, in_per_group, k_h, k_w)
    wg = w.reshape(c.group, per_out, in_per_group, k_h, k_w).astype(np.float64)
    return np.einsum("gockl,gckl->go", wg, win).reshape(out_ch)


def _convs(fp32: onnx.ModelProto, q: onnx.ModelProto) -> list[_Conv]:
    """The INT8 convs of ``q`` (weight, bias and input all dequantized) with their FP32 twins
    in ``fp32`` (same node name), in forward order."""
    inits = {i.name: i for i in q.graph.initializer}
    producer = {o: n for n in q.graph.node for o in n.output}
    fp_nodes = {n.name: n for n in fp32.graph.node}
    fp_inits = {i.name: i for i in fp32.graph.initializer}

    def arr(name: str) -> np.ndarray:
        return numpy_helper.to_array(inits[name])

    out = []
    for node in q.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3 or node.name not in fp_nodes:
            continue
        x_dq, w_dq, b_dq = (producer.get(node.input[i]) for i in range(3))
        if not all(n is not None and n.op_type == "DequantizeLinear" for n in (x_dq, w_dq, b_dq)):
            continue
        fn = fp_nodes[node.name]
        weight = numpy_helper.to_array(fp_inits[fn.input[1]])
        bias = (
            numpy_helper.to_array(fp_inits[fn.input[2]])
            if len(fn.input) > 2 and fn.input[2] in fp_inits
            else np.zeros(weight.shape[0], np.float32)
        )
        scale = arr(w_dq.input[1]).astype(np.float64)
        scale = scale.reshape(-1, 1, 1, 1) if scale.ndim else scale
        zp = arr(w_dq.input[2]).astype(np.float64) if len(w_dq.input) > 2 else 0.0
        zp = zp.reshape(-1, 1, 1, 1) if np.ndim(zp) else zp
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        pads = tuple(attrs.get("pads", [0, 0, 0, 0]))
        out.append(
            _Conv(
                q=node,
                fp_input=fn.input[0],
                weight=weight,
                bias=bias.astype(np.float64),
                weight_q=(arr(w_dq.input[0]).astype(np.float64) - zp) * scale,
                bias_init=inits[b_dq.input[0]],
                bias_scale=arr(b_dq.input[1]).astype(np.float64),
                strides=tuple(attrs.get("strides", [1, 1])),
                pads=(pads[0], pads[1], pads[2], pads[3]),
                group=int(attrs.get("group", 1)),
            )
        )
    return out


def correct_biases(
    fp32: onnx.ModelProto,
    q: onnx.ModelProto,
    images: np.ndarray,
    *,
    threads: int = 2,
    progress: Progress | None = None,
) -> int:
    """Move the INT32 bias of every INT8 conv of ``q`` (in place) so that its mean output over
    ``images`` (preprocessed crops, ``(n, 3, H, W)``) matches the FP32 model ``fp32``'s.

    ``fp32`` is the model ``q`` was quantized from (after ``quant_pre_process``: same node
    names). Convs are corrected one at a time in forward order, each measured on ``q`` with
    the earlier corrections in place. Returns the number of convs corrected.
    """
    convs = _convs(fp32, q)
    if not convs:
        return 0
    ref_in = _mean_maps(fp32, list(dict.fromkeys(c.fp_input for c in convs)), images, threads)
    for i, c in enumerate(convs):
        x_q = _mean_maps(q, [c.q.input[0]], images, threads)[c.q.input[0]]
        want = _mean_output(ref_in[c.fp_input], c.weight, c) + c.bias
        got = _mean_output(x_q, c.weight_q, c)
        old = numpy_helper.to_array(c.bias_init)
        new = np.round((want - got) / c.bias_scale)
        info = np.iinfo(np.int32)
        new = np.clip(new, info.min, info.max).astype(np.int32).reshape(old.shape)
        c.bias_init.CopyFrom(numpy_helper.from_array(new, c.bias_init.name))
        if progress:
            progress("bias correction", i + 1, len(convs))
    return len(convs)
