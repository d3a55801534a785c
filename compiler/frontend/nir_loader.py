"""NIR graph -> snnc IR ``Network`` (``snnc compile net.nir``; docs/interop.md, "Import").

A NIR graph is already spiking: it bypasses the ANN lowering. ``nir_graph.GraphReader`` finds its
state nodes and the linear chains between them; this module turns them into integers, exactly or
not at all:

- **Neurons.** ``IF`` (gain r*dt), ``LIF`` when it does not leak (tau = inf; r = inf too, the
  r = tau/dt convention of snnTorch and Norse, gives unit gain), ``CubaLIF`` when in addition its
  synapse has no memory at the Euler step dt (tau_syn = dt; gain w_in). Every neuron resets by
  subtracting its threshold (``reset="subtract"``; a zero reset is refused: the IR cannot express it)
  and compares with ``>=`` or with NIR's ``>`` (an integer shift of V0 by -1 makes them equal).
  Both are an explicit choice: read from an snnc export's metadata, else required.
- **Scale.** Per target node, everything it integrates (weights times gains, bias, threshold, V0) is
  multiplied by the smallest 2^k that makes all of it integers (an IF neuron with its state scaled by
  2^k fires the same spikes; a readout's scale becomes 2^-k). No such k: refused, saying how far off.
- **Format.** Integer weights become a mantissa in the target's range times 2^e (e in its exponent
  range), biases must be representable; refused with the numbers otherwise (``compile_nir`` then also
  runs the bound check and the format check of a compiled network).
- **snnc exports** carry the IR's own fields in ``snnc.*`` metadata (names, V0, levels, exponents,
  scalar-or-per-channel shapes): the loader rebuilds the IR from them *after* checking that every
  NIR weight, bias and threshold equals what the metadata says, so an export reads back identical.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snnc.ir import (CODINGS, NEURON_MODELS, Conv2d, Dense, IFSoftReset, Input, IRValidationError, Network,
                     Population, Readout, RateCoding, SumPool2d)
from snnc.ir import nirmeta as M

from ..errors import ModelLoadError
from ..targets import NumericFormat
from .nir_errors import NirImportError
from .nir_graph import Chain, GraphReader, channel_values, kind

log = logging.getLogger(__name__)

RESETS = (M.RESET_SUBTRACT, M.RESET_ZERO)
COMPARES = (M.COMPARE_GE, M.COMPARE_GT)
MAX_SCALE_BITS = 62          # 2^k scales tried per node
MAX_IDENTITY = 4096          # an identity edge into a vector becomes a diagonal Dense: at most this many neurons


@dataclass(frozen=True)
class NirReading:
    """How to read a graph's neurons; None: from an snnc export's metadata, else required (or dt = 1)."""

    reset: str | None = None                     # "subtract" | "zero"
    compare: str | None = None                   # ">=" | ">"
    timesteps: int | None = None
    dt: float | None = None                      # forward-Euler step of IF r, LIF and CubaLIF (graph "dt" else 1)
    input_range: tuple[int, int] | None = None   # integer input bounds of a foreign graph

    def __post_init__(self) -> None:
        if self.reset is not None and self.reset not in RESETS:
            raise NirImportError(f"--nir-reset must be one of {', '.join(RESETS)}, got {self.reset!r}")
        if self.compare is not None and self.compare not in COMPARES:
            raise NirImportError(f"--nir-compare must be ge (>=) or gt (>), got {self.compare!r}")
        if self.timesteps is not None and int(self.timesteps) < 1:
            raise NirImportError(f"--timesteps must be >= 1, got {self.timesteps}")
        if self.dt is not None and not (np.isfinite(self.dt) and self.dt > 0):
            raise NirImportError(f"--nir-dt must be a positive number, got {self.dt}")


@dataclass
class NirImportRecord:
    """What the import decided (stored in the bundle as metadata["nir_import"])."""

    path: str | None
    sha256: str | None
    snnc_export: bool
    reset: str
    compare: str
    dt: float
    timesteps: int
    scale_bits: dict[str, int] = field(default_factory=dict)   # node -> k: its integers are the NIR values * 2^k
    nir_version: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def read_nir(path: str | os.PathLike):
    """``nir.read`` of a file; ModelLoadError when it is missing or not a NIR file."""
    try:
        import nir
    except ImportError:
        raise ModelLoadError("reading NIR files needs the 'nir' package (pip install 'snnc[nir]')") from None
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"NIR file '{p}' does not exist")
    try:
        try:
            return nir.read(str(p))
        except ValueError as e:  # nir's own type check: e.g. a batch dimension in the Input's shape
            log.info("nir's type check of '%s' failed (%s); read without it, snnc checks the shapes itself", p, e)
            return nir.read(str(p), type_check=False)
    except Exception as e:  # h5py/nir raise OSError, KeyError, ValueError, AssertionError on bad files
        raise ModelLoadError(f"'{p}' is not a readable NIR file ({type(e).__name__}: {e})") from None


def file_sha256(path) -> tuple[str, int]:
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


# ---- integers --------------------------------------------------------------------------------

def _is_int(a: np.ndarray) -> bool:
    return bool(np.all(a == np.rint(a)))


def _reach_bits(weights: list[np.ndarray], fmt: NumericFormat) -> int:
    """The largest k for which the weights times 2^k stay within what the target's weights reach
    (mantissa_max * 2^exp_max): beyond it no integer weight fits anyway."""
    top = max((float(np.max(np.abs(w), initial=0)) for w in weights), default=0.0)
    if top == 0:
        return MAX_SCALE_BITS
    return min(MAX_SCALE_BITS, int(np.floor(np.log2(fmt.weight_max * 2.0 ** fmt.weight_exp_max / top))))


def _scale_bits(values: list[np.ndarray], k_max: int = MAX_SCALE_BITS) -> int | None:
    """The smallest k in 0..k_max such that every value * 2^k is an integer (None if there is none)."""
    for k in range(k_max + 1):
        if all(_is_int(np.ldexp(v, k)) for v in values):
            return k
    return None


def _how_far(weights: list[np.ndarray], fmt: NumericFormat) -> str:
    """At the finest power-of-two grid whose integers the target's weights still reach, how far the
    weights are from that grid."""
    w = np.concatenate([np.abs(x).reshape(-1) for x in weights]) if weights else np.zeros(1)
    top = float(w.max(initial=0)) or 1.0
    reach = fmt.weight_max * 2.0 ** fmt.weight_exp_max
    k = int(np.floor(np.log2(reach / top)))
    off = float(np.max(np.abs(np.ldexp(w, k) - np.rint(np.ldexp(w, k))), initial=0))
    return (f"on the finest grid the target reaches (multiples of 2^{-k}) the weights are up to {off:.3g} grid steps "
            f"from it")


def split_mantissa(w_int: np.ndarray, fmt: NumericFormat, where: str) -> tuple[np.ndarray, int]:
    """Integer weights -> (mantissa, e): the smallest e in the target's range with w = m * 2^e exactly and
    m in its mantissa range; NirImportError with the numbers otherwise."""
    w = np.asarray(w_int, np.int64)
    for e in range(fmt.weight_exp_min, fmt.weight_exp_max + 1):
        if np.any(w % (1 << e)):
            break
        m = w >> e
        if m.size == 0 or (m.min() >= fmt.weight_min and m.max() <= fmt.weight_max):
            return m, e
    top = int(np.abs(w).max(initial=0))
    tz = 0
    while tz < 62 and w.size and not np.any(w % (1 << (tz + 1))):
        tz += 1
    need = int(top >> min(tz, fmt.weight_exp_max)).bit_length() + 1
    raise NirImportError(f"{where}: integer weights up to |{top}| need a {need}-bit signed mantissa (with exponent "
                         f"{min(tz, fmt.weight_exp_max)}); the target has {fmt.weight_bits}-bit mantissas "
                         f"({fmt.weight_min}..{fmt.weight_max}) times 2^{fmt.weight_exp_min}..2^{fmt.weight_exp_max}")


def _check_bias(b: np.ndarray, fmt: NumericFormat, where: str) -> None:
    bad = [int(v) for v in np.asarray(b, np.int64).reshape(-1) if fmt.representable_bias(int(v)) != int(v)]
    if bad:
        v = max(bad, key=abs)
        raise NirImportError(f"{where}: bias {v} is not representable on the target (a {fmt.bias_mant_bits}-bit "
                             f"mantissa times 2^0..2^{fmt.bias_exp_max}; nearest {fmt.representable_bias(v)})")


def _ungroup(w: np.ndarray, groups: int) -> np.ndarray:
    O, cg = w.shape[:2]
    og = O // groups
    full = np.zeros((O, cg * groups) + w.shape[2:], w.dtype)
    for g in range(groups):
        full[g * og:(g + 1) * og, g * cg:(g + 1) * cg] = w[g * og:(g + 1) * og]
    return full


def _compact(v: np.ndarray):
    """A per-channel vector whose values are all equal -> a scalar (what the IR stores for one per layer)."""
    v = np.asarray(v)
    return v.reshape(-1)[0] if v.size and np.all(v == v.reshape(-1)[0]) else v


# ---- the loader ------------------------------------------------------------------------------

class _Loader:
    def __init__(self, graph, fmt: NumericFormat, reading: NirReading):
        self.g, self.fmt, self.reading = graph, fmt, reading
        self.meta = dict(graph.metadata or {})
        self.snnc = M.is_snnc_graph(self.meta)
        self.r = GraphReader(graph)
        self.scale_bits: dict[str, int] = {}

    # ---- graph-level choices -----------------------------------------------------------------
    def neuron_meta(self, key: str) -> str | None:
        vals = {M.text(n.metadata[key]) for n in self.r.nodes.values()
                if n.metadata and M.text(n.metadata.get(M.KIND, "")) == "Population" and key in n.metadata}
        return vals.pop() if len(vals) == 1 else None

    def choices(self) -> tuple[str, str, int, float]:
        if self.snnc:
            v = int(self.meta.get(M.G_VERSION, -1))
            if v != M.VERSION:
                raise NirImportError(f"the graph's snnc metadata is version {v}; this snnc reads version {M.VERSION}")
            if not int(self.meta.get(M.G_EXACT, 0)):
                why = "; ".join(M.loads(self.meta.get(M.G_INEXACT, "[]"), M.G_INEXACT))
                raise NirImportError(f"the graph was exported with --inexact ({why}): its NIR nodes are not the "
                                     "network; compile the original model or import the bundle instead")
        neurons = [k for k, role in self.r.states.items() if role == "neuron"]
        reset = self.reading.reset or (self.neuron_meta(M.RESET) if self.snnc else None)
        compare = self.reading.compare or (self.neuron_meta(M.COMPARE) if self.snnc else None)
        if neurons and reset is None:
            raise NirImportError("the NIR graph does not say how its neurons reset (NIR's IF resets to v_reset; "
                                 "Sinabs subtracts the threshold): give --nir-reset subtract or zero")
        if reset == M.RESET_ZERO:
            raise NirImportError(f"--nir-reset zero: neurons {neurons} would reset to v_reset; snnc's IR has only "
                                 "the subtract-threshold reset, so this network cannot be imported exactly")
        if neurons and compare is None:
            raise NirImportError("the NIR graph does not say how its neurons compare (the NIR spec fires at "
                                 "v > threshold, Sinabs at v >= threshold): give --nir-compare gt or ge")
        T = self.reading.timesteps
        meta_T = self.meta.get(M.G_TIMESTEPS) if self.snnc else None
        if T is None:
            T = meta_T
        elif meta_T is not None and int(meta_T) != int(T):
            raise NirImportError(f"this graph was exported for T = {int(meta_T)} steps (its readout offsets follow "
                                 f"T); --timesteps {T} would change it: compile the source model for that T")
        if T is None:
            raise NirImportError("NIR has no number of steps: give --timesteps T")
        dt = self.reading.dt or float(self.meta.get("dt", 1.0))
        return reset or M.RESET_SUBTRACT, compare or M.COMPARE_GE, int(T), dt

    # ---- shapes ------------------------------------------------------------------------------
    def own_shape(self, key: str) -> tuple[int, ...] | None:
        n = self.r.nodes[key]
        t = kind(n)
        if t == "Input":
            return tuple(int(s) for s in np.asarray(n.input_type["input"]).reshape(-1))
        if t == "IF" or t == "LIF" or t == "CubaLIF":
            return tuple(np.asarray(n.v_threshold).shape)
        if t == "I":
            return tuple(np.asarray(n.r).shape)
        return None

    def shapes(self, chains: dict[str, list[Chain]], order: list[str]) -> dict[str, tuple[int, ...]]:
        """Every state node's shape; a leading batch dimension of an Input or neuron shape is dropped
        when its chains say so."""
        shapes: dict[str, tuple[int, ...]] = {}
        outgoing = {k: [c for cs in chains.values() for c in cs if c.source == k] for k in order}
        for key in order:
            own = self.own_shape(key)
            cands = [own] if own is not None else [None]
            if own is not None and len(own) >= 2:
                cands.append(own[1:])
            if key in chains:   # a target: its chains say what it receives
                got = set()
                for c in chains[key]:
                    got.add(self.r.resolve(c, shapes[c.source]))
                if len(got) != 1:
                    raise NirImportError(f"NIR node '{key}' receives shapes {sorted(got)} from its inputs")
                recv = got.pop()
                ok = [s for s in cands if s is None or s == recv or (int(np.prod(s)) == int(np.prod(recv))
                                                                     and len(s) == len(recv) + 1 and s[0] == 1)]
                if not ok:
                    raise NirImportError(f"NIR node '{key}' has shape {own} but receives {recv}")
                shapes[key] = recv
            else:               # an input: the shape its chains can read
                last = None
                for s in cands:
                    try:
                        for c in outgoing[key]:
                            self.r.resolve(c, s)
                        shapes[key] = s
                        break
                    except NirImportError as e:
                        last = e
                if key not in shapes:
                    raise last or NirImportError(f"NIR input '{key}' has no shape")
        return shapes

    # ---- per target ---------------------------------------------------------------------------
    def gain_threshold(self, key: str, shape, dt: float) -> tuple[np.ndarray, np.ndarray | None, str]:
        """(input gain per channel, threshold per channel or None, what it is)."""
        n, t = self.r.nodes[key], kind(self.r.nodes[key])
        per = lambda v, what: channel_values(np.asarray(v, np.float64).reshape(shape) if np.asarray(v).size ==  # noqa: E731
                                           int(np.prod(shape)) else v, shape, what, key)
        if t in ("Output",):
            return np.ones(1), None, "readout"
        if t == "I":
            return per(np.asarray(n.r, np.float64) * dt, "r"), None, "readout"
        if t in ("LIF", "CubaLIF"):
            tau = np.asarray(n.tau if t == "LIF" else n.tau_mem, np.float64)
            r = np.asarray(n.r, np.float64)
            if not np.all(np.isinf(tau)):
                raise NirImportError(f"NIR node '{key}': {t} leaks (tau = {np.nanmin(tau):g} finite: v decays by "
                                     f"1 - dt/tau per step); snnc's IR has no leak")
            if not np.all(np.isinf(r)):
                raise NirImportError(f"NIR node '{key}': {t} with tau = inf and finite r has input gain r*dt/tau = 0")
            gain = np.ones(shape)
            if t == "CubaLIF":
                ts = np.asarray(n.tau_syn, np.float64)
                if not np.all(ts == dt):
                    raise NirImportError(f"NIR node '{key}': CubaLIF's synaptic current keeps {1 - dt / ts.max():g} of "
                                         f"itself per step (tau_syn = {ts.max():g}, dt = {dt:g}); only a synapse "
                                         "without memory (tau_syn = dt) is exact in snnc")
                gain = np.broadcast_to(np.asarray(n.w_in, np.float64), shape)
        else:  # IF
            gain = np.asarray(n.r, np.float64) * dt
        vr = np.asarray(n.v_reset, np.float64)
        if np.any(vr != 0):
            raise NirImportError(f"NIR node '{key}': v_reset = {vr.reshape(-1)[np.argmax(vr.reshape(-1) != 0)]:g}; "
                                 "a subtract-threshold reset has no reset potential (only v_reset = 0 is imported)")
        thr = per(n.v_threshold, "v_threshold")
        if not np.all(np.isfinite(thr)) or np.any(thr <= 0):
            raise NirImportError(f"NIR node '{key}': thresholds must be finite and > 0")
        return per(gain, "the input gain"), thr, "neuron"

    def integerize(self, key: str, chains: list[Chain], shape, dt: float, compare: str):
        """The target's integers: (per-chain integer maps, bias, threshold, v0, k)."""
        gain, thr, role = self.gain_threshold(key, shape, dt)
        C = shape[0]
        g_ch = np.broadcast_to(gain, (C,)) if gain.size in (1, C) else gain
        maps, bias, reals = [], np.zeros(C), []
        for c in chains:
            go = np.broadcast_to(np.asarray(c.gain_out, np.float64), (C,)) * g_ch
            if c.weight is not None:
                w = c.weight * c.gain_in
                w = w * go.reshape((-1,) + (1,) * (w.ndim - 1))
            elif c.map_key is not None:   # pool: one factor
                if np.any(go != go[0]):
                    raise NirImportError(f"NIR node '{c.map_key}': a pool into '{key}' with a gain that varies by "
                                         "channel; snnc's sum-pool projection has one weight")
                w = np.array(c.factor * c.gain_in * go[0])
            else:                         # identity edge
                w = go * c.gain_in
            maps.append(w)
            if c.bias is not None:
                bias = bias + np.broadcast_to(c.bias, (C,)) * go
            reals.append(w)
        v0 = np.zeros(C)
        if self.snnc and role == "neuron":
            v0 = np.broadcast_to(np.asarray(self.r.nodes[key].metadata[M.V0], np.float64), (C,))
        elif self.snnc and role == "readout":
            v0 = np.broadcast_to(np.asarray(self.r.nodes[key].metadata[M.V0], np.float64), (C,))
        values = maps + [bias, v0] + ([thr] if thr is not None else [])
        bad = [float(np.max(np.abs(v))) for v in values if not np.all(np.isfinite(v))]
        if bad:
            raise NirImportError(f"NIR node '{key}': its inputs have NaN or Inf weights")
        k = _scale_bits(values, _reach_bits(reals, self.fmt))
        if k is None:
            raise NirImportError(f"the inputs of NIR node '{key}' are not integers nor integer mantissas times a power of "
                                 f"two: {_how_far(reals, self.fmt)}; snnc needs integers or an "
                                 f"{self.fmt.weight_bits}-bit mantissa with a power-of-two scale")
        self.scale_bits[key] = k
        ints = [np.rint(np.ldexp(v, k)).astype(np.int64) for v in maps]
        b, v0i = np.rint(np.ldexp(bias, k)).astype(np.int64), np.rint(np.ldexp(v0, k)).astype(np.int64)
        th = None if thr is None else np.rint(np.ldexp(thr, k)).astype(np.int64)
        if th is not None and compare == M.COMPARE_GT:
            v0i = v0i - 1           # v > theta <=> (v - 1) >= theta for integer v: the same neuron started 1 lower
        return ints, b, th, v0i, k

    # ---- projections ---------------------------------------------------------------------------
    def projection(self, c: Chain, w_int: np.ndarray, name: str, src: str, dst: str, dst_shape) -> object:
        where = f"NIR node '{c.map_key or c.target}' (projection '{name}')"
        if self.snnc and c.map_key is not None:
            return self.snnc_projection(c, w_int, where, src, dst)
        if c.weight is not None and c.weight.ndim == 2:
            m, e = split_mantissa(w_int, self.fmt, where)
            return Dense(name, src, dst, m, e, c.in_shape, dst_shape)
        if c.weight is not None:
            m, e = split_mantissa(w_int, self.fmt, where)
            gm = c.geometry
            return Conv2d(name, src, dst, m, e, c.in_shape, dst_shape, stride=gm["stride"], padding=gm["padding"],
                          dilation=gm["dilation"], groups=gm["groups"])
        if c.map_key is not None:
            m, e = split_mantissa(np.asarray(w_int).reshape(()), self.fmt, where)
            gm = c.geometry
            return SumPool2d(name, src, dst, m, e, c.in_shape, dst_shape, kernel=gm["kernel"], stride=gm["stride"],
                             padding=gm["padding"])
        # identity edge
        if tuple(c.in_shape) == tuple(dst_shape) and len(dst_shape) == 3:
            m, e = split_mantissa(w_int.reshape(-1, 1, 1, 1), self.fmt, where)
            return Conv2d(name, src, dst, m, e, c.in_shape, dst_shape, groups=dst_shape[0])
        n = int(np.prod(dst_shape))
        if n != int(np.prod(c.in_shape)) or len(dst_shape) != 1 or n > MAX_IDENTITY:
            raise NirImportError(f"{where}: an identity edge from shape {c.in_shape} into {dst_shape} (snnc makes "
                                 f"identity edges into vectors of at most {MAX_IDENTITY} neurons or same-shape maps)")
        m, e = split_mantissa(np.diag(np.broadcast_to(w_int, (n,))), self.fmt, where)
        return Dense(name, src, dst, m, e, c.in_shape, dst_shape)

    def snnc_projection(self, c: Chain, w_int: np.ndarray, where: str, src: str, dst: str):
        """Rebuild an exported projection from its metadata, after checking the NIR map equals it."""
        md = self.r.nodes[c.map_key].metadata
        fields = M.loads(md[M.FIELDS], f"{c.map_key}.{M.FIELDS}")
        kind_ = M.text(md[M.KIND])
        mant = np.asarray(md[M.MANTISSA], np.int64)
        e = int(np.asarray(md[M.EXPONENT]))
        full = mant << e
        if kind_ == "Dense":
            expect = full
        elif kind_ == "Conv2d":
            expect = _ungroup(full, int(fields["groups"])) if int(fields["groups"]) > 1 and w_int.ndim == 4 else full
        elif kind_ == "SumPool2d":
            C = int(fields["in_shape"][0])
            expect = full if np.ndim(w_int) == 0 else _ungroup(np.full((C, 1) + tuple(fields["kernel"]), int(full)), C)
        else:
            raise NirImportError(f"{where}: snnc.kind {kind_!r} is not a projection")
        if np.shape(expect) != np.shape(w_int) or np.any(expect != w_int):
            n = int(np.count_nonzero(np.asarray(expect) != w_int)) if np.shape(expect) == np.shape(w_int) else "all"
            raise NirImportError(f"{where}: the NIR weights differ from snnc.weight_mantissa * 2^snnc.exponent at {n} "
                                 "entries: the file was edited after export (remove its snnc.* metadata to import it "
                                 "as a foreign graph)")
        cls = {"Dense": Dense, "Conv2d": Conv2d, "SumPool2d": SumPool2d}[kind_]
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()}
        kw.update(source=src, target=dst, weight=mant.reshape(()) if kind_ == "SumPool2d" else mant)
        return cls(**kw)

    # ---- nodes ---------------------------------------------------------------------------------
    def snnc_fields(self, key: str) -> dict:
        md = self.r.nodes[key].metadata
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in M.loads(md[M.FIELDS], f"{key}.{M.FIELDS}").items()}

    def check_equal(self, key: str, what: str, got: np.ndarray, meta_value, shape) -> np.ndarray:
        want = np.asarray(meta_value, np.int64)
        full = np.broadcast_to(want if want.ndim == 0 else want.reshape((shape[0],) + (1,) * (len(shape) - 1)), shape)
        if np.any(np.broadcast_to(got.reshape((shape[0],) + (1,) * (len(shape) - 1)), shape) != full):
            raise NirImportError(f"NIR node '{key}': its {what} differs from snnc.{what} in its metadata: the file was "
                                 "edited after export (remove its snnc.* metadata to import it as a foreign graph)")
        return want

    def population(self, key: str, shape, b, th, v0, T: int) -> Population:
        if self.snnc:
            md = self.r.nodes[key].metadata
            f = self.snnc_fields(key)
            nj = M.loads(md[M.NEURON], f"{key}.{M.NEURON}")
            ncls = NEURON_MODELS.get(nj.get("type"))
            if ncls is not IFSoftReset:
                raise NirImportError(f"NIR node '{key}': snnc.neuron {nj.get('type')!r} is not exported exactly")
            return Population(f["name"], tuple(f["shape"]), neuron=IFSoftReset(),
                              threshold=self.check_equal(key, "threshold", th, md[M.THRESHOLD], shape),
                              v0=np.asarray(md[M.V0], np.int64), bias=self.check_equal(key, "bias", b, md[M.BIAS], shape),
                              levels=f["levels"], real_threshold=np.asarray(md[M.REAL_THRESHOLD], np.float64),
                              timesteps=f.get("timesteps"))
        thr_real = channel_values(np.asarray(self.r.nodes[key].v_threshold, np.float64).reshape(shape), shape,
                                "v_threshold", key)
        return Population(key, shape, neuron=IFSoftReset(), threshold=_compact(th), v0=_compact(v0), bias=_compact(b),
                          levels=T, real_threshold=_compact(thr_real))

    def readout(self, key: str, shape, b, v0, k: int) -> Readout:
        if self.snnc:
            md = self.r.nodes[key].metadata
            f = self.snnc_fields(key)
            self.check_equal(key, "v0", v0, md[M.V0], shape)
            return Readout(f["name"], tuple(f["shape"]), v0=np.asarray(md[M.V0], np.int64),
                           bias=self.check_equal(key, "bias", b, md[M.BIAS], shape), scale=f["scale"])
        return Readout(key, shape, v0=_compact(v0), bias=_compact(b), scale=2.0 ** -k)

    def input_node(self, key: str, shape) -> Input:
        if self.snnc:
            f = self.snnc_fields(key)
            return Input(**f)
        bits = self.fmt.input_bits
        lo, hi = self.reading.input_range or (0, 2**bits - 1)
        if int(lo) != lo or int(hi) != hi or not (-(2 ** (bits - 1)) <= lo < hi <= 2**bits - 1):
            raise NirImportError(f"--input-range {lo},{hi}: a NIR graph's input is integers; give integer bounds within "
                                 f"the target's {bits}-bit input")
        return Input(key, shape, scale=1.0, qmin=int(lo), qmax=int(hi))

    # ---- all -----------------------------------------------------------------------------------
    def load(self) -> tuple[Network, tuple[str, str, int, float]]:
        reset, compare, T, dt = self.choices()
        targets = [k for k, role in self.r.states.items() if role in ("neuron", "readout")]
        chains = {k: self.r.chains_into(k) for k in targets}
        for k in targets:
            if not chains[k]:
                raise NirImportError(f"NIR node '{k}' receives nothing")
        order = _state_order([k for k, r in self.r.states.items() if r != "output"], chains)
        shapes = self.shapes(chains, order)
        nodes, projs, names = {}, [], {}
        for key in order:
            role = self.r.states[key]
            shape = shapes[key]
            if role == "input":
                nodes[key] = self.input_node(key, shape)
                names[key] = nodes[key].name
                continue
            ints, b, th, v0, k = self.integerize(key, chains[key], shape, dt, compare)
            _check_bias(b, self.fmt, f"NIR node '{key}'")
            nodes[key] = self.population(key, shape, b, th, v0, T) if role == "neuron" else \
                self.readout(key, shape, b, v0, k)
            names[key] = nodes[key].name
            seen: dict[str, int] = {}
            for c, w in zip(chains[key], ints):
                base = f"{names[c.source]}->{names[key]}"
                seen[base] = seen.get(base, 0) + 1
                pname = base if seen[base] == 1 else f"{base}#{seen[base]}"
                projs.append(self.projection(c, w, pname, names[c.source], names[key], shape))
        node_list, proj_list, coding = list(nodes.values()), projs, RateCoding()
        if self.snnc:
            od = M.loads(self.meta[M.G_ORDER], M.G_ORDER)
            by_n, by_p = {n.name: n for n in node_list}, {p.name: p for p in proj_list}
            if sorted(by_n) != sorted(od["nodes"]) or sorted(by_p) != sorted(od["projections"]):
                raise NirImportError("the graph's nodes differ from its snnc.order metadata: the file was edited after "
                                     "export (remove its snnc.* metadata to import it as a foreign graph)")
            node_list, proj_list = [by_n[n] for n in od["nodes"]], [by_p[p] for p in od["projections"]]
            cj = M.loads(self.meta[M.G_CODING], M.G_CODING)
            coding = CODINGS[cj["type"]](**cj["fields"])
        try:
            net = Network(node_list, proj_list, T, {}, coding)
        except IRValidationError as e:
            raise NirImportError(f"the imported network is not valid: {e}") from None
        return net, (reset, compare, T, dt)


