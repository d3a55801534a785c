"""Target profiles: data files (TOML) shipped with the package, or a user's own file.

A profile has the numeric formats ([numeric]), the per-core budgets ([core]), the synapse-memory
encoding the mapper counts in ([synapse]), the chip ([chip]) and the chip counts of known systems
([systems]). ``load_target(target, profile)`` reads a built-in target or a .toml path, then lays a
user's partial ``profile`` file over it (section by section, key by key). Every figure lives in the
TOML files with its source in a comment; none is typed into code. What a profile may contain (sections,
keys, types, ranges, units) is ``schema.SECTIONS``; ``conformance.check_formats`` checks a network
against a profile.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..builtin_toml import builtin_names, read_toml
from ..errors import TargetError
from . import schema


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

    @property
    def bias_max(self) -> int:
        """The largest |bias| a mantissa << exponent can hold."""
        return (2 ** (self.bias_mant_bits - 1) - 1) << self.bias_exp_max

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
    """What one core offers. ``neuron_memory_bits`` > 0: neuron state shares the synapse memory (Loihi 2)."""

    neurons: int
    input_axons: int
    output_axons: int
    synapse_memory_bits: int
    neuron_memory_bits: int = 0

    def __post_init__(self) -> None:
        for f in ("neurons", "input_axons", "output_axons", "synapse_memory_bits"):
            if getattr(self, f) < 1:
                raise TargetError(f"core budget '{f}' must be >= 1, got {getattr(self, f)}")


@dataclass(frozen=True)
class SynapseFormat:
    """How synapse memory is counted (nengo-loihi ``SynapseConfig.bits_per_axon``, docs/mapping.md).

    A list of n synapses behind one input axon is stored in groups of ``group_synapses``; a group of
    m synapses costs ceil((m * bits + group_overhead_bits) / word_bits) words, bits = weight bits
    (+ an index of the smallest ``index_bits`` width that addresses the piece, in the sparse format).
    ``atoms_per_axon`` > 1: population axons, one axon per (source pixel, channel chunk).
    """

    word_bits: int = 64
    group_synapses: int = 64
    group_overhead_bits: int = 10
    index_bits: tuple[int, ...] = (6, 7, 8, 9, 10, 11, 12)
    atoms_per_axon: int = 512

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_bits", tuple(sorted(int(b) for b in self.index_bits)))
        if not self.index_bits or self.index_bits[0] < 1:
            raise TargetError("[synapse] index_bits must be a non-empty list of positive widths")
        for f in ("word_bits", "group_synapses", "atoms_per_axon"):
            if getattr(self, f) < 1:
                raise TargetError(f"[synapse] {f} must be >= 1, got {getattr(self, f)}")
        if self.group_overhead_bits < 0:
            raise TargetError("[synapse] group_overhead_bits must be >= 0")

    def index_width(self, neurons: int) -> int | None:
        """Smallest listed index width that addresses ``neurons`` compartments; None if none does."""
        need = max(1, math.ceil(math.log2(max(neurons, 1))))
        return next((b for b in self.index_bits if b >= need), None)

    @property
    def max_piece_neurons(self) -> int:
        return 2 ** self.index_bits[-1]


@dataclass(frozen=True)
class UnitResource:
    """Where a target runs graded units (the transformer's LayerNorm, softmax, GELU / SiLU and two-input
    MatMul units are not neuro-core operations): ``resource`` names the processors, ``processors`` per
    chip, ``state_bits`` the signed width of a unit's values."""

    resource: str
    processors: int
    state_bits: int

    def __post_init__(self) -> None:
        if not self.resource or self.processors < 1 or not 8 <= self.state_bits <= 63:
            raise TargetError(f"[units] needs a resource name, processors >= 1 and state_bits in 8..63, got {self}")


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    numeric: NumericFormat
    core: CoreBudget
    cores_per_chip: int
    synapse: SynapseFormat = field(default_factory=SynapseFormat)
    graded_spikes: bool = False
    systems: dict = field(default_factory=dict)
    profile: str | None = None   # the user file laid over the target, if any
    units: UnitResource | None = None   # host / embedded processors for graded units (None: the target has none)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["synapse"]["index_bits"] = list(self.synapse.index_bits)
        return d

    def system_chips(self, system: str) -> int:
        key = system.lower().replace("-", "_").replace(" ", "_")
        if key not in self.systems:
            known = ", ".join(f"{k} ({v} chips)" for k, v in sorted(self.systems.items())) or "none"
            raise TargetError(f"unknown system '{system}' for target {self.name}; known: {known}")
        return int(self.systems[key])


