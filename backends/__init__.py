"""snnc.backends — what runs a compiled network: the reference simulator (the oracle), torch (the same
integers, fast, CPU or CUDA) and Lava.

``base`` holds the contract every backend implements (``Backend``, ``SimResult``, the typed errors)
and the registry (``get_backend``); each backend is a package that imports only ``snnc.ir`` and
``snnc.backends.base``.
"""

from .base import (
    Backend,
    BackendError,
    BackendUnavailableError,
    DeviceError,
    Keep,
    NodeOps,
    NotKeptError,
    SimResult,
    SimulationError,
    UnknownBackendError,
    UnsupportedNetworkError,
    available_backends,
    default_backend,
    get_backend,
    register_backend,
    train_dtype,
)

__all__ = [
    "Backend", "BackendError", "BackendUnavailableError", "DeviceError", "Keep", "NodeOps", "NotKeptError", "SimResult", "SimulationError",
    "UnknownBackendError", "UnsupportedNetworkError", "available_backends", "default_backend", "get_backend",
    "register_backend", "train_dtype",
]
