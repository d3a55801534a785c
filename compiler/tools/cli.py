"""The ``snnc`` command line: click wiring only; each command's logic is its module in this package.

Exit status: 0 ok; 1 a check failed (``verify``); 2 a user error (one line ``error: ...`` on stderr:
``SnncError``, ``IRError``, ``BackendError``, a bad value); 3 an internal error (any other exception:
one line ``internal error: ...``, the traceback with ``-vv``). Never a traceback otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from snnc import __version__
from snnc.backends import BackendError, available_backends
from snnc.ir import BundleError, IRError, Schedule, load_with_extras

from ..config import CodingKind, NeuronKind, ThresholdScope, V0Mode
from ..errors import SnncError
from ..metadata import Conversion, conversion_of
from ..pipeline import STAGE_NAMES
from ..targets import builtin_targets
from .options import parse_input_range

log = logging.getLogger("snnc")

SCHEDULES = click.Choice([s.value for s in Schedule])
NEURONS = click.Choice([n.value for n in NeuronKind])
V0S = click.Choice([m.value for m in V0Mode])
USER_ERRORS = (SnncError, IRError, BackendError, ValueError)


class Commands(click.Group):
    """The command group: every command's exceptions become one line and an exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except USER_ERRORS as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except Exception as e:  # a bug: one line, exit 3; the traceback with -vv
            log.debug("internal error", exc_info=True)
            first = (str(e).splitlines() or [""])[0]
            click.echo(f"internal error: {type(e).__name__}: {first} (a bug in snnc; run with -vv for the traceback "
                       "and please report it)", err=True)
            sys.exit(3)


def _load_bundle(path):
    try:
        return load_with_extras(path)
    except BundleError as e:
        raise SnncError(str(e)) from None


def _progress(total: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="sample", disable=None, file=sys.stderr, leave=False)


def _schedule(net, schedule: str | None) -> Schedule:
    """The schedule asked for, else the bundle's; mixed L runs layerwise only (refused before any data is read)."""
    sched = Schedule(schedule or net.metadata.get("config", {}).get("schedule", "layerwise"))
    net.check_schedule(sched)
    return sched


def _inputs(net, data, samples, seed=0):
    from ..data import load_data, random_inputs

    if data:
        x, y = load_data(data, net, samples)
        return x, y, False
    n = samples or 64
    click.echo(f"no --data given: using {n} random inputs (uniform over the input range, seed {seed})", err=True)
    return random_inputs(net, n, seed), None, True


@click.group(cls=Commands)
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
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Bundle to write (.snnc).  [required unless --stop-after stops before the bundle]")
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
@click.option("--timings", is_flag=True,
              help="Print each pipeline stage's wall time and the peak resident memory after it (not written "
                   "into the bundle: its bytes are deterministic).")
@click.option("--stop-after", type=click.Choice(STAGE_NAMES), default=None,
              help="Run the pipeline up to this stage and stop (debugging; no bundle unless the stage is 'bundle').")
@click.option("--dump", type=click.Path(file_okay=False), default=None,
              help="Write a readable dump of every stage's output to DIR/<n>-<stage>/ (float graph, lowered "
                   "layers, network bundle and JSON).")
@click.pass_context
def compile(ctx, model, target, output, timesteps, neuron, v0, calib, thresholds, threshold_scale,  # noqa: A001
            threshold_scope, coding, frac_bits, neg_divisor, schedule, input_range, chips, system, profile, timings,
            stop_after, dump):
    """Compile an ONNX MODEL into a spiking-network bundle."""
    from .compile import compile_command, compile_config, summary_lines, timings_table

    if output is None and stop_after in (None, "bundle"):
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "output"))
    cfg = compile_config(neuron, schedule, input_range, target=target, timesteps=timesteps, v0=v0,
                         neg_divisor=neg_divisor, chips=chips, system=system, profile=profile, calibration_data=calib,
                         thresholds=thresholds, threshold_scale=threshold_scale, threshold_scope=threshold_scope,
                         coding=coding, frac_bits=frac_bits)
    outcome = compile_command(model, output, cfg, stop_after, dump, timings)
    for line in summary_lines(model, outcome, cfg):
        click.echo(line)
    if timings:
        click.echo("\nstages:\n" + timings_table(outcome.run.timings))
    if dump:
        click.echo(f"dumped {len(outcome.run.ran)} stage(s) to {dump}")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(bundle, as_json):
    """Print a compiled bundle readably."""
    from ..dumps import network_summary
    from .inspect import inspect_text

    net, extras = _load_bundle(bundle)
    click.echo(json.dumps(network_summary(net, extras), indent=2) if as_json else inspect_text(bundle, net, extras))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--against", type=click.Choice(["ann", *(b for b in available_backends() if b != "reference")]),
              default="ann", show_default=True)
