"""The ``snnc`` command line: click wiring only; each command's logic is its module in this package.

Exit status (``contract``): 0 ok; 1 a check failed (``verify``); 2 a user error (one line ``error: ...``
on stderr: ``SnncError``, ``IRError``, ``BackendError``, a bad value, a click usage error); 3 an
internal error (any other exception: one line ``internal error: ...``, the traceback with ``-vv``);
130 interrupted. Never a traceback otherwise.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from snnc import __version__
from snnc.backends import available_backends
from snnc.ir import Schedule

from ..bundles import check_source, load_bundle
from ..config import CodingKind, NeuronKind, ThresholdScope, V0Mode
from ..errors import SnncError
from ..metadata import Conversion, conversion_of
from ..outputs import check_output, to_json
from ..pipeline import STAGE_NAMES
from ..targets import builtin_targets
from . import contract
from .options import parse_input_range

log = logging.getLogger("snnc")

SCHEDULES = click.Choice([s.value for s in Schedule])
NEURONS = click.Choice([n.value for n in NeuronKind])
V0S = click.Choice([m.value for m in V0Mode])


def backend_options(f):
    """``--backend`` / ``--device`` of the commands that simulate (logic: tools/backend_choice.py)."""
    f = click.option("--device", default="cpu", show_default=True,
                     help="cpu | cuda | cuda:N (the torch backend; reference and lava run on the CPU).")(f)
    return click.option("--backend", default="auto", show_default=True,
                        help=f"auto | {' | '.join(available_backends())}: what simulates; auto = the fastest exact "
                        "backend that runs the network (torch when installed, else reference).")(f)


class Commands(click.Group):
    """The command group: every command's exceptions become one line and an exit status (``contract``)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:  # user errors exit 2, anything else is a bug: exit 3 (the traceback with -vv)
            sys.exit(contract.report(e, ctx.params.get("verbose") or 0))


def _load_bundle(path):
    """Every command reads its bundle here: schema, digest, memory budget and the target's formats checked."""
    loaded = load_bundle(path)
    return loaded.network, loaded.extras


def _progress(total: int, label: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="sample", disable=None, file=sys.stderr, leave=False)


def _schedule(net, schedule: str | None) -> Schedule:
    """The schedule asked for, else the bundle's; mixed L runs layerwise only (refused before any data is read)."""
    sched = Schedule(schedule or net.metadata.get("config", {}).get("schedule", "layerwise"))
    net.check_schedule(sched)
    return sched


def _inputs(net, data, samples, seed=0):
    from ..data import check_samples, load_data, random_inputs

    check_samples(samples)
    if data:
        x, y = load_data(data, net, samples)
        return x, y, False
    n = 64 if samples is None else samples
    click.echo(f"no --data given: using {n} random inputs (uniform over the input range, seed {seed})", err=True)
    return random_inputs(net, n, seed), None, True


def _sharding_options(f):
    """--workers / --cluster: run the command's shards on Ray (tools/sharding.py, docs/distributed.md)."""
    f = click.option("--cluster", default=None, metavar="ADDRESS",
                     help="Run the shards on the Ray cluster at ADDRESS (e.g. 10.0.0.1:6379 or auto).")(f)
    return click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Run the shards on a local Ray cluster with this many worker processes (make ray "
                             "installs Ray); the output is the same as without.")(f)


def _warn_input_range(net, x, random_inputs: bool) -> str | None:
    """One warning line on stderr when data values lie outside the network's input range (clipped)."""
    from ..fidelity import input_range_report

    msg = None if random_inputs else input_range_report(net, x).message()
    if msg:
        click.echo(f"warning: {msg}", err=True)
    return msg


@click.group(cls=Commands, epilog=contract.EXIT_HELP)
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
@click.option("--nir-reset", type=click.Choice(["subtract", "zero"]), default=None,
              help="NIR input: how its neurons reset (default: the file's snnc metadata, else required; zero is refused).")
@click.option("--nir-compare", type=click.Choice(["ge", "gt"]), default=None,
              help="NIR input: spike at v >= threshold (ge, Sinabs) or v > threshold (gt, NIR spec); default: snnc "
                   "metadata, else required.")
@click.option("--nir-dt", type=float, default=None,
              help="NIR input: the forward-Euler step of IF r, LIF and CubaLIF (default: the graph's 'dt', else 1).")
