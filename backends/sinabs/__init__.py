"""Sinabs backend: run an snnc NIR graph in Sinabs 3.1.3 with snnc's semantics (docs/interop.md).

    from snnc.backends.sinabs import run_sinabs
    run = run_sinabs("net.nir", x_int)         # spike trains by IR population name, readouts by name

It takes a ``nir.NIRGraph`` or a .nir path (what ``snnc export --format nir`` writes), never an snnc
network: the command layer composes the NIR export and this backend. NeuroBench's counts on the same
torch module: ``neurobench.neurobench_counts``. Importing this package imports neither sinabs nor torch.
"""

from .runner import SINABS_LOADS, SinabsNetwork, SinabsRun, SinabsRunError, require_sinabs, run_sinabs

__all__ = ["SINABS_LOADS", "SinabsNetwork", "SinabsRun", "SinabsRunError", "require_sinabs", "run_sinabs"]
