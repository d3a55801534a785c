"""Run an snnc NIR graph in Sinabs (3.1.3) with snnc's neuron semantics, spike for spike.

``SinabsNetwork(graph_or_path)`` loads the graph with ``sinabs.from_nir`` (which builds a nirtorch
``GraphExecutor`` of Sinabs layers) and then sets what the import leaves different from snnc
(docs/interop.md, "Sinabs"):

- every ``IAFSqueeze`` (NIR ``IF``): ``spike_fn = SingleSpike`` (one spike per step, ``v >= threshold``;
  the import's ``MultiSpike`` fires floor(v / threshold) spikes), ``reset_fn = MembraneSubtract()``
  (as imported), ``min_v_mem = None`` (the import floors v at -threshold), and the membrane starts at
  the node's ``snnc.v0`` (Sinabs starts at 0);
- the executor's node order: nirtorch 2.6 runs the nodes in depth-first preorder from the input, which
  is not a topological order when branches join (a residual join runs before one of its branches and
  misses its current); the order is replaced by a topological order of the same nodes
  (``SinabsNetwork.order_fixed`` says whether it had to be).

Nothing else is changed: weights, biases and thresholds are the ones ``from_nir`` read from the file
(float32), and the layers run their own forward code. The input x_int is presented every step (the
graph's ``snnc.presentation``); a readout's value is its ``snnc.v0`` plus the sum over the steps of
what reaches its ``nir.Output``. Only graphs written by snnc (``snnc.format``) and marked exact are run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.backends.base import BackendError, BackendUnavailableError
from snnc.ir import nirmeta as M

# NIR node types sinabs.from_nir (3.1.3) maps to a torch module; any other becomes None in nirtorch's
# executor, which then silently skips it (and starves its successors).
SINABS_LOADS = ("Input", "Output", "Affine", "Conv2d", "IF", "SumPool2d", "Flatten", "LIF", "LI", "Conv1d")


class SinabsRunError(BackendError):
    """The graph cannot be run in Sinabs as snnc's network (names the node and why)."""


def require_sinabs():
    try:
        import sinabs  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(f"the Sinabs backend needs sinabs 3.1.3 and torch ({e}); install them with "
                                      "`make interop` (a separate venv, .venv-interop)") from None
    import sinabs
    import torch

    return sinabs, torch


def read_graph(graph_or_path):
    """A nir.NIRGraph, read from a path when given one."""
    if isinstance(graph_or_path, (str, Path)):
        import nir

        if not Path(graph_or_path).is_file():
            raise SinabsRunError(f"NIR file '{graph_or_path}' does not exist")
        try:
            return nir.read(str(graph_or_path))
        except (OSError, ValueError, KeyError) as e:
            raise SinabsRunError(f"'{graph_or_path}' is not a readable NIR file: {e}") from None
    return graph_or_path


@dataclass
class SinabsRun:
    """What a Sinabs run produced, keyed by the snnc (IR) names of the nodes.

    ``spikes``: population -> (T, B, *shape) int8; ``readout``: readout -> (B, *shape) int64 (snnc.v0 plus
    the summed output); ``semantics``: what was set on the Sinabs layers."""

    timesteps: int
    spikes: dict[str, np.ndarray]
    readout: dict[str, np.ndarray]
    semantics: dict = field(default_factory=dict)


def _topological(keys: list[str], edges: list[tuple[str, str]]) -> list[str]:
    indeg = {k: 0 for k in keys}
    out: dict[str, list[str]] = {k: [] for k in keys}
    for a, b in edges:
        out[a].append(b)
        indeg[b] += 1
    ready = [k for k in keys if indeg[k] == 0]
    order = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for b in out[k]:
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    if len(order) != len(keys):
        raise SinabsRunError(f"the NIR graph has a cycle through {sorted(set(keys) - set(order))}")
    return order


