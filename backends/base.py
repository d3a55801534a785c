"""The backend contract: what every backend takes, what it returns, how it refuses; and the registry.

A backend turns a compiled :class:`snnc.ir.Network` into something that runs and reports a
:class:`SimResult`, so ``snnc verify --against <backend>`` can compare it with the reference
simulator spike for spike. The contract (docs/architecture.md, "How to add a backend"):

* ``name``: the registry key (``snnc simulate --backend NAME``, ``snnc verify --against NAME``).
* ``run(net, x, schedule, record=False, keep=Keep.ALL) -> SimResult``: ``x`` are float inputs (B, *input
  shape), quantized with ``snnc.ir.quantize_inputs`` (the IR's rounding, not the backend's own); ``schedule``
  a :class:`snnc.ir.Schedule`. It fills at least ``schedule``, ``timesteps``, ``counts`` (every
  population and input), ``readout`` (every readout's final value), ``phase`` and ``steps`` as the
  reference does, and ``spikes`` when ``record`` is true (same shapes and dtypes as the reference).
  With ``keep=Keep.READOUTS`` it keeps only the readouts (their final accumulators in ``readout`` and
  ``final_v``), ``max_abs_state``, ``phase``, ``steps`` (and ``ops`` where counted): no counts, final
  states or encoded values of inputs and populations (``SimResult.kept`` says so; asking for one raises
  :class:`NotKeptError`). A backend may drop them at the end (:func:`kept_part`); a fast one never
  materializes them. Everything is exact integers: a backend equals the reference or it is wrong.
* What it cannot run it refuses *before* any work with :class:`UnsupportedNetworkError` (one line
  naming the node or population, what it is, and what does run: the schedules or the models it
  supports). The CLI shows that line and exits with status 2.
* Backends import nothing from each other (only ``snnc.ir`` and this module); one with optional
  dependencies registers a ``"module:attribute"`` string, so importing this module never imports it,
  and raises :class:`BackendUnavailableError` saying how to install them.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from snnc.ir import Network, Population, Schedule, per_channel


class BackendError(Exception):
    """Base of backend errors."""


class BackendUnavailableError(BackendError):
    """The backend exists but its dependencies are missing; the message says how to install them."""


class UnknownBackendError(BackendError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnsupportedNetworkError(BackendError, NotImplementedError):
    """The backend cannot run this network (a neuron model, coding, node kind or schedule it has no
    implementation of); the message names the node and what does run."""


class DeviceError(BackendUnavailableError, ValueError):
    """The requested device does not exist here, or the backend does not run on it; the message names
    the device and the ones that do run."""


class SimulationError(RuntimeError):
    """A state left the width the run was asked to check (``state_bits``), or a projection's partial
    sums left the range the backend computes exactly; the message names the node."""


class Keep(enum.Enum):
    """What a run keeps in its :class:`SimResult` (``run(..., keep=...)``)."""

    ALL = "all"              # every node's counts and final state (the reference's full result)
    READOUTS = "readouts"    # the readouts' final accumulators, max_abs_state, ops: what a classifier returns


class NotKeptError(BackendError, KeyError):
    """A part of a :class:`SimResult` that the run did not keep (``keep=Keep.READOUTS``) was asked for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class NotKept(dict):
    """A result's mapping (counts, final states, encoded values) that holds only what the run kept:
    reading a node it dropped raises :class:`NotKeptError` naming the node and how to keep it."""

    def __init__(self, part: str, items=()):
        super().__init__(items)
        self.part = part

    def __missing__(self, key):
        raise NotKeptError(f"SimResult.{self.part}['{key}'] was not kept: the run kept readouts only "
                           f"(keep=Keep.READOUTS; it holds {sorted(self) or 'none'}); run with keep=Keep.ALL "
                           "to get every node's counts and final states")

    def __reduce__(self):   # pickled with its part (results cross process boundaries when sharded)
        return (NotKept, (self.part, dict(self)))


