"""The transformer's graded units (snnc.ir.graded), each built as the compiler builds it
(compiler/graded_params.py, compiler/integerize_units.py: output scale 1, power-of-two port scales)
and measured against its float function at G = 6, 8, 12 fractional bits: the unit's integer output
y 2^-G against f(x) evaluated at the very input the unit holds (x = m s 2^-G), so the error is the
unit's own (its tables, roundings and shifts), not the input's quantization. Writes
benchmarks/results/transformer_units.json and docs/transformer_units.md.

    .venv/bin/python benchmarks/transformer_units.py [--doc-only]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from snnc.compiler.graded_params import (EXP_BITS, elementwise_table, exp_table, gelu, layernorm_constants,
                                         matmul_shift, silu)
from snnc.ir import GradedElementwise, GradedLayerNorm, GradedMatMul, GradedSoftmax
from snnc.ir.graded import unit_output

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "transformer_units.json"
DOC = ROOT / "docs" / "transformer_units.md"
GS = (6, 8, 12)
SAMPLES = 2000
FLOAT = {"gelu": gelu, "silu": silu}
NAMES = {"gelu": "GELU", "silu": "SiLU"}


def _elementwise(function: str, G: int, span: float, n: int, rng) -> dict:
    s = 2.0**-4                                         # port scale: one unit of m is s 2^-G
    q = s * 2.0**-G
    lo, hi = int(-span / q), int(span / q)              # the table covers the port's (provable) range
    t = elementwise_table(function, s, 1.0, G, lo, hi)
    u = GradedElementwise("u", (n,), function=function, table=t.table, lo=t.lo, shift=t.shift, frac_bits=G,
                          in_scale=s, out_scale=1.0)
    x = rng.uniform(-6, 6, n)
    m = np.round(x / q).astype(np.int64)
    y = unit_output(u, {"a": m[None]})[0] * 2.0**-G
    ref = FLOAT[function](m * q)
    return {"knots": len(t.table), "knot_spacing": (1 << t.shift) * q, **_err(y, ref)}


def _layernorm(G: int, n: int, rng, D: int = 64) -> dict:
    s = 2.0**-6
    q = s * 2.0**-G
    gamma, beta = rng.normal(1, 0.2, D), rng.normal(0, 0.1, D)
    c = layernorm_constants(gamma, beta, 1e-5, s, 1.0, G)
    u = GradedLayerNorm("u", (D, n, 1), axis=0, gamma=c.gamma, beta=c.beta, eps=c.eps, norm_bits=c.norm_bits,
                        sqrt_bits=c.sqrt_bits, frac_bits=G, in_scale=s, out_scale=1.0)
    x = rng.normal(0, 1, (D, n, 1)) * rng.uniform(0.2, 3, (1, n, 1)) + rng.normal(0, 1, (1, n, 1))
    m = np.round(x / q).astype(np.int64)
    y = unit_output(u, {"a": m[None]})[0] * 2.0**-G
    xq = m * q
    mu, var = xq.mean(axis=0, keepdims=True), xq.var(axis=0, keepdims=True)
    ref = (xq - mu) / np.sqrt(var + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    return {"norm_bits": c.norm_bits, "sqrt_bits": c.sqrt_bits, **_err(y, ref)}


def _softmax(G: int, n: int, rng, K: int = 17) -> dict:
    s = 2.0**-3
    q = s * 2.0**-G
    et = exp_table(s, G)
    u = GradedSoftmax("u", (n, K, 1), axis=1, table=et.table, lo=et.lo, shift=et.shift, exp_bits=EXP_BITS,
                      out_one=1 << G, frac_bits=G, in_scale=s, out_scale=1.0)
    x = rng.normal(0, 3, (n, K, 1))
    m = np.round(x / q).astype(np.int64)
    y = unit_output(u, {"a": m[None]})[0] * 2.0**-G
    e = np.exp(m * q - (m * q).max(axis=1, keepdims=True))
    return {"knots": len(et.table), **_err(y, e / e.sum(axis=1, keepdims=True))}


def _matmul(G: int, n: int, rng, K: int = 16) -> dict:
    sa = sb = 2.0**-4
    shift, out = matmul_shift(sa, sb, 1.0, G)
    u = GradedMatMul("u", (n, 1), a_shape=(n, K), b_shape=(K, 1), a_view=(n, K), b_view=(K, 1),
                     a_index=np.arange(n * K), b_index=np.arange(K), out_index=np.arange(n), a_inputs=("p",),
                     shift=shift, frac_bits=G, a_scale=sa, b_scale=sb, out_scale=out)
    A, B = rng.normal(0, 1, (n, K)), rng.normal(0, 1, (K, 1))
    ma, mb = (np.round(A / (sa * 2.0**-G)).astype(np.int64), np.round(B / (sb * 2.0**-G)).astype(np.int64))
    y = unit_output(u, {"a": ma[None], "b": mb[None]})[0] * out * 2.0**-G
    ref = (ma * sa * 2.0**-G) @ (mb * sb * 2.0**-G)
    return {"shift": shift, **_err(y, ref)}


def _err(y: np.ndarray, ref: np.ndarray) -> dict:
    d = np.asarray(y, np.float64) - ref
    return {"max_abs_error": float(np.abs(d).max()), "rms_error": float(np.sqrt(np.mean(d * d)))}


def measure(gs=GS, n: int = SAMPLES) -> dict:
    rows = []
    for G in gs:
        for function in ("gelu", "silu"):
            for span in (8.0, 256.0):
                rows.append({"unit": f"{NAMES[function]} (table over +-{span:g})", "G": G,
                             **_elementwise(function, G, span, n, np.random.default_rng(G))})
        rows.append({"unit": "LayerNorm (D = 64)", "G": G, **_layernorm(G, n // 20, np.random.default_rng(G))})
        rows.append({"unit": "Softmax (17 keys)", "G": G, **_softmax(G, n // 10, np.random.default_rng(G))})
        rows.append({"unit": "MatMul (K = 16)", "G": G, **_matmul(G, n // 10, np.random.default_rng(G))})
    return {"samples": n, "rows": rows}


UNITS_TEXT = """\
# The transformer's graded units: per-step computation, fixed-point format, measured error

