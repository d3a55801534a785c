"""Sharded runs: ``snnc simulate`` over the samples of a data file and ``snnc eval`` over its grid, on
workers of a distributed engine (docs/distributed.md).

The work is cut into shards that do not depend on where they run: a simulate shard is a slice of
sample indices [start, stop) read from the data file by itself (``data.load_arrays(start=...)``,
never the whole file), an eval shard is one T of the grid. Each shard returns a record that merges
exactly (integer totals, predictions in sample order; eval results in the grid's order), so the merged
JSON is byte-for-byte the one a single process prints (``snnc verify``'s shards, the same slices on the same
engines: ``tools.verify_shards``). The engine:

- ``LocalEngine``: the shards one after another in this process (``--workers`` not given);
- ``RayEngine``: Ray tasks, a local ``ray.init()`` with ``--workers`` CPUs, or a running cluster
  (``--cluster ADDRESS``); a task whose worker dies is retried (``max_retries``), an error the task
  raises itself (a bad file, a refused network) is not retried and reaches the user as one line.

Ray is an optional extra (``make ray``): without it ``--workers``/``--cluster`` are refused by name.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Protocol, Sequence

from ..errors import SnncError
from .evaluate import RELU, EvalReport

DEFAULT_SHARD_SAMPLES = 256
WORKER_RETRIES = 2


class ShardingError(SnncError):
    """Sharding options that cannot be honoured (no Ray installed, a bad worker count)."""


@dataclass(frozen=True)
class Shard:
    """Samples [start, stop) of a data file; ``index`` orders the merge."""

    index: int
    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError(f"shard {self.index}: empty or negative range [{self.start}, {self.stop})")

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(samples: int, shard_samples: int = DEFAULT_SHARD_SAMPLES) -> list[Shard]:
    """``samples`` cut into consecutive shards of ``shard_samples`` (the last one shorter)."""
    if shard_samples < 1:
        raise ShardingError(f"--shard-samples must be >= 1, got {shard_samples}")
    return [Shard(i, s, min(s + shard_samples, samples)) for i, s in enumerate(range(0, samples, shard_samples))]


class Engine(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Callable[[int], None] | None = None) -> list:
        """``[fn(item) for item in items]``, in the order of ``items``, wherever it runs."""


class LocalEngine:
    """Every shard in this process, one after another."""

    name = "local"

    def map(self, fn, items, progress=None) -> list:
        out = []
        for item in items:
            out.append(fn(item))
            if progress is not None:
                progress(1)
        return out


class RayEngine:
    """Ray tasks: ``ray.init()`` on this machine with ``workers`` CPUs, or the cluster at ``address``."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, retries: int = WORKER_RETRIES):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ShardingError("--workers/--cluster run shards on Ray, which is not installed: `make ray` "
                                "installs it (pip install 'snnc[ray]')") from None
        if workers is not None and workers < 1:
            raise ShardingError(f"--workers must be >= 1, got {workers}")
        self.workers, self.address, self.retries = workers, address, retries

    def map(self, fn, items, progress=None) -> list:
        # Ray's driver prints what its raylets report (e.g. "A worker died ...") on sys.stdout, where the
        # command's output (its JSON) goes: while the shards run, that is sent to stderr
        with contextlib.redirect_stdout(sys.stderr):
            return self._map(fn, items, progress)

    def _map(self, fn, items, progress=None) -> list:
        import ray

        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise ShardingError(f"--cluster {self.address}: cannot connect to a Ray cluster there "
                                    f"({str(e).splitlines()[0][:160]})") from None
        try:
            task = ray.remote(max_retries=self.retries, num_cpus=1)(fn)
            refs = [task.remote(item) for item in items]
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                if progress is not None:
                    progress(len(done))
            try:
                return ray.get(refs)
            except ray.exceptions.RayTaskError as e:  # the task's own error: re-raise it as it was
                cause = getattr(e, "cause", None)
                raise (cause if isinstance(cause, BaseException) else e) from None
        finally:
            if started:
                ray.shutdown()


def engine_for(workers: int | None, cluster: str | None) -> Engine:
    """``--workers``/``--cluster`` -> the engine (neither: this process)."""
    if workers is None and cluster is None:
        return LocalEngine()
    return RayEngine(workers, cluster)


# ---- simulate: shards of samples ----------------------------------------------------------------

@dataclass(frozen=True)
class SimulateTask:
    """What a worker needs to simulate one shard: files by path (each worker reads its own slice)."""

    bundle: str
    data: str
    shard: Shard
    backend: str       # resolved by the driver (``--backend auto`` picks once, every shard runs the same)
    device: str
    schedule: str


def open_shard(task: SimulateTask):
    """What a worker reads for one shard: the bundle (loaded and checked), the schedule, the backend the
    driver resolved, and samples [start, stop) of the data file (nothing else of it)."""
    loaded, schedule, be, x, y = open_shard_bundle(task)
    return loaded.network, schedule, be, x, y


def open_shard_bundle(task: SimulateTask):
    """As ``open_shard``, with the loaded bundle (``bundles.LoadedBundle``: the network and its extras)."""
    from snnc.ir import Schedule

    from ..bundles import load_bundle
    from ..data import load_data
    from .backend_choice import BackendChoice

    loaded = load_bundle(task.bundle)
    net = loaded.network
    schedule = Schedule(task.schedule)
    be = BackendChoice(task.backend, task.device).backend(net, schedule)
    x, y = load_data(task.data, net, task.shard.size, start=task.shard.start)
    return loaded, schedule, be, x, y


