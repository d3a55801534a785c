"""The compile pipeline: named stages, a typed record after each, a check between stages.

    stage        reads                    produces (``Records`` field)
    import       the ONNX file            ImportedGraph   (float graph, model bytes, ANN MACs)
    passes       ImportedGraph            ImportedModel   (the graph rewritten to a fixed point)
    calibrate    ImportedModel            Calibration     (the Conversion decided; ReLU thresholds)
    lowering     Calibration              LoweredGraph    (the network in real arithmetic)
    integerize   LoweredGraph             IntegerNetwork  (integers, coding and F, layer records)
    bounds       IntegerNetwork           BoundedNetwork  (every state within the target's width)
    mapping      BoundedNetwork           CompiledNetwork (placement on cores and chips; metadata)
    bundle       CompiledNetwork          BundleFile      (the .snnc file, written atomically)

``run_pipeline`` runs them in order, checks each record (``Stage.check``; a failed check is a
compiler bug: ``PipelineCheckError``), times each stage and reads the process's peak resident memory
after it, can stop after any stage and dump every record it made readably (``dumps.py``):
``snnc compile --timings``, ``--stop-after STAGE --dump DIR``. The library entry points
(``compiler/api.py``) are thin calls into it.

Everything a stage needs is explicit: the ``CompileContext`` (configuration, target, the ``Runner``
that data-driven choices run the network with) and the records of the stages before it.
"""

from __future__ import annotations

import hashlib
import logging
import resource
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from snnc import __version__
from snnc.ir import Input, Network, Schedule, save

from .analysis.bounds import StateBound, check_network, state_limit
from .analysis.macs import macs_per_op
from .calibrate import Runner, firing_rates, output_error, relu_thresholds
from .config import CodingKind, CompileConfig
from .dumps import dump_float_graph, dump_json, dump_lowered, dump_network
from .errors import SnncError
from .frontend.float_graph import FGraph
from .frontend.onnx_loader import import_onnx, model_bytes
from .integerize import IntegerizeContext, IntegerNetwork, choose_frac_bits, integerize_network
from .lowering import FixedNodes, GradedPlan, LoweredGraph, LoweringOptions, lower_graph
from .mapping import host_unit_bits, map_network
from .metadata import Conversion, decide_conversion, records_metadata
from .passes import default_passes, run_passes
from .targets import TargetProfile, load_target

log = logging.getLogger(__name__)


class PipelineCheckError(Exception):
    """A stage's output broke an invariant the next stage relies on: a compiler bug, not bad input."""


# ---- the records between stages -----------------------------------------------------------------
@dataclass
class ImportedGraph:
    """The import stage's record: the float graph as imported (the passes then rewrite it in place)."""

    path: str
    graph: FGraph
    raw: bytes               # the model's self-contained bytes (external data inlined)
    macs: dict[str, int]     # ANN multiply-accumulates per ONNX linear op, before any folding


@dataclass
class ImportedModel:
    """An ONNX model imported and simplified once, to be lowered under any number of configs."""

    path: str
    graph: FGraph
    raw: bytes
    macs: dict[str, int]
    passes_fired: dict[str, int] = field(default_factory=dict)
    # calibration inputs and their ReLU pre-activation statistics per file (path, size, mtime): one read
    # and one float-graph pass per file however many configs are compiled from this import (eval's grid)
    calib_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass
class Calibration:
    """The calibrate stage's record: the one Conversion decision, and the calibrated ReLU thresholds
    of a training-free conversion (None otherwise)."""

    conversion: Conversion
    relu_thresholds: dict[str, np.ndarray] | None


@dataclass
class BoundedNetwork:
    """The bounds stage's record: the integer network and the state bound of every node."""

    integer: IntegerNetwork
    bounds: list[StateBound]


@dataclass
class CompiledNetwork:
    """The mapping stage's record: the finished network, its metadata complete (placement included)."""

    network: Network


@dataclass
class BundleFile:
    path: Path


@dataclass
class Records:
    """Every stage's record so far (a stage reads the ones before it and fills its own)."""

    imported: ImportedGraph | None = None
    model: ImportedModel | None = None
    calibration: Calibration | None = None
    lowered: LoweredGraph | None = None
    integer: IntegerNetwork | None = None
    bounded: BoundedNetwork | None = None
    compiled: CompiledNetwork | None = None
    bundle: BundleFile | None = None


