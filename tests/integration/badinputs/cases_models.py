"""Models: malformed and hostile ONNX, external data, quantizer formats (``snnc compile``)."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .build import mlp, qdq_mlp, qonnx_mlp, save_onnx
from .core import Case, Ctx, Run

OUT = ("out.snnc",)


def compile_run(model: str, mention: str | None = None, expect: int = 2, args=(), timeout=60.0) -> Run:
    return Run(["compile", model, "-o", "out.snnc", *args], expect=expect, mention=mention or model,
               outputs=OUT if expect == 0 else (), timeout=timeout)


def model_case(cid, what, build, mention=None, expect=2, phase2=None, timeout=60.0, needs=None):
    """A case whose model file ``m.onnx`` is ``build(ctx)`` (bytes or a ModelProto)."""
    def make(ctx: Ctx) -> Run:
        m = build(ctx)
        if isinstance(m, onnx.ModelProto):
            save_onnx(m, ctx.p("m.onnx"))
        elif isinstance(m, bytes):
            ctx.p("m.onnx").write_bytes(m)
        return compile_run("m.onnx", mention, expect, timeout=timeout)
    return Case(f"onnx/{cid}", "ONNX", what, make, phase2, needs)


def _huge_input(ctx):
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32) * 0.1, "cw"),
             numpy_helper.from_array(np.ones((3, 4), np.float32), "w"), numpy_helper.from_array(np.zeros(3, np.float32), "b")]
    g = helper.make_graph(nodes, "huge", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 60000, 60000])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _evil_domain(ctx):
    m = mlp()
    n = next(x for x in m.graph.node if x.op_type == "Mul")
    n.domain = "com.evil"
    m.opset_import.append(helper.make_opsetid("com.evil", 1))
    return m


def _identity_chain(k):
    def pre(x):
        nodes = [helper.make_node("Identity", [x if i == 0 else f"id{i - 1}"], [f"id{i}"], name=f"id{i}") for i in range(k)]
        return nodes, [], f"id{k - 1}"
    return lambda ctx: mlp(pre_nodes=pre)


def _with_graph_edit(edit):
    def build(ctx):
        m = mlp()
        edit(m)
        return m
    return build


def _cycle(m):
    g = m.graph
    a = next(n for n in g.node if n.name == "act0_add")
    a.input[0] = "act0_f"  # Floor reads Add, Add reads Floor


def _nan_weights(m):
    t = next(t for t in m.graph.initializer if t.name == "w0")
    arr = numpy_helper.to_array(t).copy()
    arr[0, 0] = np.nan
    t.CopyFrom(numpy_helper.from_array(arr, "w0"))


def _two_inputs(m):
    m.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 6]))


def _input_dims(dims):
    def edit(m):
        m.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, dims))
    return edit


def _raw_lies(m):
    t = next(t for t in m.graph.initializer if t.name == "w0")
    t.ClearField("dims")
    t.dims.extend([1_000_000_000, 6])
    t.raw_data = b"\0\0\0\0"


def _huge_dims_no_data(m):
    t = next(t for t in m.graph.initializer if t.name == "b0")
    t.ClearField("dims")
    t.dims.append(1 << 40)
    t.ClearField("raw_data")
    del t.float_data[:]


def _attr_wrong_type(m):
    n = next(x for x in m.graph.node if x.op_type == "Gemm")
    for a in list(n.attribute):
        n.attribute.remove(a)
    n.attribute.append(helper.make_attribute("transB", "yes"))


def _string_initializer(m):
    t = next(t for t in m.graph.initializer if t.name == "b0")
    t.CopyFrom(helper.make_tensor("b0", TensorProto.STRING, [8], [b"a"] * 8))


def _dup_outputs(m):
    n = next(x for x in m.graph.node if x.name == "act0_div")
    n.output[0] = "act0_m"  # the same name as the Mul before it


def _if_node(ctx):
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["N", 6])])
    def pre(x):
        c = numpy_helper.from_array(np.array(True), "cond")
        return [helper.make_node("If", ["cond"], ["xi"], name="if", then_branch=then_g, else_branch=then_g)], [c], "xi"
    return mlp(pre_nodes=pre)


def _constant_of_shape_huge(ctx):
    def pre(x):
        shp = numpy_helper.from_array(np.array([100000, 100000], np.int64), "shp")
        nodes = [helper.make_node("ConstantOfShape", ["shp"], ["big"], name="cos",
                                  value=numpy_helper.from_array(np.array([0.0], np.float32))),
                 helper.make_node("ReduceSum", ["big"], ["s"], name="rs", keepdims=0),
                 helper.make_node("Add", [x, "s"], ["xs"], name="addbig")]
        return nodes, [shp], "xs"
    return mlp(pre_nodes=pre)


def _conv_kernel_too_big(ctx):
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(np.ones((2, 1, 9, 9), np.float32), "cw"),
             numpy_helper.from_array(np.ones((3, 2), np.float32), "w"), numpy_helper.from_array(np.zeros(3, np.float32), "b")]
    g = helper.make_graph(nodes, "k", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _special_model(kind):
    def make(ctx: Ctx) -> Run:
        if kind == "fifo":
            os.mkfifo(ctx.p("m.onnx"))
        elif kind == "dir":
            ctx.p("m.onnx").mkdir()
        return compile_run("m.onnx", timeout=20)
    return make


ONNX_CASES = [
    model_case("empty-file", "a 0-byte model file", lambda c: b""),
    model_case("random-bytes", "4 KB of random bytes", lambda c: np.random.default_rng(0).bytes(4096)),
    model_case("truncated", "a valid model cut in half", lambda c: mlp().SerializeToString()[: len(mlp().SerializeToString()) // 2]),
    model_case("text-file", "a text file named .onnx", lambda c: b"this is not a model\n" * 10),
    model_case("no-nodes", "a graph with no nodes", lambda c: helper.make_model(helper.make_graph(
        [], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])]))),
    model_case("huge-input-shape", "input declared (N, 3, 60000, 60000) (80 GiB per sample)", _huge_input, "x"),
    model_case("evil-domain", "a Mul in domain com.evil", _evil_domain, "com.evil"),
    model_case("unknown-op", "a Softplus node", _with_graph_edit(
        lambda m: setattr(next(n for n in m.graph.node if n.name == "act0_floor"), "op_type", "Softplus")), "Softplus"),
    model_case("identity-1001", "a valid model with 1001 Identity nodes", _identity_chain(1001), expect=0),
    model_case("identity-5000", "a valid model with 5000 Identity nodes (stress)", _identity_chain(5000), expect=0,
               timeout=120),
    model_case("opset-7", "a model declaring opset 7 (Clip with inputs did not exist)", lambda c: mlp(opset=7), "opset"),
    model_case("cycle", "a graph with a cycle", _with_graph_edit(_cycle)),
    model_case("nan-weight", "a NaN in a weight", _with_graph_edit(_nan_weights), "w0"),
    model_case("two-inputs", "two graph inputs", _with_graph_edit(_two_inputs), "input"),
    model_case("symbolic-dims", "input shape (N, C) with C symbolic", _with_graph_edit(_input_dims(["N", "C"])), "x"),
    model_case("zero-dim", "input shape (N, 0)", _with_graph_edit(_input_dims(["N", 0])), "x"),
    model_case("negative-dim", "input shape (N, -6)", _with_graph_edit(_input_dims(["N", -6])), "x"),
    model_case("raw-data-lies", "w0 declares 6e9 floats, holds 4 bytes", _with_graph_edit(_raw_lies), "w0"),
    model_case("dims-2^40-no-data", "b0 declares 2^40 floats and holds none", _with_graph_edit(_huge_dims_no_data), "b0"),
    model_case("attr-wrong-type", "Gemm transB is a string", _with_graph_edit(_attr_wrong_type), "transB"),
    model_case("string-initializer", "a string tensor as a bias", _with_graph_edit(_string_initializer), "b0"),
    model_case("duplicate-outputs", "two nodes write the same tensor", _with_graph_edit(_dup_outputs), "act0_m"),
    model_case("if-subgraph", "an If node with subgraphs", _if_node, "If"),
    model_case("constantofshape-huge", "ConstantOfShape of 10^10 elements", _constant_of_shape_huge, "ConstantOfShape"),
    model_case("conv-kernel-too-big", "a 9x9 kernel on an 8x8 input, no padding", _conv_kernel_too_big, "conv"),
    Case("onnx/fifo", "ONNX", "the model path is a FIFO (nothing ever writes to it)", _special_model("fifo")),
    Case("onnx/directory", "ONNX", "the model path is a folder", _special_model("dir")),
    Case("onnx/missing", "ONNX", "the model file does not exist", lambda ctx: compile_run("nope.onnx")),
]


# ---- external data -----------------------------------------------------------------------------------
def _externalize(m: onnx.ModelProto, name: str, location: str, offset=None, length=None) -> bytes:
    t = next(t for t in m.graph.initializer if t.name == name)
    data = numpy_helper.to_array(t).tobytes()
    t.ClearField("raw_data")
    del t.float_data[:]
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return data


def ext_case(cid, what, setup, mention="w0", expect=2, phase2=None):
    """``setup(ctx, model) -> model path`` writes the model with external data as it likes."""
    def make(ctx: Ctx) -> Run:
        m = mlp()
        path = setup(ctx, m)
        return compile_run(path, mention, expect, timeout=20)
    return Case(f"external/{cid}", "external data", what, make, phase2)


def _ext_valid(ctx, m):
    ctx.p("w.bin").write_bytes(_externalize(m, "w0", "w.bin"))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_symlink(ctx, m):
    _externalize(m, "w0", "link.bin", length=192)
    os.symlink("/etc/passwd", ctx.p("link.bin"))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_symlink_inside(ctx, m):
    ctx.p("real.bin").write_bytes(_externalize(m, "w0", "link.bin"))
    os.symlink("real.bin", ctx.p("link.bin"))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_dotdot(ctx, m):
    ctx.p("secret.bin").write_bytes(_externalize(m, "w0", "../secret.bin"))
    ctx.p("inner").mkdir()
    save_onnx(m, ctx.p("inner") / "m.onnx")
    return "inner/m.onnx"


def _ext_absolute(ctx, m):
    ctx.p("w.bin").write_bytes(_externalize(m, "w0", str(ctx.p("w.bin"))))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_missing(ctx, m):
    _externalize(m, "w0", "gone.bin")
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_length(ctx, m):
    ctx.p("w.bin").write_bytes(_externalize(m, "w0", "w.bin", length=1_000_000_000))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_offset(ctx, m):
    ctx.p("w.bin").write_bytes(_externalize(m, "w0", "w.bin", offset=1 << 40))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_fifo(ctx, m):
    _externalize(m, "w0", "w.bin")
    os.mkfifo(ctx.p("w.bin"))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_dir(ctx, m):
    _externalize(m, "w0", "w.bin")
    ctx.p("w.bin").mkdir()
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_symlinked_parent(ctx, m):
    _externalize(m, "w0", "sub/passwd", length=192)
    os.symlink("/etc", ctx.p("sub"))
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


def _ext_short(ctx, m):
    data = _externalize(m, "w0", "w.bin")
    ctx.p("w.bin").write_bytes(data[: len(data) // 2])
    save_onnx(m, ctx.p("m.onnx"))
    return "m.onnx"


EXTERNAL_CASES = [
    ext_case("valid", "weights in a valid external file next to the model", _ext_valid, expect=0),
    ext_case("symlink-etc-passwd", "external data link.bin -> /etc/passwd", _ext_symlink, "link.bin"),
    ext_case("symlink-inside", "external data through a symlink to a file beside the model", _ext_symlink_inside,
             "link.bin"),
    ext_case("dotdot", "external location ../secret.bin", _ext_dotdot, "secret.bin"),
    ext_case("absolute", "external location is an absolute path", _ext_absolute, "w.bin"),
    ext_case("symlinked-parent", "external location sub/passwd with sub -> /etc", _ext_symlinked_parent, "w0"),
    ext_case("missing", "the external file does not exist", _ext_missing, "gone.bin"),
    ext_case("length-lies", "external length 10^9 in a 192-byte file", _ext_length, "w0"),
    ext_case("offset-beyond", "external offset 2^40", _ext_offset, "w0"),
    ext_case("short-file", "the external file holds half the tensor", _ext_short, "w0"),
    ext_case("fifo", "the external file is a FIFO", _ext_fifo, "w.bin"),
    ext_case("directory", "the external file is a folder", _ext_dir, "w.bin"),
]


# ---- quantizer formats -----------------------------------------------------------------------------
def q_case(cid, what, build, mention, expect=2, phase2=None):
    def make(ctx: Ctx) -> Run:
        save_onnx(build(), ctx.p("m.onnx"))
        return compile_run("m.onnx", mention, expect)
    return Case(f"quantizer/{cid}", "quantizer formats", what, make, phase2)


QUANT_CASES = [
    q_case("qonnx-valid", "a valid QONNX MLP (3-bit)", lambda: qonnx_mlp(), None, expect=0),
    q_case("qonnx-bits-0", "QONNX Quant with bit width 0", lambda: qonnx_mlp(bits=0), "a0_quant"),
    q_case("qonnx-bits-1.5", "QONNX Quant with bit width 1.5", lambda: qonnx_mlp(bits=1.5), "a0_quant"),
    q_case("qonnx-bits-64", "QONNX Quant with bit width 64", lambda: qonnx_mlp(bits=64), "a0_quant"),
    q_case("qonnx-bits-1000", "QONNX Quant with bit width 1000", lambda: qonnx_mlp(bits=1000), "a0_quant"),
    q_case("qonnx-bits-negative", "QONNX Quant with bit width -3", lambda: qonnx_mlp(bits=-3), "a0_quant"),
    q_case("qonnx-bits-nan", "QONNX Quant with bit width NaN", lambda: qonnx_mlp(bits=float("nan")), "a0_quant"),
    q_case("qonnx-weight-bits-0", "QONNX weight Quant with bit width 0", lambda: qonnx_mlp(w_bits=0), "w0_quant"),
    q_case("qonnx-scale-zero", "QONNX Quant with scale 0", lambda: qonnx_mlp(scale=0.0), "a0_quant"),
    q_case("qonnx-scale-negative", "QONNX Quant with scale -0.25", lambda: qonnx_mlp(scale=-0.25), "a0_quant"),
    q_case("qonnx-scale-nan", "QONNX Quant with scale NaN", lambda: qonnx_mlp(scale=float("nan")), "a0_quant"),
    q_case("qonnx-scale-inf", "QONNX Quant with scale inf", lambda: qonnx_mlp(scale=float("inf")), "a0_quant"),
    q_case("qonnx-weight-scale-zero", "QONNX weight Quant with scale 0", lambda: qonnx_mlp(w_scale=0.0), "w0_quant"),
    q_case("qonnx-zero-point-half", "QONNX Quant with zero point 0.5", lambda: qonnx_mlp(zero=0.5), "a0_quant"),
    q_case("qonnx-rounding-bogus", "QONNX Quant with rounding_mode BOGUS", lambda: qonnx_mlp(mode="BOGUS"), "a0_quant"),
    q_case("qonnx-signed-5", "QONNX Quant with signed=5", lambda: qonnx_mlp(signed=5), "a0_quant"),
    q_case("qonnx-narrow-2", "QONNX Quant with narrow=2", lambda: qonnx_mlp(narrow=2), "a0_quant"),
    q_case("qdq-scale-zero", "QuantizeLinear with scale 0", lambda: qdq_mlp(scale=0.0), "q0"),
    q_case("qdq-scale-negative", "QuantizeLinear with scale -0.2", lambda: qdq_mlp(scale=-0.2), "q0"),
    q_case("qdq-scale-nan", "QuantizeLinear with scale NaN", lambda: qdq_mlp(scale=float("nan")), "q0"),
    q_case("qdq-zero-point-int32", "QuantizeLinear with an int32 zero point 1000",
           lambda: qdq_mlp(zp=1000, zp_dtype=np.int32), "q0"),
    q_case("qdq-weight-scale-zero", "DequantizeLinear weight scale 0", lambda: qdq_mlp(w_scale=0.0), "dqw0"),
]
