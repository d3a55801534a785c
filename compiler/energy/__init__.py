"""Energy models as data: the built-in ones are this package's *.toml files (or a user's TOML file),
validated against a schema.

An energy model has ``name`` and ``source`` (strings), ``[ann] energy_per_mac_j`` and five ``[snn]``
energies, all in joules per operation: finite numbers in 0..1e-6 (a microjoule per operation is far
above any chip; a larger figure is a unit mistake). Unknown sections and keys, booleans, strings,
``nan`` and ``inf`` are errors naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..builtin_toml import builtin_names, read_toml
from ..errors import SnncError

_PKG = "snnc.compiler.energy"
MAX_JOULES = 1e-6
SCHEMA: dict[str, dict[str, str]] = {
    "ann": {"energy_per_mac_j": "one multiply-accumulate of the ANN"},
    "snn": {
        "energy_per_sop_j": "one synaptic operation (a spike reaching a synapse)",
        "energy_per_input_op_j": "one graded input event reaching a synapse",
        "energy_per_spike_j": "one spike sent",
        "energy_per_update_active_j": "one neuron update in a step where it spikes",
        "energy_per_update_inactive_j": "one neuron update otherwise",
    },
}
TOP = ("name", "source")


class EnergyModelError(SnncError):
    pass


@dataclass(frozen=True)
class EnergyModel:
    name: str
    source: str
    ann_energy_per_mac_j: float
    energy_per_sop_j: float
    energy_per_input_op_j: float
    energy_per_spike_j: float
    energy_per_update_active_j: float
    energy_per_update_inactive_j: float

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if k in TOP:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= MAX_JOULES:
                raise EnergyModelError(f"energy model '{self.name}': {k} = {v!r} must be a finite number of joules "
                                       f"in 0..{MAX_JOULES:g}")

    def to_dict(self) -> dict:
        return asdict(self)


def builtin_energy_models() -> list[str]:
    return builtin_names(_PKG)


def _show(v) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"the string {v[:30]!r}"
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def validate(d: dict, source: str) -> EnergyModel:
    """The model in TOML data ``d`` (from ``source``), checked against ``SCHEMA``."""
    def fail(what: str) -> EnergyModelError:
        return EnergyModelError(f"energy model '{source}': {what}")

    known = set(TOP) | set(SCHEMA)
    unknown = sorted(set(d) - known)
    if unknown:
        raise fail(f"unknown section or key '{unknown[0]}'; known: {', '.join(sorted(known))}")
    for k in TOP:
        if k in d and not isinstance(d[k], str):
            raise fail(f"{k} must be a string, got {_show(d[k])}")
    vals: dict[str, float] = {}
    for sec, keys in SCHEMA.items():
        table = d.get(sec)
        if not isinstance(table, dict):
            raise fail(f"[{sec}] must be a section with {', '.join(keys)} (joules per operation), got "
                       + ("nothing" if table is None else _show(table)))
        bad = sorted(set(table) - set(keys))
        if bad:
            raise fail(f"unknown key '{bad[0]}' in [{sec}]; known: {', '.join(keys)}")
        missing = [k for k in keys if k not in table]
        if missing:
            raise fail(f"[{sec}] lacks {', '.join(missing)} (joules per operation)")
        for k in keys:
            v = table[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise fail(f"[{sec}] {k} must be a number of joules, got {_show(v)}")
            if not math.isfinite(v):
                raise fail(f"[{sec}] {k} = {v} is not a finite number of joules")
            if not 0 <= v <= MAX_JOULES:
                raise fail(f"[{sec}] {k} = {v:g} J is outside 0..{MAX_JOULES:g} J per operation "
                           "(energies are in joules: 1 pJ is 1e-12)")
            vals[k] = float(v)
    return EnergyModel(str(d.get("name", source)), str(d.get("source", "")), vals["energy_per_mac_j"],
                       *(vals[k] for k in SCHEMA["snn"]))


def load_energy_model(name_or_path: str) -> EnergyModel:
    d, source = read_toml(_PKG, name_or_path, "energy model", EnergyModelError)
    return validate(d, source)