@dataclass
class CompileContext:
    """What every stage may read: the configuration, its target profile (loaded when a stage first
    needs it), the runner data-driven choices run the network with (None: those choices are refused
    with ``RunnerRequiredError``), the model file and the bundle to write (import and bundle stages).
    ``min_weight_bits``: a floor on every layer's weight bits for the integerize stage
    (``IntegerizeContext.min_weight_bits``; ``frac_bits = auto:k`` sets its own), e.g. the 64 of
    ``integerize.fitting_timesteps(keep_all_bits=True)``: no layer may lose a bit."""

    config: CompileConfig = field(default_factory=CompileConfig)
    runner: Runner | None = None
    model_path: str | None = None
    out_path: Path | None = None
    min_weight_bits: int | None = None
    out_inputs: tuple[str, ...] = ()       # files the bundle must never replace (the model, its data, --calib...)

    @cached_property
    def target(self) -> TargetProfile:
        return load_target(self.config.target, self.config.profile)


# ---- the stages -------------------------------------------------------------------------------------
def _import(ctx: CompileContext, r: Records) -> ImportedGraph:
    if ctx.model_path is None:
        raise PipelineCheckError("the import stage needs a model path")
    log.info("importing %s", ctx.model_path)
    g, model = import_onnx(ctx.model_path)
    return ImportedGraph(str(ctx.model_path), g, model_bytes(model), macs_per_op(g))  # MACs before any folding


def _passes(ctx: CompileContext, r: Records) -> ImportedModel:
    imp = r.imported
    fired = run_passes(imp.graph, default_passes())
    log.info("passes: %s", {k: v for k, v in fired.items() if v})
    return ImportedModel(imp.path, imp.graph, imp.raw, imp.macs, fired)


def _calibrate(ctx: CompileContext, r: Records) -> Calibration:
    ctx.target  # a bad target or profile is reported before anything is calibrated
    conversion = decide_conversion(ctx.config, r.model.graph)
    thresholds = relu_thresholds(r.model, ctx.config) if conversion is Conversion.TRAINING_FREE else None
    return Calibration(conversion, thresholds)


def _lowering(ctx: CompileContext, r: Records) -> LoweredGraph:
    config = ctx.config
    options = LoweringOptions(
        input_bits=ctx.target.numeric.input_bits, timesteps=config.timesteps, input_range=config.input_range,
        neuron=config.neuron_model(), v0_mode=config.v0.value, relu_thresholds=r.calibration.relu_thresholds,
        macs=r.model.macs)
    return lower_graph(r.model.graph, r.calibration.conversion, options)


def _integerize(ctx: CompileContext, r: Records) -> IntegerNetwork:
    config, lowered = ctx.config, r.lowered

    def at(coding, min_weight_bits=None) -> IntegerNetwork:
        floor = ctx.min_weight_bits if min_weight_bits is None else min_weight_bits
        return integerize_network(lowered, IntegerizeContext(ctx.target.numeric, coding, lowered.timesteps, floor))

    auto, min_bits = config.frac_bits_auto
    if auto and config.coding is CodingKind.DIFFERENTIAL:  # F shares the state width with the weights
        data_driven = min_bits is None and lowered.conversion is Conversion.TRAINING_FREE
        error = output_error(r.model, config, ctx.runner) if data_driven else None
        coding, result = choose_frac_bits(at, config.timesteps or 1, min_bits, error=error,
                                          network_of=lambda res: res.network)
        log.info("frac_bits=%s: F = %d", config.frac_bits, coding.frac_bits)
        return result
    return at(config.coding_model(frac_bits=12) if auto else config.coding_model())


def _bounds(ctx: CompileContext, r: Records) -> BoundedNetwork:
    net = r.integer.network
    bounds = check_network(net, ctx.target.numeric.state_bits, host_unit_bits(net, ctx.target))
    net.check_schedule(ctx.config.schedule)  # mixed L: the layerwise schedule only, refused by name otherwise
    return BoundedNetwork(r.integer, bounds)


def compile_metadata(ctx: CompileContext, model: ImportedModel, integer: IntegerNetwork) -> dict[str, Any]:
    """The bundle metadata of a compiled network (without its placement), written in one place."""
    return {
        "snnc_version": __version__,
        "config": ctx.config.to_dict(),
        "target": ctx.target.to_dict(),
        "source_model": {"path": model.path, "sha256": model.sha256, "bytes": len(model.raw)},
        "conversion": integer.conversion.value,
        **records_metadata(integer.layers),
        "levels": integer.levels,
        **({"mixed_levels": integer.mixed_levels} if integer.mixed_levels else {}),
        "ann_macs_total": int(sum(model.macs.values())),
    }


def _mapping(ctx: CompileContext, r: Records) -> CompiledNetwork:
    net = r.bounded.integer.network
    config = ctx.config
    # a training-free network (multi-threshold neurons) runs pipelined, the others in the configured schedule
    training_free = r.bounded.integer.conversion is Conversion.TRAINING_FREE
    rates = firing_rates(net, config, Schedule.PIPELINED if training_free else config.schedule, ctx.runner)
    placement = map_network(net, ctx.target, config.chips, config.system, rates)
    net.metadata = {**compile_metadata(ctx, r.model, r.bounded.integer), "placement": placement}
    return CompiledNetwork(net)


