"""Command-layer compositions for NIR and its clients: export a bundle (with reference data), verify it
in Sinabs, count it with NeuroBench (docs/interop.md).

This module belongs with the commands (it imports backends: the NIR export backend, the reference
simulator, the Sinabs backend); no compiler stage imports it. The backends stay apart:
the NIR export writes a file, the Sinabs backend reads that file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from snnc.backends.base import Keep, SimResult, check_keep, kept_part
from snnc.backends.nir import NirExport, ReferenceRun, export_nir, write_reference_data
from snnc.backends.reference import simulate
from snnc.ir import Network, Schedule, SumPool2d, fanout, quantize_inputs

from ..errors import SnncError
from .verify import BackendVerifyReport, verify_against_backend


def data_path_for(out: str | os.PathLike) -> Path:
    """Where ``snnc export --with-data`` writes the reference run: ``net.nir`` -> ``net.data.nir``."""
    out = Path(out)
    return out.with_name(out.stem + ".data" + (out.suffix or ".nir"))


def export_bundle(net: Network, out: str | os.PathLike, inexact: bool = False, x: np.ndarray | None = None,
                  data_out: str | os.PathLike | None = None) -> tuple[NirExport, Path | None]:
    """Write ``net`` as NIR to ``out``; with inputs ``x``, also the reference simulator's pipelined run
    on them (the schedule a NIR graph means) to ``data_out`` (``nir.write_data``)."""
    exp = export_nir(net, out, inexact=inexact)
    if x is None:
        return exp, None
    ref = simulate(net, x, Schedule.PIPELINED, record=True)
    run = ReferenceRun(quantize_inputs(net, x), ref.spikes, ref.readout)
    path = write_reference_data(exp, data_out or data_path_for(out), run, net.timesteps)
    return exp, path


class SinabsViaNir:
    """A backend for ``verify_against_backend``: export to a NIR file, read it back with ``nir.read``,
    run it in Sinabs with snnc's semantics, return what it did as a ``SimResult``."""

    name = "sinabs"

    def __init__(self):
        from snnc.backends.sinabs import require_sinabs

        require_sinabs()
        self.extra: dict = {}

    def report_extra(self) -> dict:
        return dict(self.extra)

    def run(self, net: Network, x, schedule: Schedule | str = Schedule.PIPELINED, record: bool = False,
            keep: Keep = Keep.ALL) -> SimResult:
        import nir
        import sinabs

        from snnc.backends.sinabs import SinabsNetwork

        check_keep(keep, record)
        if Schedule(schedule) is not Schedule.PIPELINED:
            raise SnncError("a NIR graph steps every node every step: Sinabs runs the pipelined schedule only "
                            "(give --schedule pipelined)")
        x_int = quantize_inputs(net, x)
        if len(x_int) != 1:
            raise SnncError("the Sinabs backend feeds one input; this network has several")
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "net.nir"
            exp = export_nir(net, path)
            sn = SinabsNetwork(nir.read(str(path)))
            out = sn.run(next(iter(x_int.values())))
        T = net.timesteps
        counts = {k: T * v for k, v in x_int.items()}
        counts.update({k: v.astype(np.int64).sum(axis=0) for k, v in out.spikes.items()})
        self.extra = {"sinabs_version": sinabs.__version__, "nir_version": nir.__version__,
                      "nir_float32_bound": exp.float32_bound, "sinabs_semantics": out.semantics,
                      "nirtorch_order_replaced": sn.order_fixed}
        res = SimResult(Schedule.PIPELINED, T, counts, out.readout, out.spikes if record else None,
                        phase={p.name: 0 for p in net.populations})
        return kept_part(res, keep)


def verify_against_sinabs(net: Network, x: np.ndarray) -> BackendVerifyReport:
    """Every spike of every step of every population and every readout value, reference vs Sinabs."""
    return verify_against_backend(net, x, SinabsViaNir(), Schedule.PIPELINED)


