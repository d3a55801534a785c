"""NeuroBench 2.3.0's SynapticOperations and ActivationSparsity on the Sinabs module of an snnc NIR graph.

The module is the one ``SinabsNetwork`` builds (``sinabs.from_nir`` with snnc's semantics set), fed
the same x_int every step. It is wrapped as a ``neurobench.models.NeuroBenchModel`` whose batch is
(B, T, *input shape) (NeuroBench divides its counts by the batch's first dimension: samples) and
whose activation layers are the Sinabs ``IAFSqueeze`` layers (``add_activation_module``); the
metrics are NeuroBench's own objects, called per batch as its ``WorkloadMetricManager`` calls them.

What NeuroBench counts (its source, ``metrics/utils/layers``): for every ``nn.Linear``/``nn.Conv*`` the
number of (non-zero input, non-zero weight) pairs, the whole (B*T) input at once; the call is an
"AC" when every input value is in {-1, 0, 1}, else a "MAC". Pooling layers, biases and neuron
updates are not counted. docs/interop.md sets this beside snnc's SOPs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.backends.base import BackendUnavailableError

from .runner import SinabsNetwork


def require_neurobench():
    try:
        import neurobench  # noqa: F401
        from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(f"NeuroBench is not installed ({e}); install it with `make interop` "
                                      "(neurobench 2.3.0 in .venv-interop)") from None
    import neurobench

    return neurobench


@dataclass
class NeuroBenchCounts:
    """NeuroBench's results on ``samples`` samples; the integer totals are the metric objects' own."""

    neurobench_version: str
    samples: int
    timesteps: int
    effective_macs: float          # SynapticOperations "Effective_MACs" (per sample)
    effective_acs: float           # "Effective_ACs" (per sample)
    dense: float                   # "Dense": every (input, weight) pair, zeros included (per sample)
    mac_total: int                 # SynapticOperations.MAC over all samples
    ac_total: int                  # SynapticOperations.AC over all samples
    activation_sparsity: float     # ActivationSparsity, averaged over batches as WorkloadMetricManager does
    nonzero_per_batch: list[int] = field(default_factory=list)   # spikes per batch recovered from each batch's sparsity
    activations_per_batch: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def neurobench_counts(graph_or_path, x_int: np.ndarray, timesteps: int | None = None,
                      batch_size: int = 64) -> NeuroBenchCounts:
    """Run NeuroBench's SynapticOperations and ActivationSparsity on the Sinabs module of the graph."""
    nb = require_neurobench()
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import NeuroBenchModel
    from sinabs.layers import IAFSqueeze

    sn = SinabsNetwork(graph_or_path, timesteps)

    class SinabsModel(NeuroBenchModel):
        """The Sinabs executor as a NeuroBench model: batch (B, T, *shape) -> snnc's membranes reset to V0."""

        def __call__(self, batch):
            return sn.forward(batch)

        def __net__(self):
            return sn.module

    model = SinabsModel()
    model.add_activation_module(IAFSqueeze)
    model.register_hooks()
    syn, act = SynapticOperations(), ActivationSparsity()
    syn.reset()
    n = len(x_int)
    sparsity, nonzero, totals = 0.0, [], []
    per_sample = sum(int(np.prod(shape)) for _, shape in sn.populations.values()) * sn.timesteps
    try:
        for i in range(0, n, batch_size):
            xb = sn.steps_input(x_int[i:i + batch_size])
            b = int(xb.shape[0])
            preds = model(xb)
            data = (xb, None)
            res = syn(model, preds, data)
            s = act(model, preds, data)
            sparsity += s * b / n                   # WorkloadMetricManager.run_metrics' accumulation
            total = per_sample * b
            totals.append(total)
            nonzero.append(int(round(total * (1.0 - s))))
            model.reset_hooks()
    finally:
        model.cleanup_hooks()
    return NeuroBenchCounts(nb.__version__, n, sn.timesteps, float(res["Effective_MACs"]), float(res["Effective_ACs"]),
                            float(res["Dense"]), int(syn.MAC), int(syn.AC), float(sparsity), nonzero, totals)