def _state_order(keys: list[str], chains: dict[str, list[Chain]]) -> list[str]:
    deps = {k: {c.source for c in chains.get(k, [])} for k in keys}
    order, done = [], set()
    while len(order) < len(keys):
        ready = [k for k in keys if k not in done and deps[k] <= done]
        if not ready:
            raise NirImportError(f"the NIR graph has a cycle through {sorted(set(keys) - done)} (recurrence is not "
                                 "imported)")
        for k in ready:
            order.append(k)
            done.add(k)
    return order


def load_nir(graph, fmt: NumericFormat, reading: NirReading | None = None,
             path: str | os.PathLike | None = None) -> tuple[Network, NirImportRecord]:
    """A ``nir.NIRGraph`` as an IR network with the exact integer semantics, and what was decided.

    The network carries no metadata yet when the graph is foreign; an snnc export's network gets its
    bundle metadata back (``compile_nir`` adds the import record and, for foreign graphs, the rest)."""
    reading = reading or NirReading()
    ld = _Loader(graph, fmt, reading)
    net, (reset, compare, T, dt) = ld.load()
    sha, _ = file_sha256(path) if path is not None else (None, 0)
    try:
        import nir

        version = getattr(nir, "__version__", None)
    except ImportError:  # pragma: no cover - a graph object implies nir
        version = None
    rec = NirImportRecord(None if path is None else str(path), sha, ld.snnc, reset, compare, dt, T,
                          {k: v for k, v in ld.scale_bits.items() if v}, version)
    if ld.snnc:
        net.metadata = M.loads(ld.meta[M.G_METADATA], M.G_METADATA)
    log.info("imported NIR graph: %d nodes, %d projections (%s)", len(net.nodes), len(net.projections),
             "snnc export" if ld.snnc else "foreign graph")
    return net, rec