class SinabsNetwork:
    """An snnc NIR graph loaded into Sinabs with snnc's semantics (module docstring)."""

    def __init__(self, graph_or_path, timesteps: int | None = None):
        sinabs, torch = require_sinabs()
        from sinabs.activation import MembraneSubtract, SingleSpike

        self.graph = read_graph(graph_or_path)
        g = self.graph
        if not M.is_snnc_graph(g.metadata):
            raise SinabsRunError("the NIR graph was not written by snnc (no snnc.format metadata): its reset, "
                                 "comparison and initial state are unknown; the Sinabs backend runs snnc exports")
        if not int(g.metadata.get(M.G_EXACT, 0)):
            reasons = M.loads(g.metadata.get(M.G_INEXACT, "[]"), M.G_INEXACT)
            raise SinabsRunError("the NIR graph is marked not exact (exported with --inexact): " + "; ".join(reasons))
        self.timesteps = int(timesteps if timesteps is not None else g.metadata[M.G_TIMESTEPS])
        for key, node in g.nodes.items():
            kind = type(node).__name__
            if kind not in SINABS_LOADS:
                raise SinabsRunError(f"NIR node '{key}' is a {kind}; sinabs.from_nir (3.1.3) loads only "
                                     f"{', '.join(SINABS_LOADS)} (others are skipped by nirtorch's executor)")
            if kind == "SumPool2d" and np.any(np.asarray(node.padding) != 0):
                raise SinabsRunError(f"NIR node '{key}': SumPool2d with padding {list(node.padding)}; sinabs.from_nir "
                                     "drops the padding")
        inputs = [k for k, n in g.nodes.items() if type(n).__name__ == "Input"]
        if len(inputs) != 1:
            raise SinabsRunError(f"the graph has {len(inputs)} inputs {inputs}; nirtorch's executor feeds only one")
        self.input_key = inputs[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch.load is deprecated in nirtorch 2.6
            self.module = sinabs.from_nir(g, num_timesteps=self.timesteps)
        self.module.eval()
        ex = self.module
        by_name = {n.name: n for n in ex.execution_order}
        missing = sorted(set(g.nodes) - set(by_name))
        if missing:
            raise SinabsRunError(f"nirtorch's executor does not reach NIR nodes {missing} from the input")
        topo = _topological(list(g.nodes), list(g.edges))
        self.order_fixed = [n.name for n in ex.execution_order] != topo
        ex.execution_order = [by_name[k] for k in topo]
        self.populations, self.readouts, self.v0 = {}, {}, {}
        for key, node in g.nodes.items():
            kind = M.text(node.metadata.get(M.KIND, "")) if node.metadata else ""
            if kind == "Population":
                if M.text(node.metadata.get(M.RESET, "")) != M.RESET_SUBTRACT or \
                        M.text(node.metadata.get(M.COMPARE, "")) != M.COMPARE_GE:
                    raise SinabsRunError(f"NIR node '{key}': only subtract reset with v >= threshold is set up here")
                layer = getattr(ex, key)
                layer.spike_fn = SingleSpike
                layer.reset_fn = MembraneSubtract()
                layer.min_v_mem = None
                shape = tuple(int(s) for s in np.asarray(node.v_threshold).shape)
                self.populations[key] = (M.text(node.metadata[M.NAME]), shape)
                self.v0[key] = _broadcast(np.asarray(node.metadata[M.V0], np.int64), shape)
            elif kind == "Readout":
                shape = tuple(int(s) for s in np.asarray(node.output_type["output"]).reshape(-1))
                self.readouts[key] = (M.text(node.metadata[M.NAME]), shape)
                self.v0[key] = _broadcast(np.asarray(node.metadata[M.V0], np.int64), shape)
            elif type(node).__name__ in ("IF", "LIF", "LI"):
                raise SinabsRunError(f"NIR node '{key}' ({type(node).__name__}) carries no snnc metadata")
        self.semantics = {
            "loader": "sinabs.from_nir (nirtorch.load GraphExecutor)",
            "IAFSqueeze": "spike_fn=SingleSpike, reset_fn=MembraneSubtract(), min_v_mem=None, v_mem(0)=snnc.v0",
            "execution_order": "topological (nirtorch's depth-first order replaced)" if self.order_fixed
            else "nirtorch's own (already topological)",
            "dtype": "float32 (as from_nir loads weights)",
        }
        self._torch = torch

    def run(self, x_int: np.ndarray, batch_size: int = 64) -> SinabsRun:
        """Simulate the graph on integer inputs ``x_int`` (B, *input shape), T steps, every step."""
        torch, T = self._torch, self.timesteps
        x_int = np.asarray(x_int)
        spikes = {name: [] for name, _ in self.populations.values()}
        readout = {name: [] for name, _ in self.readouts.values()}
        for i in range(0, len(x_int), batch_size):
            out = self._run_batch(x_int[i:i + batch_size], torch, T)
            for k, v in out.items():
                (spikes if k in spikes else readout)[k].append(v)
        return SinabsRun(T, {k: np.concatenate(v, axis=1) for k, v in spikes.items()},
                         {k: np.concatenate(v, axis=0) for k, v in readout.items()}, dict(self.semantics))

    def forward(self, x_bt):
        """One forward pass of the Sinabs module on a (B, T, *input shape) float32 tensor: the membranes
        start at snnc.v0, the T steps go in as (B*T, ...) (the Squeeze layers' layout). Returns the
        executor's output (the readout current, (B*T, ...))."""
        torch = self._torch
        B, T = int(x_bt.shape[0]), int(x_bt.shape[1])
        if T != self.timesteps:
            raise SinabsRunError(f"input has {T} steps; the network was loaded for {self.timesteps}")
        for key, (_, shape) in self.populations.items():
            layer = getattr(self.module, key)
            layer.init_state_with_shape((B,) + shape)
            layer.v_mem = torch.tensor(np.broadcast_to(self.v0[key], (B,) + shape), dtype=torch.float32)
        with torch.no_grad():
            return self.module(x_bt.reshape((B * T,) + tuple(x_bt.shape[2:])))

    def steps_input(self, xb: np.ndarray):
        """x_int (B, *shape) -> the (B, T, *shape) float32 tensor presented every step."""
        x = self._torch.as_tensor(np.asarray(xb), dtype=self._torch.float32)
        return x.unsqueeze(1).expand((x.shape[0], self.timesteps) + tuple(x.shape[1:])).contiguous()

    def _run_batch(self, xb: np.ndarray, torch, T: int) -> dict[str, np.ndarray]:
        B = xb.shape[0]
        ex = self.module
        seen: dict[str, torch.Tensor] = {}
        hooks = []
        for key in list(self.populations) + list(self.readouts):
            hooks.append(getattr(ex, key).register_forward_hook(
                lambda mod, args, out, key=key: seen.__setitem__(key, out.detach().clone())))
        try:
            self.forward(self.steps_input(xb))
        finally:
            for h in hooks:
                h.remove()
        out = {}
        for key, (name, shape) in self.populations.items():
            s = seen[key].reshape((B, T) + shape).numpy()
            if not np.all((s == 0) | (s == 1)):
                raise SinabsRunError(f"population '{name}': Sinabs emitted values other than 0/1")
            out[name] = np.ascontiguousarray(np.moveaxis(s, 1, 0)).astype(np.int8)
        for key, (name, shape) in self.readouts.items():
            cur = seen[key].reshape((B, T) + shape).numpy().astype(np.float64)
            if not np.all(cur == np.rint(cur)):
                raise SinabsRunError(f"readout '{name}': Sinabs produced a non-integer current")
            out[name] = self.v0[key][None] + cur.sum(axis=1).astype(np.int64)
        return out


def _broadcast(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if arr.ndim == 0:
        return np.broadcast_to(arr, shape)
    return np.broadcast_to(arr.reshape((shape[0],) + (1,) * (len(shape) - 1)), shape)


def run_sinabs(graph_or_path, x_int: np.ndarray, timesteps: int | None = None, batch_size: int = 64) -> SinabsRun:
    """Load an snnc NIR graph (object or file) into Sinabs with snnc's semantics and run it on x_int."""
    return SinabsNetwork(graph_or_path, timesteps).run(x_int, batch_size)
