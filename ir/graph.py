"""The spiking network: nodes plus projections, validated as a whole on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .coding import Coding, DifferentialCoding, RateCoding
from .errors import IRValidationError
from .neurons import MultiThreshold
from .nodes import Input, Node, Population, Readout
from .projections import Dense, Projection


@dataclass
class Network:
    """A directed acyclic graph of nodes connected by projections.

    ``timesteps`` is T, the number of simulation steps an inference takes.
    ``coding`` is how values travel between layers (``RateCoding`` or ``DifferentialCoding``).
    ``metadata`` holds JSON-serializable facts about how the network was made (compile config,
    source model, target); it never changes the semantics.
    """

    nodes: list[Node]
    projections: list[Projection]
    timesteps: int
    metadata: dict[str, Any] = field(default_factory=dict)
    coding: Coding = field(default_factory=RateCoding)

    def __post_init__(self) -> None:
        self.timesteps = int(self.timesteps)
        if self.timesteps < 1:
            raise IRValidationError("<network>", f"timesteps must be >= 1, got {self.timesteps}")
        if not isinstance(self.coding, Coding) or type(self.coding) is Coding:
            raise IRValidationError("<network>", f"coding must be RateCoding or DifferentialCoding, got {self.coding!r}")
        by_name: dict[str, Node] = {}
        for n in self.nodes:
            if not isinstance(n, Node):
                raise IRValidationError(str(n), "network nodes must be Input, Population or Readout")
            if n.name in by_name:
                raise IRValidationError(n.name, "duplicate node name")
            by_name[n.name] = n
        self._by_name = by_name
        seen: set[str] = set()
        self._incoming: dict[str, list[Projection]] = {n.name: [] for n in self.nodes}
        self._outgoing: dict[str, list[Projection]] = {n.name: [] for n in self.nodes}
        for p in self.projections:
            if not isinstance(p, Projection):
                raise IRValidationError(str(p), "network projections must be Dense, Conv2d or SumPool2d")
            if p.name in seen or p.name in by_name:
                raise IRValidationError(p.name, "duplicate name (projection names are unique among all names)")
            seen.add(p.name)
            self._check_projection(p)
            self._incoming[p.target].append(p)
            self._outgoing[p.source].append(p)
        if not any(isinstance(n, Input) for n in self.nodes):
            raise IRValidationError("<network>", "a network needs at least one Input node")
        if not any(isinstance(n, Readout) for n in self.nodes):
            raise IRValidationError("<network>", "a network needs at least one Readout node")
        for n in self.nodes:
            if isinstance(n, (Population, Readout)) and not self.incoming(n.name):
                raise IRValidationError(n.name, "has no incoming projection (dangling node)")
        self._order = self._topological_order()
        for n in self.nodes:   # checks that need the whole network (a unit's ports, its fixed-point format)
            n.check_wiring(self)
        if isinstance(self.coding, DifferentialCoding):
            bad = [p.name for p in self.nodes if isinstance(p, Population) and not isinstance(p.neuron, MultiThreshold)]
            if bad:
                raise IRValidationError(
                    bad[0], f"differential coding needs multi-threshold neurons; populations {bad} are not")
            biased = [n.name for n in self.nodes if isinstance(n, (Population, Readout)) and np.any(n.bias != 0)]
            if biased:
                raise IRValidationError(
                    biased[0], "differential coding has no per-step bias: a bias is the initial value v0 "
                    f"(paper 004, Theorem 4.5); nodes {biased} have one")

    # ---- validation -------------------------------------------------------------------------
    def _check_projection(self, p: Projection) -> None:
        src = self._by_name.get(p.source)
        dst = self._by_name.get(p.target)
        if src is None:
            raise IRValidationError(p.name, f"source '{p.source}' is not a node of the network")
        if dst is None:
            raise IRValidationError(p.name, f"target '{p.target}' is not a node of the network")
        if isinstance(src, Readout):
            raise IRValidationError(p.name, f"source '{p.source}' is a Readout; readouts do not emit spikes")
        if isinstance(dst, Input):
            raise IRValidationError(p.name, f"target '{p.target}' is an Input; inputs receive no projections")
        want = tuple(dst.input_shape(p))   # the node's shape; a port's for a unit with several ports
        if isinstance(p, Dense):
            ok_in = int(np.prod(p.in_shape)) == src.size
            ok_out = int(np.prod(p.out_shape)) == int(np.prod(want))
        else:
            ok_in = tuple(p.in_shape) == tuple(src.shape)
            ok_out = tuple(p.out_shape) == want
        if not ok_in:
            raise IRValidationError(p.name, f"reads shape {p.in_shape} but source '{src.name}' has shape {src.shape}")
        if not ok_out:
            raise IRValidationError(p.name, f"writes shape {p.out_shape} but target '{dst.name}' reads shape {want}")

    def _topological_order(self) -> list[str]:
        indeg = {n.name: 0 for n in self.nodes}
        for p in self.projections:
            indeg[p.target] += 1
        ready = [n.name for n in self.nodes if indeg[n.name] == 0]
        order: list[str] = []
        while ready:
            name = ready.pop(0)
            order.append(name)
            for p in self.outgoing(name):
                indeg[p.target] -= 1
                if indeg[p.target] == 0:
                    ready.append(p.target)
        if len(order) != len(self.nodes):
            stuck = sorted(set(indeg) - set(order))
            raise IRValidationError(stuck[0], f"the network has a cycle through {stuck}")
        return order

    # ---- queries ----------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named '{name}'; nodes are {list(self._by_name)}") from None

    def incoming(self, name: str) -> list[Projection]:
        return list(self._incoming.get(name, ()))

    def outgoing(self, name: str) -> list[Projection]:
        return list(self._outgoing.get(name, ()))

    @property
    def order(self) -> list[str]:
        """Node names in topological order (sources before targets)."""
        return list(self._order)

    def ordered_nodes(self) -> Iterator[Node]:
        return (self._by_name[n] for n in self._order)

    @property
    def inputs(self) -> list[Input]:
        return [n for n in self.ordered_nodes() if isinstance(n, Input)]

    @property
    def populations(self) -> list[Population]:
        return [n for n in self.ordered_nodes() if isinstance(n, Population)]

    @property
    def readouts(self) -> list[Readout]:
        return [n for n in self.ordered_nodes() if isinstance(n, Readout)]

    def steps(self, node: Node | str) -> int:
        """How many steps ``node`` integrates in the layerwise schedule: a population's own
        ``timesteps`` when set (mixed quantization levels), else the network's T."""
        n = self.node(node) if isinstance(node, str) else node
        own = getattr(n, "timesteps", None) if isinstance(n, Population) else None
        return self.timesteps if own is None else int(own)

    @property
    def mixed_steps(self) -> dict[str, int]:
        """Population -> its steps, when some population runs a number of steps other than T (a network
        with mixed quantization levels, layerwise only); {} otherwise."""
        steps = {p.name: self.steps(p) for p in self.populations}
        return steps if any(s != self.timesteps for s in steps.values()) else {}

    def check_schedule(self, schedule: str) -> None:
        """Refuse the pipelined schedule for a network with per-population steps (mixed L): per-step
        spikes of layers with different L are worth different amounts (lambda/L), so no one spike
        stream can feed a layer; only the layerwise schedule (counts) is exact."""
        mixed = self.mixed_steps
        if mixed and str(getattr(schedule, "value", schedule)) == "pipelined":
            by = ", ".join(f"'{k}' L={v}" for k, v in mixed.items())
            raise IRValidationError(next(k for k, v in mixed.items() if v != self.timesteps), "this network's layers have different quantization levels "
                     f"(steps per layer: {by}; network T={self.timesteps}); a spike of a layer with L levels is "
                     "worth lambda/L, so the pipelined schedule cannot run it — use the layerwise schedule "
                     "(exact, each layer runs its own L steps)")

    def depth(self) -> dict[str, int]:
        """Longest path length from an input to each node (inputs have depth 0)."""
        d: dict[str, int] = {}
        for name in self._order:
            inc = self.incoming(name)
            d[name] = 0 if not inc else 1 + max(d[p.source] for p in inc)
        return d
