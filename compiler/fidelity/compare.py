"""The three-way, per-layer comparison: the user's levels M_user, snnc's integer-ANN levels M_int (the
integer network at tau = L) and the SNN's counts N.

Per population it counts the levels compared, the levels where M_user != M_int and the mean and largest
|M_user - M_int| (end to end: a level that differs upstream moves the levels it feeds).

Then, layer by layer, the **local** comparison: snnc's layer fed with the model's own levels of its
sources (its integer pre-activation X + V0 from M_user of every source that has one, the input's counts
and snnc's levels elsewhere), M_local = clip(floor((X + V0) / Theta), 0, L) against M_user. A local
mismatch is **within snnc's precision** when the forced pre-activation u = (X + V0) / Theta lies within
the layer's rounding bound of the edge between the two levels:

    eps = (A / (2 Theta) + L / 2 + 1) / Theta + boundary_tol,     A = sum |W| * M_source

(the threshold rounds the model's scale ratio by at most 1/(2 Theta) relative, the per-step bias by at
most L/2 and V0 by 1, in units of 1/Theta of a level; ``boundary_tol`` covers the model's own float32
rounding). Outside it, the difference is not a rounding of snnc's: the integer network computes something
else (verdict.py calls that unfaithful). Overall: predictions of the three (agreement user/int, int/snn,
user/snn) and their accuracies when labels are given.

``FidelityAccumulator.add`` takes one batch of the three; ``result()`` gives a ``FidelityResult``
whose ``to_dict()`` is ``{"fidelity": {levels_compared, levels_mismatched, ..., layers: [...]}}``;
``partial()`` a ``FidelityPartial`` (integer counts, predictions in order) that ``merge_fidelity`` adds
to other shards' exactly (``snnc verify --workers``).
``measure_fidelity`` drives it over a data set, given the functions that run snnc's integer network
and SNN (the command layer passes backends.reference's ``run_integer_ann`` and ``simulate``: the
compiler itself imports no backend).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .levels import Probe, ProbeSet, Unmapped, read_levels

DEFAULT_BOUNDARY_TOL = 1e-3  # levels: the model's float32 rounding near an edge; docs/fidelity.md


@dataclass
class LayerFidelity:
    layer: str
    tensor: str | None
    levels: int | None
    status: str = "compared"      # compared | unmapped | not-levels
    reason: str = ""
    compared: int = 0
    mismatched: int = 0           # M_user != M_int (end to end)
    sum_abs_diff: float = 0.0
    max_abs_diff: int = 0
    local_compared: int = 0       # levels compared with the layer fed the model's own source levels
    local_mismatched: int = 0     # M_local != M_user
    local_within_precision: int = 0  # of those: |dM| = 1 and u within eps of the edge (module docstring)
    local_at_ties: int = 0        # of those within precision: u exactly on the edge (a tie: the model may round
    #                               half to even, a spiking neuron rounds ties up)
    threshold_min: int = 0        # the layer's smallest Theta: its scale ratio is held to ~log2 of it bits
    not_integer: int = 0          # the user's values that are not levels (status not-levels)

    @property
    def local_unexplained(self) -> int:
        return self.local_mismatched - self.local_within_precision

    @property
    def scale_bits(self) -> int:
        """Bits to which the threshold holds the layer's scale ratio: floor(log2(smallest Theta)) + 1."""
        return int(self.threshold_min).bit_length()

    @property
    def mean_abs_diff(self) -> float:
        return self.sum_abs_diff / self.compared if self.compared else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("sum_abs_diff")
        d.update(mean_abs_diff=self.mean_abs_diff, local_unexplained=self.local_unexplained,
                 scale_bits=self.scale_bits)
        return d


@dataclass
class FidelityResult:
    samples: int
    layers: list[LayerFidelity]
    prediction_agreement: dict    # user_vs_int, int_vs_snn, user_vs_snn (None where not measured)
    accuracy: dict                # user, int, snn (None without labels or not measured)
    boundary_tol: float = DEFAULT_BOUNDARY_TOL
    reference: str = "onnxruntime"

    @property
    def levels_compared(self) -> int:
        return sum(L.compared for L in self.layers)

    @property
    def levels_mismatched(self) -> int:
        return sum(L.mismatched for L in self.layers)

    @property
    def local_mismatched(self) -> int:
        return sum(L.local_mismatched for L in self.layers)

    @property
    def local_unexplained(self) -> int:
        return sum(L.local_unexplained for L in self.layers)

    @property
    def level_agreement(self) -> float | None:
        n = self.levels_compared
        return None if n == 0 else 1.0 - self.levels_mismatched / n

    @property
    def worst_layer_agreement(self) -> float | None:
        """The smallest per-layer level agreement (what ``--min-fidelity`` bounds)."""
        vals = [1.0 - L.mismatched / L.compared for L in self.layers if L.status == "compared" and L.compared]
        return min(vals) if vals else None

    @property
    def unchecked(self) -> list[LayerFidelity]:
        return [L for L in self.layers if L.status != "compared"]

    def to_dict(self) -> dict:
        return {"fidelity": {
            "reference": self.reference, "samples": self.samples,
            "levels_compared": self.levels_compared, "levels_mismatched": self.levels_mismatched,
            "level_agreement": self.level_agreement, "worst_layer_agreement": self.worst_layer_agreement,
            "local_mismatched": self.local_mismatched,
            "local_unexplained": self.local_unexplained,
            "boundary_tol": self.boundary_tol, "prediction_agreement": dict(self.prediction_agreement),
            "accuracy": dict(self.accuracy), "layers": [L.to_dict() for L in self.layers],
        }}


