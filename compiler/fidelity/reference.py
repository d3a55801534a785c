"""The user's model as the reference: run the ONNX model that came in, with its own semantics, and
return chosen intermediate tensors by name.

* ``OnnxRuntimeExecutor``: onnxruntime for float, QCFS-style and QDQ models (standard ONNX). The
  requested intermediate tensors become extra graph outputs. Graph optimizations are off
  (``ORT_DISABLE_ALL``): with them onnxruntime fuses QDQ node groups into integer kernels only when no
  DequantizeLinear output is a graph output, so asking for an intermediate would change how the model is
  computed; without them every node runs as the ONNX spec defines it, whatever is read.
* QONNX / FINN models (``Quant``, ``BipolarQuant``, ``Trunc``): the custom nodes are expanded into the
  standard ONNX nodes of the QONNX spec's float32 arithmetic (``qonnx_ops.expand_qonnx``), then run the
  same way. docs/fidelity.md compares this with qonnx's own executor.

Batches: a model with a fixed (static) batch size N runs in chunks of N, the last one padded with zeros
and the padding dropped; a dynamic batch runs in chunks of ``batch_size``. A model onnxruntime cannot
load or run raises ``ReferenceModelError`` with one line naming the model and the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np
import onnx

from ..errors import SnncError
from ..frontend.qonnx_ops import QONNX_DOMAINS, QonnxOpError, expand_qonnx

log = logging.getLogger(__name__)


class ReferenceModelError(SnncError):
    """The user's model cannot be run as the reference (onnxruntime refuses it, a custom op without an
    executor, a tensor it does not have): what it compares with is unchecked."""


class ModelFormat(Enum):
    ONNX = "onnx"     # standard ONNX: float, QCFS-style clip-floor, QDQ
    QONNX = "qonnx"   # QONNX / FINN custom quantizer ops


def model_format(model: onnx.ModelProto) -> ModelFormat:
    return ModelFormat.QONNX if any(n.domain in QONNX_DOMAINS for n in model.graph.node) else ModelFormat.ONNX


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:400]


@dataclass
class OnnxRuntimeExecutor:
    """Runs ``model`` (an ONNX ModelProto of standard ops) with onnxruntime; see the module docstring.

    ``run(x, tensors)`` returns ``{output: ..., tensor: ...}`` for the graph's first output and every
    requested tensor, each with the batch axis first (N = len(x))."""

    model: onnx.ModelProto
    name: str = "model"
    batch_size: int = 256
    _sessions: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        g = self.model.graph
        consts = {t.name for t in g.initializer}
        ins = [i for i in g.input if i.name not in consts]
        if len(ins) != 1:
            raise ReferenceModelError(f"'{self.name}': expected one graph input, got {[i.name for i in ins]}")
        if not g.output:
            raise ReferenceModelError(f"'{self.name}': the model has no graph output")
        self.input_name = ins[0].name
        self.output_name = g.output[0].name
        dims = ins[0].type.tensor_type.shape.dim
        self.fixed_batch = int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 \
            else None
        et = ins[0].type.tensor_type.elem_type
        self.input_dtype = onnx.helper.tensor_dtype_to_np_dtype(et) if et else np.dtype(np.float32)
        self.tensors = {o for n in g.node for o in n.output if o} | {i.name for i in g.input} | consts
        self._session(())  # fail early, with one clear line, if onnxruntime cannot load the model

    def _session(self, tensors: tuple[str, ...]):
        key = tuple(sorted(set(tensors)))
        if key in self._sessions:
            return self._sessions[key]
        import onnxruntime as ort

        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        have = {o.name for o in m.graph.output}
        for t in key:
            if t not in have:
                m.graph.output.append(onnx.ValueInfoProto(name=t))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for any load failure
            raise ReferenceModelError(f"onnxruntime cannot load the model '{self.name}' as the reference: "
                                      f"{_first_line(e)}") from None
        names = [o.name for o in sess.get_outputs()]
        self._sessions[key] = (sess, names)
        return sess, names

    def run(self, x: np.ndarray, tensors: Sequence[str] = ()) -> dict[str, np.ndarray]:
        missing = [t for t in tensors if t not in self.tensors]
        if missing:
            raise ReferenceModelError(f"'{self.name}' has no tensor(s) {missing}")
        sess, names = self._session(tuple(tensors))
        want = [self.output_name] + [t for t in dict.fromkeys(tensors) if t != self.output_name]
        x = np.asarray(x)
        n = len(x)
        step = self.fixed_batch or self.batch_size
        parts: dict[str, list] = {t: [] for t in want}
        for i in range(0, n, step):
            xb = x[i:i + step].astype(self.input_dtype, copy=False)
            pad = step - len(xb) if self.fixed_batch else 0
            if pad:
                xb = np.concatenate([xb, np.zeros((pad,) + xb.shape[1:], xb.dtype)])
            try:
                outs = dict(zip(names, sess.run(names, {self.input_name: xb})))
            except Exception as e:  # noqa: BLE001 - onnxruntime's runtime errors (shapes, types) name no type we import
                raise ReferenceModelError(f"onnxruntime cannot run the model '{self.name}' as the reference on "
                                          f"input of shape {tuple(xb.shape)}: {_first_line(e)}") from None
            for t in want:
                v = np.asarray(outs[t])
                parts[t].append(v[:len(v) - pad] if pad else v)
        return {t: np.concatenate(v) if v else np.zeros((0,)) for t, v in parts.items()}


def reference_executor(model: onnx.ModelProto | bytes, name: str = "model", batch_size: int = 256) -> OnnxRuntimeExecutor:
    """The executor of the user's model with its own semantics: onnxruntime for standard ONNX, the
    expanded QONNX ops for QONNX/FINN models. Raises ReferenceModelError (one line) when neither can."""
    if isinstance(model, (bytes, bytearray)):
        try:
            model = onnx.load_from_string(bytes(model))
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise ReferenceModelError(f"'{name}' is not a readable ONNX model: {_first_line(e)}") from None
    if model_format(model) is ModelFormat.QONNX:
        try:
            model = expand_qonnx(model)
        except QonnxOpError as e:
            raise ReferenceModelError(f"'{name}': {e}") from None
    return OnnxRuntimeExecutor(model, name, batch_size)
