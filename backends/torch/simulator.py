"""``simulate`` on torch: the reference simulator's contract (same arguments, same ``SimResult``, field
for field and integer for integer), faster (docs/torch_backend.md).

    from snnc.backends.torch import simulate, TorchBackend
    res = simulate(net, x, "pipelined")                        # CPU
    res = TorchBackend(device="cuda").run(net, x, "layerwise")  # a GPU, where there is one

``PreparedNetwork`` holds the network's projections on a device with their weights converted once per
arithmetic; pass one to ``simulate(..., prepared=...)`` (``TorchBackend`` keeps one per network) to
run a network many times without converting its weights again.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.base import Keep, SimResult, SimulationError, check_keep
from snnc.ir import DifferentialCoding, Network, Schedule, as_int_inputs

from .graded import check_graded
from .layerwise import run_layerwise
from .linear import TorchProjection
from .neurons import firing_class, memory_format, stepper_class
from .opcount import OpCounter
from .pipelined import Pipelined
from .plan import ExactnessPlan, plan_network
from .runtime import exact_math, resolve_device, threads

MAX_CHUNK_ELEMENTS = 2**24   # default: a chunk of steps holds at most this many values of one layer


class PreparedNetwork:
    """A network's projections on one device (weights converted lazily, once per arithmetic)."""

    def __init__(self, net: Network, device="cpu", unfold_pools: bool = True):
        self.net = net
        self.device = resolve_device(device)
        self.projections = {p.name: TorchProjection(p, self.device, unfold_pools) for p in net.projections}

    def unfolded(self) -> dict[str, tuple[int, int]]:
        """Projections run as an exact window sum then a smaller kernel: name -> pooling block."""
        return {k: (v.unfold.ay, v.unfold.ax) for k, v in self.projections.items() if v.unfold is not None}


def check_supported(net: Network, schedule: Schedule) -> None:
    """Refuse, before any work, what the torch backend (like the reference) does not run; the messages
    name the population or unit and what is supported."""
    for pop in net.populations:
        if schedule is Schedule.LAYERWISE:
            firing_class(pop, net.coding)
        else:
            stepper_class(pop, net.coding)
    check_graded(net, schedule is Schedule.LAYERWISE)


def chunk_for(net: Network, batch: int, chunk_steps: int | None) -> int:
    if chunk_steps is not None:
        if int(chunk_steps) < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        return int(chunk_steps)
    largest = max(n.size for n in net.nodes)
    return max(1, MAX_CHUNK_ELEMENTS // max(1, batch * largest))


def simulate(
    net: Network,
    x,
    schedule: Schedule | str = Schedule.LAYERWISE,
    record: bool = False,
    quantized: bool = False,
    state_bits: int | None = None,
    count_ops: bool = False,
    keep: Keep = Keep.ALL,
    *,
    device="cpu",
    num_threads: int | None = None,
    chunk_steps: int | None = None,
    prepared: PreparedNetwork | None = None,
) -> SimResult:
    """Run ``net`` on a batch, exactly as ``snnc.backends.reference.simulate`` does.

    ``device``: "cpu" or "cuda[:N]"; ``num_threads``: torch CPU threads for this run (None: as set);
    ``chunk_steps``: steps simulated per batched chunk (None: as many as fit ``MAX_CHUNK_ELEMENTS``
    values of the largest layer); ``prepared``: a ``PreparedNetwork`` of ``net`` to reuse; ``keep``:
    ``Keep.READOUTS`` keeps the readouts, ``max_abs_state`` and ops only, and never builds the counts or
    final states of inputs and populations (``SimResult.kept``)."""
    check_keep(keep, record)
    schedule = Schedule(schedule)
    net.check_schedule(schedule.value)   # mixed L: layerwise only
    x_int = as_int_inputs(net, x, quantized)
    check_supported(net, schedule)
    if prepared is None:
        prepared = PreparedNetwork(net, device)
    elif prepared.net is not net:
        raise ValueError("prepared network was made for another network")
    dev = prepared.device
    x_max = {k: int(np.abs(v).max(initial=0)) for k, v in x_int.items()}
    plan = plan_network(net, schedule.value, x_max)
    batch = next(iter(x_int.values())).shape[0]
    K = chunk_for(net, batch, chunk_steps)
    with threads(num_threads), exact_math(dev):
        xt = {k: torch.as_tensor(np.asarray(v, dtype=np.int64)).to(dev) for k, v in x_int.items()}
        xt = {k: v.contiguous(memory_format=memory_format(dev, tuple(v.shape[1:]))) for k, v in xt.items()}
        counter = OpCounter(net, batch, dev, schedule is Schedule.PIPELINED) if count_ops else None
        if schedule is Schedule.LAYERWISE:
            res = run_layerwise(net, prepared.projections, plan, xt, dev, record, counter, K, keep)
        else:
            res = Pipelined(net, prepared.projections, plan, xt, dev, record, counter, K, keep).run()
        if counter is not None:
            steps = 1 if isinstance(net.coding, DifferentialCoding) else net.timesteps
            for node in net.inputs:   # a graded input value is sent every step it is presented, while non-zero
                counter.add_constant(node.name, steps, xt[node.name])
            res.ops = counter.ops
    if state_bits is not None:
        limit = 2 ** (state_bits - 1) - 1
        for name, m in res.max_abs_state.items():
            if m > limit:
                raise SimulationError(
                    f"node '{name}': state reached |v| = {m}, beyond the {state_bits}-bit state width"
                )
    return res


def exactness_plan(net: Network, schedule: Schedule | str, x=None, quantized: bool = False) -> ExactnessPlan:
    """The plan a run of ``net`` on ``x`` (or on any input in the quantizer's range) would use."""
    x_max = {}
    if x is not None:
        x_max = {k: int(np.abs(v).max(initial=0)) for k, v in as_int_inputs(net, x, quantized).items()}
    return plan_network(net, Schedule(schedule).value, x_max)
