"""tools/sharding.py: shards of samples and of the eval grid, merged to exactly what one process gives.

The merge logic runs everywhere (the in-process engine); the tests marked ``ray`` start a local Ray
cluster (``make ray``) and skip cleanly without Ray.
"""

import importlib.util
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.backends.reference import ReferenceBackend
from snnc.compiler.data import count_samples, load_arrays
from snnc.compiler.errors import DataFileError
from snnc.compiler.tools.backend_choice import BackendChoice
from snnc.compiler.tools.cli import cli
from snnc.compiler.tools.evaluate import EvalGrid, evaluate
from snnc.compiler.tools.sharding import (LocalEngine, RayEngine, Shard, ShardingError, eval_sharded, plan_shards,
                                          simulate_sharded)
from snnc.compiler.tools.simulate import simulate_bundle
from snnc.ir import Schedule, load

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL

HAVE_RAY = importlib.util.find_spec("ray") is not None


def test_shards_cover_the_samples_once_in_order():
    for n, size in [(1, 1), (10, 3), (256, 256), (257, 256), (1000, 7)]:
        shards = plan_shards(n, size)
        assert [s.index for s in shards] == list(range(len(shards)))
        assert np.array_equal(np.concatenate([np.arange(s.start, s.stop) for s in shards]), np.arange(n))
        assert all(s.size <= size for s in shards)
    with pytest.raises(ShardingError):
        plan_shards(10, 0)
    with pytest.raises(ValueError):
        Shard(0, 5, 5)


def test_a_slice_of_the_data_file_is_the_slice_of_the_whole(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 50)
    for compressed in (False, True):
        path = tmp_path / f"d{compressed}.npz"
        (np.savez_compressed if compressed else np.savez)(path, x=x, y=y)
        assert count_samples(path, (1, 8, 8)) == 50
        for start, limit in [(0, 5), (7, 13), (45, None), (49, 1), (40, 100)]:
            xs, ys = load_arrays(path, (1, 8, 8), start=start, limit=limit, classes=10)
            stop = 50 if limit is None else min(50, start + limit)
            np.testing.assert_array_equal(xs, x[start:stop])
            np.testing.assert_array_equal(ys, y[start:stop])
        with pytest.raises(DataFileError, match="outside its 50 samples"):
            load_arrays(path, (1, 8, 8), start=50)


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("shard") / "cnn.snnc"
    r = CliRunner().invoke(cli, ["compile", str(DIGITS_MODEL), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_sharded_simulate_equals_one_process(digits_bundle):
    net = load(digits_bundle)
    from snnc.compiler.data import load_data

    x, y = load_data(DIGITS_DATA, net, 100)
    one = simulate_bundle(net, x, y, ReferenceBackend(), Schedule.LAYERWISE, keep_predictions=True)
    seen = []
    sharded = simulate_sharded(str(digits_bundle), net, str(DIGITS_DATA), 100, BackendChoice("reference", "cpu"),
                               Schedule.LAYERWISE,
                               True, LocalEngine(), shard_samples=7, progress=seen.append)
    assert len(seen) == 15  # ceil(100 / 7) shards
    assert json.dumps(sharded.to_dict()) == json.dumps(one.to_dict())


def test_sharded_stats_equal_one_process(digits_bundle):
    from snnc.compiler.data import load_data
    from snnc.compiler.tools.sharding import stats_sharded
    from snnc.compiler.tools.stats import compute_stats

    net = load(digits_bundle)
    x, _ = load_data(DIGITS_DATA, net, 50)
    one = compute_stats(net, x, Schedule.LAYERWISE, "horowitz2014", backend=ReferenceBackend())
    sharded = stats_sharded(str(digits_bundle), net, str(DIGITS_DATA), 50, BackendChoice("reference", "cpu"),
                            Schedule.LAYERWISE, "horowitz2014", LocalEngine(), shard_samples=9)
    assert json.dumps(sharded.to_dict()) == json.dumps(one.to_dict())


def test_sharded_eval_equals_one_process():
    grid = EvalGrid([1, 2, 4], neurons=["if", "dual-threshold"], schedules=["layerwise", "pipelined"])
    one = evaluate(DIGITS_MODEL, DIGITS_DATA, grid, samples=40)
    sharded = eval_sharded(DIGITS_MODEL, DIGITS_DATA, grid, None, 40, LocalEngine())
    assert json.dumps(sharded.to_dict(timings=False)) == json.dumps(one.to_dict(timings=False))
    assert "compile_seconds" not in json.dumps(one.to_dict(timings=False))
    assert "compile_seconds" in json.dumps(one.to_dict())


def test_workers_without_ray_are_refused_by_name(monkeypatch, digits_bundle):
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    r = CliRunner().invoke(cli, ["simulate", str(digits_bundle), "--data", str(DIGITS_DATA), "--workers", "2"])
    assert r.exit_code == 2 and "Ray, which is not installed" in r.output and "make ray" in r.output


# ---- on a local Ray cluster (make ray) -----------------------------------------------------------

@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
@pytest.mark.parametrize("command", ["simulate", "stats", "eval"])
def test_cli_on_a_local_ray_cluster_prints_the_same_bytes(command, digits_bundle):
    if command in ("simulate", "stats"):
        args = [command, str(digits_bundle), "--data", str(DIGITS_DATA), "--samples", "90", "--json"]
        extra = ["--shard-samples", "20"]
    else:
        args = ["eval", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--samples", "40", "--timesteps", "1,2,4",
                "--json"]
        extra = []
    runner = CliRunner()
    one = runner.invoke(cli, args)
    many = runner.invoke(cli, args + extra + ["--workers", "2"])
    assert one.exit_code == 0 and many.exit_code == 0, (one.output, many.output)
    assert many.stdout == one.stdout


def _by_value():
    """The workers cannot import this test module: ship its functions by value."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _die_once(marker: str) -> int:
    """A task that kills its worker process the first time it runs (a lost worker), then succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return 42


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
def test_a_lost_worker_is_retried(tmp_path):
    _by_value()
    marker = str(tmp_path / "died")
    assert RayEngine(workers=1).map(_die_once, [marker]) == [42]
    assert os.path.exists(marker)


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
def test_a_task_error_reaches_the_user_as_itself(tmp_path):
    _by_value()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataFileError):
        RayEngine(workers=1).map(load_arrays_of, [str(bad)])


def load_arrays_of(path: str):
    return load_arrays(path, (1, 8, 8))