@dataclass
class NeuroBenchComparison:
    """snnc's counts (reference simulator, pipelined) beside NeuroBench's (on the Sinabs module)."""

    samples: int
    timesteps: int
    schedule: str
    snnc_sops: int                  # all synaptic operations (events x non-zero synapses reached)
    snnc_input_sops: int            # ... caused by graded input values
    snnc_spike_sops: int            # ... caused by spikes
    snnc_sumpool_sops: int          # ... through SumPool2d projections (NeuroBench does not count pooling)
    snnc_spikes: int
    snnc_activations: int           # neurons x steps x samples
    neurobench: dict = field(default_factory=dict)
    sops_agree: bool = False        # NeuroBench AC + MAC == snnc SOPs - SumPool SOPs
    macs_are_input: bool = False    # NeuroBench MAC == snnc's graded-input SOPs
    spikes_agree: bool = False      # the spike count NeuroBench's sparsity implies, batch by batch, == snnc's

    @property
    def snnc_activation_sparsity(self) -> float:
        return (self.snnc_activations - self.snnc_spikes) / self.snnc_activations if self.snnc_activations else 0.0

    @property
    def agree(self) -> bool:
        return self.sops_agree and self.spikes_agree

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snnc_activation_sparsity"] = self.snnc_activation_sparsity
        d["agree"] = self.agree
        return d


def neurobench_comparison(net: Network, x: np.ndarray, batch_size: int = 64) -> NeuroBenchComparison:
    """NeuroBench's SynapticOperations and ActivationSparsity on the Sinabs module of ``net``'s NIR export,
    and snnc's own counts on the same data (docs/interop.md, "NeuroBench")."""
    from snnc.backends.sinabs.neurobench import neurobench_counts

    if net.mixed_steps:
        raise SnncError("a network with per-layer steps runs layerwise only; NeuroBench runs the NIR graph pipelined")
    x_int = quantize_inputs(net, x)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "net.nir"
        export_nir(net, path)
        nb = neurobench_counts(path, next(iter(x_int.values())), batch_size=batch_size)
    sops = inp = pool = spikes = 0
    own = []   # spikes per batch, the batches NeuroBench saw
    for i in range(0, len(x), batch_size):
        ref = simulate(net, x[i:i + batch_size], Schedule.PIPELINED, record=True, count_ops=True)
        sops += sum(int(o.sops_out.sum()) for o in ref.ops.values())
        inp += sum(int(ref.ops[n.name].sops_out.sum()) for n in net.inputs)
        own.append(sum(int(np.count_nonzero(ref.spikes[p.name])) for p in net.populations))
        spikes += own[-1]
        for p in net.projections:
            if isinstance(p, SumPool2d):
                src = ref.spikes.get(p.source)
                ev = (src != 0).sum(axis=(0, 1)) if src is not None else \
                    net.timesteps * (quantize_inputs(net, x[i:i + batch_size])[p.source] != 0).sum(axis=0)
                pool += int((ev.reshape(p.in_shape) * fanout(p)).sum())
    acts = sum(p.size for p in net.populations) * net.timesteps * len(x)
    return NeuroBenchComparison(
        len(x), net.timesteps, "pipelined", sops, inp, sops - inp, pool, spikes, acts, nb.to_dict(),
        sops_agree=nb.ac_total + nb.mac_total == sops - pool, macs_are_input=nb.mac_total == inp,
        spikes_agree=nb.nonzero_per_batch == own)


# ---- the commands' NIR parts (cli.py declares the options, these do the work) -----------------------

NIR_OPTIONS = ("nir_reset", "nir_compare", "nir_dt")
ONNX_ONLY_OPTIONS = ("neuron", "v0", "calib", "thresholds", "threshold_scale", "threshold_scope", "coding",
                     "frac_bits", "neg_divisor", "stop_after", "dump")


def option_flags(names) -> str:
    return ", ".join(f"--{n.replace('_', '-')}" for n in names)


def compile_nir_command(model: str, output: str, onnx_options_given: list[str], *, target: str, profile, timesteps,
                        schedule: str, schedule_given: bool, input_range, chips, system, nir_reset, nir_compare,
                        nir_dt) -> list[str]:
    """``snnc compile net.nir``: import a NIR graph (compiler.frontend.nir_loader) into a bundle; the
    summary lines to print. ONNX-only options given on the command line are refused by name."""
    from ..api import compile_nir_to_file
    from ..config import CompileConfig
    from ..frontend.nir_loader import NirReading

    if onnx_options_given:
        verb = "does" if len(onnx_options_given) == 1 else "do"
        raise SnncError(f"{option_flags(onnx_options_given)} {verb} not apply to a NIR graph (its neurons are in the "
                        "file); a NIR import takes --target, --profile, --timesteps, --schedule, --input-range, "
                        "--chips, --system, --nir-reset, --nir-compare, --nir-dt, --timings")
    if not schedule_given:
        schedule = "pipelined"  # what a NIR graph means: every node steps every step
    reading = NirReading(reset=nir_reset, compare={"ge": ">=", "gt": ">"}.get(nir_compare), timesteps=timesteps,
                         dt=nir_dt, input_range=input_range)
    cfg = CompileConfig(target=target, timesteps=timesteps, schedule=schedule, chips=chips, system=system,
                        profile=profile)
    net = compile_nir_to_file(model, output, cfg, reading)
    rec = net.metadata["nir_import"]
    return [f"imported {model} -> {output}: {len(net.populations)} populations, "
            f"{sum(p.size for p in net.populations)} neurons, {sum(p.num_synapses for p in net.projections)} "
            f"synapses, T={net.timesteps}, reset {rec['reset']}, spike at v {rec['compare']} threshold"
            + (" (an snnc export: its bundle restored)" if rec["snnc_export"] else "")
            + (f"; scaled by 2^k: {rec['scale_bits']}" if rec["scale_bits"] else "")]


