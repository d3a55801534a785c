"""``snnc compile``: a configuration from the command's options, the pipeline run with the reference
simulator as the runner of data-driven choices, and the lines the command prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snnc.ir import Network, Schedule
from snnc.ir.atomic import check_output

from ..config import CompileConfig, NeuronKind, parse_neuron_spec
from ..errors import SnncError
from ..frontend.onnx_loader import external_data_files
from ..integerize import fitting_timesteps
from ..weight_precision import WeightPrecisionError
from ..pipeline import CompileContext, PipelineRun, Records, StageTiming, run_pipeline
from .options import naming_options, parse_input_range
from .runner import reference_runner


def compile_config(neuron: str, schedule: str, input_range: str | None, **options) -> CompileConfig:
    """The CompileConfig of ``snnc compile``'s options: ``--neuron multi-threshold:N`` gives mt_n = N,
    and such neurons run pipelined (docs/ir.md), so the default layerwise schedule becomes pipelined;
    ``--input-range lo,hi``."""
    kind, n = parse_neuron_spec(neuron)
    if kind is NeuronKind.MULTI_THRESHOLD and Schedule(schedule) is Schedule.LAYERWISE:
        schedule = Schedule.PIPELINED.value
    with naming_options():
        return CompileConfig(neuron=kind.value, mt_n=n or 4, schedule=schedule,
                             input_range=parse_input_range(input_range), **options)


@dataclass
class CompileOutcome:
    run: PipelineRun
    output: Path | None

    @property
    def network(self) -> Network | None:
        compiled = self.run.records.compiled
        return None if compiled is None else compiled.network


def compile_command(model: str, output: str | None, config: CompileConfig, stop_after: str | None = None,
                    dump: str | None = None, timings: bool = False) -> CompileOutcome:
    """Run the pipeline from the ONNX file up to ``stop_after`` (default: the bundle at ``output``)."""
    inputs: tuple[str, ...] = ()
    if output is not None:  # checked as given ('' and 'new/' are refused), before any work
        inputs = compile_inputs(model, config)
        check_output(output, inputs=(model, *inputs), what="bundle", make_parents=True)
    out = None if output is None else Path(output)
    ctx = CompileContext(config, reference_runner, str(model), out, out_inputs=inputs)
    run = run_pipeline(ctx, "import", stop_after or "bundle", store_timings=timings,
                       dump_dir=None if dump is None else Path(dump))
    return CompileOutcome(run, out if "bundle" in run.ran else None)


def compile_inputs(model: str, config: CompileConfig) -> tuple[str, ...]:
    """Files besides the model that ``snnc compile`` reads (its external data, --calib, --profile, a
    --target file): the bundle must never replace one of them."""
    files = [str(f) for f in external_data_files(model)]
    files += [str(f) for f in (config.calibration_data, config.profile) if f]
    if Path(config.target).suffix == ".toml":
        files.append(config.target)
    return tuple(dict.fromkeys(files))


def summary_lines(model: str, outcome: CompileOutcome, config: CompileConfig) -> list[str]:
    """What ``snnc compile`` prints about the network it wrote (or how far it got)."""
    net = outcome.network
    if outcome.output is None or net is None:
        return [f"stopped after stage '{outcome.run.ran[-1]}' ({', '.join(outcome.run.ran)}); no bundle written"]
    n_neurons = sum(p.size for p in net.populations)
    n_syn = sum(p.num_synapses for p in net.projections)
    mixed = net.metadata.get("mixed_levels")
    lv = (f"mixed L {sorted(set(mixed.values()))}: each layer runs its own L steps, layerwise" if mixed
          else f"L={net.metadata['levels']}")
    lines = [f"compiled {model} -> {outcome.output}: {len(net.populations)} populations, {n_neurons} neurons, "
             f"{n_syn} synapses, T={net.timesteps} ({lv}), neuron {config.neuron.value}"
             + (f":{config.mt_n}, coding {config.coding.value}" if config.neuron is NeuronKind.MULTI_THRESHOLD else "")
             + f", v0 {config.v0.value}, target {config.target}"]
    pl = net.metadata.get("placement")
    if pl:
        lines.append(f"placed on {pl['cores_used']:,} cores, {pl['chips_used']:,} chip(s) "
                     f"(lower bound {pl['lower_bound_cores']:,} cores); see: snnc map {outcome.output}")
    return lines


def timings_table(timings: list[StageTiming]) -> str:
    """Each stage's wall time and the process's peak resident memory when it ended."""
    rows = [f"  {'stage':<11} {'seconds':>9} {'peak RSS MiB':>13}"]
    for t in timings:
        rows.append(f"  {t.stage:<11} {t.seconds:>9.3f} {t.peak_rss_bytes / 2**20:>13.1f}")
    rows.append(f"  {'total':<11} {sum(t.seconds for t in timings):>9.3f}")
    return "\n".join(rows)


def timesteps_suggestion(model: str, config: CompileConfig, error: WeightPrecisionError) -> str:
    """One line: the network-wide ``--timesteps`` that keeps every layer's weight bits (else the largest
    that passes the weight floor), found by integerizing at the T each refusal points to
    (``integerize.fitting_timesteps``); or why none does."""
    records = run_pipeline(CompileContext(config, reference_runner, str(model)), "import", "passes").records

    def lower_at(t: int, floor: int | None):
        ctx = CompileContext(CompileConfig(**{**config.to_dict(), "timesteps": t}), reference_runner,
                             min_weight_bits=floor)
        return run_pipeline(ctx, "calibrate", "integerize", Records(model=records.model))

    for keep_all, how in ((True, "keeps every layer's weight bits"),
                          (False, "passes the weight floor (no T keeps every bit)")):
        try:
            t, _ = fitting_timesteps(lower_at, error.timesteps, keep_all_bits=keep_all)
        except SnncError:
            continue
        return f"suggestion: --timesteps {t} {how}: snnc compile {model} --timesteps {t} ..."
    return ("suggestion: no --timesteps keeps the weight floor on this target; use a target with a wider state "
            "(--profile with [numeric] state_bits)")
