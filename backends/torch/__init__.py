"""Torch backend: the reference simulator's exact integer semantics, fast, on CPU or CUDA
(docs/torch_backend.md).

    from snnc.backends.torch import simulate, TorchBackend
    res = simulate(net, x, "pipelined")                 # same arguments and SimResult as the reference
    backend = TorchBackend(device="cpu", num_threads=2)  # the Backend protocol (snnc.backends.get_backend("torch"))

Importing this package does not import torch; ``simulate``, ``TorchBackend`` and the rest do. Without
torch, ``available()`` is False and ``snnc.backends.get_backend("torch")`` raises
``BackendUnavailableError`` saying how to install it.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = ("install the CPU wheel with `pip install torch==2.13.0` (what `make setup` does); any other torch "
                "spec pulls CUDA packages")

_LAZY = {
    "simulate": ".simulator", "PreparedNetwork": ".simulator", "exactness_plan": ".simulator",
    "TorchBackend": ".backend", "plan_network": ".plan", "ExactnessPlan": ".plan", "Arith": ".plan",
}


def available() -> bool:
    """True when torch can be imported here."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(mod, __name__), name)


__all__ = ["available", "INSTALL_HINT", *_LAZY]
