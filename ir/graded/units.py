"""The graded units of transformers (paper 004 Theorems 4.2 and 4.3): what each unit *is*, validated
on construction. What it computes is ``functions.py`` (integers only), how it steps over the T steps
is ``dynamics.py``; docs/ir.md ("Graded units") states both.

Every unit here reads one or two **ports**. A port holds one running value per element, ``m``, in
units of 2^-G times the port's scale (G = ``frac_bits``; the real value a unit of m stands for is
``in_scale`` 2^-G, or ``a_scale`` / ``b_scale`` for the two ports of ``GradedMatMul``); ``offset``
(``a_offset`` / ``b_offset``) is the bias of the linear layer before it (paper 004 Theorem 4.5: a bias
is an initial value), already in those units. Each step the unit computes its integer function
y = F_int(m) (units of 2^-G ``out_scale``) and sends the increment of y (docs/ir.md).

* ``GradedElementwise``: GELU / SiLU (``function``) as a piecewise-linear table over the port's
  provably reachable range.
* ``GradedLayerNorm``: LayerNorm over one axis (a token's features) with integer gamma and beta.
* ``GradedSoftmax``: softmax over one axis with an integer exp table and a rounded division.
* ``GradedMatMul``: the product of two ports (Q K^T, attention V), with a rounding shift.

The real scales (``in_scale``, ``out_scale``, ...) are for reports and comparisons with the float
model only; the integers alone define the unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import IRValidationError
from ..nodes import GradedUnit, register_node_type
from ..validation import as_int_array, check_shape

MAX_FRAC_BITS = 30
LIMIT = 1 << 62   # every intermediate of a unit's integer function stays below this in magnitude


def _int_field(node: str, name: str, v, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or int(v) != v or v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise IRValidationError(node, f"{name} must be an int {rng}, got {v!r}")
    return int(v)


def _scale(node: str, name: str, v) -> float:
    v = float(v)
    if not (np.isfinite(v) and v > 0):
        raise IRValidationError(node, f"{name} must be finite and > 0, got {v}")
    return v


def _offset(node: str, name: str, v, shape: tuple[int, ...]) -> np.ndarray:
    """A port's offset: a scalar, one value per channel (axis 0) or one per element."""
    return as_int_array(node, name, v, {(), (shape[0],), tuple(shape)})


def _table(node: str, name: str, v) -> np.ndarray:
    t = as_int_array(node, name, v, None)
    if t.ndim != 1 or t.size < 2:
        raise IRValidationError(node, f"{name} must be a 1-D table of at least 2 knots, got shape {t.shape}")
    return t


@dataclass
class GradedFunctionUnit(GradedUnit):
    """Base of the units of this module: their ports (``PORTS``), the fixed-point format G
    (``frac_bits``; in differential coding the network's F) and the output's real scale."""

    PORTS: ClassVar[tuple[str, ...]] = ("a",)

    def port_of(self, projection_name: str) -> str:
        """The port a projection into this unit feeds (one-port units: "a")."""
        return "a"

    def port_shape(self, port: str) -> tuple[int, ...]:
        return self.shape

    def port_offset(self, port: str) -> np.ndarray:
        return self.offset

    def port_scale(self, port: str) -> float:
        return self.in_scale

    def input_shape(self, projection) -> tuple[int, ...]:
        return self.port_shape(self.port_of(projection.name))

    def check_wiring(self, net) -> None:
        if not net.incoming(self.name):
            raise IRValidationError(self.name, "a graded unit needs at least one incoming projection")
        coding_f = getattr(net.coding, "frac_bits", None)
        if coding_f is not None and coding_f != self.frac_bits:
            raise IRValidationError(self.name, f"frac_bits G = {self.frac_bits} differs from the network's differential "
                                    f"coding F = {coding_f}: in differential coding a unit's values are in units of 2^-F")


def _common(u) -> None:
    u.frac_bits = _int_field(u.name, "frac_bits", u.frac_bits, 0, MAX_FRAC_BITS)
    u.out_scale = _scale(u.name, "out_scale", u.out_scale)


@dataclass
class GradedElementwise(GradedFunctionUnit):
    """y = F_int(m) elementwise, F_int the piecewise-linear interpolation of ``table`` with knots at
    m = lo + j 2^shift, j = 0..K (docs/ir.md). The table covers the port's provably reachable range
    (the compiler builds it from the state bound): a value outside it is refused at run time.
    ``function`` names the float function the table was built from ("gelu", "silu")."""

    function: str = "gelu"
    table: np.ndarray = field(default_factory=lambda: np.array([0, 0]))
    lo: int = 0
    shift: int = 0
    offset: np.ndarray = field(default_factory=lambda: np.array(0))
    frac_bits: int = 0
    in_scale: float = 1.0
    out_scale: float = 1.0

    FUNCTIONS: ClassVar[tuple[str, ...]] = ("gelu", "silu")

    def __post_init__(self) -> None:
        super().__post_init__()
        _common(self)
        if self.function not in self.FUNCTIONS:
            raise IRValidationError(self.name, f"function must be one of {self.FUNCTIONS}, got {self.function!r}")
        self.table = _table(self.name, "table", self.table)
        self.lo = int(self.lo)
        self.shift = _int_field(self.name, "shift", self.shift, 0, 40)
        self.offset = _offset(self.name, "offset", self.offset, self.shape)
        self.in_scale = _scale(self.name, "in_scale", self.in_scale)
        if int(np.abs(np.diff(self.table)).max()) << self.shift >= LIMIT:
            raise IRValidationError(self.name, "table steps times 2^shift reach 2^62 (the interpolation's product)")

    @property
    def hi(self) -> int:
        """The last knot: the table covers lo <= m <= hi."""
        return self.lo + (len(self.table) - 1) * (1 << self.shift)


