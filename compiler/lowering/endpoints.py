"""The ends of every lowered network (its input node, its readout layer) and the checks every layer
kind applies to its expression (one bias per channel, finite weights)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from snnc.ir import Input

from ..errors import ConversionError
from ..frontend.float_graph import FGraph
from .affine import Expr, Expressions, Refusal, TermMap
from .plan import RealLayer, ScaledWeight

log = logging.getLogger(__name__)


def channel_bias(e: Expr, where: str) -> np.ndarray:
    """The expression's bias as one value per channel; refused when it differs across positions."""
    b = np.asarray(e.bias, np.float64)
    per = b.reshape(b.shape[0], -1)
    c = per[:, 0]
    tol = 1e-9 * max(1.0, float(np.abs(b).max(initial=0.0)))
    if np.any(np.abs(per - c[:, None]) > tol):
        raise Refusal(f"{where}: the bias differs across positions of a channel (a bias or batch norm shift "
                      "before a zero-padded convolution or padded pooling); a population's bias is one current "
                      "per channel — fold the shift into the layer before the activation")
    return c


def _range(w) -> tuple[float, float]:
    """(max, min) of a real weight (an ndarray or a ``ScaledWeight``, read by rows)."""
    if isinstance(w, ScaledWeight):
        return w.value_range()
    return float(np.max(w)), float(np.min(w))


def check_finite(layer: str, node: str, ws, bias) -> None:
    """Refuse weights or bias in level units that overflow, or are too small for any state width."""
    # without temporaries the size of the weights: max and min propagate NaN, so both are finite exactly
    # when every weight is, and max|w| = max(max w, -min w)
    ranges = [_range(w) for w in ws if np.size(w)]
    if not all(np.isfinite(hi) and np.isfinite(lo) for hi, lo in ranges) or not np.all(np.isfinite(bias)):
        raise Refusal(f"layer '{layer}' (at '{node}'): its weights or bias in level units overflow to Inf/NaN "
                      "(weights, scales or thresholds out of any float range)")
    wmax = max((max(hi, -lo) for hi, lo in ranges), default=0.0)
    if 0.0 < wmax < 2.0**-55:
        raise Refusal(f"layer '{layer}' (at '{node}'): its largest weight in level units is {wmax:.3g}; a threshold or "
                      "scale that makes it an integer would not fit any state width (check the model's scales)")


def main_kind(terms) -> str:
    """A layer's name stem from its terms: conv, fc, pool, or act (identity terms only)."""
    kinds = [t.kind for t in terms]
    k = next((k for k in kinds if k != "ident"), "ident")
    return {"conv": "conv", "dense": "fc", "pool": "pool", "ident": "act"}[k]


def linear_ops(maps: list[TermMap]) -> list[str]:
    """The graph's linear ops a layer's projections went through, in order, once each."""
    return list(dict.fromkeys(o for m in maps for o in m.term.ops))


# ---- the input -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputQuantizer:
    """The model's own quantizer on its input, as the passes found it (``FGraph.meta["input_quantizer"]``,
    written by ``passes.qdq.DropInputQuantizer``): x_int = clip(round(x / scale), qmin, qmax)."""

    scale: float
    qmin: int
    qmax: int
    rounding: str
    nodes: list[str]

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> "InputQuantizer | None":
        q = meta.get("input_quantizer")
        if q is None:
            return None
        return cls(float(q["scale"]), int(q["qmin"]), int(q["qmax"]), str(q["rounding"]), list(q["nodes"]))


def input_node(g: FGraph, input_range, bits: int) -> Input:
    """The network input: the model's own input quantizer (QDQ/QONNX on the graph input, recorded by
    DropInputQuantizer) unless ``input_range`` is given; else ``input_range`` (default 0..1) on
    ``bits`` bits, unsigned if lo >= 0, else symmetric signed."""
    q = InputQuantizer.of(g.meta)
    if input_range is None and q is not None:
        qmin, qmax = q.qmin, q.qmax
        ok = qmax <= 2**bits - 1 if qmin >= 0 else (qmin >= -(2 ** (bits - 1)) and qmax <= 2 ** (bits - 1) - 1)
        if not ok:  # keep its real range, on the target's grid
            lo, hi = q.scale * qmin, q.scale * qmax
            log.warning("the model's input quantizer %s has integer range [%d, %d] (zero point folded in), which the "
                        "target's %d-bit input cannot hold with zero point 0; snnc quantizes the input over its real "
                        "range [%g, %g] on %d bits instead (give --input-range to choose)", q.nodes, qmin, qmax,
                        bits, lo, hi, bits)
            return range_input(g, (lo, hi), bits)
        log.info("network input quantized with the model's own quantizer %s: scale %g, [%d, %d], round %s",
                 q.nodes, q.scale, qmin, qmax, q.rounding)
        return Input("input", g.input_shape, scale=q.scale, qmin=qmin, qmax=qmax, rounding=q.rounding)
    if "input_quantizer_unusable" in g.meta and input_range is None:
        log.warning("%s; snnc quantizes the input itself over 0..1 (give --input-range)", g.meta["input_quantizer_unusable"])
    elif q is not None:
        log.info("--input-range overrides the model's input quantizer %s", q.nodes)
    return range_input(g, (0.0, 1.0) if input_range is None else input_range, bits)


def range_input(g: FGraph, input_range, bits: int) -> Input:
    """The input quantized over ``input_range`` on ``bits`` bits (unsigned if lo >= 0, else symmetric)."""
    lo, hi = input_range
    if lo >= 0:
        qmax = 2**bits - 1
        return Input("input", g.input_shape, scale=hi / qmax, qmin=0, qmax=qmax)
    qmax = 2 ** (bits - 1) - 1
    return Input("input", g.input_shape, scale=max(-lo, hi) / qmax, qmin=-qmax, qmax=qmax)


# ---- the readout -----------------------------------------------------------------------------------
def readout_layer(exprs: Expressions, g: FGraph, problems: list[str]) -> tuple[Expr, list[TermMap], RealLayer]:
    """The network's output expression as the readout's real layer; raises ConversionError with every
    problem found in the whole graph (``problems`` from the layers, plus the readout's own)."""
    e = maps = layer = None
    try:
        e = exprs.expr(g.output)
        exprs.check_usable(e)
        b = channel_bias(e, "at the network's end (readout)")
        maps = exprs.projections(e, "readout")
        ws = [exprs.sources[m.term.source].gamma * m.weight for m in maps]
        check_finite("readout", g.output, ws, b)
        layer = RealLayer("readout", tuple(e.shape), ws, [m.make for m in maps], b)
    except Refusal as err:
        if str(err):
            problems.append(str(err))
    if problems:
        raise ConversionError("cannot lower the graph:\n" + "\n".join(f"  - {p}" for p in dict.fromkeys(problems) if p))
    return e, maps, layer