def builtin_targets() -> list[str]:
    return builtin_names(__package__)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(data: dict, source: str, profile: str | None) -> TargetProfile:
    """A TargetProfile from TOML-shaped ``data`` that passed ``schema.check_keys``."""
    numeric = NumericFormat(**data["numeric"])
    schema.check_relations(data["numeric"], source)
    try:
        core = CoreBudget(**data["core"])
        syn = dict(data.get("synapse", {}))
        if "index_bits" in syn:
            syn["index_bits"] = tuple(syn["index_bits"])
        synapse = SynapseFormat(**syn)
    except TargetError as e:
        raise TargetError(f"target profile '{source}': {e}") from None
    chip = data["chip"]
    units = UnitResource(**data["units"]) if "units" in data else None
    return TargetProfile(data.get("name", source), data.get("description", ""), numeric, core, chip["cores"],
                         synapse, chip.get("graded_spikes", False), dict(data.get("systems", {})), profile, units)


def load_target(name_or_path: str, profile: str | None = None) -> TargetProfile:
    """A built-in target by name (``loihi``, ``loihi2``) or a TOML file path, optionally with a user's
    ``profile`` file (partial: only the keys it sets replace the target's). Both are checked against
    ``schema`` (unknown sections and keys, types, ranges, units), naming the file and the key."""
    data, source = read_toml(__package__, name_or_path, "target", TargetError)
    schema.check_keys(data, source, partial=False)
    if profile is not None:
        over, psource = read_toml(__package__, str(profile), "profile", TargetError)
        schema.check_keys(over, psource, partial=True)
        data = _merge(data, over)
        source = f"{source} + {psource}"
    return _build(data, source, None if profile is None else str(profile))


def profile_from_dict(d: dict, source: str) -> TargetProfile:
    """The TargetProfile a bundle stores (``TargetProfile.to_dict()``, in ``metadata["target"]``), checked
    against the same schema as a TOML profile."""
    if not isinstance(d, dict):
        raise TargetError(f"target profile '{source}' must be a JSON object")
    keys = {"name", "description", "numeric", "core", "cores_per_chip", "synapse", "graded_spikes", "systems",
            "profile", "units"}
    unknown = sorted(set(d) - keys)
    if unknown:
        raise TargetError(f"target profile '{source}': unknown key '{unknown[0]}'")
    missing = sorted(k for k in ("name", "numeric", "core", "cores_per_chip") if k not in d)
    if missing:
        raise TargetError(f"target profile '{source}' lacks {missing}")
    data = {"name": d["name"], "description": d.get("description", ""), "numeric": d["numeric"], "core": d["core"],
            "chip": {"cores": d["cores_per_chip"], "graded_spikes": d.get("graded_spikes", False)}}
    if "synapse" in d:
        data["synapse"] = d["synapse"]
    if "systems" in d:
        data["systems"] = d["systems"]
    if d.get("units") is not None:
        data["units"] = d["units"]
    schema.check_keys(data, source, partial=False)
    prof = d.get("profile")
    if prof is not None and not isinstance(prof, str):
        raise TargetError(f"target profile '{source}': profile must be a string or null")
    return _build(data, source, prof)
