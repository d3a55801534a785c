"""snnc.backends — what runs a compiled network: the reference simulator (the oracle) and Lava.

``base`` holds the contract every backend implements (``Backend``, ``SimResult``, the typed errors)
and the registry (``get_backend``); each backend is a package that imports only ``snnc.ir`` and
``snnc.backends.base``.
"""

from .base import (
    Backend,
    BackendError,
    BackendUnavailableError,
    NodeOps,
    SimResult,
    UnknownBackendError,
    UnsupportedNetworkError,
    available_backends,
    get_backend,
    register_backend,
)

__all__ = [
    "Backend", "BackendError", "BackendUnavailableError", "NodeOps", "SimResult", "UnknownBackendError",
    "UnsupportedNetworkError", "available_backends", "get_backend", "register_backend",
]
