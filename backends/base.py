"""One small interface for every backend, and a registry keyed by name.

A backend turns a compiled :class:`snnc.ir.Network` into something that runs and reports the same
:class:`SimResult` as the reference simulator, so ``snnc verify --against <backend>`` can compare
them. Backends with optional dependencies register a loader; importing this module never imports
them.
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol

from snnc.ir import Network

from .reference.simulator import Schedule, SimResult


class BackendError(Exception):
    """Base of backend errors."""


class BackendUnavailableError(BackendError):
    """The backend exists but its dependencies are missing; the message says how to install them."""


class UnknownBackendError(BackendError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class Backend(Protocol):
    name: str

    def run(self, net: Network, x, schedule: Schedule, record: bool = False) -> SimResult:
        """Simulate ``net`` on float inputs ``x`` (B, *input shape)."""


class ReferenceBackend:
    name = "reference"

    def run(self, net: Network, x, schedule: Schedule, record: bool = False) -> SimResult:
        from .reference import simulate

        return simulate(net, x, schedule=schedule, record=record)


# name -> "module:attribute" of a zero-argument factory, or an instance
_REGISTRY: dict[str, Callable[[], Backend] | str] = {
    "reference": ReferenceBackend,
    "lava": "snnc.backends.lava.backend:LavaBackend",
}


def register_backend(name: str, factory: Callable[[], Backend] | str) -> None:
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownBackendError(f"unknown backend '{name}'; supported backends: {', '.join(available_backends())}")
    if isinstance(factory, str):
        mod, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend '{name}' cannot be loaded: {e}. Run `make setup` (or see docs/lava.md) to install it."
            ) from None
    return factory()