@click.pass_context
def compile(ctx, model, target, output, timesteps, neuron, v0, calib, thresholds, threshold_scale,  # noqa: A001
            threshold_scope, coding, frac_bits, neg_divisor, schedule, input_range, chips, system, profile, timings,
            stop_after, dump, nir_reset, nir_compare, nir_dt):
    """Compile an ONNX MODEL (or import a NIR graph, MODEL.nir) into a spiking-network bundle."""
    from ..api import is_nir_file
    from ..weight_precision import WeightPrecisionError
    from .compile import compile_command, compile_config, summary_lines, timesteps_suggestion, timings_table
    from .interop import NIR_OPTIONS, ONNX_ONLY_OPTIONS, compile_nir_command, option_flags

    def given(names):
        return [n for n in names if ctx.get_parameter_source(n) is click.core.ParameterSource.COMMANDLINE]

    if is_nir_file(model):
        if output is None:
            raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "output"))
        for line in compile_nir_command(model, output, given(ONNX_ONLY_OPTIONS), target=target, profile=profile,
                                        timesteps=timesteps, schedule=schedule, schedule_given=bool(given(["schedule"])),
                                        input_range=parse_input_range(input_range), chips=chips, system=system,
                                        nir_reset=nir_reset, nir_compare=nir_compare, nir_dt=nir_dt):
            click.echo(line)
        return
    if given(NIR_OPTIONS):
        raise SnncError(f"{option_flags(given(NIR_OPTIONS))} apply only to NIR graphs; '{model}' is not a NIR file")

    if output is None and stop_after in (None, "bundle"):
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "output"))
    cfg = compile_config(neuron, schedule, input_range, target=target, timesteps=timesteps, v0=v0,
                         neg_divisor=neg_divisor, chips=chips, system=system, profile=profile, calibration_data=calib,
                         thresholds=thresholds, threshold_scale=threshold_scale, threshold_scope=threshold_scope,
                         coding=coding, frac_bits=frac_bits)
    try:
        outcome = compile_command(model, output, cfg, stop_after, dump, timings)
    except WeightPrecisionError as e:  # the error, then the one option that works for the whole network
        click.echo(f"error: {e}", err=True)
        click.echo(timesteps_suggestion(model, cfg, e), err=True)
        sys.exit(2)
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
    from .inspect import inspect_text, weight_bits_rows

    net, extras = _load_bundle(bundle)
    rows = weight_bits_rows(net, extras)
    for r in rows:
        if r.below_floor:
            click.echo(f"warning: layer '{r.layer}' keeps {r.kept} weight bits, below the floor of {r.floor} "
                       "(docs/fidelity.md, 'Weight bits'): its weights round to a few levels", err=True)
    if as_json:
        click.echo(to_json({**network_summary(net, extras), "weight_bits": [r.to_dict() for r in rows]}))
    else:
        click.echo(inspect_text(bundle, net, extras))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--against", type=click.Choice(["ann", *(b for b in available_backends() if b != "reference"), "sinabs"]),
              default="ann", show_default=True,
              help="ann: the quantized ANN; a backend: its simulation; sinabs: the NIR export run in Sinabs (pipelined).")