Generated by `benchmarks/transformer_units.py` (do not edit by hand; `tests/benchmarks/test_transformer_units.py`
regenerates it). The units are defined in `ir/graded/` (`units.py` what each unit is, `functions.py` its
integer function, `dynamics.py` how it steps; docs/ir.md, "Graded units"); the compiler builds their
integers in `compiler/graded_params.py` and `compiler/integerize_units.py`; they run on the target's
`[units]` processors (loihi: the embedded x86 processors; loihi2: its embedded processors).

## Per step (both codings; differential: G = the network's F)

Every unit has one or two ports p. A port holds one running value per element, m_p, in units of
2^-G s_p (s_p a power of two: the finest with every incoming weight within the target's weight
mantissa). Each step t = 1..T:

    differential:  m_p <- m_p + sum (W msg) R_t + sum (W d)       (m_p(0) = offset_p = round(b 2^G / s_p))
    rate:          S_p <- S_p + sum (W msg) + sum (W d);  m_p = S_p R_t + offset_p
    y_t = F_int(m)                                               (units of 2^-G: every unit's output scale is 1)
    sent: differential d_t = y_t - y_(t-1); rate C_t - C_(t-1) with C_t = round(t y_t / 2^G)

with R_t = round(2^G / t), msg the messages of the input and of multi-threshold populations, d the
differential messages of other graded units (already encoded). F_int per unit:

| unit | F_int (integers only) | constants (from the float layer) |
| --- | --- | --- |
| GELU / SiLU | piecewise-linear table: u = m - lo, i = min(u >> k, K - 1), y = T[i] + floor((T[i+1] - T[i]) (u - i 2^k) / 2^k) | T[j] = round(f(q (lo + j 2^k)) 2^G), q = s 2^-G; the knots cover the port's *provable* range (at most 4096 intervals of 2^k) |
| LayerNorm (over a token's D features) | c = D m - sum m; k = max(0, bits(max abs c) - A); c' = c >> k; V = sum c'^2 + (eps_D >> 2k); r = isqrt(V 4^P); y = round(Gamma c' 2^P / r) + Beta | Gamma = round(gamma sqrt(D) 2^G), Beta = round(beta 2^G), eps_D = round(D^3 eps / q^2); A = norm_bits, P = sqrt_bits: the widest with every product below 2^62 |
| Softmax (over a row) | z = m - max m; e = exp table at z (0 below it); y = round(e 2^G / sum e) | table[j] = round(exp(q z_j) 2^16), z from -(17 ln 2)/q to 0 |
| MatMul (Q K^T, A V) | y = round((A @ B) / 2^shift), A, B gathered from the two ports | shift = G - log2(s_a s_b): the output scale is exactly 1 |

Every intermediate is int64 and provably below 2^62 (compiler/analysis/unit_bounds.py; for A V the
softmax row sums at most 2^G + K/2).

## Measured error against the float function

The unit's output y 2^-G against f at the input the unit holds (m s 2^-G; so the input's own
quantization is not counted). GELU / SiLU inputs uniform in [-6, 6] with the table built over +-8 or
over +-256 (a compiled network's table covers the provable range, often far wider than the values
reached: the knots are then coarser); LayerNorm rows of 64 features with random scale and offset,
gamma ~ N(1, 0.2), beta ~ N(0, 0.1); softmax rows of 17 scores ~ N(0, 3^2); MatMul with K = 16,
entries ~ N(0, 1). Port scales: 2^-4 (elementwise, MatMul), 2^-6 (LayerNorm), 2^-3 (softmax).

"""


def write_doc(data: dict, path: Path = DOC) -> str:
    lines = [UNITS_TEXT.rstrip("\n"), "",
             f"{data['samples']} inputs per elementwise row (a tenth as many rows, a twentieth as many LayerNorm "
             "tokens).", "",
             "| unit | G | max abs error | rms error | format |", "| --- | ---: | ---: | ---: | --- |"]
    for r in data["rows"]:
        fmt = (f"{r['knots']} knots, spacing {r['knot_spacing']:.4g}" if "knot_spacing" in r else
               f"norm_bits {r['norm_bits']}, sqrt_bits {r['sqrt_bits']}" if "norm_bits" in r else
               f"{r['knots']} exp knots" if "knots" in r else f"shift {r['shift']}")
        lines.append(f"| {r['unit']} | {r['G']} | {r['max_abs_error']:.3g} | {r['rms_error']:.3g} | {fmt} |")
    lines.append("")
    text = "\n".join(lines)
    Path(path).write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--doc-only", action="store_true", help="regenerate the doc from the committed JSON")
    a = ap.parse_args(argv)
    if a.doc_only:
        data = json.loads(RESULTS.read_text())
    else:
        data = measure()
        RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    write_doc(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
