"""The ``snnc`` command line: a thin wrapper over the library (compiler.api, compiler.verify, backends).

Every user error becomes one readable line on stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click
import numpy as np

from snnc import __version__
from snnc.backends import BackendError, get_backend
from snnc.backends.reference import Schedule
from snnc.ir import BundleError, DualThreshold, IRError, MultiThreshold, load_with_extras

from .config import CodingKind, CompileConfig, NeuronKind, ThresholdScope, V0Mode, parse_neuron_spec
from .errors import SnncError
from .targets import builtin_targets

log = logging.getLogger("snnc")

SCHEDULES = click.Choice([s.value for s in Schedule])
NEURONS = click.Choice([n.value for n in NeuronKind])
V0S = click.Choice([m.value for m in V0Mode])


def _user_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SnncError, IRError, BackendError, ValueError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    return wrapper


def _load_bundle(path):
    try:
        return load_with_extras(path)
    except BundleError as e:
        raise SnncError(str(e)) from None


def _progress(total: int, label: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="sample", disable=None, file=sys.stderr, leave=False)
    return bar


@click.group()
@click.version_option(__version__, prog_name="snnc")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """snnc: compile quantized ANNs (ONNX) into integer spiking networks for neuromorphic targets."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", default="loihi", show_default=True,
              help=f"Built-in target ({', '.join(builtin_targets())}) or a target profile .toml file.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="Bundle to write (.snnc).")
@click.option("--timesteps", type=int, default=None,
              help="T; default: the model's quantization levels L (T = L, exact). T != L rescales: levels theta/T.")
@click.option("--neuron", default="if", show_default=True,
              help="if: integrate-and-fire, soft reset; dual-threshold: paper 000's neuron with negative spikes; "
                   "multi-threshold:N: paper 004's neuron with N thresholds per sign (plain ReLU nets, with --calib).")
@click.option("--v0", type=V0S, default="auto", show_default=True,
              help="Initial potential: auto = matched to the quantizer (floor 0, round theta/2, ceil theta), or zero|half|full.")
@click.option("--calib", type=click.Path(dir_okay=False), default=None,
              help="Calibration .npz (x): thresholds of a plain ReLU net; firing rates for chip placement.")
@click.option("--thresholds", default="iterate", show_default=True,
              help="Plain ReLU thresholds from --calib: max | percentile:Q | iterate (paper 004, Algorithm 1).")
@click.option("--threshold-scale", type=float, default=1.0, show_default=True, help="Paper 004's c: thresholds times c.")
@click.option("--threshold-scope", type=click.Choice([c.value for c in ThresholdScope]), default="channel",
              show_default=True, help="Plain ReLU thresholds: one per output channel (paper 004) or one per layer.")
@click.option("--coding", type=click.Choice([c.value for c in CodingKind]), default="rate", show_default=True,
              help="rate, or differential (paper 004; multi-threshold neurons).")
@click.option("--frac-bits", default="auto", show_default=True,
              help="Differential coding: fractional bits F of the fixed-point 1/t (0..30), or auto (F balanced "
                   "against the weight bits in the state width) or auto:K (largest F keeping weights >= K bits).")
@click.option("--neg-divisor", type=click.IntRange(min=1), default=1000, show_default=True,
              help="dual-threshold: negative threshold theta' = -theta/N (integer form -ceil(Theta/N)).")
@click.option("--schedule", type=SCHEDULES, default="layerwise", show_default=True, help="Default schedule stored in the bundle.")
@click.option("--input-range", default=None,
              help="lo,hi of the float input, quantized to the target's input bits [default: the model's own input "
                   "quantizer (QDQ/QONNX) if it has one, else 0,1].")
@click.option("--chips", type=click.IntRange(min=1), default=None,
              help="At most N chips (default: as many as the network needs).")
@click.option("--system", default=None, help="A known system of the target (its chip count bounds the placement), "
              "e.g. kapoho_bay, nahuku32, pohoiki_springs (loihi); kapoho_point, hala_point (loihi2).")
@click.option("--profile", type=click.Path(dir_okay=False), default=None,
              help="A .toml with your own limits, laid over the target's profile (only the keys it sets).")
@click.option("--nir-reset", type=click.Choice(["subtract", "zero"]), default=None,
              help="NIR input: how its neurons reset (default: the file's snnc metadata, else required; zero is refused).")
@click.option("--nir-compare", type=click.Choice(["ge", "gt"]), default=None,
              help="NIR input: spike at v >= threshold (ge, Sinabs) or v > threshold (gt, NIR spec); default: snnc metadata, else required.")
@click.option("--nir-dt", type=float, default=None,
              help="NIR input: the forward-Euler step of IF r, LIF and CubaLIF (default: the graph's 'dt', else 1).")
