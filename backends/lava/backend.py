"""Run an emitted network in Lava's CPU simulator and read it back as a reference ``SimResult``."""

from __future__ import annotations

import warnings

import numpy as np

from snnc.backends.base import DeviceError, Keep, SimResult, UnsupportedNetworkError, check_keep, kept_part
from snnc.ir import GRADED_UNITS, GradedFunctionUnit, Network, Population, Schedule, as_int_inputs, layerwise_latency

from .compat import ensure_lava
from .widths import INT32_CURRENT_LIMIT

RUN_TAG = "fixed_pt"


def run_build(lb, run_tag: str = RUN_TAG) -> None:
    """Run a LavaBuild for all its samples (``lb.num_steps`` Lava steps) and stop the runtime.

    Reads every probe's buffer into ``lb.recorded`` (name -> (B, period, *lava shape) int64).
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    anchor = next(iter(lb.inputs.values()))
    with warnings.catch_warnings():
        # Lava's model search execs every sibling .py file of processes.py as a top-level module;
        # the ones with relative imports fail harmlessly and Lava warns about each.
        warnings.filterwarnings("ignore", message="Cannot import module", category=UserWarning)
        anchor.run(condition=RunSteps(num_steps=lb.num_steps), run_cfg=Loihi2SimCfg(select_tag=run_tag))
    try:
        rec = {}
        for name, sink in lb.probes.items():
            data = np.asarray(sink.data.get())                       # (*shape, B*period)
            data = np.rint(np.moveaxis(data, -1, 0)).astype(np.int64)
            rec[name] = data.reshape((lb.batch, lb.period) + data.shape[1:])
        lb.recorded = rec
        refuse_wrapped_currents(lb)
    finally:
        anchor.stop()


def refuse_wrapped_currents(lb) -> None:
    """UnsupportedNetworkError naming the graded unit, when one sent a message large enough that a current
    it causes could leave Lava's int32 (its ``MessageGuard``): the run could differ from the reference."""
    for name, g in lb.guards.items():
        over = int(np.asarray(lb.processes[name].over.get()).max())
        if over:
            raise UnsupportedNetworkError(
                f"graded unit '{name}': it sent a message of magnitude {over}; through projection '{g.projection}' "
                f"(largest sum |w| << e = {g.row_abs_max}) a current could exceed {INT32_CURRENT_LIMIT}, the int32 "
                f"Lava's fixed_pt Dense/Sparse send (the largest message kept exact is {g.limit}); no exact Lava run. "
                "The reference simulator and the torch backend compute these currents in int64")


def readback(net: Network, lb, x_int: dict[str, np.ndarray], record: bool) -> SimResult:
    """The recorded sinks as the reference's ``SimResult``: int8 spike trains (-1/0/1 for
    dual-threshold populations, graded 0, +-1, ..., +-2^(n-1) for multi-threshold ones; the fixed_pt
    sinks are int32, so the sign survives; int32 trains where a message could exceed int8) and net
    counts (the sum of the train). Inputs count T * x_int, or x_int in differential coding (presented
    once), as in the reference."""
    from .emit import coding_emitter, from_lava, neuron_emitter

    T = net.timesteps
    steps = T if lb.schedule is Schedule.LAYERWISE else coding_emitter(net, lb.schedule).input_steps(T)
    counts = {k: steps * v for k, v in x_int.items()}
    spikes, readout, final_v = {}, {}, {}
    for node in net.ordered_nodes():
        if node.name not in lb.recorded:
            continue
        rec = lb.recorded[node.name]
        nd = len(node.shape)
        if isinstance(node, (Population, GRADED_UNITS)):
            s0 = lb.start[node.name] - 1
            n_t = net.steps(node) if lb.schedule is Schedule.LAYERWISE and isinstance(node, Population) else T
            train = from_lava(rec[:, s0:s0 + n_t], nd)                 # (B, T, *shape); mixed L: its own steps
            counts[node.name] = train.sum(axis=1)
            big = isinstance(node, GRADED_UNITS) or \
                neuron_emitter(node, net.coding, lb.schedule)[0].message_max(node) > 127
            wide = np.int64 if isinstance(node, GradedFunctionUnit) else np.int32 if big else np.int8
            spikes[node.name] = np.ascontiguousarray(np.moveaxis(train, 1, 0)).astype(wide)
        else:
            r = from_lava(rec[:, lb.end[node.name] - 1], nd)
            readout[node.name] = final_v[node.name] = r
    if lb.schedule is Schedule.LAYERWISE:
        depth = net.depth()
        phase = {p.name: depth[p.name] - 1 for p in net.populations}
    else:
        phase = {p.name: 0 for p in net.populations}
    mixed = net.mixed_steps if lb.schedule is Schedule.LAYERWISE else {}
    return SimResult(lb.schedule, T, counts, readout, spikes if record else None,
                     final_v=final_v, phase=phase, steps=mixed,
                     mixed_latency=layerwise_latency(net) if mixed else 0)


class LavaBackend:
    """``snnc`` backend "lava": emit with ``emit.build`` and run with ``Loihi2SimCfg(select_tag="fixed_pt")``."""

    name = "lava"

    def __init__(self, run_tag: str = RUN_TAG, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise DeviceError(f"backend 'lava' runs on the CPU only, not on device '{device}'; use --device cpu")
        ensure_lava()
        self.run_tag = run_tag

    def report_extra(self) -> dict:
        """Facts ``snnc verify --json`` adds to its report."""
        from .compat import lava_version

        return {"lava_version": lava_version(), "run_config": f'Loihi2SimCfg(select_tag="{self.run_tag}")'}

    def run(self, net: Network, x, schedule: Schedule | str = Schedule.PIPELINED, record: bool = False,
            quantized: bool = False, keep: Keep = Keep.ALL) -> SimResult:
        from .emit import build

        check_keep(keep, record)
        schedule = Schedule(schedule)
        x_int = as_int_inputs(net, x, quantized)
        lb = build(net, x_int, schedule, quantized=True, tag=self.run_tag)
        run_build(lb, self.run_tag)
        res = readback(net, lb, x_int, record)
        return kept_part(res, keep)   # Lava reads every probe anyway