def _bundle(ctx: CompileContext, r: Records) -> BundleFile:
    if ctx.out_path is None:
        raise PipelineCheckError("the bundle stage needs an output path")
    net = r.compiled.network
    extras = {}
    if len(r.model.raw) <= ctx.config.embed_model_max_bytes:
        extras["onnx_model"] = np.frombuffer(r.model.raw, dtype=np.uint8)
    return BundleFile(save(net, ctx.out_path, extras, inputs=(ctx.model_path, *ctx.out_inputs), make_parents=True))


# ---- the checks between stages --------------------------------------------------------------------------
def float_graph_problems(g: FGraph) -> list[str]:
    """What makes a float graph unusable by the next stage: duplicate op names, an op reading a tensor
    no earlier op (or the input) produces, an output nothing produces."""
    problems, seen = [], {g.input_name}
    for op in g.ops:
        if op.name in seen:
            problems.append(f"op name '{op.name}' is used twice")
        missing = [s for s in op.sources() if s not in seen]
        if missing:
            problems.append(f"op '{op.name}' reads {missing} before they are produced")
        seen.add(op.name)
    if g.output not in seen:
        problems.append(f"the output '{g.output}' is not produced")
    return problems


def _check_graph(ctx: CompileContext, rec) -> None:
    problems = float_graph_problems(rec.graph)
    if problems:
        raise PipelineCheckError("the float graph is inconsistent: " + "; ".join(problems))


def _check_calibration(ctx: CompileContext, rec: Calibration) -> None:
    if (rec.relu_thresholds is not None) != (rec.conversion is Conversion.TRAINING_FREE):
        raise PipelineCheckError(f"conversion {rec.conversion.value} with thresholds {rec.relu_thresholds is not None}")


def _check_lowered(ctx: CompileContext, rec: LoweredGraph) -> None:
    names = [rec.input.name, rec.readout.layer.name]
    for item in rec.items:
        names += [n.name for n in item.nodes] if isinstance(item, FixedNodes) else \
            [item.name] if isinstance(item, GradedPlan) else [item.layer.name]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise PipelineCheckError(f"the lowering named several layers {dup}")


def _check_integer(ctx: CompileContext, rec: IntegerNetwork) -> None:
    layers = [r.layer for r in rec.layers]
    nodes = [n.name for n in rec.network.nodes if not isinstance(n, Input)]
    if sorted(layers) != sorted(nodes):
        raise PipelineCheckError(f"layer records {layers} do not match the network's layers {nodes}")


def _check_bounded(ctx: CompileContext, rec: BoundedNetwork) -> None:
    net = rec.integer.network
    unit_bits = host_unit_bits(net, ctx.target)
    bad = [b.node for b in rec.bounds if b.worst > state_limit(net.node(b.node), ctx.target.numeric.state_bits, unit_bits)]
    if bad or len(rec.bounds) != sum(not isinstance(n, Input) for n in rec.integer.network.nodes):
        raise PipelineCheckError(f"state bounds missing or over the width: {bad}")


def _check_compiled(ctx: CompileContext, rec: CompiledNetwork) -> None:
    pl = rec.network.metadata.get("placement") or {}
    if pl.get("cores_used", 0) < pl.get("lower_bound_cores", 1):
        raise PipelineCheckError("the placement uses fewer cores than its own lower bound")


def _check_bundle(ctx: CompileContext, rec: BundleFile) -> None:
    if not Path(rec.path).is_file():
        raise PipelineCheckError(f"the bundle '{rec.path}' was not written")


@dataclass(frozen=True)
class Stage:
    """One named stage: ``run(context, records)`` returns the record it stores in ``records.<field>``;
    ``check(context, record)`` raises PipelineCheckError when the record breaks an invariant."""

    name: str
    field: str
    run: Callable[[CompileContext, Records], Any]
    check: Callable[[CompileContext, Any], None]
    summary: str