def check_keep(keep: Keep, record: bool) -> Keep:
    """``keep`` validated (a :class:`Keep`; recorded trains need the full result)."""
    if not isinstance(keep, Keep):
        raise TypeError(f"keep must be a snnc.backends.base.Keep ({', '.join(k.name for k in Keep)}), "
                        f"got {keep!r}")
    if record and keep is not Keep.ALL:
        raise ValueError("record=True keeps every spike train: it needs keep=Keep.ALL, not "
                         f"keep=Keep.{keep.name}")
    return keep


@dataclass
class NodeOps:
    """Operations a node caused over the batch, per step of its own T steps.

    ``events``: spikes emitted (population) or non-zero graded values sent (input) per step;
    ``sops_out``: synaptic operations its events caused per step (each event times the non-zero
    synapses it reaches, conv borders counted); ``sops_in``: synaptic operations delivered into it
    per step; ``updates``: neuron state updates over the run.
    """

    events: np.ndarray
    sops_out: np.ndarray
    sops_in: np.ndarray
    updates: int


@dataclass
class SimResult:
    """What a simulation produced.

    counts: node -> (B, *shape) int64. Populations: the sum of the messages sent over the T steps
        (spikes, net of negative ones; multi-threshold: graded values); inputs: T * x_int (rate) or
        x_int (differential coding: presented at step 1 only); graded units (pipelined only): the sum
        of their graded messages, = the max over each window of their source's sums (differential:
        of its encoded values; then also in ``encoded``), docs/ir.md "Graded max-pool unit".
    readout: readout node -> (B, *shape) int64 final accumulator value.
    spikes: population -> (T, B, *shape) int8 spike trains over the population's own T steps
        (values 0/1, or -1/0/1 for dual-threshold neurons; counts are net counts; a graded unit's
        messages as int64) (only with ``record=True``). In ``layerwise`` a population at depth d runs global steps
        (d-1)*T+1 .. d*T; ``phase`` gives d-1 for each population (0 for every one in pipelined).
        With mixed levels (``Population.timesteps``) a population's train has its own tau_p steps.
    final_v: population/readout -> (B, *shape) state after the last step (in the schedule's units).
    kept: ``Keep.ALL``, or ``Keep.READOUTS``: ``counts`` and ``encoded`` hold nothing and ``final_v`` the
        readouts only (:class:`NotKept` mappings: a dropped node raises :class:`NotKeptError`).
    """

    schedule: Schedule
    timesteps: int
    counts: dict[str, np.ndarray]
    readout: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray] | None = None
    final_v: dict[str, np.ndarray] = field(default_factory=dict)
    phase: dict[str, int] = field(default_factory=dict)
    max_abs_state: dict[str, int] = field(default_factory=dict)
    ops: dict[str, NodeOps] | None = None
    encoded: dict[str, np.ndarray] | None = None  # differential coding: population -> sum_t msg_t * R_t
    steps: dict[str, int] = field(default_factory=dict)  # population -> its steps when they differ from T (mixed L)
    mixed_latency: int = 0  # mixed L, layerwise: steps until the last population finishes (longest path)
    kept: Keep = Keep.ALL

    def __post_init__(self):
        if not isinstance(self.kept, Keep):
            raise TypeError(f"SimResult.kept must be a Keep, got {self.kept!r}")
        if self.kept is Keep.READOUTS:
            if self.spikes is not None:
                raise ValueError("a readout-only SimResult holds no spike trains")
            self.counts = NotKept("counts")
            self.encoded = NotKept("encoded") if self.encoded is not None else None
            self.final_v = NotKept("final_v", {k: v for k, v in self.final_v.items() if k in self.readout})

    def activation(self, net: Network, name: str) -> np.ndarray:
        """A population's value as the float ANN sees it: rate coding lambda*N/T per spike unit
        (lambda/2^(n-1) for multi-threshold), differential coding the encoded sum_t x_t/t."""
        pop = net.node(name)
        unit = per_channel(pop.real_threshold, pop.shape) / getattr(pop.neuron, "unit_divisor", 1)
        if self.encoded is not None:
            return unit * self.encoded[name] / net.coding.one
        return unit * self.counts[name] / self.steps.get(name, self.timesteps)

    def predictions(self, readout: str | None = None) -> np.ndarray:
        name = readout or next(iter(self.readout))
        r = self.readout[name]
        return r.reshape(r.shape[0], -1).argmax(axis=1)

    @property
    def latency_steps(self) -> int:
        if self.schedule is Schedule.LAYERWISE:
            if self.mixed_latency:  # mixed L: layers run back to back, each its own steps (longest path)
                return self.mixed_latency
            return self.timesteps * (max(self.phase.values(), default=0) + 1)
        return self.timesteps


