"""snnc.backends — the reference simulator and the emitters (Lava; later NIR)."""

from .base import (
    Backend,
    BackendError,
    BackendUnavailableError,
    ReferenceBackend,
    UnknownBackendError,
    available_backends,
    get_backend,
    register_backend,
)

__all__ = [
    "Backend", "BackendError", "BackendUnavailableError", "ReferenceBackend", "UnknownBackendError",
    "available_backends", "get_backend", "register_backend",
]