STAGES: tuple[Stage, ...] = (
    Stage("import", "imported", _import, _check_graph, "ONNX file -> float graph (checked, all problems at once)"),
    Stage("passes", "model", _passes, _check_graph, "rewrite the float graph to a fixed point (folds, QuantAct)"),
    Stage("calibrate", "calibration", _calibrate, _check_calibration,
          "decide the conversion; calibrated ReLU thresholds (training-free)"),
    Stage("lowering", "lowered", _lowering, _check_lowered, "float graph -> the network in real arithmetic"),
    Stage("integerize", "integer", _integerize, _check_integer, "integer weights, thresholds, V0, bias; F"),
    Stage("bounds", "bounded", _bounds, _check_bounded, "every state within the target's width; schedule"),
    Stage("mapping", "compiled", _mapping, _check_compiled, "cores and chips; the bundle metadata"),
    Stage("bundle", "bundle", _bundle, _check_bundle, "the .snnc file, written atomically"),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise SnncError(f"unknown stage '{name}'; the stages are {', '.join(STAGE_NAMES)}")


# ---- running them -----------------------------------------------------------------------------------
def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (its high-water mark; getrusage, nearly free)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024   # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class StageTiming:
    """A stage's wall time, and the process's peak resident memory when it ended (it grew during the
    stage when it is larger than the stage before's)."""

    stage: str
    seconds: float
    peak_rss_bytes: int

    def to_dict(self) -> dict:
        return {"stage": self.stage, "seconds": self.seconds, "peak_rss_mib": self.peak_rss_bytes / 2**20}


@dataclass
class PipelineRun:
    """What ``run_pipeline`` did: every record made, the stages run, their timings."""

    records: Records
    ran: list[str]
    timings: list[StageTiming]


def _dump_network(ctx: CompileContext, r: Records, integer: IntegerNetwork, folder: Path, extra: dict) -> None:
    """An integer network of a stage before mapping, with the metadata it will carry (no placement yet)."""
    net = integer.network
    staged = Network(net.nodes, net.projections, net.timesteps, compile_metadata(ctx, r.model, integer), net.coding)
    dump_network(staged, folder, extra)


#: how each record is dumped readably (``--dump``): record type -> writer(context, records, record, folder)
DUMPS: dict[type, Callable[[CompileContext, Records, Any, Path], None]] = {
    ImportedGraph: lambda ctx, r, rec, d: dump_float_graph(rec.graph, d, {"macs": rec.macs}),
    ImportedModel: lambda ctx, r, rec, d: dump_float_graph(rec.graph, d, {"macs": rec.macs,
                                                                          "passes": rec.passes_fired}),
    Calibration: lambda ctx, r, rec, d: dump_json(d, "calibration.json", {"conversion": rec.conversion.value,
                                                                          "relu_thresholds": rec.relu_thresholds}),
    LoweredGraph: lambda ctx, r, rec, d: dump_lowered(rec, d),
    IntegerNetwork: lambda ctx, r, rec, d: _dump_network(ctx, r, rec, d, {}),
    BoundedNetwork: lambda ctx, r, rec, d: _dump_network(ctx, r, rec.integer, d, {"bounds": rec.bounds}),
    CompiledNetwork: lambda ctx, r, rec, d: dump_network(rec.network, d),
    BundleFile: lambda ctx, r, rec, d: dump_json(d, "bundle.json", {"path": str(rec.path)}),
}


def run_pipeline(ctx: CompileContext, first: str = "import", last: str = "bundle", records: Records | None = None,
                 store_timings: bool = False, dump_dir: Path | None = None) -> PipelineRun:
    """Run the stages ``first`` .. ``last`` in order on ``records`` (the earlier stages' records).

    After each stage its record is checked, its wall time and the peak resident memory recorded,
    and with ``dump_dir`` the record dumped readably to ``dump_dir/N-stage/``. With ``store_timings``
    the timings of the stages before the bundle stage are stored in the compiled network's metadata
    under ``timings`` (in memory: the bundle writer leaves wall-clock timings out, so that identical
    networks give identical bundle bytes; ``snnc.ir.bundle``)."""
    names = list(STAGE_NAMES)
    lo, hi = names.index(stage(first).name), names.index(stage(last).name)
    if lo > hi:
        raise SnncError(f"stage '{first}' comes after '{last}'")
    records = records if records is not None else Records()
    timings: list[StageTiming] = []
    ran: list[str] = []
    for st in STAGES[lo:hi + 1]:
        if st.name == "bundle" and store_timings:  # the stages that made the network (not written to the file)
            net = records.compiled.network
            net.metadata = {**net.metadata, "timings": [t.to_dict() for t in timings]}
        t0 = time.perf_counter()
        rec = st.run(ctx, records)
        seconds = time.perf_counter() - t0
        st.check(ctx, rec)
        setattr(records, st.field, rec)
        timings.append(StageTiming(st.name, seconds, peak_rss_bytes()))
        ran.append(st.name)
        log.info("stage %s: %.3f s", st.name, seconds)
        if dump_dir is not None:
            DUMPS[type(rec)](ctx, records, rec, Path(dump_dir) / f"{lo + len(ran)}-{st.name}")
    return PipelineRun(records, ran, timings)