def kept_part(res: SimResult, keep: Keep) -> SimResult:
    """``res`` with only what ``keep`` keeps (for a backend that computes everything anyway): ``res`` itself
    for ``Keep.ALL``."""
    if keep is Keep.ALL:
        return res
    return SimResult(res.schedule, res.timesteps, {}, res.readout, None, final_v=res.final_v, phase=res.phase,
                     max_abs_state=res.max_abs_state, ops=res.ops,
                     encoded=None if res.encoded is None else {}, steps=res.steps,
                     mixed_latency=res.mixed_latency, kept=Keep.READOUTS)


def train_dtype(pop: Population):
    """The dtype of a population's recorded train (``SimResult.spikes``): int8 for spikes and messages up
    to 127; int32 for multi-threshold messages 2^(n-1) > 127."""
    return np.int8 if getattr(pop.neuron, "unit_divisor", 1) <= 127 else np.int32


class Backend(Protocol):
    """What ``get_backend(name)`` returns (see the module docstring for the contract)."""

    name: str

    def run(self, net: Network, x, schedule: Schedule, record: bool = False, keep: Keep = Keep.ALL) -> SimResult:
        """Simulate ``net`` on float inputs ``x`` (B, *input shape); ``keep``: what the result holds."""


# name -> "module:attribute" of a factory taking keyword options only (``device``), imported on first
# use, or the factory itself
_REGISTRY: dict[str, Callable[..., Backend] | str] = {
    "reference": "snnc.backends.reference.backend:ReferenceBackend",
    "lava": "snnc.backends.lava.backend:LavaBackend",
    "torch": "snnc.backends.torch.backend:TorchBackend",
}
# how to install a backend whose dependencies are missing
_INSTALL = {
    "torch": "Install the CPU wheel with `pip install torch==2.13.0` (what `make setup` does; any other torch "
             "spec pulls CUDA packages), see docs/torch_backend.md.",
}
_DEFAULT_INSTALL = "Run `make setup` (or see docs/lava.md) to install it."
# the exact backends, fastest first: what ``default_backend`` tries
EXACT_FASTEST_FIRST = ("torch", "reference")


def register_backend(name: str, factory: Callable[..., Backend] | str) -> None:
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str, **options) -> Backend:
    """The backend registered as ``name``, built with ``options`` (``device="cuda"`` for torch)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownBackendError(f"unknown backend '{name}'; supported backends: {', '.join(available_backends())}")
    if isinstance(factory, str):
        mod, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend '{name}' cannot be loaded: {e}. {_INSTALL.get(name, _DEFAULT_INSTALL)}"
            ) from None
    return factory(**options)


def default_backend(net: Network | None, schedule: Schedule | str, device: str = "cpu") -> Backend:
    """The fastest exact backend that runs ``net`` in ``schedule`` on ``device``: torch when it is installed,
    the device exists and it supports the network, else the reference simulator (CPU only); ``net`` None:
    the fastest exact backend that runs on ``device`` at all. Raises
    ``DeviceError`` when no exact backend runs on ``device`` (the first one's reason: a CUDA device that
    is not here), else ``BackendUnavailableError`` naming why each one was passed over."""
    why: list[BackendError] = []
    for name in EXACT_FASTEST_FIRST:
        try:
            be = get_backend(name, device=device)
        except BackendError as e:
            why.append(e)
            continue
        supports = getattr(be, "supports", None)
        if net is None or supports is None or supports(net, schedule):
            return be
        why.append(UnsupportedNetworkError(f"backend '{name}' does not run this network in the "
                                           f"{Schedule(schedule).value} schedule"))
    if why and all(isinstance(e, DeviceError) for e in why):
        raise DeviceError(str(why[0]))
    raise BackendUnavailableError(f"no exact backend runs this network on device '{device}': "
                                  + "; ".join(map(str, why)))
