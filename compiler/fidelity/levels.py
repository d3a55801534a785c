"""Where each spiking population's levels live in the user's model, and reading them there.

A population of a compiled network replaces one quantized activation of the user's model,
y = gamma * clip(Q(...), 0, L): its count at T = L is the activation's level M = y / gamma. The bundle's
per-layer records (``net.metadata["layers"]``; keys read here: ``layer``, ``onnx_activation``,
``lambda``, ``levels``, ``role``) name that activation by the float graph's op name, which is the ONNX
node that ends the activation's op chain (FuseQuantAct names the fused activation after the last op of
its chain; the other passes keep names). ``activation_probes`` finds the ONNX tensor for each:

1. the output of the ONNX node of that name, else an ONNX tensor of that name;
2. a max pool the passes moved after the activation (SwapMaxPoolMonotone): the user's tensor is then the
   pooled one and has the shape of the max-pool output population, which is compared instead;
3. otherwise the population is listed as unmapped, with the reason: not compared (unchecked), never
   guessed.

``read_levels`` divides the user's values by the layer's unit gamma = lambda / L and checks that they
are integers in 0..L (float32 arithmetic: within 1e-3 + 1e-6 |M| of one); a tensor that is not is
reported (with how many values are not), not rounded into agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

INTEGER_TOL_ABS = 1e-3
INTEGER_TOL_REL = 1e-6


@dataclass(frozen=True)
class Probe:
    """One population's levels in the user's model: ``tensor`` / ``unit`` in 0..``levels``."""

    population: str
    activation: str
    tensor: str
    unit: float
    levels: int
    shape: tuple[int, ...]   # the population's shape (the tensor has batch + this many values)
    via: str = "node"        # node | tensor | maxpool (the activation's pooled output)

    def __post_init__(self) -> None:
        if not (self.unit > 0 and np.isfinite(self.unit)):
            raise ValueError(f"population '{self.population}': level unit must be > 0, got {self.unit}")
        if self.levels < 1:
            raise ValueError(f"population '{self.population}': levels must be >= 1, got {self.levels}")


@dataclass(frozen=True)
class Unmapped:
    population: str
    activation: str | None
    reason: str


@dataclass
class ProbeSet:
    probes: list[Probe] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)

    @property
    def tensors(self) -> list[str]:
        return list(dict.fromkeys(p.tensor for p in self.probes))


@dataclass
class LevelsRead:
    """The user's levels of one probe on a batch: ``levels`` int64 (B, *shape), or None when the values
    are not levels (``not_integer`` of ``size`` values off the grid or outside 0..L)."""

    levels: np.ndarray | None
    size: int
    not_integer: int = 0
    example: float | None = None  # one offending value / unit


def _node_outputs(model: onnx.ModelProto) -> tuple[dict[str, str], set[str]]:
    by_node = {n.name: n.output[0] for n in model.graph.node if n.name and n.output}
    tensors = {o for n in model.graph.node for o in n.output if o}
    return by_node, tensors


def _tensor_for(name: str, by_node: dict[str, str], tensors: set[str]) -> tuple[str | None, str]:
    if name in by_node:
        return by_node[name], "node"
    if name in tensors:
        return name, "tensor"
    return None, ""


def activation_probes(net, model: onnx.ModelProto, tensor_sizes: dict[str, int] | None = None) -> ProbeSet:
    """Map every population of ``net`` that replaces a quantized activation to the user's tensor.

    ``tensor_sizes``: per-sample size of ONNX tensors (from one run of the user's model; see
    ``probe_tensor_sizes``), used to tell an activation whose max pool was moved after it (its tensor
    then has the pooled size). Without it sizes are not checked here (``read_levels`` still checks)."""
    by_node, tensors = _node_outputs(model)
    records = [r for r in net.metadata.get("layers", []) if r.get("layer")]
    pops = {p.name: p for p in net.populations}
    out = ProbeSet()
    claimed: set[str] = set()
    pending: list[tuple[dict, str, str]] = []
    for r in records:
        name = r["layer"]
        if name not in pops or r.get("role"):
            continue
        act = r.get("onnx_activation")
        if not act:
            out.unmapped.append(Unmapped(name, None, "the layer record names no activation of the model"))
            continue
        t, via = _tensor_for(act, by_node, tensors)
        if t is None:
            out.unmapped.append(Unmapped(name, act, f"the model has no node or tensor '{act}'"))
            continue
        L, lam = r.get("levels"), r.get("lambda")
        if not L or lam is None:
            out.unmapped.append(Unmapped(name, act, "the layer record has no levels L or lambda"))
            continue
        size = int(np.prod(pops[name].shape))
        if tensor_sizes is not None and t in tensor_sizes and tensor_sizes[t] != size:
            pending.append((r, t, via))
            continue
        out.probes.append(Probe(name, act, t, float(lam) / int(L), int(L), tuple(pops[name].shape), via))
        claimed.add(name)
    for r, t, via in pending:  # the tensor is pooled: the max-pool output population reading this one
        name = r["layer"]
        target = None
        for q in records:
            if q.get("role") == "maxpool output" and q["layer"] in pops and q["layer"] not in claimed:
                srcs = {p.source for p in net.incoming(q["layer"])}
                if name in srcs and int(np.prod(pops[q["layer"]].shape)) == tensor_sizes.get(t):
                    target = q["layer"]
                    break
        if target is None:
            out.unmapped.append(Unmapped(name, r.get("onnx_activation"),
                                         f"tensor '{t}' has {tensor_sizes.get(t)} values per sample, the population "
                                         f"{int(np.prod(pops[name].shape))}"))
            continue
        L, lam = int(r["levels"]), float(r["lambda"])
        out.probes.append(Probe(target, r["onnx_activation"], t, lam / L, L, tuple(pops[target].shape), "maxpool"))
        out.unmapped.append(Unmapped(name, r.get("onnx_activation"),
                                     f"the model max-pools before this activation; its pooled output '{t}' is "
                                     f"compared with population '{target}'"))
        claimed.add(target)
    return out


def probe_tensor_sizes(executor, x1: np.ndarray, net, model: onnx.ModelProto) -> dict[str, int]:
    """Per-sample sizes of the tensors the records name, from one run of the user's model on ``x1``."""
    by_node, tensors = _node_outputs(model)
    names = []
    for r in net.metadata.get("layers", []):
        t, _ = _tensor_for(r.get("onnx_activation") or "", by_node, tensors)
        if t is not None:
            names.append(t)
    vals = executor.run(x1, list(dict.fromkeys(names)))
    return {t: int(np.prod(v.shape[1:])) for t, v in vals.items() if t in names}


def read_levels(probe: Probe, value: np.ndarray) -> LevelsRead:
    """The user's levels value / unit of one probe (see the module docstring)."""
    v = np.asarray(value, np.float64)
    B = v.shape[0]
    size = int(np.prod(probe.shape))
    if v.size != B * size:
        return LevelsRead(None, B * size, B * size, None)
    r = v.reshape((B,) + probe.shape) / probe.unit
    m = np.round(r)
    bad = (np.abs(r - m) > INTEGER_TOL_ABS + INTEGER_TOL_REL * np.abs(m)) | (m < 0) | (m > probe.levels) \
        | ~np.isfinite(r)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        return LevelsRead(None, r.size, n_bad, float(r[bad].reshape(-1)[0]))
    return LevelsRead(m.astype(np.int64), r.size)
