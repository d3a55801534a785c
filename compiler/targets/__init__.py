"""Target profiles: data files (TOML) shipped with the package, or a user's own file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..datafiles import builtin_names, read_toml
from ..errors import TargetError


@dataclass(frozen=True)
class NumericFormat:
    weight_bits: int
    weight_exp_min: int
    weight_exp_max: int
    state_bits: int
    bias_mant_bits: int
    bias_exp_max: int
    input_bits: int

    @property
    def weight_max(self) -> int:
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def weight_min(self) -> int:
        return -(2 ** (self.weight_bits - 1))

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    def representable_bias(self, b: int) -> int:
        """Nearest value mant << exp with a signed bias_mant_bits mantissa and 0 <= exp <= bias_exp_max."""
        mmax = 2 ** (self.bias_mant_bits - 1) - 1
        e = 0
        while abs(b) > (mmax << e) and e < self.bias_exp_max:
            e += 1
        m = int(round(b / 2**e))
        return max(-mmax, min(mmax, m)) << e


@dataclass(frozen=True)
class CoreBudget:
    neurons: int
    input_axons: int
    output_axons: int
    synapse_memory_bits: int


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    numeric: NumericFormat
    core: CoreBudget
    cores_per_chip: int

    def to_dict(self) -> dict:
        return asdict(self)


def builtin_targets() -> list[str]:
    return builtin_names(__package__)


def _section(data: dict, key: str, cls, source: str):
    sec = data.get(key)
    if not isinstance(sec, dict):
        raise TargetError(f"target profile '{source}': missing section [{key}]")
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in sec]
    if missing:
        raise TargetError(f"target profile '{source}': section [{key}] lacks {missing}")
    bad = [n for n in names if not isinstance(sec[n], int) or sec[n] < 0]
    if bad:
        raise TargetError(f"target profile '{source}': [{key}] {bad} must be non-negative integers")
    return cls(**{n: sec[n] for n in names})


def load_target(name_or_path: str) -> TargetProfile:
    """A built-in target by name (``loihi``, ``loihi2``) or a TOML file path."""
    data, source = read_toml(__package__, name_or_path, "target", TargetError)
    numeric = _section(data, "numeric", NumericFormat, source)
    if numeric.weight_bits < 2 or numeric.state_bits < 8 or numeric.weight_exp_max < numeric.weight_exp_min:
        raise TargetError(f"target profile '{source}': implausible [numeric] widths")
    core = _section(data, "core", CoreBudget, source)
    chip = data.get("chip", {})
    if not isinstance(chip.get("cores"), int) or chip["cores"] < 1:
        raise TargetError(f"target profile '{source}': [chip] cores must be a positive integer")
    return TargetProfile(str(data.get("name", source)), str(data.get("description", "")), numeric, core, chip["cores"])