@_user_errors
def compile(model, target, output, timesteps, neuron, v0, calib, thresholds, threshold_scale, threshold_scope,  # noqa: A001
            coding, frac_bits, neg_divisor, schedule, input_range, chips, system, profile, nir_reset, nir_compare,
            nir_dt):
    """Compile an ONNX MODEL (or import a NIR graph, MODEL.nir) into a spiking-network bundle."""
    from .api import compile_to_file, is_nir_file

    if is_nir_file(model):
        return _compile_nir(model, output, target, profile, timesteps, schedule, input_range, chips, system,
                            nir_reset, nir_compare, nir_dt)
    nir_given = [f"--{n.replace('_', '-')}" for n in ("nir_reset", "nir_compare", "nir_dt")
                 if click.get_current_context().get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]
    if nir_given:
        raise SnncError(f"{', '.join(nir_given)} apply to NIR graphs; '{model}' is not a NIR file")

    kind, n = parse_neuron_spec(neuron)
    neuron, mt_n = kind.value, (n or 4)
    if neuron == NeuronKind.MULTI_THRESHOLD.value and schedule == "layerwise":
        schedule = "pipelined"  # multi-threshold neurons run pipelined (docs/ir.md)

    rng = _parse_input_range(input_range)
    cfg = CompileConfig(target=target, timesteps=timesteps, schedule=schedule, input_range=rng,
                        neuron=neuron, v0=v0, neg_divisor=neg_divisor, chips=chips, system=system, profile=profile,
                        calibration_data=calib, thresholds=thresholds, threshold_scale=threshold_scale, mt_n=mt_n,
                        threshold_scope=threshold_scope, coding=coding, frac_bits=frac_bits)
    out = Path(output)
    if not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    net = compile_to_file(model, out, cfg)
    n_neurons = sum(p.size for p in net.populations)
    n_syn = sum(p.num_synapses for p in net.projections)
    mixed = net.metadata.get("mixed_levels")
    lv = (f"mixed L {sorted(set(mixed.values()))}: each layer runs its own L steps, layerwise" if mixed
          else f"L={net.metadata['levels']}")
    click.echo(f"compiled {model} -> {out}: {len(net.populations)} populations, {n_neurons} neurons, "
               f"{n_syn} synapses, T={net.timesteps} ({lv}), neuron {cfg.neuron.value}"
               + (f":{cfg.mt_n}, coding {cfg.coding.value}" if cfg.neuron is NeuronKind.MULTI_THRESHOLD else "")
               + f", v0 {cfg.v0.value}, target {cfg.target}")
    pl = net.metadata.get("placement")
    if pl:
        click.echo(f"placed on {pl['cores_used']:,} cores, {pl['chips_used']:,} chip(s) "
                   f"(lower bound {pl['lower_bound_cores']:,} cores); see: snnc map {out}")


_ONNX_ONLY = ("neuron", "v0", "calib", "thresholds", "threshold_scale", "threshold_scope", "coding", "frac_bits",
              "neg_divisor")


