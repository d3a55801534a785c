"""NIR export backend: a compiled network as a NIR graph (``nir`` 1.0.8), snnc's semantics in
``snnc.*`` metadata (docs/interop.md).

    from snnc.backends.nir import export_nir
    exp = export_nir(net, "net.nir")          # exp.graph is the nir.NIRGraph, exp.exact says if it is the network

Importing this package does not import ``nir``; the functions do.
"""

from .export import (FLOAT32_EXACT, NirExport, NirExportError, ReferenceRun, export_nir, float32_bound, to_nir,
                     write_reference_data)

__all__ = ["FLOAT32_EXACT", "NirExport", "NirExportError", "ReferenceRun", "export_nir", "float32_bound", "to_nir",
           "write_reference_data"]
