"""Library entry points: import a model once, compile it under any number of configurations.

    model = import_model("m.onnx")                          # the import and passes stages
    net = compile_imported(model, CompileConfig(...))       # calibrate .. mapping (a Network)
    net, raw = compile_model("m.onnx", config)              # both
    net = compile_to_file("m.onnx", "m.snnc", config)       # and the bundle stage

Each is a thin call into ``pipeline.run_pipeline`` (stages, checks, timings, dumps). A
configuration whose choices run the network on calibration data (``calibration_data``: placement
weighted by firing rates, ``frac_bits = auto`` chosen by the measured error) needs ``runner``: the
compiler does not import a backend; ``snnc.compiler.tools.runner.reference_runner`` wires the
reference simulator (what ``snnc compile`` passes). Without it those configurations raise
``RunnerRequiredError``.
"""

from __future__ import annotations

import os
from pathlib import Path

from snnc.ir import Network

from .calibrate import Runner
from .config import CompileConfig
from .pipeline import CompileContext, ImportedModel, Records, run_pipeline


def import_model(model_path: str | os.PathLike) -> ImportedModel:
    """ONNX file -> imported float graph after the default passes."""
    ctx = CompileContext(model_path=str(model_path))
    return run_pipeline(ctx, "import", "passes").records.model


def compile_imported(imported: ImportedModel, config: CompileConfig | None = None, *,
                     runner: Runner | None = None) -> Network:
    """Lower an imported model under ``config`` to a verified-bounded, placed integer Network."""
    ctx = CompileContext(config or CompileConfig(), runner)
    return run_pipeline(ctx, "calibrate", "mapping", Records(model=imported)).records.compiled.network


def compile_model(model_path: str | os.PathLike, config: CompileConfig | None = None, *,
                  runner: Runner | None = None) -> tuple[Network, bytes]:
    """ONNX file -> verified-bounded integer Network (and the model's self-contained bytes)."""
    ctx = CompileContext(config or CompileConfig(), runner, str(model_path))
    records = run_pipeline(ctx, "import", "mapping").records
    return records.compiled.network, records.model.raw


def compile_to_file(model_path: str | os.PathLike, out_path: str | os.PathLike, config: CompileConfig | None = None, *,
                    runner: Runner | None = None) -> Network:
    """ONNX file -> ``out_path`` (a .snnc bundle, written atomically, the model embedded up to
    ``config.embed_model_max_bytes``); returns the Network written."""
    ctx = CompileContext(config or CompileConfig(), runner, str(model_path), Path(out_path))
    return run_pipeline(ctx, "import", "bundle").records.compiled.network