@click.option("--data", type=click.Path(dir_okay=False), default=None, help=".npz with x (and y).")
@click.option("--schedule", type=SCHEDULES, default=None, help="Default: the bundle's schedule.")
@click.option("--samples", type=int, default=None, help="Use only the first N samples.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="ONNX model, if not embedded in the bundle.")
@click.option("--min-fidelity", default="0.80,0.98", show_default=True,
              help="Models with float weights (QCFS-style): the smallest level agreement of the worst layer and "
                   "prediction agreement with the model that count as faithful (LEVELS,PREDICTIONS or one fraction; "
                   "docs/fidelity.md).")
@click.option("--json", "as_json", is_flag=True)
@backend_options
@_sharding_options
@click.option("--shard-samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --workers/--cluster: samples per shard, a multiple of 256 (each worker reads only its "
                   "slice of --data).")
def verify(bundle, against, data, schedule, samples, model, min_fidelity, as_json, backend, device, workers, cluster,
           shard_samples):
    """Prove the compiled SNN equals snnc's integer ANN and that network is the model that came in
    (--against ann), or a backend equals the reference simulator.

    --against ann runs the user's model with its own semantics, compares its quantized activations layer
    by layer and prints one verdict: EXACT (the SNN equals snnc's integer network count for count and that
    network is faithful to the model: equal levels for integer-defined models, agreements >= --min-fidelity
    for float weights), MISMATCH (the SNN differs from its integer network), NOT FAITHFUL (the integer
    network is not the model; the layers and bits are named) or UNCHECKED (something could not be
    compared: the model could not be run, a layer not mapped, T != L rates, a training-free network).

    Exit status: 0 EXACT (or IDENTICAL against a backend); 1 a check failed or could not be made (the
    message says which); 2 a user error; 3 an internal error.
    """
    from ..fidelity import MinFidelity
    from .backend_choice import BackendChoice, against_backend
    from .fidelity_check import compare_with_user_model, fidelity_table, judge, merge_into_report, verify_json
    from .verify import format_ann_report, format_backend_report, verify_against_ann, verify_against_backend
    from .verify_float import format_float_report, verify_training_free

    min_fid = MinFidelity.parse(min_fidelity)
    if (workers is not None or cluster is not None) and against != "ann":
        raise SnncError(f"--workers/--cluster shard `snnc verify --against ann`; --against {against} runs in one "
                        "process: leave --workers/--cluster out")
    loaded = load_bundle(bundle)
    net, extras = loaded.network, loaded.extras
    if model:  # the model must be the one the bundle was compiled from
        check_source(loaded, model)
    if against == "sinabs":
        from .interop import format_sinabs_report, verify_sinabs_command

        rep = verify_sinabs_command(net, _inputs(net, data, samples)[0], schedule)
        click.echo(to_json(rep.to_dict()) if as_json else format_sinabs_report(bundle, rep))
        sys.exit(0 if rep.exact else 1)
    sched = _schedule(net, schedule)
    choice = BackendChoice.from_options(backend, device)
    # refused before any data is read: a device that is not here, a backend that cannot count
    other = against_backend(against, choice) if against != "ann" else None
    snn = choice.counting_backend(net, sched) if against == "ann" else None
    if workers is not None or cluster is not None:
        from .verify_shards import verify_sharded_command

        rep, run, warn, notes = verify_sharded_command(bundle, net, extras, against, data, samples, choice, sched,
                                                       model, workers, cluster, shard_samples)
        for line in notes + ([f"warning: {warn}"] if warn else []):
            click.echo(line, err=True)
        verdict = judge(rep, run, min_fid)
        if as_json:
            click.echo(to_json(verify_json(rep, run, verdict, min_fid, warn)))
        else:
            click.echo("\n".join([format_ann_report(bundle, rep, False), *fidelity_table(run),
                                   f"  {verdict.message()}"]))
        sys.exit(verdict.exit_code)
    x, y, rnd = _inputs(net, data, samples)
    if against != "ann":
        rep = verify_against_backend(net, x, other, sched)
        click.echo(to_json(rep.to_dict()) if as_json else format_backend_report(bundle, against, rep))
        sys.exit(0 if rep.exact else 1)
    mb = Path(model).read_bytes() if model else (bytes(extras["onnx_model"]) if "onnx_model" in extras else None)
    if mb is None:
        click.echo("warning: the source model is not embedded and --model was not given: fidelity to it unchecked",
                   err=True)
    warn = _warn_input_range(net, x, rnd)
    bar = _progress(len(x), "verify")
    if conversion_of(net) is Conversion.TRAINING_FREE:  # no quantized ANN: measured against the float ANN
        rep = verify_training_free(net, x, y, mb, random_inputs=rnd, progress=bar.update, backend=snn)
        bar.close()
        click.echo(to_json(rep.to_dict()) if as_json else format_float_report(bundle, rep, rnd))
        sys.exit(rep.exit_code)   # UNCHECKED (exit 1) at best; graded units (transformers) not exact: also 1
    rep = verify_against_ann(net, x, y, sched, None, random_inputs=rnd, progress=bar.update, backend=snn)
    bar.close()
    run = compare_with_user_model(net, mb, x, y, rep.snn_predictions, name=Path(model).name if model else "model")
    merge_into_report(rep, run)
    verdict = judge(rep, run, min_fid)
    if as_json:
        click.echo(to_json(verify_json(rep, run, verdict, min_fid, warn)))
    else:
        click.echo("\n".join([format_ann_report(bundle, rep, rnd), *fidelity_table(run), f"  {verdict.message()}"]))
    sys.exit(verdict.exit_code)


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
@click.option("--timings", is_flag=True, help="Put each setting's compile and run wall times into --json (left out "
              "by default: the JSON of the same command is the same bytes).")
@_sharding_options
@backend_options
def eval_(model, data, timesteps, neuron, v0, schedule, calib, coding, thresholds, threshold_scale, frac_bits,
          threshold_scope, target, profile, input_range, neg_divisor, samples, as_json, plot, timings, workers, cluster,
          backend, device):
    """Sweep a grid of conversion settings over a data set: accuracy, errors, spikes, energy.

    Quantized (QCFS) models: neuron x V0 x schedule x T, against the quantized ANN. Plain ReLU
    models (training-free, paper 004, with --calib): multi-threshold:N x coding x threshold method
    x T, pipelined, against the float ANN, with the energy ratio of paper 004's Eq. 31. Options of
    the other kind are refused. The float ANN runs once (onnxruntime); one network is compiled per
    setting and T.
    """
    from tqdm import tqdm

    from .backend_choice import BackendChoice
    from .eval_options import eval_base_config, eval_grid
    from .evaluate import evaluate, format_tables, plot_accuracy
    from .once import warnings_once

    rng = parse_input_range(input_range)
    grid = eval_grid(timesteps, neuron, v0, schedule, coding, thresholds)
    base = eval_base_config(target=target, profile=profile, input_range=rng, neg_divisor=neg_divisor,
                            calibration_data=calib, threshold_scale=threshold_scale, frac_bits=frac_bits,
                            threshold_scope=threshold_scope)
    plot_inputs = (model, data, calib, profile)
    if plot:  # before the sweep: a path that cannot be written is refused at once
        check_output(plot, inputs=plot_inputs, what="plot", make_parents=True)
    choice = BackendChoice.from_options(backend, device).checked()
    with warnings_once():
        if workers is None and cluster is None:
            with tqdm(total=grid.size, desc="eval", unit="setting", disable=None, file=sys.stderr, leave=False) as bar:
                rep = evaluate(model, data, grid, base, samples, progress=bar.update, backend=choice)
        else:
            from .sharding import engine_for, eval_sharded

            engine = engine_for(workers, cluster)
            with tqdm(total=len(grid.timesteps), desc=f"eval ({engine.name})", unit="shard", disable=None,
                      file=sys.stderr, leave=False) as bar:
                rep = eval_sharded(model, data, grid, base, samples, engine, progress=bar.update, backend=choice)
    if plot:
        plot_accuracy(rep, plot, inputs=plot_inputs)
    if as_json:
        click.echo(to_json(rep.to_dict(timings=timings)))
    else:
        click.echo(format_tables(rep))
        if plot:
            click.echo(f"\nwrote {plot}")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("--schedule", type=SCHEDULES, default=None)
@click.option("--samples", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@_sharding_options
@click.option("--shard-samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --workers/--cluster: samples per shard (each worker reads only its slice of --data).")
@backend_options
def simulate(bundle, data, schedule, samples, as_json, workers, cluster, shard_samples, backend, device):
    """Run the compiled SNN and report spike counts, predictions and accuracy."""
    from .backend_choice import BackendChoice
    from .simulate import format_simulate, simulate_bundle

    net, _ = _load_bundle(bundle)
    sched = _schedule(net, schedule)
    # an unknown or unavailable backend or device is refused before any data is read
    choice = BackendChoice.from_options(backend, device)
    be = choice.backend(net, sched)
    if workers is not None or cluster is not None:
        from .sharding import engine_for, simulate_sharded

        if not data:
            raise SnncError("--workers/--cluster shard a data file: give --data")
        engine = engine_for(workers, cluster)
        bar = _progress(None, f"simulate ({engine.name})")
        bar.unit = "shard"
        rep = simulate_sharded(bundle, net, data, samples, choice, sched, as_json, engine, shard_samples,
                               progress=bar.update)
        bar.close()
        click.echo(to_json(rep.to_dict()) if as_json else format_simulate(bundle, net, rep))
        return
    x, y, _rnd = _inputs(net, data, samples)
    _warn_input_range(net, x, _rnd)
    bar = _progress(len(x), "simulate")
    rep = simulate_bundle(net, x, y, be, sched, keep_predictions=as_json, progress=bar.update)
    bar.close()
    click.echo(to_json(rep.to_dict()) if as_json else format_simulate(bundle, net, rep))


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
                   "(pipelined) and set them beside snnc's counts (make interop installs them); exit 1 if they differ.")
@backend_options
@_sharding_options
@click.option("--shard-samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --workers/--cluster: samples per shard (each worker reads only its slice of --data).")
def stats(bundle, data, energy, schedule, samples, as_json, neurobench, backend, device, workers, cluster,
          shard_samples):
    """ANN MACs and energy vs SNN spikes, synaptic operations and energy, per layer and in total."""
    from ..energy import load_energy_model
    from .backend_choice import BackendChoice
    from .stats import compute_stats, format_stats

    net, _ = _load_bundle(bundle)
    em = load_energy_model(energy)
    sched = _schedule(net, schedule)
    choice = BackendChoice.from_options(backend, device)
    be = choice.counting_backend(net, sched)
    if workers is not None or cluster is not None:
        from .sharding import engine_for, stats_sharded

        if not data or neurobench:
            raise SnncError("--workers/--cluster shard a data file: give --data (and run --neurobench without them)")
        engine = engine_for(workers, cluster)
        bar = _progress(None, f"stats ({engine.name})")
        rep = stats_sharded(bundle, net, data, samples, choice, sched, em, engine, shard_samples, progress=bar.update)
        bar.close()
        click.echo(to_json(rep.to_dict()) if as_json else format_stats(bundle, rep))
        return
    x, _y, _rnd = _inputs(net, data, samples)
    bar = _progress(len(x), "stats")
    rep = compute_stats(net, x, sched, em, progress=bar.update, backend=be)
    bar.close()
    nb = None
    if neurobench:
        from .interop import format_neurobench, neurobench_comparison

        nb = neurobench_comparison(net, x)
    if as_json:
        click.echo(to_json({**rep.to_dict(), **({"neurobench": nb.to_dict()} if nb else {})}))
    else:
        click.echo(format_stats(bundle, rep) + (format_neurobench(nb) if nb else ""))
    if nb is not None and not nb.agree:
        sys.exit(1)


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
def export(bundle, fmt, output, inexact, with_data, samples):
    """Export a compiled BUNDLE to an exchange format (NIR), with snnc's semantics in snnc.* metadata."""
    from .interop import data_path_for, export_bundle, export_summary_lines

    net, _ = _load_bundle(bundle)
    x = None
    if with_data:
        from ..data import load_data

        x, _ = load_data(with_data, net, samples)
    elif samples is not None:
        raise SnncError("--samples applies with --with-data")
    exp, dpath = export_bundle(net, output, inexact=inexact, x=x, data_out=data_path_for(output) if with_data else None)
    for line in export_summary_lines(net, output, exp, dpath, 0 if x is None else len(x)):
        click.echo(line)


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--data", type=click.Path(dir_okay=False), default=None)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option("--energy", default="qiao2015", show_default=True)
@click.option("--samples", type=int, default=None)
@backend_options
def report(bundle, data, out_dir, energy, samples, backend, device):
    """An HTML page (plus PNGs) with spike rates, conversion error, SOPs and energy, a raster, metadata."""
    from .backend_choice import BackendChoice
    from .html_report import write_report

    path = write_report(bundle, out_dir, data=data, energy=energy, samples=samples,
                        backend=BackendChoice.from_options(backend, device))
    click.echo(f"wrote {path}")


@cli.command("map")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every core).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG of per-core utilization.")
def map_(bundle, as_json, plot):
    """Show a bundle's placement on cores and chips, and its utilization."""
    from ..mapping.report import format_text, map_json, plot_utilization

    if plot:
        check_output(plot, inputs=(bundle,), what="plot", make_parents=True)
    net, _ = _load_bundle(bundle)
    pl = net.metadata.get("placement")
    if plot:
        map_json(pl)  # validates
        plot_utilization(pl, plot, inputs=(bundle,))
    if as_json:
        click.echo(to_json(map_json(pl), indent=None))
        return
    click.echo(format_text(pl, str(bundle)))
    if plot:
        click.echo(f"\nwrote {plot}")


def main() -> None:
    sys.exit(contract.run(cli, prog_name="snnc"))


if __name__ == "__main__":
    main()
