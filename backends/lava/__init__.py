"""Lava backend: emit a compiled network as a Lava process graph (see docs/lava.md).

    from snnc.backends.lava import build
    processes, inputs, probes = build("m.snnc", x, schedule="layerwise")

Every neuron model and coding of the IR is emitted (IF, dual-threshold and multi-threshold neurons;
rate and differential coding; multi-threshold neurons in the pipelined schedule only).
Importing this package does not import Lava; ``build`` and ``LavaBackend`` do (through
``compat.ensure_lava``, which makes lava-nc 0.10.0 importable on Python 3.11).
"""

from __future__ import annotations

import os


def build(bundle, x, schedule="layerwise", quantized: bool = False, tag: str = "fixed_pt"):
    """Lava processes for ``bundle`` (a ``.snnc`` path or an ``snnc.ir.Network``) fed with inputs ``x``.

    Returns a ``LavaBuild`` that unpacks as ``(processes, inputs, probes)``; run it with
    ``Loihi2SimCfg(select_tag="fixed_pt")`` (or connect the processes into a larger Lava app).
    """
    from snnc.ir import load

    from .emit import build as _build

    net = load(bundle) if isinstance(bundle, (str, os.PathLike)) else bundle
    return _build(net, x, schedule, quantized=quantized, tag=tag)


def __getattr__(name):
    if name == "LavaBackend":
        from .backend import LavaBackend

        return LavaBackend
    raise AttributeError(name)


__all__ = ["build", "LavaBackend"]