def _per_channel(arr, shape) -> np.ndarray:
    """A scalar or per-channel (axis 0) parameter as (1, *shape)-broadcastable."""
    a = np.asarray(arr)
    if a.ndim == 0:
        return a.reshape((1,) * (len(shape) + 1))
    return a.reshape((1, shape[0]) + (1,) * (len(shape) - 1))


@dataclass
class LocalRun:
    """snnc's layer fed with the model's own source levels: its pre-activation X + V0 and A = sum |W| M."""

    preactivation: np.ndarray
    abs_input: np.ndarray


def local_runs(net, probes: ProbeSet, user_levels: dict[str, np.ndarray], int_levels: dict[str, np.ndarray],
               tau: int, apply_projection: Callable) -> dict[str, LocalRun]:
    """For every probed population: X + V0 and sum |W| M computed from the model's levels of its sources
    (snnc's own levels, or the input's counts tau * x_int, for a source the model has no levels of).
    ``apply_projection(projection, source_values)``: the IR's integer projection (the command layer
    passes snnc.ir.apply_projection)."""
    import dataclasses

    out = {}
    mixed = getattr(net, "mixed_steps", None) or {}
    for pr in probes.probes:
        pop = net.node(pr.population)
        x = acc = None
        for p in net.incoming(pop.name):
            src = user_levels.get(p.source)
            src = int_levels[p.source] if src is None else src
            cur = apply_projection(p, src)
            a = apply_projection(dataclasses.replace(p, weight=np.abs(np.asarray(p.weight))), src)
            x = cur if x is None else x + cur
            acc = a if acc is None else acc + a
        if x is None:
            continue
        tau_p = mixed.get(pop.name, tau)
        pre = x + tau_p * _per_channel(pop.bias, pop.shape) + _per_channel(pop.v0, pop.shape)
        out[pop.name] = LocalRun(np.asarray(pre, np.int64), np.asarray(acc, np.float64))
    return out


