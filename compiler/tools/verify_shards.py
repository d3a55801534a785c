"""``snnc verify --against ann`` over shards of a data file on workers (``tools.sharding``'s engines;
docs/distributed.md).

A shard is samples [start, stop) of the data file, read by the worker itself; it runs the SNN, snnc's
integer ANN and the user's model (onnxruntime / snnc's QONNX executor, inside the worker) on them and
returns a ``VerifyPartial``: integer counts per population (neurons compared and mismatched, levels
compared and differing, local comparison counts), the per-batch float error sums, predictions and labels
in sample order, and the input-range counts. ``merge_verify`` adds them up so that the report, the
fidelity table and the verdict are the ones a single process gives, byte for byte:

- shards start on a multiple of the batch (256) one process compares in, so every batch the SNN, the
  integer ANN and onnxruntime see is the same batch, and the float sums of each batch are added in the
  same order (``verify.finish_ann``);
- a layer whose values turn out not to be levels is skipped by one process from that batch on, and the
  layers it feeds are then compared with snnc's levels of it: a shard that started before an earlier
  shard found that is run again knowing it (``verify_sharded``), so nothing depends on where it ran;
- the user's model that cannot be run gives the error of the first shard (in order) that met it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ..errors import SnncError
from ..fidelity import FidelityPartial, InputRangeReport, input_range_report, merge_fidelity, merge_input_ranges
from .fidelity_check import UserModelRun, fidelity_partial, read_user_model
from .sharding import DEFAULT_SHARD_SAMPLES, Engine, ShardingError, SimulateTask, open_shard_bundle, plan_tasks
from .verify import AnnPartial, AnnVerifyReport, ann_partial, finish_ann

#: the batch one process compares in (``verify_against_ann`` / ``compare_with_user_model``); shards are multiples
VERIFY_BATCH = 256


@dataclass(frozen=True)
class VerifyTask:
    """One shard of ``snnc verify --against ann``: the samples and backend (``sim``), the user's model (a path,
    or None: the one embedded in the bundle; ``compare`` False: not compared, there is none) and the
    populations earlier shards found not levels."""

    sim: SimulateTask
    model: str | None
    model_name: str
    compare: bool = True
    not_levels: frozenset = frozenset()


@dataclass
class VerifyPartial:
    """What one shard returns (module docstring); ``fidelity`` None when the model was not compared
    (``error``: why, if it could not be run)."""

    ann: AnnPartial
    fidelity: FidelityPartial | None
    error: str | None
    inputs: InputRangeReport


def verify_shard(task: VerifyTask) -> VerifyPartial:
    """Run one shard (on a worker): the SNN against the integer ANN, then the user's model against both."""
    from .backend_choice import counting

    loaded, schedule, be, x, y = open_shard_bundle(task.sim)
    net = loaded.network
    ann = ann_partial(net, x, y, schedule, counting(be), VERIFY_BATCH)
    fid, error = None, None
    if task.compare:   # the driver read these bytes as an ONNX model already (``read_user_model``)
        mb = Path(task.model).read_bytes() if task.model else bytes(loaded.extras["onnx_model"])
        fid, error = fidelity_partial(net, onnx.load_from_string(mb), x, y, np.concatenate(ann.pred_snn),
                                      task.model_name, VERIFY_BATCH, task.not_levels)
    return VerifyPartial(ann, fid, error, input_range_report(net, x))


def _first_stale(parts: list[VerifyPartial]) -> tuple[int, frozenset] | None:
    """The first shard that did not start from the not-levels set the shards before it ended with (and that
    set), or None when every one did."""
    known: frozenset = frozenset()
    for i, p in enumerate(parts):
        if p.fidelity is None:
            return None            # the model could not be run: no comparison is kept
        if p.fidelity.not_levels != known:
            return i, known
        known = p.fidelity.found_not_levels
    return None


@dataclass
class ShardedVerify:
    """The merged outcome: the report (as ``verify_against_ann`` gives it), the comparison with the user's
    model (as ``compare_with_user_model`` gives it) and the input-range counts over all samples."""

    report: AnnVerifyReport
    run: UserModelRun
    inputs: InputRangeReport