def format_sinabs_report(bundle, rep: BackendVerifyReport) -> str:
    ex = rep.extra
    lines = [f"verify {bundle} against sinabs {ex.get('sinabs_version')} (NIR {ex.get('nir_version')} export, "
             f"schedule pipelined), {rep.samples} samples: {rep.spikes_compared} spikes over "
             f"{rep.steps_compared} population-steps compared, {rep.mismatches} mismatches"
             + (f"; first at {rep.first_mismatch}" if rep.first_mismatch else "")]
    if ex.get("nirtorch_order_replaced"):
        lines.append("  note: nirtorch's depth-first node order is not topological on this graph; run in topological order")
    lines.append(f"  {'IDENTICAL' if rep.exact else 'DIFFERENT'} (reference {rep.seconds_reference:.3f}s, "
                 f"sinabs {rep.seconds_backend:.3f}s)")
    return "\n".join(lines)


def verify_sinabs_command(net: Network, x: np.ndarray, schedule: str | None) -> BackendVerifyReport:
    """``snnc verify --against sinabs``: export to NIR, run in Sinabs, compare every spike."""
    if schedule is not None and schedule != "pipelined":
        raise SnncError("--against sinabs: a NIR graph steps every node every step; only --schedule pipelined applies")
    net.check_schedule(Schedule.PIPELINED)
    return verify_against_backend(net, x, SinabsViaNir(), Schedule.PIPELINED)


def export_summary_lines(net: Network, output, exp: NirExport, dpath: Path | None, samples: int) -> list[str]:
    lines = [f"wrote {output}: NIR graph of {len(exp.graph.nodes)} nodes, {len(exp.graph.edges)} edges, "
             f"T={net.timesteps}, " + ("exact" if exp.exact else f"NOT exact ({len(exp.reasons)} reasons in snnc.inexact)")
             + f"; float32 values up to {exp.float32_bound:,} (exact below 2^24 = 16,777,216)"]
    lines += [f"  not exact: {r}" for r in exp.reasons]
    if dpath is not None:
        lines.append(f"wrote {dpath}: reference spike trains of {samples} samples (pipelined)")
    return lines


def format_neurobench(nb: NeuroBenchComparison) -> str:
    n, d = nb.samples, nb.neurobench
    return "\n".join([
        f"\nNeuroBench {d['neurobench_version']} on the NIR export in Sinabs, schedule pipelined, T={nb.timesteps}, "
        f"{n} samples; per sample:",
        f"  {'':<22} {'snnc':>14} {'NeuroBench':>14}",
        f"  {'synaptic ops':<22} {nb.snnc_sops / n:>14,.1f} {(d['ac_total'] + d['mac_total']) / n:>14,.1f}"
        f"   (NeuroBench: ACs {d['effective_acs']:,.1f} + MACs {d['effective_macs']:,.1f})",
        f"  {'  from graded input':<22} {nb.snnc_input_sops / n:>14,.1f} {d['effective_macs']:>14,.1f}   "
        "(NeuroBench counts a non-binary input as MACs)",
        f"  {'  through sum-pools':<22} {nb.snnc_sumpool_sops / n:>14,.1f} {0.0:>14,.1f}   "
        "(NeuroBench does not count pooling)",
        f"  {'activation sparsity':<22} {nb.snnc_activation_sparsity:>14.6f} {d['activation_sparsity']:>14.6f}",
        f"  synaptic ops {'AGREE' if nb.sops_agree else 'DIFFER'} (NeuroBench AC + MAC = snnc SOPs - sum-pool SOPs: "
        f"{d['ac_total'] + d['mac_total']:,} vs {nb.snnc_sops - nb.snnc_sumpool_sops:,}); spike counts "
        f"{'AGREE' if nb.spikes_agree else 'DIFFER'} in every batch ({nb.snnc_spikes:,} spikes)"])
