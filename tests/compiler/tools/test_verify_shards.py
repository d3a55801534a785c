"""tools/verify_shards.py: ``snnc verify --against ann`` over shards of the data file prints the bytes and
exits with the code one process gives, for every verdict.

The merge runs everywhere (the in-process engine stands in for Ray: ``engine_for`` patched); the tests
marked ``ray`` run the same commands on a local Ray cluster (``make ray``) and skip cleanly without Ray.
"""

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.compiler.fidelity import LevelsRead
from snnc.compiler.tools import sharding
from snnc.compiler.tools.cli import cli
from snnc.compiler.tools.sharding import LocalEngine

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL

HAVE_RAY = importlib.util.find_spec("ray") is not None


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("vshard")
    out = {}
    for name, extra in (("exact", []), ("t8", ["--timesteps", "8"])):
        out[name] = d / f"{name}.snnc"
        r = run("compile", DIGITS_MODEL, "-o", out[name], *extra)
        assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def data700(tmp_path_factory):
    """700 samples (the digits twice, minus some): shards of 256 leave an uneven last one (188)."""
    z = np.load(DIGITS_DATA)
    path = tmp_path_factory.mktemp("vdata") / "d700.npz"
    np.savez(path, x=np.concatenate([z["x"], z["x"]])[:700], y=np.concatenate([z["y"], z["y"]])[:700])
    return path


@pytest.fixture
def local_engine(monkeypatch):
    """``--workers`` runs the shards in this process (the merge is what is tested here)."""
    monkeypatch.setattr(sharding, "engine_for", lambda workers, cluster: LocalEngine())


# (bundle, extra options, the verdict one process gives on the digits)
CASES = {
    "EXACT": ("exact", []),
    "MISMATCH": ("exact", ["--schedule", "pipelined"]),
    "NOT FAITHFUL": ("exact", ["--min-fidelity", "1.0"]),
    "UNCHECKED": ("t8", []),   # T != L: rates (float error sums per layer), not compared with levels
}


@pytest.mark.parametrize("verdict", list(CASES))
@pytest.mark.parametrize("shard", ["256", "512"])
def test_sharded_verify_prints_the_bytes_of_one_process(verdict, shard, bundles, data700, local_engine):
    name, extra = CASES[verdict]
    args = ["verify", bundles[name], "--data", data700, *extra]
    for fmt in (["--json"], []):
        one = run(*args, *fmt)
        many = run(*args, *fmt, "--workers", "2", "--shard-samples", shard)
        assert one.exception is None or isinstance(one.exception, SystemExit), one.output
        assert many.exit_code == one.exit_code, (one.output, many.output)
        assert many.stdout == one.stdout
        if fmt:
            d = json.loads(one.stdout)
            assert d["verdict"]["name"] == verdict and d["samples"] == 700
            assert one.exit_code == (0 if verdict == "EXACT" else 1)


def test_a_layer_found_not_levels_reruns_the_later_shards(bundles, tmp_path, local_engine, monkeypatch):
    """One process skips a layer from the batch whose values are not levels on, and compares the layers it
    feeds on snnc's levels of it: a shard that started before that was known is run again, knowing it."""
    from snnc.compiler.fidelity import compare

    z = np.load(DIGITS_DATA)
    x = np.concatenate([z["x"][:256], np.repeat(z["x"][:1], 256, axis=0), z["x"][:300]])   # batch 2: one image
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.concatenate([z["y"][:256], np.repeat(z["y"][:1], 256), z["y"][:300]]))
    real = compare.read_levels

    def read(probe, value):   # conv1 of a batch of one repeated image "is not levels"
        v = np.asarray(value)
        if probe.population == "conv1" and len(v) > 1 and np.all(v == v[:1]):
            return LevelsRead(None, v.size, 7, 0.5)
        return real(probe, value)

    monkeypatch.setattr(compare, "read_levels", read)
    seen = []
    monkeypatch.setattr(LocalEngine, "map", lambda self, fn, items, progress=None: seen.append(len(items)) or
                        [fn(i) for i in items])
    one = run("verify", bundles["exact"], "--data", path, "--json")
    many = run("verify", bundles["exact"], "--data", path, "--json", "--workers", "2")
    assert many.stdout == one.stdout and many.exit_code == one.exit_code
    conv1 = next(L for L in json.loads(one.stdout)["fidelity"]["layers"] if L["layer"] == "conv1")
    assert conv1["status"] == "not-levels" and conv1["compared"] > 0 and conv1["not_integer"] == 7
    assert seen == [4, 2]   # 4 shards; the two after the one that found conv1 not levels run again


def test_verify_shards_must_align_with_the_batch(bundles, local_engine):
    r = run("verify", bundles["exact"], "--data", DIGITS_DATA, "--workers", "2", "--shard-samples", "100")
    assert r.exit_code == 2 and "multiple of 256" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--against", "torch"], []])
def test_what_is_not_sharded_is_refused_by_name(bundles, args, local_engine):
    r = run("verify", bundles["exact"], *args, "--workers", "2")
    assert r.exit_code == 2, r.output
    assert ("--against torch runs in one process" if args else "give --data") in r.output


# ---- on a local Ray cluster (make ray) -----------------------------------------------------------

@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
@pytest.mark.parametrize("verdict", ["EXACT", "MISMATCH"])
def test_verify_on_a_local_ray_cluster_prints_the_same_bytes(verdict, bundles, data700):
    name, extra = CASES[verdict]
    args = ["verify", bundles[name], "--data", data700, "--json", *extra]
    one = run(*args)
    many = run(*args, "--workers", "2")
    assert many.exit_code == one.exit_code == (0 if verdict == "EXACT" else 1), many.output
    assert many.stdout == one.stdout
    assert json.loads(many.stdout)["verdict"]["name"] == verdict


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
def test_a_shards_own_error_reaches_the_user_as_one_line(bundles, tmp_path):
    """Labels out of range in the second shard only: the worker's DataFileError, exit 2, one line."""
    z = np.load(DIGITS_DATA)
    y = np.concatenate([z["y"], z["y"]])[:600]
    y[500] = 99
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.concatenate([z["x"], z["x"]])[:600], y=y)
    r = run("verify", bundles["exact"], "--data", path, "--workers", "2")
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output, r.output


def _verify_shard_dying_once(task):
    """A verify shard whose worker process dies the first time the second shard runs (a lost worker)."""
    import os

    from snnc.compiler.tools.verify_shards import verify_shard

    marker = os.environ["SNNC_TEST_DIE_MARKER"]
    if task.sim.shard.index == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return verify_shard(task)


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
def test_a_lost_verify_worker_is_retried_and_nothing_is_lost(bundles, data700, tmp_path, monkeypatch):
    import sys

    from ray import cloudpickle

    from snnc.compiler.tools import verify_shards

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "died"
    monkeypatch.setenv("SNNC_TEST_DIE_MARKER", str(marker))   # the local cluster's workers inherit it
    args = ["verify", bundles["exact"], "--data", data700, "--json"]
    one = run(*args)
    monkeypatch.setattr(verify_shards, "verify_shard", _verify_shard_dying_once)
    many = run(*args, "--workers", "2")
    assert marker.exists()   # a worker did die
    assert many.exit_code == one.exit_code == 0 and many.stdout == one.stdout
