"""``TorchBackend``: the ``Backend`` protocol (``snnc.backends.base``) on torch, CPU or CUDA."""

from __future__ import annotations

import weakref

from snnc.backends.base import Keep, SimResult
from snnc.ir import Network, Schedule

from .runtime import resolve_device
from .simulator import PreparedNetwork, check_supported, simulate


class TorchBackend:
    """Exact simulation on torch. ``device``: "cpu" | "cuda" | "cuda:N"; ``num_threads``: torch CPU threads
    for its runs (None: as set); ``chunk_steps``: see ``simulate``.

    It keeps the last network's converted weights (a ``PreparedNetwork``), so running the same
    ``Network`` object again converts nothing; a network is treated as immutable (the IR's passes
    build new objects)."""

    name = "torch"
    batch_size = 256   # samples per run that `snnc simulate` gives it (steps are chunked to bound memory)

    def __init__(self, device="cpu", num_threads: int | None = None, chunk_steps: int | None = None):
        self.device = resolve_device(device)   # a CUDA device that is not here is refused now
        self.num_threads = num_threads
        self.chunk_steps = chunk_steps
        self._net_ref = None
        self._prepared: PreparedNetwork | None = None

    def prepared(self, net: Network) -> PreparedNetwork:
        if self._net_ref is None or self._net_ref() is not net:
            self._prepared = PreparedNetwork(net, self.device)
            self._net_ref = weakref.ref(net)
        return self._prepared

    def supports(self, net: Network, schedule: Schedule | str) -> bool:
        """Whether this backend runs ``net`` in ``schedule`` (the same networks as the reference)."""
        schedule = Schedule(schedule)
        try:
            net.check_schedule(schedule.value)
            check_supported(net, schedule)
        except (NotImplementedError, ValueError):
            return False
        return True

    def run(self, net: Network, x, schedule: Schedule, record: bool = False, keep: Keep = Keep.ALL) -> SimResult:
        return self.simulate(net, x, schedule, record=record, keep=keep)

    def simulate(self, net: Network, x, schedule: Schedule | str = Schedule.LAYERWISE, record: bool = False,
                 quantized: bool = False, state_bits: int | None = None, count_ops: bool = False,
                 keep: Keep = Keep.ALL) -> SimResult:
        """``snnc.backends.reference.simulate``'s signature and result."""
        return simulate(net, x, schedule, record=record, quantized=quantized, state_bits=state_bits,
                        count_ops=count_ops, keep=keep, num_threads=self.num_threads, chunk_steps=self.chunk_steps,
                        prepared=self.prepared(net))

    def report_extra(self) -> dict:
        return {"device": str(self.device), "num_threads": self.num_threads}
