"""The torch backend in the registry: lazy loading, the install hint when torch is missing, the device
check, ``default_backend`` (the fastest exact backend for a network), and ``snnc.backends`` importing
without torch."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from snnc.backends import DeviceError, available_backends, default_backend, get_backend
from snnc.backends.reference import ReferenceBackend
from snnc.ir import Dense, Input, MultiThreshold, Network, Population, Readout

# `import torch` fails and find_spec finds nothing, as on a machine without torch
NO_TORCH = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)


def test_backends_import_without_torch_and_torch_backend_says_how_to_install():
    r = _run("""
        import snnc.backends as b
        import snnc.backends.torch as t
        assert "torch" in b.available_backends() and not t.available()
        assert sys.modules["torch"] is None
        try:
            b.get_backend("torch")
        except b.BackendUnavailableError as e:
            print("MSG", e)
        print("DEFAULT", type(b.default_backend(None, "layerwise")).__name__)
    """)
    assert r.returncode == 0, r.stderr
    assert "pip install torch==2.13.0" in r.stdout and "backend 'torch' cannot be loaded" in r.stdout
    assert "DEFAULT ReferenceBackend" in r.stdout


def test_cpu_runs_never_import_the_cuda_module():
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys, numpy as np
        from snnc.backends.torch import TorchBackend
        from snnc.ir import Dense, Input, Network, Population, Readout
        net = Network([Input("x", (2,)), Population("p", (2,), threshold=3), Readout("r", (1,))],
                      [Dense("a", "x", "p", np.eye(2, dtype=np.int64), 0, (2,), (2,)),
                       Dense("b", "p", "r", np.ones((1, 2), np.int64), 0, (2,), (1,))], 3)
        TorchBackend().run(net, np.ones((2, 2)), "pipelined")
        assert "snnc.backends.torch.cuda" not in sys.modules
        print("ok")
    """)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def _net(neuron=None):
    kw = {} if neuron is None else {"neuron": neuron, "threshold": 8}
    return Network([Input("x", (2,)), Population("p", (2,), **({"threshold": 3} | kw)), Readout("r", (1,))],
                   [Dense("a", "x", "p", np.eye(2, dtype=np.int64), 0, (2,), (2,)),
                    Dense("b", "p", "r", np.ones((1, 2), np.int64), 0, (2,), (1,))], 3)


def test_registry_and_default_backend():
    pytest.importorskip("torch")
    from snnc.backends.torch import TorchBackend

    assert "torch" in available_backends()
    assert isinstance(get_backend("torch"), TorchBackend)
    assert isinstance(default_backend(_net(), "layerwise"), TorchBackend)
    # multi-threshold neurons have no layerwise schedule: no backend runs that, the torch backend says no
    assert not TorchBackend().supports(_net(MultiThreshold(n=2)), "layerwise")
    assert isinstance(default_backend(_net(MultiThreshold(n=2)), "pipelined"), TorchBackend)
    assert isinstance(default_backend(_net(MultiThreshold(n=2)), "layerwise"), ReferenceBackend)


def test_a_cuda_device_that_is_not_here_is_refused_in_one_line():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from snnc.backends.torch import TorchBackend

    with pytest.raises(DeviceError, match="no CUDA device is available here"):
        TorchBackend(device="cuda")
    with pytest.raises(DeviceError, match="not understood"):
        TorchBackend(device="tpu:0:x")
    # no exact backend runs there: the one-line reason is the torch backend's (the reference is CPU only)
    with pytest.raises(DeviceError, match="no CUDA device is available here") as e:
        default_backend(_net(), "pipelined", device="cuda")
    assert "\n" not in str(e.value)
    with pytest.raises(DeviceError, match="runs on the CPU only"):
        get_backend("reference", device="cuda")


def test_default_backend_simulate_has_the_reference_signature():
    """What a command calls: default_backend(net, schedule, device).simulate(...), on either backend."""
    x = np.array([[1.0, 0.4], [0.2, 0.9]])
    ref = ReferenceBackend().simulate(_net(), x, "pipelined", count_ops=True, state_bits=16)
    got = default_backend(_net(), "pipelined").simulate(_net(), x, "pipelined", count_ops=True, state_bits=16)
    np.testing.assert_array_equal(got.readout["r"], ref.readout["r"])
    np.testing.assert_array_equal(got.ops["p"].sops_out, ref.ops["p"].sops_out)
