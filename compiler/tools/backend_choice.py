"""Which backend runs a command's simulations: ``--backend reference|torch|lava`` and ``--device cpu|cuda``
on ``simulate``, ``verify``, ``eval``, ``stats`` and ``report``.

Left out, ``--backend`` means the fastest exact backend that runs the network in the schedule asked for
on the device asked for (``snnc.backends.default_backend``): torch when it is installed and supports
the network, else the reference simulator. Every exact backend gives the reference's integers (the
torch backend's tests compare the two on every model the suite has), so the choice changes how long a
command takes, never what it reports; the JSON and text output name the backend that ran.

Commands that count operations or re-check the state width (``verify --against ann``, ``eval``,
``stats``, ``report``) need a backend with the reference's ``simulate`` method (reference, torch);
``simulate`` also runs Lava. A CUDA device that is not here, or a backend that does not run on it, is
refused in one line before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from snnc.backends import Backend, Keep, SimResult, available_backends, default_backend, get_backend
from snnc.backends.reference import ReferenceBackend
from snnc.ir import Network, Schedule

from ..errors import SnncError

#: the values of ``--device``
DEVICES = ("cpu", "cuda")
#: what ``--backend`` shows when it is left out
AUTO = "auto"


class BackendOptionError(SnncError):
    """``--backend`` / ``--device`` name something that cannot run this command."""


class CountingBackend(Protocol):
    """A backend with the reference simulator's ``simulate`` (op counts, state-width check)."""

    name: str

    def simulate(self, net: Network, x, schedule: Schedule | str = Schedule.LAYERWISE, record: bool = False,
                 quantized: bool = False, state_bits: int | None = None, count_ops: bool = False,
                 keep: Keep = Keep.ALL) -> SimResult:
        """Run ``net`` on ``x`` as ``snnc.backends.reference.simulate`` does (``keep``: what the result holds)."""


@dataclass(frozen=True)
class BackendChoice:
    """``name``: a registered backend, or None for the fastest exact one that runs the network;
    ``device``: "cpu", "cuda" or "cuda:N" (the reference and Lava run on the CPU only)."""

    name: str | None = None
    device: str = "cpu"

    def __post_init__(self):
        if self.name is not None and self.name not in available_backends():
            raise BackendOptionError(f"--backend: unknown backend '{self.name}'; supported: {AUTO} (the default: the "
                                     f"fastest exact one), {', '.join(available_backends())}")
        kind = str(self.device).split(":")[0]
        if kind not in DEVICES:
            raise BackendOptionError(f"--device {self.device}: unknown device; supported: {', '.join(DEVICES)} "
                                     "(or cuda:N)")

    @classmethod
    def from_options(cls, backend: str | None, device: str | None) -> "BackendChoice":
        """From ``--backend`` ("auto" or None: the fastest exact one) and ``--device`` (None: cpu)."""
        return cls(None if backend in (None, AUTO) else backend, device or "cpu")

    @property
    def label(self) -> str:
        return self.name or AUTO

    def backend(self, net: Network, schedule: Schedule | str) -> Backend:
        """The backend that runs ``net`` in ``schedule``; refuses a device that is not here (one line)."""
        if self.name is None:
            return default_backend(net, Schedule(schedule), self.device)
        return get_backend(self.name, device=self.device)

    def counting_backend(self, net: Network, schedule: Schedule | str) -> CountingBackend:
        """As ``backend``, for commands that count operations or check the state width."""
        return counting(self.backend(net, schedule))

    def checked(self) -> "BackendChoice":
        """Refuse now, before a long run over many networks (``eval``), a backend that cannot count
        operations or a device no exact backend runs on here; returns ``self``."""
        if self.name is None:
            default_backend(None, Schedule.PIPELINED, self.device)
        else:
            counting(get_backend(self.name, device=self.device))
        return self


def counting(be: Backend) -> CountingBackend:
    """``be`` if it has the reference's ``simulate`` (op counts, state-width check), else refused."""
    if not callable(getattr(be, "simulate", None)):
        raise BackendOptionError(
            f"--backend {be.name}: it records spikes but does not count synaptic operations or check the state "
            "width, which this command needs; use --backend reference or torch (or leave --backend out)")
    return be


def against_backend(against: str, choice: BackendChoice) -> Backend:
    """The backend ``verify --against NAME`` checks against the reference simulator (the oracle), on
    ``choice.device``; ``--backend`` (what runs the SNN for ``--against ann``) must then be left out."""
    if choice.name is not None:
        raise BackendOptionError(f"--backend {choice.name}: --backend chooses what runs the SNN for --against ann; "
                                 f"with --against {against} the reference simulator is the oracle and {against} is "
                                 "what is checked: leave --backend out")
    return get_backend(against, device=choice.device)


def reference_backend(backend: CountingBackend | None) -> CountingBackend:
    """``backend``, or the reference simulator when a library caller passes none."""
    return ReferenceBackend() if backend is None else backend


def device_of(backend) -> str:
    """The device a backend ran on, as text ("cpu" for backends without one)."""
    return str(getattr(backend, "device", "cpu"))

