"""snnc.compiler: the compile pipeline (pipeline.py) from an ONNX model to a bundle, and the commands (tools/).

Stages: frontend (ONNX -> float graph), passes, calibrate, lowering, integerize, bounds (analysis/),
mapping, bundle; ``api.py`` holds the library entry points. Nothing here but ``tools/`` imports a
backend (docs/architecture.md).
"""
