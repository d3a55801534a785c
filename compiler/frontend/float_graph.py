"""The float graph: what the ONNX frontend produces and the passes rewrite.

Small typed op dataclasses, plus a numpy executor, so every pass can be tested by running the
network before and after it. Shapes exclude the batch dimension. Most ops have one data input
(``input``); the joins ``Add`` and ``Concat`` have more (``sources()`` lists them all), so the graph
is a DAG: residual networks and channel concatenations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Op:
    name: str
    input: str  # name of the producing op (or the graph input); the first input of a join

    def __call__(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def out_shape(self, *shapes: tuple[int, ...]) -> tuple[int, ...] | None:
        """The output's shape for inputs of these shapes when known without the arithmetic (None: the op
        runs to tell it). Costly ops override it; it answers None for inputs the op would refuse."""
        return None

    def probe(self, *xs: np.ndarray) -> np.ndarray:
        """What a shape probe needs of the op on ``xs``: zeros of its output's shape when ``out_shape``
        knows it (no op's output shape depends on values), else the op applied (its errors stand)."""
        shape = self.out_shape(*(np.shape(x) for x in xs))
        return self(*xs) if shape is None else np.zeros(shape)

    def sources(self) -> list[str]:
        """Every data input, in order (one for all ops but the joins)."""
        return [self.input]

    def replace_source(self, old: str, new: str) -> None:
        if self.input == old:
            self.input = new


def _conv(x, w, b, stride, pads, dilation, groups):
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    t, l, bo, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    oh = (H + t + bo - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (W + l + r - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    sb, sc, sh, sw = xp.strides
    win = np.lib.stride_tricks.as_strided(
        xp, (B, C, oh, ow, kh, kw), (sb, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    )
    og = O // groups
    outs = [
        np.einsum("bcyxij,ocij->boyx", win[:, g * Cg:(g + 1) * Cg], w[g * og:(g + 1) * og], optimize=True)
        for g in range(groups)
    ]
    out = np.concatenate(outs, axis=1)
    return out + b.reshape(1, -1, 1, 1)


@dataclass
class Conv(Op):
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __call__(self, x):
        return _conv(x, self.weight, self.bias, self.stride, self.pads, self.dilation, self.groups)

    def out_shape(self, *shapes):
        if len(shapes) != 1 or len(shapes[0]) != 4 or self.weight.ndim != 4:
            return None
        B, C, H, W = shapes[0]
        O, Cg, kh, kw = self.weight.shape
        t, l, bo, r = self.pads
        oh = (H + t + bo - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (W + l + r - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if C != Cg * self.groups or O % self.groups or np.size(self.bias) not in (1, O) or oh < 1 or ow < 1:
            return None
        return (B, O, oh, ow)


MIXED_BLOCK = 1 << 22  # weights widened per block when a Linear's weight and input dtypes differ


@dataclass
class Linear(Op):
    """y = x @ weight.T + bias on the flattened input (weight: (out, in))."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x):
        x2 = x.reshape(x.shape[0], -1)
        w = self.weight
        if w.dtype == x2.dtype or w.ndim != 2 or w.size < MIXED_BLOCK:
            return x2 @ w.T + self.bias
        # a large float32 weight (a folded pool, passes/pooling.py) read by a float64 input: widened by
        # blocks of rows (numpy's mixed-type matmul would take the slow non-BLAS loop, or one copy of it all)
        dt = np.result_type(x2, w)
        x2 = x2.astype(dt, copy=False)
        out = np.empty((x2.shape[0], w.shape[0]), dt)
        step = max(1, MIXED_BLOCK // max(1, w.shape[1]))
        for a in range(0, w.shape[0], step):
            out[:, a:a + step] = x2 @ w[a:a + step].astype(dt).T
        return out + self.bias

    def out_shape(self, *shapes):
        if len(shapes) != 1 or len(shapes[0]) < 1 or self.weight.ndim != 2:
            return None
        n_in = int(np.prod(shapes[0][1:], dtype=np.int64))
        if n_in != self.weight.shape[1] or np.size(self.bias) not in (1, self.weight.shape[0]) or np.ndim(self.bias) > 1:
            return None
        return (shapes[0][0], self.weight.shape[0])


@dataclass
class BatchNorm(Op):
    scale: np.ndarray
    shift: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        a = self.scale / np.sqrt(self.var + self.eps)
        return a, self.shift - a * self.mean

    def __call__(self, x):
        a, c = self.affine()
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * a.reshape(shape) + c.reshape(shape)


def pool_output_size(size: int, k: int, s: int, p_lo: int, p_hi: int, ceil_mode: bool) -> int:
    """ONNX pooling output size: floor or ceil of (size + pads - k) / s, plus one; in ceil mode a last
    window that would start in the end padding (or past it) is dropped (the ONNX reference, onnxruntime)."""
    span = size + p_lo + p_hi - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p_lo:
        out -= 1
    return out


def _avg_divisors(size: int, k: int, s: int, p_lo: int, p_hi: int, out: int, include_pad: bool) -> np.ndarray:
    """Per output position along one axis: the element count ONNX AveragePool divides by. With
    count_include_pad the window is clipped to the padded input [-p_lo, size + p_hi) (only ceil mode's
    last windows reach past it); without, to the input [0, size)."""
    start = np.arange(out) * s - p_lo
    if include_pad:
        return np.minimum(start + k, size + p_hi) - start
    return np.minimum(start + k, size) - np.maximum(start, 0)


@dataclass
class AvgPool(Op):
    """ONNX AveragePool (2-D): window sums over the zero-padded input divided per output position by
    the count ONNX defines (``count_include_pad``; ``ceil_mode`` windows past the padding are clipped).
    kernel (0, 0) is GlobalAveragePool until sized (ResolveGlobalPool). The lowering takes only pools
    whose divisor is kh*kw everywhere and ceil_mode off (compiler/passes/pooling.py normalizes or folds
    the others, or refuses them by name)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    count_include_pad: bool = True
    ceil_mode: bool = False

    def geometry(self, H: int, W: int):
        """(oh, ow, divisor (oh, ow), extra bottom rows, extra right columns) of this pool on an H x W map:
        the extra rows/columns (zeros beyond the bottom/right padding) that ceil-mode windows reach."""
        kh, kw = self.kernel if self.kernel != (0, 0) else (H, W)
        sy, sx = self.stride if self.kernel != (0, 0) else (H, W)
        t, l, b, r = self.pads
        oh = pool_output_size(H, kh, sy, t, b, self.ceil_mode)
        ow = pool_output_size(W, kw, sx, l, r, self.ceil_mode)
        dy = _avg_divisors(H, kh, sy, t, b, oh, self.count_include_pad)
        dx = _avg_divisors(W, kw, sx, l, r, ow, self.count_include_pad)
        eb = max((oh - 1) * sy + kh - (H + t + b), 0)
        er = max((ow - 1) * sx + kw - (W + l + r), 0)
        return oh, ow, np.outer(dy, dx).astype(np.float64), eb, er

    def uniform(self, H: int, W: int) -> bool:
        """Is the divisor kh*kw at every output position (a plain window sum times one weight)?"""
        kh, kw = self.kernel if self.kernel != (0, 0) else (H, W)
        _, _, div, _, _ = self.geometry(H, W)
        return bool(np.all(div == kh * kw))

    def __call__(self, x):
        B, C, H, W = x.shape
        kh, kw = self.kernel if self.kernel != (0, 0) else (H, W)
        sy, sx = self.stride if self.kernel != (0, 0) else (H, W)
        t, l, b, r = self.pads
        oh, ow, div, eb, er = self.geometry(H, W)
        xp = np.pad(x, ((0, 0), (0, 0), (t, b + eb), (l, r + er)))
        sb, sc, sh, sw = xp.strides
        win = np.lib.stride_tricks.as_strided(
            xp, (B, C, oh, ow, kh, kw), (sb, sc, sh * sy, sw * sx, sh, sw)
        )
        return win.sum(axis=(-1, -2)) / div


@dataclass
class Flatten(Op):
    def __call__(self, x):
        return x.reshape(x.shape[0], -1)


@dataclass
class Identity(Op):
    def __call__(self, x):
        return x


@dataclass
class ScalarAffine(Op):
    """y = x * mul + add with scalar constants (from Mul/Div/Add/Sub by a scalar)."""

    mul: float = 1.0
    add: float = 0.0

    def __call__(self, x):
        return x * self.mul + self.add


@dataclass
class Clamp(Op):
    lo: float = -np.inf
    hi: float = np.inf

    def __call__(self, x):
        return np.clip(x, self.lo, self.hi)


@dataclass
class Rounding(Op):
    """mode "floor" | "ceil" (Floor/Ceil nodes); "half_even" (ONNX QuantizeLinear, QONNX Quant ROUND:
    round half to even) and "half_up" (floor(x + 1/2)) come from the quantizer formats and are
    rewritten into floor by compiler/passes/qdq.py before FuseQuantAct."""

    mode: str = "floor"

    def __call__(self, x):
        if self.mode == "half_even":
            return np.rint(x)
        if self.mode == "half_up":
            return np.floor(x + 0.5)
        return np.floor(x) if self.mode == "floor" else np.ceil(x)


@dataclass
class Relu(Op):
    def __call__(self, x):
        return np.maximum(x, 0)


@dataclass
class QuantAct(Op):
    """The papers' quantized clip activation, recognised by what it computes:

        y = gamma * clip(Q(alpha * x + beta), 0, L)      Q in {floor, ceil}

    (round = floor with beta shifted by 1/2). lambda = gamma * L is the clipping threshold.
    """

    alpha: float = 1.0
    beta: float = 0.0
    levels: int = 1
    gamma: float = 1.0
    mode: str = "floor"

    @property
    def lam(self) -> float:
        return self.gamma * self.levels

    @property
    def quantizer(self) -> str:
        if self.mode == "ceil":
            return "ceil" if self.beta == 0 else f"ceil(+{self.beta:g})"
        return {0.0: "floor", 0.5: "round"}.get(self.beta, f"floor(+{self.beta:g})")

    def __call__(self, x):
        v = self.alpha * x + self.beta
        q = np.floor(v) if self.mode == "floor" else np.ceil(v)
        return self.gamma * np.clip(q, 0, self.levels)


def _pool_windows(x, kernel, stride, pads, dilation, fill):
    B, C, H, W = x.shape
    kh, kw = kernel
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    oh = (H + t + b - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (W + l + r - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    sb, sc, sh, sw = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (B, C, oh, ow, kh, kw), (sb, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    )


@dataclass
class MaxPool(Op):
    """ONNX MaxPool (padding never wins: it is -inf). kernel (0, 0) is GlobalMaxPool until sized."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)

    def __call__(self, x):
        if self.kernel == (0, 0):
            return x.max(axis=(-1, -2), keepdims=True)
        return _pool_windows(x, self.kernel, self.stride, self.pads, self.dilation, -np.inf).max(axis=(-1, -2))


@dataclass
class Add(Op):
    """y = input + sign * other (two tensors of one shape: the residual join; Sub has sign -1)."""

    other: str = ""
    sign: float = 1.0

    def __call__(self, x, y):
        return x + self.sign * y

    def sources(self) -> list[str]:
        return [self.input, self.other]

    def replace_source(self, old: str, new: str) -> None:
        if self.input == old:
            self.input = new
        if self.other == old:
            self.other = new


@dataclass
class Concat(Op):
    """Concatenation of ``input`` and ``others`` along ``axis`` (ONNX axis: 1 = channels)."""

    others: list = field(default_factory=list)
    axis: int = 1

    def __call__(self, *xs):
        return np.concatenate(xs, axis=self.axis)

    def sources(self) -> list[str]:
        return [self.input] + list(self.others)

    def replace_source(self, old: str, new: str) -> None:
        if self.input == old:
            self.input = new
        self.others = [new if o == old else o for o in self.others]


# ---- transformers (ViT): token tensors, attention, norms (compiler/frontend/transformer_ops.py parses them) ----
# Shapes are per sample; ONNX axes count the batch (axis 0), as in the ONNX model.


@dataclass
class TokenLinear(Op):
    """y = x @ weight.T + bias over the last axis (ONNX MatMul by a constant matrix on a tensor of rank >= 3,
    plus its bias Add): a Linear applied to every token. ``weight``: (out, in)."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x):
        return x @ self.weight.T + self.bias


@dataclass
class MatMul(Op):
    """y = input @ other (numpy / ONNX MatMul of two tensors: batch axes broadcast)."""

    other: str = ""

    def __call__(self, a, b):
        return np.matmul(a, b)

    def sources(self) -> list[str]:
        return [self.input, self.other]

    def replace_source(self, old: str, new: str) -> None:
        self.input = new if self.input == old else self.input
        self.other = new if self.other == old else self.other


@dataclass
class Mul(Op):
    """y = input * other, elementwise (two tensors; GELU and SiLU are spelled with it before the passes fuse them)."""

    other: str = ""

    def __call__(self, a, b):
        return a * b

    def sources(self) -> list[str]:
        return [self.input, self.other]

    def replace_source(self, old: str, new: str) -> None:
        self.input = new if self.input == old else self.input
        self.other = new if self.other == old else self.other


@dataclass
class Transpose(Op):
    """ONNX Transpose; ``perm`` over all axes, the batch axis 0 first (perm[0] == 0)."""

    perm: tuple[int, ...] = ()

    def __call__(self, x):
        return np.transpose(x, self.perm)


@dataclass
class Reshape(Op):
    """Reshape every sample to ``shape`` (per sample, no -1)."""

    shape: tuple[int, ...] = ()

    def __call__(self, x):
        return x.reshape((x.shape[0],) + tuple(self.shape))


@dataclass
class LayerNorm(Op):
    """ONNX LayerNormalization over the last axis: (x - mean) / sqrt(var + eps) * scale + bias."""

    scale: np.ndarray = None
    bias: np.ndarray = None
    eps: float = 1e-5

    def __call__(self, x):
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.scale + self.bias


@dataclass
class Softmax(Op):
    """ONNX Softmax (opset >= 13) along ``axis``."""

    axis: int = -1

    def __call__(self, x):
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)


@dataclass
class Erf(Op):
    def __call__(self, x):
        from scipy.special import erf

        return erf(x)


@dataclass
class Sigmoid(Op):
    def __call__(self, x):
        from scipy.special import expit

        return expit(x)


@dataclass
class Gelu(Op):
    """GELU(x) = x Phi(x) (erf form), recognised by ``passes.transformer.FuseElementwiseFunction``."""

    def __call__(self, x):
        from scipy.special import erf

        return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


@dataclass
class Silu(Op):
    """SiLU(x) = x sigmoid(x), recognised like Gelu."""

    def __call__(self, x):
        from scipy.special import expit

        return x * expit(x)


@dataclass
class AddConst(Op):
    """y = x + value, ``value`` a per-sample constant broadcast numpy-style (a position embedding)."""

    value: np.ndarray = None

    def __call__(self, x):
        return x + self.value


@dataclass
class ConcatConst(Op):
    """Concatenate a per-sample constant ``value`` (broadcast over the batch: a class token) before the
    input (``before``) or after it, along ONNX ``axis`` (>= 1)."""

    value: np.ndarray = None
    axis: int = 1
    before: bool = True

    def __call__(self, x):
        c = np.broadcast_to(self.value, (x.shape[0],) + tuple(self.value.shape))
        return np.concatenate([c, x] if self.before else [x, c], axis=self.axis)


@dataclass
class Select(Op):
    """ONNX Gather with one scalar index: the slice ``index`` of ONNX ``axis`` (>= 1), that axis removed."""

    axis: int = 1
    index: int = 0

    def __call__(self, x):
        return np.take(x, self.index, axis=self.axis)


@dataclass
class Mean(Op):
    """ONNX ReduceMean over ``axes`` (ONNX axes >= 1): a mean over tokens."""

    axes: tuple[int, ...] = (1,)
    keepdims: bool = False

    def __call__(self, x):
        return x.mean(axis=tuple(self.axes), keepdims=self.keepdims)


ROWWISE_OPS = (LayerNorm, Gelu, Silu, Erf, Sigmoid)   # act on each token (the last axis) on its own


LINEAR_OPS = (Conv, Linear)
ELEMENTWISE_OPS = (ScalarAffine, Clamp, Rounding, Relu)


@dataclass
class FGraph:
    """Ops in topological order, one graph input, one output."""

    input_name: str
    input_shape: tuple[int, ...]
    ops: list[Op]
    output: str
    meta: dict = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # op name -> the user's layer (frontend.builder.user_layer)

    def describe(self, name: str) -> str:
        """The user's name for the layer op ``name`` came from: its recorded origin, else that of the ONNX
        node a synthesized op (``node/scale``, ``node/round/half``...) was made for, else the op's name."""
        cur = name
        while True:
            if cur in self.origins:
                return self.origins[cur]
            if "/" not in cur.strip("/"):
                return f"'{name}'"
            cur = cur.rsplit("/", 1)[0]

    def op(self, name: str) -> Op:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    def consumers(self, name: str) -> list[Op]:
        """Ops reading ``name`` (a join reading it twice is listed once)."""
        return [o for o in self.ops if name in o.sources()]

    def producer(self, name: str) -> Op | None:
        return next((o for o in self.ops if o.name == name), None)

    def replace_uses(self, old: str, new: str) -> None:
        for o in self.ops:
            o.replace_source(old, new)
        if self.output == old:
            self.output = new

    def remove(self, op: Op) -> None:
        """Remove a single-input op, rewiring its consumers to its input."""
        self.ops.remove(op)
        self.replace_uses(op.name, op.input)

    def run(self, x: np.ndarray, upto: str | None = None) -> dict[str, np.ndarray]:
        """Evaluate in float64; returns every op's output (and the input)."""
        vals = {self.input_name: np.asarray(x, dtype=np.float64)}
        for o in self.ops:
            vals[o.name] = o(*[vals[i] for i in o.sources()])
            if o.name == upto:
                break
        return vals

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[self.output]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor's shape (batch axis dropped): the graph probed on zeros (``Op.probe``)."""
        vals = {self.input_name: np.zeros((1,) + tuple(self.input_shape))}
        for o in self.ops:
            vals[o.name] = o.probe(*[vals[i] for i in o.sources()])
        return {k: v.shape[1:] for k, v in vals.items()}