def _compile_nir(model, output, target, profile, timesteps, schedule, input_range, chips, system, nir_reset,
                 nir_compare, nir_dt) -> None:
    """``snnc compile net.nir``: import a NIR graph (compiler.frontend.nir_loader) into a bundle."""
    from .api import compile_nir_to_file
    from .frontend.nir_loader import NirReading

    ctx = click.get_current_context()
    given = [f"--{n.replace('_', '-')}" for n in _ONNX_ONLY
             if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise SnncError(f"{', '.join(given)} do not apply to a NIR graph (its neurons are in the file); "
                        "a NIR import takes --target, --profile, --timesteps, --schedule, --input-range, --chips, "
                        "--system, --nir-reset, --nir-compare, --nir-dt")
    if ctx.get_parameter_source("schedule") is not click.core.ParameterSource.COMMANDLINE:
        schedule = "pipelined"  # what a NIR graph means: every node steps every step
    rng = None
    if input_range is not None:
        lo, hi = _parse_input_range(input_range)
        rng = (lo, hi)
    reading = NirReading(reset=nir_reset, compare={"ge": ">=", "gt": ">"}.get(nir_compare), timesteps=timesteps,
                         dt=nir_dt, input_range=rng)
    cfg = CompileConfig(target=target, timesteps=timesteps, schedule=schedule, chips=chips, system=system,
                        profile=profile)
    out = Path(output)
    if not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    net = compile_nir_to_file(model, out, cfg, reading)
    rec = net.metadata["nir_import"]
    click.echo(f"imported {model} -> {out}: {len(net.populations)} populations, "
               f"{sum(p.size for p in net.populations)} neurons, {sum(p.num_synapses for p in net.projections)} "
               f"synapses, T={net.timesteps}, reset {rec['reset']}, spike at v {rec['compare']} threshold"
               + (" (an snnc export: its bundle restored)" if rec["snnc_export"] else "")
               + (f"; scaled by 2^k: {rec['scale_bits']}" if rec["scale_bits"] else ""))


def _print_float_verify(bundle, rep, rnd: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
        return
    click.echo(f"verify {bundle} against the float ANN (training-free network, {rep.coding}, T={rep.timesteps}), "
               f"{rep.samples} samples" + (" (random inputs)" if rnd else ""))
    click.echo("  no quantized ANN to be exact against: per-layer errors and predictions are measured, not demanded")
    click.echo(f"  {'layer':<10} {'ReLU':<16} {'compared':>10} {'|err|/theta':>12} {'rel rms':>8}")
    for L in rep.layers:
        click.echo(f"  {L.name:<10} {L.relu[:16]:<16} {L.compared:>10} {L.mean_abs_error:>12.5f} {L.rel_rms_error:>8.4f}")
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    click.echo(f"  accuracy: snn {fmt(rep.accuracy['snn'])}, float ANN {fmt(rep.accuracy['ann_float'])}; "
               f"prediction agreement {fmt(rep.prediction_agreement['snn_vs_ann_float'])}")
    click.echo(f"  {rep.spikes_per_sample:.1f} spikes and {rep.sops_per_sample:.0f} synaptic ops per sample")


def _parse_input_range(text: str | None) -> tuple[float, float] | None:
    """``--input-range lo,hi`` -> (lo, hi); None (not given) stays None (the model's own quantizer)."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise SnncError(f"--input-range must be 'lo,hi' (two numbers), got '{text}'") from None
    return lo, hi


def _summ(a) -> str:
    a = np.asarray(a)
    if a.ndim == 0 or a.size == 1:
        return str(a.reshape(-1)[0])
    return f"{a.min()}..{a.max()} ({a.size} ch)"


def _inspect_dict(net, extras) -> dict:
    from snnc.ir import Input, Population, Readout

    nodes = []
    for n in net.ordered_nodes():
        d = {"name": n.name, "type": type(n).__name__, "shape": list(n.shape)}
        if isinstance(n, Input):
            d.update(scale=n.scale, qmin=n.qmin, qmax=n.qmax)
        if isinstance(n, Population):
            d.update(neuron=type(n.neuron).__name__, threshold=_summ(n.threshold), v0=_summ(n.v0),
                     bias=_summ(n.bias), levels=n.levels, real_threshold=_summ(np.round(n.real_threshold, 6)))
            if n.timesteps is not None:
                d.update(timesteps=n.timesteps)
        if isinstance(n, Readout):
            d.update(v0=_summ(n.v0), bias=_summ(n.bias), scale=n.scale)
        nodes.append(d)
    projs = [{"name": p.name, "type": type(p).__name__, "source": p.source, "target": p.target,
              "weight_shape": list(p.weight.shape), "weight_range": [int(p.weight.min()), int(p.weight.max())],
              "exponent": p.exponent, "synapses": p.num_synapses} for p in net.projections]
    return {"timesteps": net.timesteps, "nodes": nodes, "projections": projs, "metadata": net.metadata,
            "embedded": sorted(extras)}


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def inspect(bundle, as_json):
    """Print a compiled bundle readably."""
    net, extras = _load_bundle(bundle)
    d = _inspect_dict(net, extras)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    md = net.metadata
    cfg = md.get("config", {})
    click.echo(f"bundle {bundle}  (snnc {md.get('snnc_version', '?')}, target {cfg.get('target', '?')})")
    click.echo(f"source model: {md.get('source_model', {}).get('path', '?')}  sha256 {md.get('source_model', {}).get('sha256', '?')[:16]}")
    L = md.get("levels")
    rel = "" if L is None else (" = L (exact)" if L == net.timesteps else f", L = {L}: rates rescaled, levels theta/T")
    if net.mixed_steps:
        rel = (f" = the largest L; mixed levels: each population runs its own L steps "
               f"({', '.join(f'{k}: {v}' for k, v in net.mixed_steps.items())}), layerwise only (exact)")
    click.echo(f"timesteps T = {net.timesteps}{rel}; default schedule {cfg.get('schedule', '?')}; "
               f"neuron {cfg.get('neuron', '?')}; v0 {cfg.get('v0', '?')}")
    if cfg.get("neuron") == "multi-threshold":
        from snnc.ir import DifferentialCoding

        coding = (f"differential, F = {net.coding.frac_bits} (frac_bits {cfg.get('frac_bits')})"
                  if isinstance(net.coding, DifferentialCoding) else "rate")
        click.echo(f"multi-threshold n = {cfg.get('mt_n')}; coding {coding}; thresholds {cfg.get('thresholds')} "
                   f"per {cfg.get('threshold_scope', 'layer')}, scale {cfg.get('threshold_scale')}")
    click.echo("\nnodes:")
    click.echo(f"  {'name':<10} {'type':<11} {'shape':<13} details")
    for n in d["nodes"]:
        det = {k: v for k, v in n.items() if k not in ("name", "type", "shape")}
        click.echo(f"  {n['name']:<10} {n['type']:<11} {str(tuple(n['shape'])):<13} " + ", ".join(f"{k}={v}" for k, v in det.items()))
    click.echo("\nprojections:")
    for p in d["projections"]:
        click.echo(f"  {p['name']:<18} {p['type']:<9} W{tuple(p['weight_shape'])} in [{p['weight_range'][0]}, {p['weight_range'][1]}] "
                   f"<< {p['exponent']}, {p['synapses']} synapses")
    if md.get("layers"):
        click.echo("\nlayers (from the ONNX model):")
        for L in md["layers"]:
            click.echo(f"  {L['layer']:<10} linear={L['onnx_linear']}  activation={L['onnx_activation']}  "
                       f"Q={L['quantizer']}  L={L['levels']}  lambda={L['lambda'] if L['lambda'] is None else round(L['lambda'], 5)}"
                       + (f"  V0={L['v0_mode']}{'' if L['v0_matched'] else ' (not matched to Q)'}" if L.get('v0_mode') else ""))


def _inputs(net, data, samples, seed=0):
    from .data import load_data, random_inputs

    if data:
        x, y = load_data(data, net, samples)
        return x, y, False
    n = samples or 64
    click.echo(f"no --data given: using {n} random inputs (uniform over the input range, seed {seed})", err=True)
    return random_inputs(net, n, seed), None, True


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--against", type=click.Choice(["ann", "lava", "sinabs"]), default="ann", show_default=True,
              help="ann: the quantized ANN; lava: Lava's simulator; sinabs: the NIR export run in Sinabs (pipelined).")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help=".npz with x (and y).")
@click.option("--schedule", type=SCHEDULES, default=None, help="Default: the bundle's schedule.")
@click.option("--samples", type=int, default=None, help="Use only the first N samples.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="ONNX model, if not embedded in the bundle.")
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def verify(bundle, against, data, schedule, samples, model, as_json):
    """Prove the compiled SNN equals the quantized ANN (layerwise, T = L) or a backend equals the reference.

    Exit status 0 only when exact; with T != L the rate errors are reported and the status is 0
    unless a layerwise SNN differs from its own integer network.
    """
    from .verify import verify_against_ann, verify_against_backend
    from .verify_float import is_training_free, verify_training_free

    net, extras = _load_bundle(bundle)
    if against == "sinabs":
        return _verify_sinabs(bundle, net, data, schedule, samples, as_json)
    sched = Schedule(schedule or net.metadata.get("config", {}).get("schedule", "layerwise"))
    net.check_schedule(sched)  # mixed L: layerwise only, refused before any data is read
    backend = None if against == "ann" else get_backend(against)
    x, y, rnd = _inputs(net, data, samples)
    if against == "ann":
        mb = Path(model).read_bytes() if model else (bytes(extras["onnx_model"]) if "onnx_model" in extras else None)
        if mb is None:
            click.echo("warning: the source model is not embedded and --model was not given: float ANN skipped", err=True)
        bar = _progress(len(x), "verify")
        if is_training_free(net):  # no quantized ANN: measured against the float ANN, not proven
            rep = verify_training_free(net, x, y, mb, random_inputs=rnd, progress=bar.update)
            bar.close()
            _print_float_verify(bundle, rep, rnd, as_json)
            sys.exit(0)
        rep = verify_against_ann(net, x, y, sched, mb, random_inputs=rnd, progress=bar.update)
        bar.close()
        if as_json:
            click.echo(json.dumps(rep.to_dict(), indent=2))
        else:
            click.echo(f"verify {bundle} against the quantized ANN (L={rep.levels}), schedule {rep.schedule}, "
                       f"T={rep.timesteps}, {rep.samples} samples" + (" (random inputs)" if rnd else ""))
            if rep.comparison == "rates":
                click.echo(f"  T != L: comparing rates lambda*N/T with activations lambda*M/L (not demanding equality)")
            click.echo(f"  {'layer':<10} {'compared':>10} {'mismatched':>11} {'unevenness':>11} {'rate err':>9}")
            for L in rep.layers:
                click.echo(f"  {L.name:<10} {L.compared:>10} {L.mismatched:>11} {L.unevenness_error:>11.6f} {L.rate_error:>9.5f}")
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            click.echo(f"  accuracy: snn {fmt(rep.accuracy['snn'])}, integer ANN {fmt(rep.accuracy['ann_int'])}, float ANN {fmt(rep.accuracy['ann_float'])}")
            click.echo(f"  prediction agreement: snn vs integer ANN {fmt(rep.prediction_agreement['snn_vs_ann_int'])}, "
                       f"integer vs float ANN {fmt(rep.prediction_agreement['ann_int_vs_ann_float'])}")
            click.echo(f"  {rep.spikes_per_sample:.1f} spikes and {rep.sops_per_sample:.0f} synaptic ops per sample")
            if rep.comparison == "levels":
                click.echo(f"  {'EXACT' if rep.exact else 'NOT EXACT'}: {rep.neurons_mismatched} of {rep.neurons_compared} neuron counts differ")
            else:
                click.echo(f"  rates differ from the ANN for {rep.neurons_mismatched} of {rep.neurons_compared} neurons")
                if rep.integer_network_mismatched is not None:
                    click.echo(f"  layerwise SNN vs its integer network at T={rep.timesteps}: "
                               f"{'EXACT' if rep.integer_network_mismatched == 0 else 'NOT EXACT'} "
                               f"({rep.integer_network_mismatched} counts differ)")
    else:
        rep = verify_against_backend(net, x, backend, sched)
        if as_json:
            click.echo(json.dumps(rep.to_dict(), indent=2))
        else:
            click.echo(f"verify {bundle} against {against}, schedule {rep.schedule}, {rep.samples} samples: "
                       f"{rep.spikes_compared} spikes over {rep.steps_compared} population-steps compared, "
                       f"{rep.mismatches} mismatches" + (f"; first at {rep.first_mismatch}" if rep.first_mismatch else ""))
            click.echo(f"  {'IDENTICAL' if rep.exact else 'DIFFERENT'} (reference {rep.seconds_reference:.3f}s, {against} {rep.seconds_backend:.3f}s)")
    sys.exit(0 if (rep.ok if against == "ann" else rep.exact) else 1)


def _verify_sinabs(bundle, net, data, schedule, samples, as_json) -> None:
    """``snnc verify --against sinabs``: export to NIR, run in Sinabs, compare every spike (compiler.interop)."""
    from .interop import SinabsViaNir, verify_against_backend

    if schedule is not None and schedule != "pipelined":
        raise SnncError("--against sinabs: a NIR graph steps every node every step; only --schedule pipelined applies")
    net.check_schedule("pipelined")
    backend = SinabsViaNir()
    x, _y, _rnd = _inputs(net, data, samples)
    rep = verify_against_backend(net, x, backend, Schedule.PIPELINED)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        ex = rep.extra
        click.echo(f"verify {bundle} against sinabs {ex.get('sinabs_version')} (NIR {ex.get('nir_version')} export, "
                   f"schedule pipelined), {rep.samples} samples: {rep.spikes_compared} spikes over "
                   f"{rep.steps_compared} population-steps compared, {rep.mismatches} mismatches"
                   + (f"; first at {rep.first_mismatch}" if rep.first_mismatch else ""))
        if ex.get("nirtorch_order_replaced"):
            click.echo("  note: nirtorch's depth-first node order is not topological on this graph; run in topological order")
        click.echo(f"  {'IDENTICAL' if rep.exact else 'DIFFERENT'} (reference {rep.seconds_reference:.3f}s, "
                   f"sinabs {rep.seconds_backend:.3f}s)")
    sys.exit(0 if rep.exact else 1)


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["nir"]), required=True, help="nir: a NIR graph (nir 1.0.8, HDF5).")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="File to write (.nir).")
@click.option("--inexact", is_flag=True,
              help="Write networks NIR cannot express (dual/multi-threshold neurons, graded units, ...) anyway, "
                   "marked not exact with the reasons in the file.")
@click.option("--with-data", "with_data", type=click.Path(dir_okay=False), default=None,
              help=".npz with x: also write the reference simulator's pipelined spike trains (nir.write_data) "
                   "to OUTPUT with .data before the suffix.")
@click.option("--samples", type=int, default=None, help="With --with-data: only the first N samples.")
@_user_errors
def export(bundle, fmt, output, inexact, with_data, samples):
    """Export a compiled BUNDLE to an exchange format (NIR), with snnc's semantics in snnc.* metadata."""
    from .interop import data_path_for, export_bundle

    net, _ = _load_bundle(bundle)
    x = None
    if with_data:
        from .data import load_data

        x, _ = load_data(with_data, net, samples)
    elif samples is not None:
        raise SnncError("--samples applies with --with-data")
    exp, dpath = export_bundle(net, output, inexact=inexact, x=x, data_out=data_path_for(output) if with_data else None)
    click.echo(f"wrote {output}: NIR graph of {len(exp.graph.nodes)} nodes, {len(exp.graph.edges)} edges, T={net.timesteps}, "
               + ("exact" if exp.exact else f"NOT exact ({len(exp.reasons)} reasons in snnc.inexact)")
               + f"; float32 values up to {exp.float32_bound:,} (exact below 2^24 = 16,777,216)")
    for r in exp.reasons:
        click.echo(f"  not exact: {r}")
    if dpath is not None:
        click.echo(f"wrote {dpath}: reference spike trains of {len(x)} samples (pipelined)")


def _csv(value: str, what: str, choices=None, cast=str) -> list:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if choices is not None and v not in choices]
    if bad or not items:
        raise SnncError(f"--{what}: {bad or 'nothing'} not understood; give a comma-separated list of "
                        + (", ".join(choices) if choices else "values"))
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise SnncError(f"--{what} must be a comma-separated list of integers, got '{value}'") from None


@cli.command(name="eval")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help=".npz with x and labels y.")
@click.option("--timesteps", default="1,2,4,8,16,32", show_default=True, help="Comma-separated T values (columns).")
@click.option("--neuron", default=None,
              help="Comma-separated. Quantized models: if, dual-threshold (default if). Plain ReLU models: "
                   "multi-threshold:N, e.g. multi-threshold:1,multi-threshold:4 (default multi-threshold:4).")
