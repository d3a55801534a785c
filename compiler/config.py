"""Build configuration: a serializable dataclass with str-Enum options. The CLI only fills it in."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

from snnc.ir import Schedule
from snnc.ir.limits import DEFAULT_LIMITS

from .errors import ConfigError, SnncError


class NeuronKind(str, Enum):
    IF = "if"                          # integrate-and-fire with soft reset (papers 000 "SNN-alpha", 003)
    DUAL_THRESHOLD = "dual-threshold"  # paper 000's dual-threshold neuron ("SNN-beta")
    MULTI_THRESHOLD = "multi-threshold"  # paper 004's multi-threshold neuron (plain ReLU nets; mt_n thresholds)


def parse_neuron_spec(text: str) -> tuple[NeuronKind, int | None]:
    """'if' | 'dual-threshold' | 'multi-threshold[:N]' -> (kind, N); N is None except for
    multi-threshold (default 4, as ``snnc compile``)."""
    kind, sep, n = str(text).strip().partition(":")
    try:
        k = NeuronKind(kind)
    except ValueError:
        raise SnncError(f"neuron '{text}' not understood; supported: if, dual-threshold, multi-threshold:N") from None
    if k is not NeuronKind.MULTI_THRESHOLD:
        if sep:
            raise SnncError(f"neuron '{text}': only multi-threshold takes a size (multi-threshold:N)")
        return k, None
    try:
        N = int(n) if sep else 4
    except ValueError:
        raise SnncError(f"neuron '{text}': N in multi-threshold:N must be an integer") from None
    if not 1 <= N <= 16:
        raise SnncError(f"neuron '{text}': N in multi-threshold:N must be in 1..16")
    return k, N


class CodingKind(str, Enum):
    RATE = "rate"                  # the average of what a layer sent (every neuron model)
    DIFFERENTIAL = "differential"  # paper 004's differential coding (multi-threshold neurons only)


class ThresholdScope(str, Enum):
    """Calibrated thresholds of a plain ReLU net (paper 004): one per output channel, or one per layer."""

    CHANNEL = "channel"  # paper 004 Algorithm 1 per channel (messages of channel c are worth theta_c / 2^(n-1))
    LAYER = "layer"      # one theta for the whole tensor


class V0Mode(str, Enum):
    """Initial membrane potential (docs/conversion.md, "V0 modes")."""

    AUTO = "auto"  # paper 003's quantization-voltage match: floor -> 0, round -> theta/2, ceil -> theta
    ZERO = "zero"  # V0 = 0        (matches floor)
    HALF = "half"  # V0 = theta/2  (matches round; paper 000's choice)
    FULL = "full"  # V0 = theta    (matches ceil; integer form Theta - 1 with v >= Theta)


@dataclass
class CompileConfig:
    target: str = "loihi"
    timesteps: int | None = None            # None: T = L (the model's quantization levels)
    schedule: Schedule = Schedule.LAYERWISE  # default schedule for simulate/verify
    neuron: NeuronKind = NeuronKind.IF
    v0: V0Mode = V0Mode.AUTO
    neg_divisor: int = 1000                 # dual threshold: theta' = -theta / neg_divisor (paper 000: theta' = -1e-3 absolute; docs/ir.md)
    input_range: tuple[float, float] | None = None  # None: the model's own input quantizer if it has one, else (0, 1)
    embed_model_max_bytes: int = 32 * 2**20
    chips: int | None = None                # bound on chips (default: as many as the network needs)
    system: str | None = None               # a known system of the target ([systems]): bounds the chips
    profile: str | None = None              # a user's .toml laid over the target's profile
    calibration_data: str | None = None     # .npz whose firing rates weight the chip placement
    calibration_samples: int = 32
    thresholds: str = "iterate"             # plain ReLU nets: max | percentile:<q> | iterate (paper 004)
    threshold_scale: float = 1.0            # paper 004's c: thresholds times c
    threshold_scope: ThresholdScope = ThresholdScope.CHANNEL  # plain ReLU nets: per channel or per layer
    mt_n: int = 4                           # multi-threshold neurons: thresholds per sign
    coding: CodingKind = CodingKind.RATE
    frac_bits: int | str = "auto"           # differential coding: fixed-point bits F of 1/t (0..30), or "auto"
                                            # (balance F against weight bits in the state width) / "auto:k"
                                            # (largest F keeping weights >= k bits); see frac_bits_auto
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.schedule = Schedule(self.schedule)
        self.neuron = NeuronKind(self.neuron)
        self.v0 = V0Mode(self.v0)
        if self.input_range is not None:
            lo, hi = (float(v) for v in self.input_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError("input_range", f"must be two finite numbers lo < hi, got {self.input_range}")
            self.input_range = (lo, hi)
        if self.timesteps is not None:
            if int(self.timesteps) < 1:
                raise ConfigError("timesteps", f"must be >= 1, got {self.timesteps}")
            if int(self.timesteps) > DEFAULT_LIMITS.max_timesteps:
                raise ConfigError("timesteps", f"must be <= {DEFAULT_LIMITS.max_timesteps} (snnc.ir.limits: the "
                                  f"simulation runs T steps), got {self.timesteps}")
            self.timesteps = int(self.timesteps)
        if int(self.neg_divisor) < 1:
            raise ConfigError("neg_divisor", f"must be >= 1, got {self.neg_divisor}")
        self.neg_divisor = int(self.neg_divisor)
        if self.chips is not None:
            if isinstance(self.chips, bool) or int(self.chips) < 1:
                raise ConfigError("chips", f"must be >= 1, got {self.chips}")
            self.chips = int(self.chips)
        for name in ("system", "profile", "calibration_data"):
            v = getattr(self, name)
            if v is not None:
                if not str(v):
                    raise ConfigError(name, "must be a non-empty string")
                setattr(self, name, str(v))
        if int(self.calibration_samples) < 1:
            raise ConfigError("calibration_samples", f"must be >= 1, got {self.calibration_samples}")
        self.calibration_samples = int(self.calibration_samples)
        self.coding = CodingKind(self.coding)
        self.threshold_scope = ThresholdScope(self.threshold_scope)
        if not 1 <= int(self.mt_n) <= 16:
            raise ConfigError("mt_n", f"(multi-threshold thresholds per sign) must be in 1..16, got {self.mt_n}")
        self.mt_n = int(self.mt_n)
        self.frac_bits = _parse_frac_bits(self.frac_bits)
        if not (math.isfinite(float(self.threshold_scale)) and float(self.threshold_scale) > 0):
            raise ConfigError("threshold_scale", f"must be a finite number > 0, got {self.threshold_scale}")
        self.threshold_scale = float(self.threshold_scale)
        if self.coding is CodingKind.DIFFERENTIAL and self.neuron is not NeuronKind.MULTI_THRESHOLD:
            raise ValueError("differential coding needs --neuron multi-threshold:N (paper 004)")

    def neuron_model(self):
        """The IR neuron model this configuration asks for."""
        from snnc.ir import DualThreshold, IFSoftReset, MultiThreshold

        if self.neuron is NeuronKind.DUAL_THRESHOLD:
            return DualThreshold(neg_divisor=self.neg_divisor)
        if self.neuron is NeuronKind.MULTI_THRESHOLD:
            return MultiThreshold(n=self.mt_n, relu=True)
        return IFSoftReset()

    @property
    def frac_bits_auto(self) -> tuple[bool, int | None]:
        """(is F chosen at compile time, the weight-bit floor k of "auto:k" or None for "auto")."""
        if isinstance(self.frac_bits, str):
            k = self.frac_bits.partition(":")[2]
            return True, (int(k) if k else None)
        return False, None

    def coding_model(self, frac_bits: int | None = None):
        """The IR network coding this configuration asks for; ``frac_bits`` overrides F (how the
        compiler passes the F it chose for ``frac_bits = "auto"``)."""
        from snnc.ir import DifferentialCoding, RateCoding

        if self.coding is CodingKind.DIFFERENTIAL:
            if frac_bits is None and self.frac_bits_auto[0]:
                raise ValueError(f"frac_bits={self.frac_bits!r} is chosen when compiling "
                                 "(snnc.compiler.integerize.choose_frac_bits); pass the chosen F")
            return DifferentialCoding(frac_bits=int(self.frac_bits if frac_bits is None else frac_bits))
        return RateCoding()

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Enum):
                d[k] = v.value
        d["input_range"] = None if self.input_range is None else list(self.input_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CompileConfig":
        d = dict(d)
        r = d.get("input_range", (0.0, 1.0))  # bundles from before the field could be None
        d["input_range"] = None if r is None else tuple(r)
        return cls(**d)


def _parse_frac_bits(v) -> int | str:
    """An int in 0..30, or "auto" / "auto:k" (k = 2..32 weight bits) for F chosen at compile time."""
    if isinstance(v, str) and not v.strip().lstrip("-").isdigit():
        s = v.strip().lower()
        head, sep, k = s.partition(":")
        if head == "auto" and (not sep or (k.isdigit() and 2 <= int(k) <= 32)):
            return "auto" if not sep else f"auto:{int(k)}"
        raise ConfigError("frac_bits", f"must be an int in 0..30, 'auto' or 'auto:k' (k = 2..32 weight bits), got {v!r}")
    if isinstance(v, bool) or not 0 <= int(v) <= 30:
        raise ConfigError("frac_bits", f"must be in 0..30, got {v}")
    return int(v)
