"""The IR's projections on torch, exact: P(s) = A(W, s) << e in the arithmetic the plan chose (plan.py).

``TorchProjection`` converts its weights once per arithmetic and applies the map to a batch of
source values (N, *in_shape) of any dtype; the result is the integer current (N, *out_shape), held
in the dtype the caller asks for (the target's state dtype, whose bound covers it).

* float32 / float64: the weights are W * 2^e as floats (exact: a power of two), the source values
  are converted (exact: small integers), the map runs in torch (BLAS GEMM, oneDNN direct
  convolution, or a window sum) and every partial sum is an integer below 2^24 (2^53): exact.
* int64: integer GEMM / convolution, then << e, as the reference does.

Work is cut where the result is provably the same (docs/torch_backend.md, "Less work"):

* a folded average pool (the compiler folds AvgPool(a) into the next conv as an (a*k)x(a*k) stride-a
  kernel, or into a dense layer as 2-D blocks of equal weights) is unfolded into an exact window
  sum followed by the small kernel, when the weights have that block structure and it costs fewer
  multiply-adds;
* a depthwise 1x1 convolution (a residual identity path) is a per-channel multiply;
* spike sparsity: a dense layer whose source has at most ``SPARSE_MAX_ACTIVE`` of its inputs active
  (non-zero in any of the N samples) multiplies only those rows of W^T (a subset of the partial sums:
  the same bound). Measured on this machine (1 thread, 64 x 4096 spikes, 4096 outputs): dense 61 ms;
  25 % active 25 ms, 50 % active 80 ms, 75 % 121 ms (the row gather costs more than it saves above
  ~40 %); the benchmark networks have 74-100 % of their inputs active per batch, so it rarely triggers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from snnc.ir import Conv2d, Dense, Projection, ProjectionRangeError, SumPool2d
from snnc.ir.arithmetic import FLOAT_EXACT

from .neurons import memory_format
from .plan import Arith, ProjectionPlan

POOL_COST = 64              # multiply-adds one pooled input element costs (measured: a window sum of 1.5 M
                            # spikes ~ 3 ns / element, a GEMM ~ 0.05 ns / multiply-add, 1 thread)
SPARSE_MAX_ACTIVE = 0.3     # fraction of active inputs below which the dense map gathers them (measured)
SPARSE_MIN_INPUTS = 512     # smaller layers: the check costs more than it can save

INT8_MIN_DEPTH = 768       # products per output (fan-in) from which an eligible projection runs as an int8 GEMM
                            # (measured, 1 thread, 64 samples, 3x3 convs: C_in 64 at 32x32 (576 products) 30 ms
                            # float32 vs 34 ms int8 with its window copy; C_in 128 at 16x16: 28 vs 8.5 ms;
                            # C_in 256 at 8x8: 30 vs 6.6 ms; C_in 512 at 4x4: 42 vs 3.5 ms)
INT8_MIN_OUTPUTS = 64      # and outputs per product row: converting the float spikes to int8 costs about as much as a
                            # float GEMM with ~10 outputs (measured: 256 x 4096 spikes times a 4096 x 10 readout,
                            # float32 0.48 ms, int8 1.2 ms of which 0.9 ms the conversion)
INT8 = (-128, 127)

TORCH_DTYPES = {Arith.FLOAT32: torch.float32, Arith.FLOAT64: torch.float64, Arith.INT32: torch.int32,
                Arith.INT64: torch.int64}


@dataclass(frozen=True)
class Unfold:
    """An exactly factored projection: sum-pool over (ay, ax) blocks (stride = block), then ``weight``
    (the block values) with stride 1 and ``padding`` / (ay, ax)."""

    ay: int
    ax: int
    weight: np.ndarray           # conv: (O, Cg, kh/ay, kw/ax); dense: (O, C*(H/ay)*(W/ax))
    padding: tuple[int, int, int, int]
    macs: int                    # multiply-adds per sample, pooling included (POOL_COST per pooled element)


def _block_constant(w: np.ndarray, ay: int, ax: int) -> np.ndarray | None:
    """w (..., H, W) with H % ay == W % ax == 0: the (H/ay, W/ax) block values when every block is
    constant, else None."""
    *lead, H, W = w.shape
    blocks = w.reshape(*lead, H // ay, ay, W // ax, ax)
    first = blocks[..., :, :1, :, :1]
    if not np.array_equal(blocks, np.broadcast_to(first, blocks.shape)):
        return None
    return np.ascontiguousarray(first[..., :, 0, :, 0])


def conv_macs(p: Conv2d) -> int:
    o, cg, kh, kw = p.weight.shape
    _, oh, ow = p.out_shape
    return o * cg * kh * kw * oh * ow


def unfold_conv(p: Conv2d) -> Unfold | None:
    """Only when it costs fewer multiply-adds, pooling counted at ``POOL_COST`` each: a conv whose kernel is (ay*kh', ax*kw') with stride (ay, ax), padding multiples of the block,
    input size multiples of the block and constant blocks equals sum-pool(ay, ax) then a (kh', kw')
    stride-1 conv with padding / block (the pooled windows are exactly the kernel's blocks)."""
    ay, ax = p.stride
    if (ay, ax) == (1, 1) or p.dilation != (1, 1):
        return None
    o, cg, kh, kw = p.weight.shape
    c, h, w = p.in_shape
    t, l, b, r = p.padding
    if kh % ay or kw % ax or h % ay or w % ax or t % ay or b % ay or l % ax or r % ax:
        return None
    small = _block_constant(p.weight, ay, ax)
    if small is None:
        return None
    pad = (t // ay, l // ax, b // ay, r // ax)
    oh = (h // ay + pad[0] + pad[2] - kh // ay) + 1
    ow = (w // ax + pad[1] + pad[3] - kw // ax) + 1
    if (oh, ow) != tuple(p.out_shape[1:]):
        return None
    macs = o * cg * (kh // ay) * (kw // ax) * oh * ow + POOL_COST * c * h * w
    return Unfold(ay, ax, small, pad, macs) if macs < conv_macs(p) else None


def unfold_dense(p: Dense, max_block: int = 8) -> Unfold | None:
    """A dense layer reading a (C, H, W) source whose weights are constant over (ay, ax) spatial blocks
    equals sum-pool(ay, ax) then a dense layer on the pooled (C, H/ay, W/ax) source; the largest
    such block is used."""
    if len(p.in_shape) != 3:
        return None
    c, h, w = p.in_shape
    o = p.weight.shape[0]
    wt = p.weight.reshape(o, c, h, w)
    best = None
    for ay in range(1, min(h, max_block) + 1):
        for ax in range(1, min(w, max_block) + 1):
            if (ay, ax) == (1, 1) or h % ay or w % ax:
                continue
            if best is not None and ay * ax <= best.ay * best.ax:
                continue
            small = _block_constant(wt, ay, ax)
            if small is None:
                continue
            macs = o * c * (h // ay) * (w // ax) + POOL_COST * c * h * w
            if macs < o * c * h * w:
                best = Unfold(ay, ax, small.reshape(o, -1), (0, 0, 0, 0), macs)
    return best


def _pad(x: torch.Tensor, padding: tuple[int, int, int, int], value=0) -> torch.Tensor:
    t, l, b, r = padding
    return F.pad(x, (l, r, t, b), value=value) if any(padding) else x


def window_sum(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
               padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Sum over each (kh, kw) window, zero padding; exact in any dtype whose sums are exact."""
    x = _pad(x, padding)
    if x.dtype.is_floating_point:
        return F.avg_pool2d(x, kernel, stride, divisor_override=1)
    return x.unfold(2, kernel[0], stride[0]).unfold(3, kernel[1], stride[1]).sum(dim=(-1, -2))


class TorchProjection:
    """One projection on one device; weights converted once per arithmetic (``weight``)."""

    def __init__(self, p: Projection, device: torch.device, unfold: bool = True):
        self.p = p
        self.device = device
        self.unfold = None
        if unfold and isinstance(p, Conv2d):
            self.unfold = unfold_conv(p)
        elif unfold and isinstance(p, Dense):
            self.unfold = unfold_dense(p)
        self.depthwise_1x1 = (isinstance(p, Conv2d) and p.weight.shape[1:] == (1, 1, 1) and p.groups == p.in_shape[0]
                              == p.out_shape[0] and p.padding == (0, 0, 0, 0) and p.dilation == (1, 1))
        self._weights: dict[tuple, torch.Tensor] = {}
        self._cpu_twin: TorchProjection | None = None
        self.int8 = self._int8_eligible()

    def _int8_eligible(self) -> bool:
        """Whether this projection may run as an int8 GEMM with int32 accumulation (``torch._int_mm``) on the
        CPU: a dense map or an ungrouped convolution (unfolded or not; not a depthwise identity) with at least
        ``INT8_MIN_DEPTH`` products per output, ``INT8_MIN_OUTPUTS`` outputs per position and every weight
        mantissa in int8's range. ``apply`` also needs the plan's source values (an unfolded map: their
        window sums) in int8's range and its bound below 2^31 (``ProjectionPlan.int8_exact``): an unfolded
        map's partial sums are sums of the folded map's products, within the same bound."""
        p = self.p
        if self.device.type != "cpu" or self.depthwise_1x1:
            return False
        w = self.kernel
        if isinstance(p, Dense):
            depth = w.shape[1]
        elif isinstance(p, Conv2d) and p.groups == 1:
            depth = int(np.prod(w.shape[1:]))
        else:
            return False
        return (depth >= INT8_MIN_DEPTH and w.shape[0] >= INT8_MIN_OUTPUTS and w.size > 0
                and INT8[0] <= int(w.min()) and int(w.max()) <= INT8[1])

    @property
    def kernel(self) -> np.ndarray:
        """The weight mantissas the map multiplies by: the unfolded block weights where it is unfolded."""
        return self.p.weight if self.unfold is None else self.unfold.weight

    def weight_int8(self) -> torch.Tensor:
        """The weight mantissas (the unfolded block weights where the map is unfolded) as the int8
        (depth, outputs) matrix of the int8 GEMM: W^T for a dense map, the conv kernel as (kh, kw, C_in) x O,
        the order of ``_int8_conv``'s window columns."""
        w = self._weights.get("int8")
        if w is None:
            m = np.asarray(self.kernel)
            m = m.T if m.ndim == 2 else m.transpose(2, 3, 1, 0).reshape(-1, m.shape[0])
            w = self._weights["int8"] = torch.as_tensor(np.ascontiguousarray(m, dtype=np.int8))
        return w

    # ---- weights ----------------------------------------------------------------------------------
    def weight(self, arith: Arith, unfolded: bool = False) -> torch.Tensor:
        """W (or the unfolded block weights) as ``arith``: times 2^e for floats, the mantissas for int64."""
        key = (arith, unfolded)
        w = self._weights.get(key)
        if w is None:
            src = self.unfold.weight if unfolded else self.p.weight
            w = torch.as_tensor(np.asarray(src, dtype=np.int64))
            if arith is Arith.INT64:
                w = w.to(self.device)
            else:
                w = (w.to(TORCH_DTYPES[arith]) * float(2 ** self.p.exponent)).to(self.device)
            if self.depthwise_1x1 and not unfolded:
                w = w.reshape(1, -1, 1, 1)
            elif w.ndim == 4:   # the output map's layout (a conv's output follows a channels-last weight)
                w = w.contiguous(memory_format=memory_format(self.device, tuple(self.p.out_shape)))
            self._weights[key] = w
        return w

    # ---- application -----------------------------------------------------------------------------
    def apply(self, s: torch.Tensor, plan: ProjectionPlan, out_dtype: torch.dtype,
              bias: torch.Tensor | None = None) -> torch.Tensor:
        """P(s) for s (N, *in_shape) (or (N, size) for dense), as ``out_dtype`` (N, *out_shape).

        ``bias`` (optional, per output channel, in the plan's float dtype) is added inside the map;
        the caller has checked that the bound with it stays exact."""
        arith = plan.arith
        n = s.shape[0]
        if arith is Arith.INT64 and s.device.type == "cuda":   # no int64 GEMM on CUDA: compute on the CPU
            if self._cpu_twin is None:
                self._cpu_twin = TorchProjection(self.p, torch.device("cpu"), self.unfold is not None)
            return self._cpu_twin.apply(s.cpu(), plan, out_dtype, None if bias is None else bias.cpu()).to(s.device)
        p = self.p
        if self.int8 and plan.int8_exact and (self.unfold is None or
                                              plan.source_max * self.unfold.ay * self.unfold.ax <= INT8[1]):
            return self._apply_int8(s, out_dtype, bias)
        x = s.to(TORCH_DTYPES[arith])
        if isinstance(p, Dense):
            y = self._dense(x.reshape(n, -1), arith, bias)
        elif isinstance(p, Conv2d):
            y = self._conv(x.reshape((n,) + tuple(p.in_shape)), arith, bias)
        elif isinstance(p, SumPool2d):
            y = window_sum(x.reshape((n,) + tuple(p.in_shape)), p.kernel, p.stride, p.padding)
            y = y * (int(p.weight) if arith is Arith.INT64 else float(int(p.weight) * 2 ** p.exponent))
            if bias is not None:
                y = y + bias.reshape(1, -1, 1, 1)
        else:
            raise NotImplementedError(f"projection '{p.name}' of type {type(p).__name__}: the torch backend supports "
                                      "Conv2d, Dense, SumPool2d")
        if arith is Arith.INT64 and p.exponent:
            y = torch.bitwise_left_shift(y, p.exponent)
        y = y.reshape((n,) + tuple(p.out_shape))
        return y if y.dtype == out_dtype else y.to(out_dtype)

    def _apply_int8(self, s: torch.Tensor, out_dtype: torch.dtype, bias) -> torch.Tensor:
        """P(s) by an int8 GEMM with int32 accumulation: every source value and weight mantissa is an int8 and
        every partial sum is below 2^31 (the plan's bound), so the int32 sums are the integers themselves.
        Then << e in ``out_dtype`` (a float: times 2^e, exact below the state's proven bound) and the bias."""
        p = self.p
        n = s.shape[0]
        u = self.unfold
        if u is not None:   # the exact window sums first (at most ay * ax * source_max: an int8, checked)
            c, h, w = p.in_shape
            s = window_sum(s.reshape(n, c, h, w).to(torch.float32), (u.ay, u.ax), (u.ay, u.ax), (0, 0, 0, 0))
        if isinstance(p, Dense):
            y = torch._int_mm(s.reshape(n, -1).to(torch.int8).contiguous(), self.weight_int8())
        elif u is None:
            y = self._int8_conv(s.reshape((n,) + tuple(p.in_shape)), p.stride, p.padding, p.dilation)
        else:
            y = self._int8_conv(s, (1, 1), u.padding, (1, 1))
        y = y.to(out_dtype)
        if p.exponent:
            y = y * float(2 ** p.exponent) if out_dtype.is_floating_point else torch.bitwise_left_shift(y, p.exponent)
        if bias is not None:
            y = y + (bias if isinstance(p, Dense) else bias.reshape(1, -1, 1, 1)).to(out_dtype)
        return y.reshape((n,) + tuple(p.out_shape))

    def _int8_conv(self, x: torch.Tensor, stride, padding, dilation) -> torch.Tensor:
        """An ungrouped convolution (the kernel of ``weight_int8``) as one int8 GEMM: the windows' columns
        gathered from the channels-last map (kh * kw strided views, concatenated); (n, O, OH, OW), channels-last."""
        p = self.p
        n = x.shape[0]
        o, c, kh, kw = self.kernel.shape
        _, oh, ow = p.out_shape
        x8 = x.to(torch.int8).permute(0, 2, 3, 1)
        t, l, b, r = padding
        if any(padding):
            x8 = F.pad(x8, (0, 0, l, r, t, b))
        (sy, sx), (dy, dx) = stride, dilation
        cols = [x8[:, i * dy:i * dy + sy * (oh - 1) + 1:sy, j * dx:j * dx + sx * (ow - 1) + 1:sx, :]
                for i in range(kh) for j in range(kw)]
        a = (torch.cat(cols, dim=3) if len(cols) > 1 else cols[0].contiguous()).reshape(n * oh * ow, kh * kw * c)
        return torch._int_mm(a, self.weight_int8()).reshape(n, oh, ow, o).permute(0, 3, 1, 2)

    def _dense(self, x: torch.Tensor, arith: Arith, bias) -> torch.Tensor:
        if self.unfold is not None:
            c, h, w = self.p.in_shape
            x = window_sum(x.reshape(-1, c, h, w), (self.unfold.ay, self.unfold.ax), (self.unfold.ay, self.unfold.ax),
                           (0, 0, 0, 0)).reshape(x.shape[0], -1)
            return F.linear(x, self.weight(arith, True), bias)
        if x.shape[1] >= SPARSE_MIN_INPUTS and x.is_floating_point():
            active = (x != 0).any(dim=0)
            n = int(active.sum())
            if n <= SPARSE_MAX_ACTIVE * x.shape[1]:
                idx = active.nonzero().squeeze(1)
                y = x.index_select(1, idx) @ self.weight_t(arith).index_select(0, idx)
                return y if bias is None else y + bias
        return F.linear(x, self.weight(arith), bias)

    def weight_t(self, arith: Arith) -> torch.Tensor:
        """W^T (in, out), contiguous, for gathering the rows of active inputs (dense layers)."""
        key = (arith, "t")
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = self.weight(arith).t().contiguous()
        return w

    def _conv(self, x: torch.Tensor, arith: Arith, bias) -> torch.Tensor:
        p = self.p
        fmt = memory_format(self.device, tuple(p.out_shape))
        if fmt == torch.contiguous_format and not self.depthwise_1x1 and self.unfold is None:
            x = x.contiguous()      # a small output map: NCHW in, NCHW out
        if self.depthwise_1x1:
            if p.stride != (1, 1):
                x = x[:, :, ::p.stride[0], ::p.stride[1]]
            y = x * self.weight(arith)
            return y if bias is None else y + bias.reshape(1, -1, 1, 1)
        if self.unfold is not None:
            u = self.unfold
            x = window_sum(x, (u.ay, u.ax), (u.ay, u.ax), (0, 0, 0, 0))
            if fmt == torch.contiguous_format:
                x = x.contiguous()
            return self._conv2d(x, self.weight(arith, True), bias, (1, 1), u.padding, (1, 1), p.groups)
        return self._conv2d(x, self.weight(arith), bias, p.stride, p.padding, p.dilation, p.groups)

    @staticmethod
    def _conv2d(x, w, bias, stride, padding, dilation, groups) -> torch.Tensor:
        t, l, b, r = padding
        if t == b and l == r:
            return F.conv2d(x, w, bias, stride, (t, l), dilation, groups)
        return F.conv2d(_pad(x, padding), w, bias, stride, 0, dilation, groups)


def check_reference_limit(p: Projection, plan: ProjectionPlan, s: torch.Tensor, steps: int = 1) -> None:
    """The IR's arithmetic refuses a step whose sum|W| * max|s| >= 2^52 (``snnc.ir.arithmetic.check_exact``:
    "out of any hardware range"); when the proven bound does not rule that out, check the values that
    arrive, step by step, as it does.
    ``s``: (steps * N, ...) values of ``steps`` consecutive steps."""
    if not plan.checked_at_run_time:
        return
    per_step = s.reshape(steps, -1).abs().amax(dim=1) if s.numel() else torch.zeros(steps, dtype=torch.int64)
    for m in per_step.tolist():
        bound = float(p.max_abs_input_weight_sum) * float(m)
        if bound >= FLOAT_EXACT:
            raise ProjectionRangeError(f"projection '{p.name}': sum|W|*max|s| = {bound:.3g} exceeds 2^52; "
                                  "values are out of any hardware range")