@click.option("--v0", default=None, help="Quantized models, comma-separated: auto, zero, half, full (default auto).")
@click.option("--schedule", default=None,
              help="Comma-separated: pipelined, layerwise (default layerwise; plain ReLU models: pipelined only).")
@click.option("--calib", type=click.Path(dir_okay=False), default=None,
              help="Plain ReLU models: calibration .npz (x) for the thresholds (required for them).")
@click.option("--coding", default=None, help="Plain ReLU models, comma-separated: rate, differential (default rate).")
@click.option("--thresholds", default=None,
              help="Plain ReLU models, comma-separated: iterate, percentile:Q, max (default iterate).")
@click.option("--threshold-scale", type=float, default=None, help="Plain ReLU models: paper 004's c (default 1).")
@click.option("--frac-bits", default=None,
              help="Plain ReLU models, differential coding: fractional bits F of 1/t, 0..30, or auto / auto:k "
                   "(chosen at compile time; default: as snnc compile).")
@click.option("--threshold-scope", type=click.Choice(["channel", "layer"]), default=None,
              help="Plain ReLU models: one threshold per output channel or per layer (default channel).")
@click.option("--target", default="loihi", show_default=True,
              help="Built-in target or profile .toml; its state width is what eval checks the runs against.")
@click.option("--profile", type=click.Path(dir_okay=False), default=None,
              help="A .toml laid over the target's profile (only the keys it sets), e.g. [numeric] state_bits.")