@dataclass
class FidelityAccumulator:
    """Accumulates the comparison batch by batch (see the module docstring)."""

    net: object
    probes: ProbeSet
    boundary_tol: float = DEFAULT_BOUNDARY_TOL
    reference: str = "onnxruntime"
    not_levels: frozenset = frozenset()   # populations an earlier shard found not levels: skipped from the start
    _layers: dict = field(default_factory=dict, init=False)
    _preds: dict = field(default_factory=lambda: {"user": [], "int": [], "snn": []}, init=False)
    _labels: list = field(default_factory=list, init=False)
    _n: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not (0 <= self.boundary_tol < 0.5):
            raise ValueError(f"boundary_tol must be in [0, 0.5) levels, got {self.boundary_tol}")
        for p in self.probes.probes:
            L = self._layers[p.population] = LayerFidelity(p.population, p.tensor, p.levels)
            L.threshold_min = int(np.asarray(self.net.node(p.population).threshold).min())
        for u in self.probes.unmapped:
            if u.population not in self._layers:
                self._layers[u.population] = LayerFidelity(u.population, None, None, "unmapped", u.reason)
        for name in self.not_levels:
            L = self._layers.get(name)
            if L is None or L.status != "compared":
                raise ValueError(f"not_levels: '{name}' is not a compared population")
            L.status, L.reason = "not-levels", "found not levels in an earlier shard"

    def user_levels(self, user_values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's levels of this batch by population (layers whose values are not levels: left out,
        and marked not-levels for good)."""
        out = {}
        for p in self.probes.probes:
            L = self._layers[p.population]
            if L.status != "compared":
                continue
            got = read_levels(p, user_values[p.tensor])
            if got.levels is None:
                L.status, L.not_integer = "not-levels", got.not_integer
                L.reason = (f"{got.not_integer} of {got.size} values of '{p.tensor}' are not levels 0..{p.levels} "
                            f"of unit {p.unit:.6g}" + (f" (e.g. {got.example:.4f} units)" if got.example is not None
                                                       else ""))
                continue
            out[p.population] = got.levels
        return out

    def add(self, user_levels: dict[str, np.ndarray], int_levels: dict[str, np.ndarray],
            local: dict[str, LocalRun] | None = None, pred_user=None, pred_int=None, pred_snn=None,
            labels=None) -> None:
        """One batch: the model's levels (``user_levels``), snnc's integer-ANN levels, the local runs
        (``local_runs``; without them no local comparison) and predictions."""
        n = None
        for p in self.probes.probes:
            L = self._layers[p.population]
            mu = user_levels.get(p.population)
            if L.status != "compared" or mu is None:
                continue
            n = len(mu)
            m_int = np.asarray(int_levels[p.population], np.int64).reshape(mu.shape)
            d = mu - m_int
            L.compared += d.size
            L.mismatched += int(np.count_nonzero(d))
            L.sum_abs_diff += float(np.abs(d).sum())
            L.max_abs_diff = max(L.max_abs_diff, int(np.abs(d).max(initial=0)))
            run = None if local is None else local.get(p.population)
            if run is None:
                continue
            pop = self.net.node(p.population)
            theta = _per_channel(pop.threshold, pop.shape).astype(np.float64)
            pre = run.preactivation.reshape(mu.shape).astype(np.float64)
            m_loc = np.clip(np.floor_divide(run.preactivation.reshape(mu.shape), _per_channel(pop.threshold, pop.shape)),
                            0, p.levels)
            dl = mu - m_loc
            bad = dl != 0
            L.local_compared += dl.size
            L.local_mismatched += int(np.count_nonzero(bad))
            if np.any(bad):
                eps = (run.abs_input.reshape(mu.shape) / (2 * theta) + p.levels / 2 + 1) / theta + self.boundary_tol
                edge = np.maximum(mu, m_loc)
                near = bad & (np.abs(dl) == 1) & (np.abs(pre / theta - edge) <= eps)
                L.local_within_precision += int(np.count_nonzero(near))
                on_edge = run.preactivation.reshape(mu.shape) == edge * _per_channel(pop.threshold, pop.shape)
                L.local_at_ties += int(np.count_nonzero(near & on_edge))
        for k, v in (("user", pred_user), ("int", pred_int), ("snn", pred_snn)):
            if v is not None:
                self._preds[k].append(np.asarray(v).reshape(-1))
        if labels is not None:
            self._labels.append(np.asarray(labels).reshape(-1))
        if n is None:
            n = next((len(np.asarray(v).reshape(-1)) for v in (pred_user, pred_int, pred_snn) if v is not None), 0)
        self._n += n

    def partial(self) -> "FidelityPartial":
        """What was accumulated so far, as a record that merges with other shards' (``merge_fidelity``)."""
        return FidelityPartial([copy.copy(L) for L in self._layers.values()],
                               {k: list(v) for k, v in self._preds.items()}, list(self._labels), self._n,
                               self.boundary_tol, self.reference, frozenset(self.not_levels))

    def result(self) -> FidelityResult:
        return self.partial().result()


_COUNTS = ("compared", "mismatched", "sum_abs_diff", "local_compared", "local_mismatched", "local_within_precision",
           "local_at_ties")


@dataclass
class FidelityPartial:
    """The comparison over some consecutive samples (one shard): per-layer integer counts (``sum_abs_diff``
    is a sum of integers), predictions and labels in sample order. ``not_levels``: the populations marked
    not levels before its first sample (found so by an earlier shard)."""

    layers: list[LayerFidelity]
    preds: dict
    labels: list
    samples: int
    boundary_tol: float = DEFAULT_BOUNDARY_TOL
    reference: str = "onnxruntime"
    not_levels: frozenset = frozenset()

    @property
    def found_not_levels(self) -> frozenset:
        """The populations marked not levels at its end (``not_levels`` and those its own samples showed)."""
        return frozenset(L.layer for L in self.layers if L.status == "not-levels")

    def result(self) -> FidelityResult:
        preds = {k: np.concatenate(v) if v else None for k, v in self.preds.items()}
        y = np.concatenate(self.labels) if self.labels else None

        def agree(a, b):
            pa, pb = preds[a], preds[b]
            return None if pa is None or pb is None else float(np.mean(pa == pb))

        def acc(k):
            return None if preds[k] is None or y is None else float(np.mean(preds[k] == y))

        return FidelityResult(
            samples=self.samples, layers=list(self.layers),
            prediction_agreement={"user_vs_int": agree("user", "int"), "int_vs_snn": agree("int", "snn"),
                                  "user_vs_snn": agree("user", "snn")},
            accuracy={"user": acc("user"), "int": acc("int"), "snn": acc("snn")},
            boundary_tol=self.boundary_tol, reference=self.reference)