@dataclass
class GradedLayerNorm(GradedFunctionUnit):
    """LayerNorm over ``axis`` of the unit's shape (a token's features), in integers (docs/ir.md):
    centred values c = D m - sum m (exact), a data-dependent right shift keeping ``norm_bits`` bits of
    them, the sum of their squares plus ``eps`` (= D^3 eps / q^2, q the real value of one unit of m,
    shifted alike), an exact integer square root with ``sqrt_bits`` extra bits r, then
    y = round(gamma c 2^P / r) + beta (gamma already holds sqrt(D))."""

    axis: int = 0
    gamma: np.ndarray = field(default_factory=lambda: np.array([1]))
    beta: np.ndarray = field(default_factory=lambda: np.array([0]))
    eps: int = 0
    norm_bits: int = 24
    sqrt_bits: int = 0
    offset: np.ndarray = field(default_factory=lambda: np.array(0))
    frac_bits: int = 0
    in_scale: float = 1.0
    out_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _common(self)
        self.axis = _int_field(self.name, "axis", self.axis, 0, len(self.shape) - 1)
        D = self.shape[self.axis]
        self.gamma = as_int_array(self.name, "gamma", self.gamma, {(D,)})
        self.beta = as_int_array(self.name, "beta", self.beta, {(D,)})
        self.eps = _int_field(self.name, "eps", self.eps, 0)
        self.norm_bits = _int_field(self.name, "norm_bits", self.norm_bits, 1, 30)
        self.sqrt_bits = _int_field(self.name, "sqrt_bits", self.sqrt_bits, 0, 30)
        self.offset = _offset(self.name, "offset", self.offset, self.shape)
        self.in_scale = _scale(self.name, "in_scale", self.in_scale)
        A, P = self.norm_bits, self.sqrt_bits
        if ((D << (2 * A)) + self.eps) << (2 * P) >= LIMIT:
            raise IRValidationError(self.name, f"D 4^norm_bits + eps, times 4^sqrt_bits, reaches 2^62 (D = {D}, "
                                    f"norm_bits = {A}, eps = {self.eps}, sqrt_bits = {P})")
        if int(np.abs(self.gamma).max(initial=0)) << (A + P + 1) >= LIMIT:
            raise IRValidationError(self.name, "2 |gamma| 2^(norm_bits + sqrt_bits) reaches 2^62")

    @property
    def max_centred(self) -> int:
        """|c'| < 2^norm_bits after the data-dependent shift."""
        return 1 << self.norm_bits


@dataclass
class GradedSoftmax(GradedFunctionUnit):
    """Softmax over ``axis``, in integers (docs/ir.md): z = m - max over the axis (z <= 0); e =
    the interpolated exp ``table`` at z (knots lo + j 2^shift, table[K] = 2^exp_bits at z = 0; e = 0
    below lo, where exp rounds to 0 at exp_bits bits); y = round(e * out_one / sum e)."""

    axis: int = 0
    table: np.ndarray = field(default_factory=lambda: np.array([0, 1]))
    lo: int = -1
    shift: int = 0
    exp_bits: int = 0
    out_one: int = 1
    offset: np.ndarray = field(default_factory=lambda: np.array(0))
    frac_bits: int = 0
    in_scale: float = 1.0
    out_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _common(self)
        self.axis = _int_field(self.name, "axis", self.axis, 0, len(self.shape) - 1)
        self.table = _table(self.name, "table", self.table)
        self.shift = _int_field(self.name, "shift", self.shift, 0, 40)
        self.lo = int(self.lo)
        self.exp_bits = _int_field(self.name, "exp_bits", self.exp_bits, 0, 30)
        self.out_one = _int_field(self.name, "out_one", self.out_one, 1)
        if self.lo + (len(self.table) - 1) * (1 << self.shift) != 0:
            raise IRValidationError(self.name, "the exp table's last knot must be z = 0 (lo + K 2^shift = 0)")
        if int(self.table[-1]) != 1 << self.exp_bits or np.any(self.table < 0) or np.any(np.diff(self.table) < 0):
            raise IRValidationError(self.name, f"the exp table must be non-negative, non-decreasing and end at "
                                    f"2^exp_bits = {1 << self.exp_bits}")
        if self.out_one << (self.exp_bits + 1) >= LIMIT:
            raise IRValidationError(self.name, "2 out_one 2^exp_bits reaches 2^62")
        self.offset = _offset(self.name, "offset", self.offset, self.shape)
        self.in_scale = _scale(self.name, "in_scale", self.in_scale)


