"""The schema of target profiles: every section and key a profile may have, with its type, unit and range.

A profile is refused, naming the file, the section and the key, when it has a section or key not listed
here, a value of the wrong type (``"8"``, ``true``, ``1e20`` where an integer is expected; TOML ``nan``
and ``inf``), a value out of its range, or figures that contradict each other (the widest weight
shifted by the largest exponent, the largest bias, the input must all fit the state width). The ranges
are what snnc can compute exactly, not what some chip has: the reference simulator and the bounds
proof compute in int64, so a state is at most 62 bits wide (a sum of two states never overflows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import TargetError


@dataclass(frozen=True)
class Key:
    kind: type           # int, bool, str, or list (of ints)
    lo: int | None = None
    hi: int | None = None
    unit: str = ""
    doc: str = ""
    required: bool = True


B = "bits"
N = "count"
SECTIONS: dict[str, dict[str, Key]] = {
    "numeric": {
        "weight_bits": Key(int, 2, 32, B, "signed weight mantissa width"),
        "weight_exp_min": Key(int, 0, 30, B, "smallest weight exponent (a left shift; snnc never shifts right)"),
        "weight_exp_max": Key(int, 0, 30, B, "largest weight exponent"),
        "state_bits": Key(int, 8, 62, B, "signed membrane/accumulator width (int64 arithmetic: at most 62)"),
        "bias_mant_bits": Key(int, 2, 48, B, "signed bias mantissa width"),
        "bias_exp_max": Key(int, 0, 30, B, "largest bias exponent"),
        "input_bits": Key(int, 1, 32, B, "graded input value per step"),
    },
    "core": {
        "neurons": Key(int, 1, 1 << 24, N, "compartments per core"),
        "input_axons": Key(int, 1, 1 << 24, N, "input axon entries per core"),
        "output_axons": Key(int, 1, 1 << 24, N, "output axon entries per core"),
        "synapse_memory_bits": Key(int, 1, 1 << 40, B, "synapse memory per core"),
        "neuron_memory_bits": Key(int, 0, 1 << 12, B, "state per neuron charged to the synapse memory", False),
    },
    "synapse": {
        "word_bits": Key(int, 1, 1 << 12, B, "synapse memory word", False),
        "group_synapses": Key(int, 1, 1 << 16, N, "synapses per group", False),
        "group_overhead_bits": Key(int, 0, 1 << 12, B, "overhead per group", False),
        "index_bits": Key(list, 1, 32, B, "compartment index widths of the sparse format", False),
        "atoms_per_axon": Key(int, 1, 1 << 16, N, "atoms of a population axon", False),
    },
    "chip": {
        "cores": Key(int, 1, 1 << 16, N, "neuro cores per chip"),
        "graded_spikes": Key(bool, doc="spikes carry a payload", required=False),
    },
}
SECTIONS["units"] = {   # the host / embedded processors that run graded units (transformers' nonlinear layers)
    "resource": Key(str, doc="what runs the graded units (named in reports and refusals)"),
    "processors": Key(int, 1, 1 << 16, N, "such processors per chip"),
    "state_bits": Key(int, 8, 63, B, "signed width of a unit's values (int64 arithmetic: at most 63)"),
}
TOP: dict[str, Key] = {"name": Key(str, required=False), "description": Key(str, required=False)}
SYSTEM_CHIPS = Key(int, 1, 1 << 24, N, "chips of a named system")
OPTIONAL_SECTIONS = ("synapse", "systems", "units")


def _typename(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, float):
        return f"the float {v!r}"
    if isinstance(v, str):
        return f"the string {v[:30]!r}"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "a list"
    return repr(v)


def check_value(v: Any, key: Key, where: str, source: str) -> Any:
    """``v`` checked against ``key``; raises TargetError naming ``source`` and ``where`` (section.key)."""
    def bad(what: str) -> TargetError:
        unit = f" ({key.unit})" if key.unit else ""
        rng = f" in {key.lo}..{key.hi}" if key.lo is not None else ""
        return TargetError(f"target profile '{source}': {where} {what}; expected {key.kind.__name__ if key.kind is not list else 'a list of integers'}{rng}{unit}")

    if key.kind is list:
        if not isinstance(v, list) or not v or len(v) > 32:
            raise bad(f"is {_typename(v)}" if not isinstance(v, list) else f"has {len(v)} entries (1..32 allowed)")
        return [check_value(x, Key(int, key.lo, key.hi, key.unit), f"{where}[{i}]", source) for i, x in enumerate(v)]
    if key.kind is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad(f"is {_typename(v)}" + (" (not a finite number)" if isinstance(v, float) and not math.isfinite(v) else ""))
        if key.lo is not None and not key.lo <= v <= key.hi:
            raise bad(f"= {v} is out of range")
        return v
    if key.kind is bool:
        if not isinstance(v, bool):
            raise bad(f"is {_typename(v)}")
        return v
    if key.kind is str:
        if not isinstance(v, str):
            raise bad(f"is {_typename(v)}")
        return v
    raise TypeError(key.kind)  # pragma: no cover


def check_keys(data: dict, source: str, partial: bool) -> None:
    """Sections and keys of a profile file exist in the schema (and, unless ``partial``, the required ones
    are present); types and ranges of what is there. Raises TargetError naming the first problem."""
    if not isinstance(data, dict):
        raise TargetError(f"target profile '{source}' must be a TOML document of sections")
    known = set(TOP) | set(SECTIONS) | {"systems"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TargetError(f"target profile '{source}': unknown section or key '{unknown[0]}'; "
                          f"known: {', '.join(sorted(known))}")
    for k, key in TOP.items():
        if k in data:
            check_value(data[k], key, k, source)
    for sec, keys in SECTIONS.items():
        if sec not in data:
            if not partial and sec not in OPTIONAL_SECTIONS:
                raise TargetError(f"target profile '{source}': missing section [{sec}] "
                                  f"(keys: {', '.join(keys)})")
            continue
        table = data[sec]
        if not isinstance(table, dict):
            raise TargetError(f"target profile '{source}': '{sec}' must be a section [{sec}], got {_typename(table)}")
        bad = sorted(set(table) - set(keys))
        if bad:
            raise TargetError(f"target profile '{source}': unknown key '{bad[0]}' in [{sec}]; "
                              f"known: {', '.join(keys)}")
        if not partial:
            missing = [k for k, key in keys.items() if key.required and k not in table]
            if missing:
                raise TargetError(f"target profile '{source}': section [{sec}] lacks {missing}")
        for k, v in table.items():
            check_value(v, keys[k], f"[{sec}] {k}", source)
    if "systems" in data:
        systems = data["systems"]
        if not isinstance(systems, dict):
            raise TargetError(f"target profile '{source}': 'systems' must be a section [systems], got {_typename(systems)}")
        for k, v in systems.items():
            check_value(v, SYSTEM_CHIPS, f"[systems] {k}", source)


def check_relations(numeric: dict, source: str) -> None:
    """The [numeric] figures must agree: exponents ordered, and the widest shifted weight, the largest
    bias and the input all representable in the state width (else no network could be proven safe)."""
    n = numeric
    state_max = (1 << (n["state_bits"] - 1)) - 1
    if n["weight_exp_min"] > n["weight_exp_max"]:
        raise TargetError(f"target profile '{source}': [numeric] weight_exp_min = {n['weight_exp_min']} is above "
                          f"weight_exp_max = {n['weight_exp_max']}")
    w = ((1 << (n["weight_bits"] - 1)) - 1) << n["weight_exp_max"]
    if w > state_max:
        raise TargetError(f"target profile '{source}': [numeric] weight_bits = {n['weight_bits']} with weight_exp_max = "
                          f"{n['weight_exp_max']} gives weights up to {w}, beyond the state_bits = {n['state_bits']} "
                          f"state (|v| <= {state_max})")
    b = ((1 << (n["bias_mant_bits"] - 1)) - 1) << n["bias_exp_max"]
    if b > state_max:
        raise TargetError(f"target profile '{source}': [numeric] bias_mant_bits = {n['bias_mant_bits']} with "
                          f"bias_exp_max = {n['bias_exp_max']} gives biases up to {b}, beyond the state_bits = "
                          f"{n['state_bits']} state (|v| <= {state_max})")
    if n["input_bits"] >= n["state_bits"]:
        raise TargetError(f"target profile '{source}': [numeric] input_bits = {n['input_bits']} must be below "
                          f"state_bits = {n['state_bits']}")


def describe() -> str:
    """The schema as a Markdown table (docs/reliability.md)."""
    rows = ["| section | key | type | range | unit | meaning |", "|---|---|---|---|---|---|"]
    for sec, keys in SECTIONS.items():
        for k, key in keys.items():
            rng = "" if key.lo is None else f"{key.lo}..{key.hi}"
            typ = "list of int" if key.kind is list else key.kind.__name__
            rows.append(f"| [{sec}] | {k}{'' if key.required else ' (optional)'} | {typ} | {rng} | {key.unit} | {key.doc} |")
    rows.append(f"| [systems] | any name | int | {SYSTEM_CHIPS.lo}..{SYSTEM_CHIPS.hi} | count | {SYSTEM_CHIPS.doc} |")
    return "\n".join(rows)