@click.option("--input-range", default=None,
              help="lo,hi of the float input [default: the model's own input quantizer if it has one, else 0,1].")
@click.option("--neg-divisor", type=click.IntRange(min=1), default=None, help="dual-threshold: theta' = -theta/N (default 1000).")
@click.option("--samples", type=int, default=None, help="Use only the first N samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the full results as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of accuracy vs T.")
@_user_errors
def eval_(model, data, timesteps, neuron, v0, schedule, calib, coding, thresholds, threshold_scale, frac_bits,
          threshold_scope, target, profile, input_range, neg_divisor, samples, as_json, plot):
    """Sweep a grid of conversion settings over a data set: accuracy, errors, spikes, energy.

    Quantized (QCFS) models: neuron x V0 x schedule x T, against the quantized ANN. Plain ReLU
    models (training-free, paper 004, with --calib): multi-threshold:N x coding x threshold method
    x T, pipelined, against the float ANN, with the energy ratio of paper 004's Eq. 31. Options of
    the other kind are refused. The float ANN runs once (onnxruntime); one network is compiled per
    setting and T.
    """
    from .evaluate import EvalGrid, evaluate, format_tables, plot_accuracy

    rng = _parse_input_range(input_range)
    neurons = None
    if neuron is not None:
        neurons = [v.strip() for v in neuron.split(",") if v.strip()]
        bad = []
        for v in neurons:
            try:
                parse_neuron_spec(v)
            except SnncError:
                bad.append(v)
        if bad or not neurons:
            raise SnncError(f"--neuron: {bad or 'nothing'} not understood; give a comma-separated list of "
                            "if, dual-threshold, multi-threshold:N")
    grid = EvalGrid(
        timesteps=_csv(timesteps, "timesteps", cast=int),
        neurons=neurons,
        v0s=None if v0 is None else _csv(v0, "v0", [m.value for m in V0Mode]),
        schedules=None if schedule is None else _csv(schedule, "schedule", [m.value for m in Schedule]),
        codings=None if coding is None else _csv(coding, "coding", [c.value for c in CodingKind]),
        thresholds=None if thresholds is None else _csv(thresholds, "thresholds"),
    )
    defaults = CompileConfig()
    base = CompileConfig(target=target, profile=profile, input_range=rng,
                         neg_divisor=defaults.neg_divisor if neg_divisor is None else neg_divisor,
                         calibration_data=calib,
                         threshold_scale=defaults.threshold_scale if threshold_scale is None else threshold_scale,
                         frac_bits=defaults.frac_bits if frac_bits is None else frac_bits,
                         threshold_scope=defaults.threshold_scope if threshold_scope is None else threshold_scope)
    if plot and not Path(plot).resolve().parent.is_dir():
        raise SnncError(f"--plot: folder '{Path(plot).parent}' does not exist")
    from tqdm import tqdm

    with tqdm(total=grid.size, desc="eval", unit="setting", disable=None, file=sys.stderr, leave=False) as bar:
        rep = evaluate(model, data, grid, base, samples, progress=bar.update)
    if plot:
        plot_accuracy(rep, plot)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        click.echo(format_tables(rep))
        if plot:
            click.echo(f"\nwrote {plot}")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("--schedule", type=SCHEDULES, default=None)
