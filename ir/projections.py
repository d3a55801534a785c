"""Synaptic projections of the IR: integer linear maps from a source node to a target node.

``Dense``, ``Conv2d`` and ``SumPool2d`` are what a projection *is* (weights, geometry, validated on
construction); what it computes, batched, is ``snnc.ir.arithmetic.apply_projection`` (docs/ir.md).
A new projection kind adds a class here, an entry in ``PROJECTION_TYPES`` and its map in
``arithmetic.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from .errors import IRValidationError
from .validation import as_weight_array, check_name, check_shape, conv_output_size



@dataclass
class Projection:
    """Base of synaptic projections: current = (linear_map(weight, source_values)) << exponent.

    ``in_shape``/``out_shape`` are the shapes the map reads and writes; the network checks them
    against the source and target nodes (a flattening dense projection reads a (C, H, W) source).
    """

    name: str
    source: str
    target: str
    weight: np.ndarray
    exponent: int = 0
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    weight_ndim: ClassVar[int] = 0
    #: array fields a bundle stores in their narrowest integer dtype (``validation.storage_array``)
    narrow_arrays: ClassVar[tuple[str, ...]] = ("weight",)

    def __post_init__(self) -> None:
        check_name(type(self).__name__, self.name)
        for attr in ("source", "target"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr):
                raise IRValidationError(self.name, f"{attr} must name a node")
        self.weight = as_weight_array(self.name, "weight", self.weight)
        if self.weight.ndim != self.weight_ndim:
            raise IRValidationError(
                self.name, f"weight must have {self.weight_ndim} dims, got shape {self.weight.shape}"
            )
        self.exponent = int(self.exponent)
        if self.exponent < 0:
            raise IRValidationError(self.name, f"exponent must be >= 0 (a left shift), got {self.exponent}")
        self.in_shape = check_shape(self.name, self.in_shape)
        self.out_shape = check_shape(self.name, self.out_shape)
        self._check_geometry()

    def _check_geometry(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def num_synapses(self) -> int:
        """Synapses with a non-zero weight (what a dense table would store is larger)."""
        raise NotImplementedError

    @cached_property
    def max_abs_input_weight_sum(self) -> int:
        """max over outputs of sum |w| over what one output reads: |current| <= this * max|source|."""
        w = np.abs(self.weight)
        if w.ndim == 0:  # sum-pool: one weight per window element
            return int(w) * int(np.prod(getattr(self, "kernel", (1, 1))))
        return int(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0


@dataclass
class Dense(Projection):
    """out[o] = sum_i weight[o, i] * flatten(source)[i] (C order)."""

    weight_ndim: ClassVar[int] = 2

    def _check_geometry(self) -> None:
        n_out, n_in = self.weight.shape
        if int(np.prod(self.in_shape)) != n_in:
            raise IRValidationError(
                self.name, f"weight has {n_in} inputs but in_shape {self.in_shape} has {int(np.prod(self.in_shape))}"
            )
        if int(np.prod(self.out_shape)) != n_out:
            raise IRValidationError(
                self.name, f"weight has {n_out} outputs but out_shape {self.out_shape} has {int(np.prod(self.out_shape))}"
            )

    @property
    def num_synapses(self) -> int:
        return int(np.count_nonzero(self.weight))


@dataclass
class Conv2d(Projection):
    """out[o, y, x] = sum_{c, i, j} weight[o, c, i, j] * pad(source)[g*Cg + c, y*sy + i*dy, x*sx + j*dx].

    ``padding`` is (top, left, bottom, right) zeros; ``groups`` splits channels as in ONNX Conv.
    """

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    weight_ndim: ClassVar[int] = 4

    def _check_geometry(self) -> None:
        self.stride = tuple(int(s) for s in self.stride)
        self.padding = tuple(int(p) for p in self.padding)
        self.dilation = tuple(int(d) for d in self.dilation)
        self.groups = int(self.groups)
        if len(self.stride) != 2 or min(self.stride) < 1:
            raise IRValidationError(self.name, f"stride must be two ints >= 1, got {self.stride}")
        if len(self.dilation) != 2 or min(self.dilation) < 1:
            raise IRValidationError(self.name, f"dilation must be two ints >= 1, got {self.dilation}")
        if len(self.padding) != 4 or min(self.padding) < 0:
            raise IRValidationError(self.name, f"padding must be 4 ints >= 0 (t, l, b, r), got {self.padding}")
        if len(self.in_shape) != 3 or len(self.out_shape) != 3:
            raise IRValidationError(self.name, "conv2d in_shape and out_shape must be (C, H, W)")
        c_out, c_in_g, kh, kw = self.weight.shape
        c_in, h, w = self.in_shape
        if self.groups < 1 or c_in % self.groups or c_out % self.groups:
            raise IRValidationError(self.name, f"groups={self.groups} must divide in ({c_in}) and out ({c_out}) channels")
        if c_in // self.groups != c_in_g:
            raise IRValidationError(
                self.name, f"weight expects {c_in_g} channels per group, source has {c_in}/{self.groups}"
            )
        oh = conv_output_size(h, kh, self.stride[0], self.padding[0], self.padding[2], self.dilation[0])
        ow = conv_output_size(w, kw, self.stride[1], self.padding[1], self.padding[3], self.dilation[1])
        if (c_out, oh, ow) != tuple(self.out_shape):
            raise IRValidationError(
                self.name, f"conv geometry gives output {(c_out, oh, ow)}, out_shape is {self.out_shape}"
            )

    @property
    def num_synapses(self) -> int:
        return conv2d_synapses(self)


@dataclass
class SumPool2d(Projection):
    """out[c, y, x] = weight * sum_{i<kh, j<kw} pad(source)[c, y*sy + i, x*sx + j]; weight is a scalar."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    weight_ndim: ClassVar[int] = 0

    def _check_geometry(self) -> None:
        self.kernel = tuple(int(k) for k in self.kernel)
        self.stride = tuple(int(s) for s in self.stride)
        self.padding = tuple(int(p) for p in self.padding)
        if len(self.kernel) != 2 or min(self.kernel) < 1 or len(self.stride) != 2 or min(self.stride) < 1:
            raise IRValidationError(self.name, "kernel and stride must be two ints >= 1")
        if len(self.padding) != 4 or min(self.padding) < 0:
            raise IRValidationError(self.name, "padding must be 4 ints >= 0 (t, l, b, r)")
        if len(self.in_shape) != 3:
            raise IRValidationError(self.name, "sum-pool in_shape must be (C, H, W)")
        c, h, w = self.in_shape
        oh = conv_output_size(h, self.kernel[0], self.stride[0], self.padding[0], self.padding[2])
        ow = conv_output_size(w, self.kernel[1], self.stride[1], self.padding[1], self.padding[3])
        if (c, oh, ow) != tuple(self.out_shape):
            raise IRValidationError(self.name, f"pool geometry gives {(c, oh, ow)}, out_shape is {self.out_shape}")

    @property
    def num_synapses(self) -> int:
        return int(np.prod(self.out_shape)) * self.kernel[0] * self.kernel[1] if self.weight != 0 else 0


PROJECTION_TYPES: dict[str, type[Projection]] = {"Dense": Dense, "Conv2d": Conv2d, "SumPool2d": SumPool2d}


def conv2d_synapses(p: Conv2d) -> int:
    """Synapses a conv projection actually uses: non-zero weights at in-bounds input positions."""
    c_out, c_in_g, kh, kw = p.weight.shape
    _, h, w = p.in_shape
    _, oh, ow = p.out_shape

    def valid(n_out, size, k, s, pad, d):
        pos = np.arange(n_out)[:, None] * s + np.arange(k)[None, :] * d - pad
        return ((pos >= 0) & (pos < size)).sum(axis=0)  # per kernel offset: outputs that see real input

    vy = valid(oh, h, kh, p.stride[0], p.padding[0], p.dilation[0])
    vx = valid(ow, w, kw, p.stride[1], p.padding[1], p.dilation[1])
    nz = (p.weight != 0).astype(np.int64)  # (O, Cg, kh, kw)
    return int(np.einsum("ocij,i,j->", nz, vy, vx))