@click.option("--data", type=click.Path(dir_okay=False), default=None, help=".npz with x (and y).")
@click.option("--schedule", type=SCHEDULES, default=None, help="Default: the bundle's schedule.")
@click.option("--samples", type=int, default=None, help="Use only the first N samples.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="ONNX model, if not embedded in the bundle.")
@click.option("--json", "as_json", is_flag=True)
def verify(bundle, against, data, schedule, samples, model, as_json):
    """Prove the compiled SNN equals the quantized ANN (layerwise, T = L) or a backend equals the reference.

    Exit status 0 only when exact; with T != L the rate errors are reported and the status is 0
    unless a layerwise SNN differs from its own integer network.
    """
    from snnc.backends import get_backend

    from .verify import format_ann_report, format_backend_report, verify_against_ann, verify_against_backend
    from .verify_float import format_float_report, verify_training_free

    net, extras = _load_bundle(bundle)
    sched = _schedule(net, schedule)
    backend = None if against == "ann" else get_backend(against)
    x, y, rnd = _inputs(net, data, samples)
    if against != "ann":
        rep = verify_against_backend(net, x, backend, sched)
        click.echo(json.dumps(rep.to_dict(), indent=2) if as_json else format_backend_report(bundle, against, rep))
        sys.exit(0 if rep.exact else 1)
    mb = Path(model).read_bytes() if model else (bytes(extras["onnx_model"]) if "onnx_model" in extras else None)
    if mb is None:
        click.echo("warning: the source model is not embedded and --model was not given: float ANN skipped", err=True)
    bar = _progress(len(x), "verify")
    if conversion_of(net) is Conversion.TRAINING_FREE:  # no quantized ANN: measured against the float ANN
        rep = verify_training_free(net, x, y, mb, random_inputs=rnd, progress=bar.update)
        bar.close()
        click.echo(json.dumps(rep.to_dict(), indent=2) if as_json else format_float_report(bundle, rep, rnd))
        sys.exit(0 if rep.ok else 1)   # graded units (transformers) must be exact
    rep = verify_against_ann(net, x, y, sched, mb, random_inputs=rnd, progress=bar.update)
    bar.close()
    click.echo(json.dumps(rep.to_dict(), indent=2) if as_json else format_ann_report(bundle, rep, rnd))
    sys.exit(0 if rep.ok else 1)


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
def eval_(model, data, timesteps, neuron, v0, schedule, calib, coding, thresholds, threshold_scale, frac_bits,
          threshold_scope, target, profile, input_range, neg_divisor, samples, as_json, plot):
    """Sweep a grid of conversion settings over a data set: accuracy, errors, spikes, energy.

    Quantized (QCFS) models: neuron x V0 x schedule x T, against the quantized ANN. Plain ReLU
    models (training-free, paper 004, with --calib): multi-threshold:N x coding x threshold method
    x T, pipelined, against the float ANN, with the energy ratio of paper 004's Eq. 31. Options of
    the other kind are refused. The float ANN runs once (onnxruntime); one network is compiled per
    setting and T.
    """
    from tqdm import tqdm

    from .evaluate import evaluate, eval_base_config, eval_grid, format_tables, plot_accuracy

    rng = parse_input_range(input_range)
    grid = eval_grid(timesteps, neuron, v0, schedule, coding, thresholds)
    base = eval_base_config(target=target, profile=profile, input_range=rng, neg_divisor=neg_divisor,
                            calibration_data=calib, threshold_scale=threshold_scale, frac_bits=frac_bits,
                            threshold_scope=threshold_scope)
    if plot and not Path(plot).resolve().parent.is_dir():
        raise SnncError(f"--plot: folder '{Path(plot).parent}' does not exist")
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
def simulate(bundle, data, schedule, backend, samples, as_json):
    """Run the compiled SNN and report spike counts, predictions and accuracy."""
    from snnc.backends import get_backend

    from .simulate import format_simulate, simulate_bundle

    net, _ = _load_bundle(bundle)
    sched = _schedule(net, schedule)
    get_backend(backend)  # an unknown or unavailable backend is refused before any data is read
    x, y, _rnd = _inputs(net, data, samples)
    bar = _progress(len(x), "simulate")
    rep = simulate_bundle(net, x, y, backend, sched, keep_predictions=as_json, progress=bar.update)
    bar.close()
    click.echo(json.dumps(rep.to_dict(), indent=2) if as_json else format_simulate(bundle, net, rep))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("--energy", default="qiao2015", show_default=True,
              help="Energy model: qiao2015 | horowitz2014 | loihi, or a .toml file.")
@click.option("--schedule", type=SCHEDULES, default=None)
@click.option("--samples", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
def stats(bundle, data, energy, schedule, samples, as_json):
    """ANN MACs and energy vs SNN spikes, synaptic operations and energy, per layer and in total."""
    from ..energy import load_energy_model
    from .stats import compute_stats, format_stats

    net, _ = _load_bundle(bundle)
    em = load_energy_model(energy)
    sched = _schedule(net, schedule)
    x, _y, _rnd = _inputs(net, data, samples)
    bar = _progress(len(x), "stats")
    rep = compute_stats(net, x, sched, em, progress=bar.update)
    bar.close()
    click.echo(json.dumps(rep.to_dict(), indent=2) if as_json else format_stats(bundle, rep))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--energy", default="qiao2015", show_default=True)
@click.option("--samples", type=int, default=None)
def report(bundle, data, out_dir, energy, samples):
    """An HTML page (plus PNGs) with spike rates, conversion error, SOPs and energy, a raster, metadata."""
    from .html_report import write_report

    path = write_report(bundle, out_dir, data=data, energy=energy, samples=samples)
    click.echo(f"wrote {path}")


@cli.command("map")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every core).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of per-core utilization.")
def map_(bundle, as_json, plot):
    """Show a bundle's placement on cores and chips, and its utilization."""
    from ..mapping.report import format_text, map_json, plot_utilization

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