@click.option("--backend", default="reference", show_default=True, help="reference | lava")
@click.option("--samples", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@_user_errors
def simulate(bundle, data, schedule, backend, samples, as_json):
    """Run the compiled SNN and report spike counts, predictions and accuracy."""
    net, _ = _load_bundle(bundle)
    sched = Schedule(schedule or net.metadata.get("config", {}).get("schedule", "layerwise"))
    net.check_schedule(sched)  # mixed L: layerwise only, refused before any data is read
    be = get_backend(backend)
    x, y, _rnd = _inputs(net, data, samples)
    bar = _progress(len(x), "simulate")
    batch = 256 if backend == "reference" else 32  # one Lava run (compile + start) per batch
    # signed spikes and graded messages: counts are net sums, so events (a non-zero message of either
    # sign) come from the recorded trains
    signed = any(isinstance(p.neuron, (DualThreshold, MultiThreshold)) for p in net.populations)
    preds, totals, negs = [], {p.name: 0 for p in net.populations}, {p.name: 0 for p in net.populations}
    for i in range(0, len(x), batch):
        res = be.run(net, x[i:i + batch], sched, record=signed)
        preds.append(res.predictions())
        for p in net.populations:
            if signed:
                tr = res.spikes[p.name]
                totals[p.name] += int(np.count_nonzero(tr))
                negs[p.name] += int(np.count_nonzero(tr < 0))
            else:
                totals[p.name] += int(res.counts[p.name].sum())
        bar.update(len(x[i:i + batch]))
    bar.close()
    pred = np.concatenate(preds)
    out = {
        "backend": backend, "schedule": sched.value, "timesteps": net.timesteps, "samples": len(x),
        "latency_steps": res.latency_steps,
        "accuracy": None if y is None else float(np.mean(pred == y)),
        "spikes_per_sample": {k: v / len(x) for k, v in totals.items()},   # events of either sign
        "negative_spikes_per_sample": {k: v / len(x) for k, v in negs.items()},
        "spike_rate": {p.name: totals[p.name] / (len(x) * p.size * net.steps(p)) for p in net.populations},
        "predictions": pred.tolist() if as_json else None,
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"simulate {bundle} on {backend}, schedule {sched.value}, T={net.timesteps}, latency {out['latency_steps']} steps, {len(x)} samples")
    for p in net.populations:
        neg = f"  ({out['negative_spikes_per_sample'][p.name]:.1f} negative)" if signed else ""
        click.echo(f"  {p.name:<10} {out['spikes_per_sample'][p.name]:>10.1f} spikes/sample  rate {out['spike_rate'][p.name]:.4f} per neuron-step{neg}")
    click.echo(f"  total {sum(out['spikes_per_sample'].values()):.1f} spikes/sample")
    if out["accuracy"] is not None:
        click.echo(f"  accuracy {out['accuracy']:.4f}")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("--energy", default="qiao2015", show_default=True,
              help="Energy model: qiao2015 | horowitz2014 | loihi, or a .toml file.")
@click.option("--schedule", type=SCHEDULES, default=None)
@click.option("--samples", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option("--neurobench", is_flag=True,
              help="Also run NeuroBench's SynapticOperations and ActivationSparsity on the NIR export in Sinabs "
                   "(pipelined) and set them beside snnc's counts (make interop installs them).")
@_user_errors
def stats(bundle, data, energy, schedule, samples, as_json, neurobench):
    """ANN MACs and energy vs SNN spikes, synaptic operations and energy, per layer and in total."""
    from .analysis.cost import compute_stats
    from .analysis.energy import load_energy_model

    net, _ = _load_bundle(bundle)
    em = load_energy_model(energy)
    sched = Schedule(schedule or net.metadata.get("config", {}).get("schedule", "layerwise"))
    net.check_schedule(sched)  # mixed L: layerwise only, refused before any data is read
    x, _y, _rnd = _inputs(net, data, samples)
    bar = _progress(len(x), "stats")
    rep = compute_stats(net, x, sched, em, progress=bar.update)
    bar.close()
    nb = None
    if neurobench:
        from .interop import neurobench_comparison

        nb = neurobench_comparison(net, x)
    if as_json:
        d = rep.to_dict()
        if nb is not None:
            d["neurobench"] = nb.to_dict()
        click.echo(json.dumps(d, indent=2))
        if nb is not None and not nb.agree:
            sys.exit(1)
        return
    click.echo(f"stats {bundle}: energy model {rep.energy_model} ({rep.energy_source})")
    click.echo(f"  schedule {rep.schedule}, T={rep.timesteps}, {rep.samples} samples; per sample:")
    click.echo(f"  {'layer':<10} {'ANN MACs':>12} {'SNN SOPs':>12} {'spikes':>10} {'rate':>7} {'E_ANN [J]':>11} {'E_SNN [J]':>11}")
    for L in rep.layers:
        click.echo(f"  {L.name:<10} {L.macs:>12,} {L.sops_per_sample:>12,.0f} {L.spikes_per_sample:>10,.1f} "
                   f"{L.spike_rate:>7.4f} {L.energy_ann_j:>11.3e} {L.energy_snn_j:>11.3e}")
    r = rep.snn["energy_ratio_ann_over_snn"]
    click.echo(f"  {'total':<10} {rep.ann['macs']:>12,} {rep.snn['sops_per_sample']:>12,.0f} "
               f"{rep.snn['spikes_per_sample']:>10,.1f} {'':>7} {rep.ann['energy_j']:>11.3e} {rep.snn['energy_j']:>11.3e}")
    click.echo(f"  ANN/SNN energy ratio: {'n/a' if r is None else f'{r:.2f}'}")
    if nb is not None:
        _print_neurobench(nb)
        if not nb.agree:
            sys.exit(1)


def _print_neurobench(nb) -> None:
    n, d = nb.samples, nb.neurobench
    click.echo(f"\nNeuroBench {d['neurobench_version']} on the NIR export in Sinabs, schedule pipelined, T={nb.timesteps}, "
               f"{n} samples; per sample:")
    click.echo(f"  {'':<22} {'snnc':>14} {'NeuroBench':>14}")
    click.echo(f"  {'synaptic ops':<22} {nb.snnc_sops / n:>14,.1f} {(d['ac_total'] + d['mac_total']) / n:>14,.1f}"
               f"   (NeuroBench: ACs {d['effective_acs']:,.1f} + MACs {d['effective_macs']:,.1f})")
    click.echo(f"  {'  from graded input':<22} {nb.snnc_input_sops / n:>14,.1f} {d['effective_macs']:>14,.1f}   "
               "(NeuroBench counts a non-binary input as MACs)")
    click.echo(f"  {'  through sum-pools':<22} {nb.snnc_sumpool_sops / n:>14,.1f} {0.0:>14,.1f}   "
               "(NeuroBench does not count pooling)")
    click.echo(f"  {'activation sparsity':<22} {nb.snnc_activation_sparsity:>14.6f} {d['activation_sparsity']:>14.6f}")
    click.echo(f"  synaptic ops {'AGREE' if nb.sops_agree else 'DIFFER'} (NeuroBench AC + MAC = snnc SOPs - sum-pool SOPs: "
               f"{d['ac_total'] + d['mac_total']:,} vs {nb.snnc_sops - nb.snnc_sumpool_sops:,}); spike counts "
               f"{'AGREE' if nb.spikes_agree else 'DIFFER'} in every batch ({nb.snnc_spikes:,} spikes)")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--energy", default="qiao2015", show_default=True)
@click.option("--samples", type=int, default=None)
@_user_errors
def report(bundle, data, out_dir, energy, samples):
    """An HTML page (plus PNGs) with spike rates, conversion error, SOPs and energy, a raster, metadata."""
    from .report import write_report

    path = write_report(bundle, out_dir, data=data, energy=energy, samples=samples)
    click.echo(f"wrote {path}")


@cli.command("map")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every core).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of per-core utilization.")
@_user_errors
def map_(bundle, as_json, plot):
    """Show a bundle's placement on cores and chips, and its utilization."""
    from .mapping.report import format_text, map_json, plot_utilization

    net, _ = _load_bundle(bundle)
    pl = net.metadata.get("placement")
    if plot:
        map_json(pl)  # validates
        plot_utilization(pl, plot)
    if as_json:
        click.echo(json.dumps(map_json(pl)))
        return
    click.echo(format_text(pl, str(bundle)))
    if plot:
        click.echo(f"\nwrote {plot}")


def main() -> None:
    cli(prog_name="snnc")


if __name__ == "__main__":
    main()
