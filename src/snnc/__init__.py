"""snnc: a neuromorphic-hardware deployment compiler.

The package is assembled from the repository's top-level folders:
``snnc.ir`` (ir/), ``snnc.compiler`` (compiler/) and ``snnc.backends`` (backends/).
"""

__version__ = "0.1.0"
