"""The models nobody here wrote (tests/integration/external_models.py: onnxruntime QDQ, Brevitas QONNX /
QCDQ, SpikingJelly's CNN layout, the QCFS authors' VGG-16): every one that compiles runs on the torch
backend exactly as on the reference simulator, both schedules, every field of SimResult."""

import numpy as np
import pytest

pytest.importorskip("torch")

import external_models as corpus  # noqa: E402
from snnc_torch_testutil import assert_same_result  # noqa: E402

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import simulate  # noqa: E402


def _compile(case, tmp):
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.errors import ConversionError
    from snnc.compiler.weight_precision import WeightPrecisionError
    from snnc.compiler.tools.runner import reference_runner

    model, data = corpus.build(case, tmp)
    kw = {}
    if case.name == "sj_cnn28":   # its compile_args: --calib calib28 --neuron multi-threshold:4 --timesteps 8
        kw = dict(neuron="multi-threshold", mt_n=4, timesteps=8,
                  calibration_data=str(corpus.calib_file("digits28", tmp)))
    try:
        try:
            net = compile_model(model, CompileConfig(**kw), runner=reference_runner)[0]
        except WeightPrecisionError as e:   # what the message says to do: the T that keeps the most weight bits
            if not e.suggestions:
                raise
            bits = max(b for _, b in e.suggestions)
            t = max(t for t, b in e.suggestions if b == bits)
            net = compile_model(model, CompileConfig(**kw, timesteps=t), runner=reference_runner)[0]
    except ConversionError as e:   # e.g. signed hidden activations: the compiler refuses, nothing to simulate
        pytest.skip(f"the compiler refuses {case.name}: {str(e)[:120]}")
    return net, np.asarray(np.load(data)["x"][:6], dtype=np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("case", corpus.CASES, ids=lambda c: c.name)
def test_external_model_torch_equals_reference(case, tmp_path):
    for m in case.needs:
        pytest.importorskip(m)
    net, x = _compile(case, tmp_path)
    ran = 0
    for schedule in ("pipelined", "layerwise"):
        try:
            ref = reference(net, x, schedule, record=True, count_ops=True)
        except NotImplementedError as e:   # a schedule the network does not run in: torch refuses it too
            with pytest.raises(type(e)):
                simulate(net, x, schedule, record=True, count_ops=True)
            continue
        assert_same_result(ref, simulate(net, x, schedule, record=True, count_ops=True))
        ran += 1
    assert ran >= 1
