"""The reference simulator as a registered backend (``get_backend("reference")``)."""

from __future__ import annotations

from snnc.backends.base import DeviceError, Keep, SimResult
from snnc.ir import Network, Schedule

from .simulator import simulate


class ReferenceBackend:
    """The numpy oracle; it runs on the CPU only (``device`` other than "cpu" is refused)."""

    name = "reference"
    batch_size = 256   # samples per run that `snnc simulate` gives it

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise DeviceError(f"backend 'reference' runs on the CPU only, not on device '{device}'; "
                              f"use --device cpu or --backend torch")
        self.device = "cpu"

    def run(self, net: Network, x, schedule: Schedule, record: bool = False, keep: Keep = Keep.ALL) -> SimResult:
        return simulate(net, x, schedule=schedule, record=record, keep=keep)

    def simulate(self, net: Network, x, schedule: Schedule | str = Schedule.LAYERWISE, record: bool = False,
                 quantized: bool = False, state_bits: int | None = None, count_ops: bool = False,
                 keep: Keep = Keep.ALL) -> SimResult:
        """``snnc.backends.reference.simulate`` (the same method as ``TorchBackend.simulate``)."""
        return simulate(net, x, schedule=schedule, record=record, quantized=quantized, state_bits=state_bits,
                        count_ops=count_ops, keep=keep)
