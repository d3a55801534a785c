"""docs/distributed_results.md is benchmarks/distributed_eval.py's output: regenerated from the committed
JSON it must match the committed doc; with Ray installed (make ray) a reduced slice run now must again
give byte-identical JSON (eval, and verify with the same exit code) with and without workers."""

import importlib.util
import json

import pytest

from snnc_testutil import REPO

HAVE_RAY = importlib.util.find_spec("ray") is not None


def _load():
    spec = importlib.util.spec_from_file_location("distributed_eval", REPO / "benchmarks" / "distributed_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_doc_is_generated_from_the_committed_results():
    mod = _load()
    res = json.loads((REPO / "benchmarks" / "results" / "distributed.json").read_text())
    assert (REPO / "docs" / "distributed_results.md").read_text() == mod.markdown(res), \
        "docs/distributed_results.md is stale: run benchmarks/distributed_eval.py"
    assert res["models"] and all(r["identical"] for r in res["models"])
    assert res["verify"]["models"] and all(r["identical"] for r in res["verify"]["models"])


@pytest.mark.ray
@pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (make ray)")
def test_a_reduced_slice_reproduces(tmp_path):
    mod = _load()
    res = mod.main(["--models", "round_L2", "--samples", "30", "--timesteps", "1,2", "--verify-samples", "300",
                    "--out", str(tmp_path / "d.json"), "--doc", str(tmp_path / "d.md")])
    assert [r["identical"] for r in res["models"]] == [True]
    assert [r["identical"] for r in res["verify"]["models"]] == [True]   # two shards: 256 and 44 samples