def verify_sharded(bundle: str, net, data: str, samples: int | None, choice, schedule, model: str | None,
                   model_bytes: bytes | None, model_name: str, engine: Engine,
                   shard_samples: int = DEFAULT_SHARD_SAMPLES, progress=None) -> ShardedVerify:
    """``snnc verify --against ann`` over shards of ``data`` on ``engine``, merged (module docstring).
    ``model``: the --model path (None: the bundle's embedded model, ``model_bytes``, read here only for its
    kind and weight bits; None as well: fidelity unchecked)."""
    from .backend_choice import device_of

    if shard_samples % VERIFY_BATCH:
        raise ShardingError(f"--shard-samples {shard_samples}: verify shards must be a multiple of {VERIFY_BATCH} "
                            "samples (the batch one process compares in, so that every shard sees the same batches "
                            f"and sums them in the same order); use {VERIFY_BATCH}, {2 * VERIFY_BATCH}, ...")
    be = choice.counting_backend(net, schedule)
    um = read_user_model(net, model_bytes, model_name)
    sims = plan_tasks(bundle, net, data, samples, be, schedule, shard_samples)
    if not sims:
        raise SnncError(f"'{data}': no samples to verify")
    tasks = [VerifyTask(t, model, model_name, um.model is not None) for t in sims]
    parts = engine.map(verify_shard, tasks, progress)
    while (stale := _first_stale(parts)) is not None:   # a layer found not levels: later shards again, knowing it
        i, known = stale
        again = [VerifyTask(t.sim, t.model, t.model_name, t.compare, known) for t in tasks[i:]]
        parts = parts[:i] + engine.map(verify_shard, again, progress)
    ann = AnnPartial.merge([p.ann for p in parts])
    report = finish_ann(net, ann, schedule, be.name, device_of(be))
    errors = [p.error for p in parts if p.error]
    if um.model is None:
        run = UserModelRun(None, um.kind, um.bits, um.error)
    elif errors:
        run = UserModelRun(None, um.kind, um.bits, errors[0])
    else:
        run = UserModelRun(merge_fidelity([p.fidelity for p in parts]).result(), um.kind, um.bits)
    return ShardedVerify(report, run, merge_input_ranges([p.inputs for p in parts]))


def verify_sharded_command(bundle: str, net, extras, against: str, data: str | None, samples: int | None, choice,
                           schedule, model: str | None, workers: int | None, cluster: str | None,
                           shard_samples: int) -> tuple[AnnVerifyReport, UserModelRun, str | None, list[str]]:
    """What ``snnc verify --workers/--cluster`` runs: the checks of what can be sharded, the engine, the
    progress bar over shards; returns the report (the user's model's figures merged in), the comparison,
    the input-range warning (in the JSON) and the lines to print on stderr."""
    import sys

    from tqdm import tqdm

    from ..metadata import Conversion, conversion_of
    from .fidelity_check import merge_into_report
    from .sharding import engine_for

    if against != "ann":
        raise ShardingError(f"--workers/--cluster shard `snnc verify --against ann`; --against {against} runs in one "
                            "process: leave --workers/--cluster out")
    if not data:
        raise ShardingError("--workers/--cluster shard a data file: give --data")
    if conversion_of(net) is Conversion.TRAINING_FREE:
        raise ShardingError("--workers/--cluster: a training-free network (no quantized ANN) is verified in one "
                            "process: leave --workers/--cluster out")
    notes = []
    mb = Path(model).read_bytes() if model else (bytes(extras["onnx_model"]) if "onnx_model" in extras else None)
    if mb is None:
        notes.append("warning: the source model is not embedded and --model was not given: fidelity to it unchecked")
    engine = engine_for(workers, cluster)
    with tqdm(desc=f"verify ({engine.name})", unit="shard", disable=None, file=sys.stderr, leave=False) as bar:
        out = verify_sharded(str(bundle), net, str(data), samples, choice, schedule,
                             None if model is None else str(Path(model).resolve()), mb,
                             Path(model).name if model else "model", engine, shard_samples, progress=bar.update)
    merge_into_report(out.report, out.run)
    return out.report, out.run, out.inputs.message(), notes
