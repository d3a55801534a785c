"""Energy models as data: the built-in ones are this package's *.toml files (or a user's TOML file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..builtin_toml import builtin_names, read_toml
from ..errors import SnncError

_PKG = "snnc.compiler.energy"


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

    def to_dict(self) -> dict:
        return asdict(self)


def builtin_energy_models() -> list[str]:
    return builtin_names(_PKG)


def load_energy_model(name_or_path: str) -> EnergyModel:
    d, _source = read_toml(_PKG, name_or_path, "energy model", EnergyModelError)
    snn_keys = [f.name for f in fields(EnergyModel)][3:]
    ann, snn = d.get("ann", {}), d.get("snn", {})
    missing = (["ann.energy_per_mac_j"] if "energy_per_mac_j" not in ann else []) + [
        f"snn.{k}" for k in snn_keys if k not in snn]
    if missing:
        raise EnergyModelError(f"energy model '{name_or_path}' lacks {missing}")
    vals = [ann["energy_per_mac_j"]] + [snn[k] for k in snn_keys]
    if any(not isinstance(v, (int, float)) or v < 0 for v in vals):
        raise EnergyModelError(f"energy model '{name_or_path}': energies must be non-negative numbers (joules)")
    return EnergyModel(str(d.get("name", name_or_path)), str(d.get("source", "")), *map(float, vals))