def merge_fidelity(parts: list[FidelityPartial]) -> FidelityPartial:
    """Consecutive shards' comparisons as the one a single process accumulates over all their samples.

    A layer is counted until the first sample batch whose values are not levels; from then on one process
    skips it. So shard by shard, in order: its counts are added while the merged layer is still compared,
    and the first shard that found it not levels gives its status, reason and count of values off the grid.
    Exact when every shard started from the not-levels set the shards before it ended with
    (``tools.verify_shards`` re-runs a shard that did not: the layers it feeds are compared on snnc's
    levels once a source is not levels)."""
    if not parts:
        raise ValueError("merge_fidelity: no shard")
    first = parts[0]
    layers = []
    for i, L0 in enumerate(first.layers):
        if L0.status == "unmapped" or L0.layer in first.not_levels:   # the same in every shard
            layers.append(copy.copy(L0))
            continue
        m = LayerFidelity(L0.layer, L0.tensor, L0.levels, threshold_min=L0.threshold_min)
        for part in parts:
            L = part.layers[i]
            if L.layer != m.layer:
                raise ValueError(f"merge_fidelity: shards list different layers ('{L.layer}', '{m.layer}')")
            for k in _COUNTS:
                setattr(m, k, getattr(m, k) + getattr(L, k))
            m.max_abs_diff = max(m.max_abs_diff, L.max_abs_diff)
            if L.status != "compared":
                m.status, m.reason, m.not_integer = L.status, L.reason, L.not_integer
                break
        layers.append(m)
    preds = {k: [a for p in parts for a in p.preds[k]] for k in first.preds}
    return FidelityPartial(layers, preds, [a for p in parts for a in p.labels], sum(p.samples for p in parts),
                           first.boundary_tol, first.reference, first.not_levels)


@dataclass
class IntegerRun:
    """What ``measure_fidelity`` needs of one batch through snnc's integer network at tau = L: every
    node's levels (the input's: tau * x_int) and the predictions."""

    levels: dict[str, np.ndarray]
    predictions: np.ndarray


def measure_fidelity(net, executor, probes: ProbeSet, x: np.ndarray, y: np.ndarray | None,
                     integer_run: Callable[[np.ndarray], IntegerRun], tau: int,
                     apply_projection: Callable | None = None,
                     snn_predictions: Callable[[np.ndarray], np.ndarray] | None = None, batch_size: int = 256,
                     boundary_tol: float = DEFAULT_BOUNDARY_TOL, progress=None) -> FidelityResult:
    """Run the user's model (``executor``), snnc's integer network at ``tau`` = L (``integer_run``) and
    optionally the SNN (``snn_predictions``) over ``x`` and compare them (module docstring); with
    ``apply_projection`` also layer by layer on the model's own levels."""
    return measure_fidelity_partial(net, executor, probes, x, y, integer_run, tau, apply_projection, snn_predictions,
                                    batch_size, boundary_tol, progress).result()


def measure_fidelity_partial(net, executor, probes: ProbeSet, x: np.ndarray, y: np.ndarray | None,
                             integer_run: Callable[[np.ndarray], IntegerRun], tau: int,
                             apply_projection: Callable | None = None,
                             snn_predictions: Callable[[np.ndarray], np.ndarray] | None = None, batch_size: int = 256,
                             boundary_tol: float = DEFAULT_BOUNDARY_TOL, progress=None,
                             not_levels: frozenset = frozenset()) -> FidelityPartial:
    """``measure_fidelity`` over one shard of samples, as a record ``merge_fidelity`` adds up (``not_levels``:
    the populations earlier shards found not levels)."""
    acc = FidelityAccumulator(net, probes, boundary_tol, getattr(executor, "reference", "onnxruntime"),
                              frozenset(not_levels))
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        vals = executor.run(xb, probes.tensors)
        out = vals[executor.output_name]
        ir = integer_run(xb)
        mu = acc.user_levels(vals)
        local = None if apply_projection is None else local_runs(net, probes, mu, ir.levels, tau, apply_projection)
        acc.add(mu, ir.levels, local, pred_user=out.reshape(len(xb), -1).argmax(axis=1), pred_int=ir.predictions,
                pred_snn=None if snn_predictions is None else snn_predictions(xb),
                labels=None if y is None else y[i:i + batch_size])
        if progress is not None:
            progress(len(xb))
    return acc.partial()


__all__ = ["DEFAULT_BOUNDARY_TOL", "FidelityAccumulator", "FidelityPartial", "FidelityResult", "IntegerRun",
           "LayerFidelity", "LocalRun", "Probe", "ProbeSet", "Unmapped", "local_runs", "measure_fidelity",
           "measure_fidelity_partial", "merge_fidelity"]