def plan_tasks(bundle: str, net, data: str, samples: int | None, be, schedule,
               shard_samples: int) -> list[SimulateTask]:
    """The shards of the first ``samples`` samples of ``data`` (all: None), each run on ``be``."""
    from ..data import check_samples, count_samples
    from .backend_choice import device_of

    check_samples(samples)
    n = count_samples(data, tuple(net.inputs[0].shape), net.inputs[0].name)
    n = n if samples is None else min(samples, n)
    return [SimulateTask(str(bundle), str(data), s, be.name, device_of(be), schedule.value)
            for s in plan_shards(n, shard_samples)]


def simulate_shard(task: SimulateTask):
    """One shard of ``snnc simulate``: its partial counts."""
    from .simulate import simulate_partial

    net, schedule, be, x, y = open_shard(task)
    return simulate_partial(net, x, y, be, schedule)


def simulate_sharded(bundle: str, net, data: str, samples: int | None, choice, schedule,
                     keep_predictions: bool, engine: Engine, shard_samples: int = DEFAULT_SHARD_SAMPLES,
                     progress=None):
    """``snnc simulate`` over shards of ``data`` on ``engine`` with the backend ``choice``
    (``backend_choice.BackendChoice``); the report a single process gives."""
    from .backend_choice import device_of
    from .simulate import finish_simulate

    be = choice.backend(net, schedule)
    parts = engine.map(simulate_shard, plan_tasks(bundle, net, data, samples, be, schedule, shard_samples), progress)
    return finish_simulate(net, parts, be.name, device_of(be), schedule, keep_predictions)


# ---- stats: shards of samples, counted operations added up ----------------------------------------

def stats_shard(task: SimulateTask):
    """One shard of ``snnc stats``: its integer operation counts."""
    from .backend_choice import counting
    from .stats import count_operations

    net, schedule, be, x, _ = open_shard(task)
    return count_operations(net, x, schedule, counting(be))


def stats_sharded(bundle: str, net, data: str, samples: int | None, choice, schedule, energy, engine: Engine,
                  shard_samples: int = DEFAULT_SHARD_SAMPLES, progress=None):
    """``snnc stats`` over shards of ``data``: integer operation totals added up, then priced once."""
    from .backend_choice import device_of
    from .stats import price_operations

    be = choice.counting_backend(net, schedule)
    parts = engine.map(stats_shard, plan_tasks(bundle, net, data, samples, be, schedule, shard_samples), progress)
    return price_operations(net, parts, schedule, energy, be.name, device_of(be))


# ---- eval: shards of the grid --------------------------------------------------------------------

@dataclass(frozen=True)
class EvalTask:
    model: str
    data: str
    grid: Any          # evaluate.EvalGrid with one T
    base: Any          # config.CompileConfig
    samples: int | None
    backend: Any       # backend_choice.BackendChoice


def eval_shard(task: EvalTask):
    from .evaluate import evaluate

    return evaluate(task.model, task.data, task.grid, task.base, task.samples, backend=task.backend)


def eval_sharded(model: str, data: str, grid, base, samples: int | None, engine: Engine, progress=None,
                 backend=None):
    """``snnc eval`` with one shard per T of the grid; the merged report equals the single-process one:
    the same top-level figures (each shard computes them from the same inputs) and the results in the
    order a single process produces them (row by row, T by T, schedule innermost)."""
    tasks = [EvalTask(str(model), str(data), replace(grid, timesteps=[T]), base, samples, backend)
             for T in grid.timesteps]
    reports = engine.map(eval_shard, tasks, progress)
    return merge_eval_reports(reports, grid.timesteps)


def merge_eval_reports(reports: list[EvalReport], timesteps: list[int]) -> EvalReport:
    """Reports of the same model, data and grid rows, one per T (``tools.sharding``), as one report:
    the results in the order ``evaluate`` produces them (row by row, T by T, schedule innermost)."""
    first = reports[0]
    t_index = {T: i for i, T in enumerate(timesteps)}
    rows = first.rows()
    if first.kind == RELU:
        def key(r):
            return rows.index(first.row_key(r)), t_index[r.timesteps]
    else:
        schedules = first.grid["schedule"]
        outer = list(itertools.product(first.grid["neuron"], first.grid["v0"]))

        def key(r):
            return outer.index((r.neuron, r.v0)), t_index[r.timesteps], schedules.index(r.schedule)
    own = ("grid", "results", "notes")   # what each shard has of its own
    for rep in reports[1:]:
        same = {k: v for k, v in asdict(rep).items() if k not in own}
        if same != {k: v for k, v in asdict(first).items() if k not in own}:
            raise SnncError("eval shards disagree on the model, the data or the reference accuracies; "
                            "the shards did not see the same files")
    results = sorted((r for rep in reports for r in rep.results), key=key)
    notes = list(dict.fromkeys(n for rep in reports for n in getattr(rep, "notes", [])))
    return replace(first, grid={**first.grid, "timesteps": list(timesteps)}, results=results, notes=notes)