@dataclass
class GradedMatMul(GradedFunctionUnit):
    """The product of two ports (paper 004 Theorem 4.3): A = m_A gathered by ``a_index`` into
    ``a_view``, B likewise, P = A @ B (numpy matmul over the trailing two axes, batch axes
    broadcast), y = round(P / 2^shift) gathered by ``out_index`` into ``shape``. Port A reads the
    projections named in ``a_inputs``, port B every other incoming projection."""

    a_shape: tuple[int, ...] = (1,)
    b_shape: tuple[int, ...] = (1,)
    a_view: tuple[int, ...] = (1, 1)
    b_view: tuple[int, ...] = (1, 1)
    a_index: np.ndarray = field(default_factory=lambda: np.array([0]))
    b_index: np.ndarray = field(default_factory=lambda: np.array([0]))
    out_index: np.ndarray = field(default_factory=lambda: np.array([0]))
    a_inputs: tuple[str, ...] = ()
    shift: int = 0
    a_offset: np.ndarray = field(default_factory=lambda: np.array(0))
    b_offset: np.ndarray = field(default_factory=lambda: np.array(0))
    frac_bits: int = 0
    a_scale: float = 1.0
    b_scale: float = 1.0
    out_scale: float = 1.0

    PORTS: ClassVar[tuple[str, ...]] = ("a", "b")

    def __post_init__(self) -> None:
        super().__post_init__()
        _common(self)
        n = self.name
        self.a_shape, self.b_shape = check_shape(n, self.a_shape), check_shape(n, self.b_shape)
        self.a_view, self.b_view = check_shape(n, self.a_view), check_shape(n, self.b_view)
        if len(self.a_view) < 2 or len(self.b_view) < 2 or self.a_view[-1] != self.b_view[-2]:
            raise IRValidationError(n, f"views {self.a_view} @ {self.b_view} are not a matrix product")
        try:
            prod = np.broadcast_shapes(self.a_view[:-2], self.b_view[:-2]) + (self.a_view[-2], self.b_view[-1])
        except ValueError:
            raise IRValidationError(n, f"views {self.a_view} @ {self.b_view}: batch axes do not broadcast") from None
        for what, idx, size, total in (("a_index", self.a_index, int(np.prod(self.a_view)), int(np.prod(self.a_shape))),
                                       ("b_index", self.b_index, int(np.prod(self.b_view)), int(np.prod(self.b_shape))),
                                       ("out_index", self.out_index, self.size, int(np.prod(prod)))):
            arr = as_int_array(n, what, idx, {(size,)})
            if arr.size and (arr.min() < 0 or arr.max() >= total):
                raise IRValidationError(n, f"{what} must index 0..{total - 1}")
            setattr(self, what, arr)
        self.a_inputs = tuple(str(s) for s in self.a_inputs)
        self.shift = _int_field(n, "shift", self.shift, 0, 62)
        self.a_offset = _offset(n, "a_offset", self.a_offset, self.a_shape)
        self.b_offset = _offset(n, "b_offset", self.b_offset, self.b_shape)
        self.a_scale, self.b_scale = _scale(n, "a_scale", self.a_scale), _scale(n, "b_scale", self.b_scale)

    @property
    def product_shape(self) -> tuple[int, ...]:
        return np.broadcast_shapes(self.a_view[:-2], self.b_view[:-2]) + (self.a_view[-2], self.b_view[-1])

    @property
    def contraction(self) -> int:
        """K: how many products one output element sums."""
        return self.a_view[-1]

    def port_of(self, projection_name: str) -> str:
        return "a" if projection_name in self.a_inputs else "b"

    def port_shape(self, port: str) -> tuple[int, ...]:
        return self.a_shape if port == "a" else self.b_shape

    def port_offset(self, port: str) -> np.ndarray:
        return self.a_offset if port == "a" else self.b_offset

    def port_scale(self, port: str) -> float:
        return self.a_scale if port == "a" else self.b_scale

    def check_wiring(self, net) -> None:
        super().check_wiring(net)
        names = {p.name for p in net.incoming(self.name)}
        stray = [p for p in self.a_inputs if p not in names]
        if stray:
            raise IRValidationError(self.name, f"a_inputs names {stray}, which are not projections into this unit")
        if not self.a_inputs or len(self.a_inputs) == len(names):
            raise IRValidationError(self.name, "both ports need at least one incoming projection (a_inputs lists "
                                    "port A's, every other projection feeds port B)")


#: the units of this module, registered in ``snnc.ir.NODE_TYPES`` for the bundle codec
UNIT_TYPES: tuple[type[GradedFunctionUnit], ...] = (GradedElementwise, GradedLayerNorm, GradedSoftmax, GradedMatMul)
for _cls in UNIT_TYPES:
    register_node_type(_cls)
