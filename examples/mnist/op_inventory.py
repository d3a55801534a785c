"""What a ViT looks like in ONNX: op types and how each transformer piece is spelled, per exported file.

Usage (from the repository root)::

    .venv/bin/python examples/mnist/op_inventory.py              # rewrites examples/mnist/vit_ops.md
    .venv/bin/python examples/mnist/op_inventory.py A.onnx B.onnx --out /tmp/ops.md

Reads each model with ``onnx`` only (nothing is run) and writes a markdown page: opset and producer,
op-type counts, and for each piece a transformer frontend must recognise -- patch embedding, class
token, position embedding, LayerNorm, linear layers on token tensors, attention (the two MatMuls of
activations, the scaling, Softmax, head split/merge Reshape and Transpose), GELU, residual adds and
the readout -- which nodes carry it, with their attributes and constant operands, read from the graph.
Every figure on the page comes from the files; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_MODELS = (HERE / "vit_mnist_legacy.onnx", HERE / "vit_mnist_dynamo.onnx",
                  REPO / "examples" / "digits" / "vit_digits_legacy.onnx",
                  REPO / "examples" / "digits" / "vit_digits_dynamo.onnx")
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "Slice", "ConstantOfShape", "Equal", "Where", "Mul",
             "Reshape", "Cast", "Squeeze", "Constant"}

log = logging.getLogger("mnist.op_inventory")


@dataclass
class Graph:
    """One ONNX graph with producer / consumer maps and its constants (initializers and Constant nodes)."""

    model: onnx.ModelProto
    nodes: list = field(init=False)
    consts: dict = field(init=False)
    producer: dict = field(init=False)
    consumers: dict = field(init=False)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.nodes = list(g.node)
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in self.nodes:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = numpy_helper.to_array(next(a.t for a in n.attribute if a.name == "value"))
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def attrs(self, n) -> dict:
        return {a.name: _plain(helper.get_attribute_value(a)) for a in n.attribute if a.name != "value"}

    def ops(self, kind: str) -> list:
        return [n for n in self.nodes if n.op_type == kind]

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def shape_sources(self, name: str) -> list[str]:
        """Op types of the run-time subgraph computing ``name`` (empty when it is a constant)."""
        seen, todo, ops = set(), [name], []
        while todo:
            t = todo.pop()
            if t in seen or self.is_const(t) or t not in self.producer:
                continue
            seen.add(t)
            n = self.producer[t]
            ops.append(n.op_type)
            if n.op_type != "Shape":  # Shape reads its input's dimensions, not its values
                todo.extend(n.input)
        return ops

    def next_op(self, n) -> str:
        cs = self.consumers.get(n.output[0], [])
        return "+".join(sorted({c.op_type for c in cs})) or "(graph output)"

    def prev_op(self, name: str) -> str:
        if self.is_const(name):
            return "constant"
        return self.producer[name].op_type if name in self.producer else "graph input"


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, float):
        return float(f"{v:.7g}")
    return v


def _fmt(a: np.ndarray) -> str:
    """dtype, shape and (up to 8) values of a constant; floats to 7 significant digits."""
    a = np.asarray(a)
    if a.size > 8:
        return f"{a.dtype} {list(a.shape)}"
    vals = [f"{float(v):.7g}" if a.dtype.kind == "f" else str(int(v)) for v in a.reshape(-1)]
    return f"{a.dtype} {list(a.shape)} = " + (vals[0] if a.ndim == 0 else "[" + ", ".join(vals) + "]")


def _count(items) -> str:
    c = Counter(items)
    return ", ".join(f"{k} x{v}" if v > 1 else str(k) for k, v in sorted(c.items(), key=lambda kv: str(kv[0]))) or "none"


def inventory(path: Path) -> list[str]:
    """Markdown lines for one model."""
    m = onnx.load(str(path))
    g = Graph(m)
    opset = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in m.graph.input
           if i.name not in g.consts]
    outs = [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in m.graph.output]
    L = [f"### `{path.relative_to(REPO) if path.is_relative_to(REPO) else path}`", "",
         f"- producer: {m.producer_name} {m.producer_version}; IR version {m.ir_version}; opsets: "
         + ", ".join(f"{k} {v}" for k, v in opset.items()) + f"; functions: {len(m.functions)}",
         f"- inputs: {ins}; outputs: {outs}",
         f"- {len(g.nodes)} nodes ({len(g.ops('Constant'))} Constant), {len(m.graph.initializer)} initializers",
         "", "| op type | count |", "| --- | --- |"]
    L += [f"| {k} | {v} |" for k, v in sorted(Counter(n.op_type for n in g.nodes).items())]
    L.append("")

    # patch embedding
    for n in g.ops("Conv"):
        a = g.attrs(n)
        w = g.consts.get(n.input[1])
        L.append(f"- **patch embedding**: Conv `{n.name}` kernel {a.get('kernel_shape')} strides {a.get('strides')} "
                 f"pads {a.get('pads')}, weight {list(w.shape) if w is not None else '?'}; then "
                 + _chain(g, n, 3))
    # linear layers
    mm_w = [n for n in g.ops("MatMul") if any(g.is_const(i) for i in n.input)]
    mm_aa = [n for n in g.ops("MatMul") if not any(g.is_const(i) for i in n.input)]
    gemm = g.ops("Gemm")
    bias_pos = [f"{c.op_type} with the constant as input {[g.is_const(i) for i in c.input].index(True)}"
                for n in mm_w for c in g.consumers.get(n.output[0], []) if any(g.is_const(i) for i in c.input)]
    L.append(f"- **linear layers**: {len(mm_w)} MatMul with a constant weight (the weight as input "
             f"{_count(str([g.is_const(i) for i in n.input].index(True)) for n in mm_w)}; bias: "
             f"{_count(bias_pos)}); {len(gemm)} Gemm "
             f"({_count(str(g.attrs(n).get('transB', 0)) for n in gemm)} transB)"
             + (f" reading {_count(g.prev_op(n.input[0]) for n in gemm)}" if gemm else ""))
    # class token and position embedding
    for n in g.ops("Expand"):
        src = n.input[0]
        shape_ops = g.shape_sources(n.input[1])
        L.append(f"- **class token**: Expand `{n.name}` of {'constant ' + _fmt(g.consts[src]) if g.is_const(src) else src}"
                 f" to a shape {'computed at run time by ' + _count(shape_ops) if shape_ops else 'that is constant: ' + _fmt(g.consts[n.input[1]])}"
                 f"; consumed by {g.next_op(n)}"
                 + "".join(f" (axis {g.attrs(c).get('axis')}, input {list(c.input).index(n.output[0])} of {len(c.input)})"
                           for c in g.consumers.get(n.output[0], []) if c.op_type == "Concat"))
    pos = [n for n in g.ops("Add") if any(g.is_const(i) and g.consts[i].ndim == 3 for i in n.input)]
    for n in pos:
        c = next(i for i in n.input if g.is_const(i))
        L.append(f"- **position embedding**: Add `{n.name}` of constant `{c}` {_fmt(g.consts[c])} to the output of "
                 f"{_count(g.prev_op(i) for i in n.input if i != c)}")
    # LayerNorm
    ln = g.ops("LayerNormalization")
    if ln:
        L.append(f"- **LayerNorm**: {len(ln)} LayerNormalization ops, attributes {_count(str(g.attrs(n)) for n in ln)}")
    rm = g.ops("ReduceMean")
    if rm:
        L.append(f"- **ReduceMean** ({len(rm)}): {_count(str(g.attrs(n)) for n in rm)}; with Pow x{len(g.ops('Pow'))}, "
                 f"Sqrt x{len(g.ops('Sqrt'))} (a decomposed LayerNorm if these pair up)")
    if not ln and not rm:
        L.append("- **LayerNorm**: none found (neither LayerNormalization nor ReduceMean)")
    # GELU
    gelu = g.ops("Gelu")
    if gelu:
        L.append(f"- **GELU**: {len(gelu)} Gelu ops, {_count(str(g.attrs(n)) for n in gelu)}")
    for n in g.ops("Erf")[:1]:
        pre = g.producer.get(n.input[0])
        pre_c = [g.consts[i] for i in (pre.input if pre is not None else []) if g.is_const(i)]
        L.append(f"- **GELU** (erf form, {len(g.ops('Erf'))} Erf ops; the first shown): "
                 f"{pre.op_type if pre is not None else '?'}({', '.join(_fmt(c) for c in pre_c)}) -> Erf -> "
                 + _chain(g, n, 3, consts=True))
    if not gelu and not g.ops("Erf"):
        L.append("- **GELU**: none found (neither Gelu nor Erf)")
    # attention
    if mm_aa:
        L.append(f"- **MatMul of two activations**: {len(mm_aa)} (Q·Kᵀ and A·V per block); their inputs come from "
                 f"{_count(g.prev_op(n.input[0]) + ' x ' + g.prev_op(n.input[1]) for n in mm_aa)}; outputs go to "
                 f"{_count(g.next_op(n) for n in mm_aa)}")
        scales = []
        for n in mm_aa:
            for c in g.consumers.get(n.output[0], []):
                if c.op_type in ("Mul", "Div"):
                    k = next((i for i in c.input if g.is_const(i)), None)
                    scales.append(f"{c.op_type} by {_fmt(g.consts[k]) if k else 'a run-time value'}")
        L.append(f"- **attention scaling**: {_count(scales)} (after the Q·Kᵀ MatMul)")
        for n in mm_aa[:2]:
            L.append(f"  - `{n.name}` = MatMul({_back(g, n.input[0], 3)}, {_back(g, n.input[1], 3)}) -> "
                     + _chain(g, n, 3, consts=True))
    sm = g.ops("Softmax")
    L.append(f"- **Softmax**: {len(sm)}, attributes {_count(str(g.attrs(n)) for n in sm)}, reading "
             f"{_count(g.prev_op(n.input[0]) for n in sm)}")
    rs = g.ops("Reshape")
    rdesc = []
    for n in rs:
        a = g.attrs(n)
        shape = _fmt(g.consts[n.input[1]]) if g.is_const(n.input[1]) else \
            "computed at run time by " + _count(g.shape_sources(n.input[1]))
        rdesc.append(f"{shape}, allowzero {a.get('allowzero', 0)} -> {g.next_op(n)}")
    L.append(f"- **Reshape** ({len(rs)}): " + "; ".join(f"{d} ({k}x)" if k > 1 else d for d, k in Counter(rdesc).items()))
    tp = g.ops("Transpose")
    L.append(f"- **Transpose** ({len(tp)}): perms {_count(str(g.attrs(n).get('perm')) for n in tp)}")
    # residual adds: Add of two activations that are not bias adds
    res = [n for n in g.ops("Add") if not any(g.is_const(i) for i in n.input)]
    L.append(f"- **Adds of two activations** (residuals): {len(res)}")
    # shape arithmetic
    sh = [n for n in g.nodes if n.op_type in ("Shape", "ConstantOfShape", "Equal", "Where", "Unsqueeze")]
    L.append(f"- **run-time shape arithmetic**: {_count(n.op_type for n in sh)}")
    # readout: from the last LayerNormalization (or the last node before the head) to the output
    out = m.graph.output[0].name
    chain, t = [], out
    while t in g.producer:
        n = g.producer[t]
        a = g.attrs(n)
        idx = [_fmt(g.consts[i]) for i in n.input[1:] if g.is_const(i)] if n.op_type in ("Gather", "Slice", "Squeeze") else []
        chain.append(f"{n.op_type}{a if n.op_type in ('Gather', 'Slice', 'Squeeze', 'ReduceMean') else ''}"
                     + (f" indices {idx}" if idx else ""))
        if n.op_type in ("LayerNormalization", "ReduceMean", "Add"):
            break
        t = next((i for i in n.input if not g.is_const(i)), None)
        if t is None:
            break
    L.append("- **readout** (output back to the last norm): " + " <- ".join(chain))
    L.append("")
    return L


def _short(g: Graph, n) -> str:
    """``Op(constant operands / key attributes)``, compact, for the summary table."""
    a = g.attrs(n)
    c = [_fmt(g.consts[i]).split(" = ")[-1] for i in n.input if g.is_const(i) and g.consts[i].size <= 8]
    keys = {k: a[k] for k in ("axis", "perm") if k in a}
    inner = ", ".join(c + [f"{k} {v}" for k, v in keys.items()])
    return f"{n.op_type}({inner})" if inner else n.op_type


def _follow(g: Graph, n, depth: int) -> list:
    """Up to ``depth`` nodes after ``n`` along its only data consumer (Shape readers skipped)."""
    out = []
    for _ in range(depth):
        data = [c for c in g.consumers.get(n.output[0], []) if c.op_type != "Shape"]
        if len(data) != 1:
            break
        n = data[0]
        out.append(n)
    return out


def summary(path: Path) -> dict[str, str]:
    """One short cell per transformer piece (the table at the top of the page)."""
    m = onnx.load(str(path))
    g = Graph(m)
    S = {"opset": ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.opset_import),
         "nodes": f"{len(g.nodes)} ({len(g.ops('Constant'))} Constant)"}
    conv = g.ops("Conv")
    S["patch embedding"] = " → ".join(
        [f"Conv(kernel {g.attrs(n).get('kernel_shape')}, stride {g.attrs(n).get('strides')})" for n in conv[:1]]
        + [_short(g, n) + (" (shape computed at run time)" if n.op_type == "Reshape" and not g.is_const(n.input[1])
                            else "") for n in (_follow(g, conv[0], 2) if conv else [])])
    cells = []
    for n in g.ops("Expand"):
        src = _fmt(g.consts[n.input[0]]).split(" = ")[0] if g.is_const(n.input[0]) else n.input[0]
        ops = g.shape_sources(n.input[1])
        cat = [c for c in g.consumers.get(n.output[0], []) if c.op_type == "Concat"]
        cells.append(f"Expand(constant {src}; shape from {_count(ops) if ops else 'a constant'})"
                     + "".join(f" → Concat(axis {g.attrs(c).get('axis')}, input {list(c.input).index(n.output[0])})"
                               for c in cat))
    S["class token"] = "; ".join(cells) or "none (no Expand)"
    S["position embedding"] = "; ".join(
        f"Add(constant {_fmt(g.consts[i]).split(' = ')[0]})" for n in g.ops("Add") for i in n.input
        if g.is_const(i) and g.consts[i].ndim == 3) or "none"
    ln = g.ops("LayerNormalization")
    S["LayerNorm"] = ("LayerNormalization" + _count(str(g.attrs(n)) for n in ln)) if ln else \
        (f"decomposed: ReduceMean x{len(g.ops('ReduceMean'))}, Pow x{len(g.ops('Pow'))}, Sqrt x{len(g.ops('Sqrt'))}"
         if g.ops("ReduceMean") else "none")
    mm_w = [n for n in g.ops("MatMul") if any(g.is_const(i) for i in n.input)]
    bias = Counter(f"Add(bias as input {[g.is_const(i) for i in c.input].index(True)})" for n in mm_w
                   for c in g.consumers.get(n.output[0], []) if c.op_type == "Add" and any(g.is_const(i) for i in c.input))
    S["Linear on tokens"] = f"MatMul(x, W) x{len(mm_w)}, then " + _count(bias.elements())
    S["final Linear"] = _count(f"Gemm(transB {g.attrs(n).get('transB', 0)})" for n in g.ops("Gemm")) or "none"
    erf = g.ops("Erf")
    if g.ops("Gelu"):
        S["GELU"] = _count(_short(g, n) + str(g.attrs(n)) for n in g.ops("Gelu"))
    elif erf:
        pre = g.producer.get(erf[0].input[0])
        S["GELU"] = f"x{len(erf)}: " + " → ".join(([_short(g, pre)] if pre is not None else []) + ["Erf"]
                                                 + [_short(g, n) for n in _follow(g, erf[0], 3)])
    else:
        S["GELU"] = "none"
    aa = [n for n in g.ops("MatMul") if not any(g.is_const(i) for i in n.input)]
    qk = [n for n in aa if g.prev_op(n.input[0]) != "Softmax"]
    S["attention"] = (f"x{len(qk)}: MatMul(Q, Kᵀ) → " + " → ".join(_short(g, n) for n in _follow(g, qk[0], 3))
                      + " (A·V)") if qk else "none"
    split = Counter()
    for n in aa:
        for side, t in zip(("left", "right"), n.input):
            tp = g.producer.get(t)
            if tp is not None and tp.op_type == "Transpose" and g.producer.get(tp.input[0]) is not None \
                    and g.producer[tp.input[0]].op_type == "Reshape":
                rs = g.producer[tp.input[0]]
                split[f"{_short(g, rs)} → {_short(g, tp)}"] += 1
    S["head split"] = _count(split.elements()) or "none"
    merge = [_short(g, a) + " → " + _short(g, b) for n in aa if g.prev_op(n.input[0]) == "Softmax"
             for a, b in [tuple(_follow(g, n, 2))] if len(_follow(g, n, 2)) == 2]
    S["head merge"] = _count(merge) or "none"
    S["residual Adds"] = str(sum(1 for n in g.ops("Add") if not any(g.is_const(i) for i in n.input)))
    t, chain = m.graph.output[0].name, []
    while t in g.producer:
        n = g.producer[t]
        chain.append(_short(g, n) if n.op_type != "Gather" else
                     f"Gather(axis {g.attrs(n).get('axis')}, index {_fmt(g.consts[n.input[1]]).split(' = ')[-1]})"
                     if g.is_const(n.input[1]) else "Gather")
        if n.op_type in ("LayerNormalization", "Add"):
            break
        t = next((i for i in n.input if not g.is_const(i)), None)
        if t is None:
            break
    S["readout"] = " → ".join(reversed(chain))
    S["run-time shape ops"] = _count(n.op_type for n in g.nodes if n.op_type in
                                     ("Shape", "ConstantOfShape", "Equal", "Where", "Unsqueeze", "Slice")) or "none"
    return S


def _chain(g: Graph, n, depth: int, consts: bool = False) -> str:
    """The first ``depth`` ops after ``n`` along its first consumer, with attributes / constants."""
    parts = []
    for _ in range(depth):
        cs = g.consumers.get(n.output[0], [])
        data = [c for c in cs if c.op_type != "Shape"]  # a Shape reader takes the dimensions only
        if len(data) != 1:
            parts.append(f"({len(cs)} consumers: {_count(c.op_type for c in cs)})")
            break
        if len(cs) > 1:
            parts.append(f"(its shape also read by {_count(c.op_type for c in cs if c.op_type == 'Shape')})")
        n = data[0]
        a = g.attrs(n)
        extra = [_fmt(g.consts[i]) for i in n.input if g.is_const(i)] if consts or n.op_type == "Reshape" else []
        shape = "" if n.op_type != "Reshape" or g.is_const(n.input[1]) else \
            " shape computed at run time by " + _count(g.shape_sources(n.input[1]))
        parts.append(f"{n.op_type}{a if a else ''}{'(' + ', '.join(extra) + ')' if extra else ''}{shape}")
    return " -> ".join(parts)


def _back(g: Graph, name: str, depth: int) -> str:
    """``name`` as the ops producing it, ``depth`` deep along the first non-constant input."""
    if depth == 0 or name not in g.producer:
        return "..." if name in g.producer else ("constant" if g.is_const(name) else name)
    n = g.producer[name]
    a = g.attrs(n)
    c = [_fmt(g.consts[i]) for i in n.input if g.is_const(i)] if n.op_type in ("Reshape", "Mul", "Div") else []
    inner = next((i for i in n.input if not g.is_const(i)), None)
    return (f"{n.op_type}{a.get('perm', '') if n.op_type == 'Transpose' else ''}{'(' + ', '.join(c) + ')' if c else ''}"
            f"({_back(g, inner, depth - 1) if inner else ''})")


def write(models, out: Path) -> None:
    lines = ["# ONNX op inventory of the ViT examples", "",
             "Generated by `examples/mnist/op_inventory.py` from the committed exports (do not edit by hand;",
             "`tests/examples/test_mnist_models.py` regenerates it and fails when it differs). The models are",
             "`examples/models/vit.py` trained by `examples/mnist/train_vit.py`; `_legacy` is",
             "`torch.onnx.export(dynamo=False)`, `_dynamo` is `dynamo=True`.", ""]
    paths = [Path(p).resolve() for p in models]
    sums = [summary(p) for p in paths]
    lines += ["## Summary", "", "| | " + " | ".join(f"`{p.name}`" for p in paths) + " |",
              "| --- |" + " --- |" * len(paths)]
    lines += [f"| {k} | " + " | ".join(s[k].replace("|", "\\|") for s in sums) + " |" for k in sums[0]]
    lines += ["", "## Per model", ""]
    for p in paths:
        lines += inventory(p)
    out.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", type=Path, default=list(DEFAULT_MODELS))
    p.add_argument("--out", type=Path, default=HERE / "vit_ops.md")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    missing = [str(m) for m in args.models if not Path(m).is_file()]
    if missing:
        p.error(f"no such ONNX file: {', '.join(missing)}")
    for m in args.models:
        try:
            onnx.load(str(m), load_external_data=False)
        except DecodeError as e:
            p.error(f"{m} is not an ONNX model ({e})")
    write(args.models, args.out)
    log.info("wrote %s (%d models)", args.out, len(args.models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
