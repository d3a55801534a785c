"""Library entry points: import a model once, compile it under any number of configurations.

    model = import_model("m.onnx")                          # the import and passes stages
    net = compile_imported(model, CompileConfig(...))       # calibrate .. mapping (a Network)
    net, raw = compile_model("m.onnx", config)              # both
    net = compile_to_file("m.onnx", "m.snnc", config)       # and the bundle stage
    net = compile_nir("net.nir", config)                    # a NIR graph (docs/interop.md)

Each is a thin call into ``pipeline.run_pipeline`` (stages, checks, timings, dumps). A
configuration whose choices run the network on calibration data (``calibration_data``: placement
weighted by firing rates, ``frac_bits = auto`` chosen by the measured error) needs ``runner``: the
compiler does not import a backend; ``snnc.compiler.tools.runner.reference_runner`` wires the
reference simulator (what ``snnc compile`` passes). Without it those configurations raise
``RunnerRequiredError``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from snnc import __version__
from snnc.ir import Network, save

from .calibrate import Runner
from .config import CompileConfig
from .mapping import map_network
from .targets import load_target
from .targets.conformance import check_formats
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


# ---- NIR graphs (docs/interop.md, "Import") ---------------------------------------------------

def is_nir_file(path: str | os.PathLike) -> bool:
    """Does ``path`` hold a NIR graph (an HDF5 file) rather than an ONNX model? By its signature, read only
    from a regular file (a FIFO or a device is left to the ONNX loader, which refuses it by name)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def compile_nir(path: str | os.PathLike, config: CompileConfig | None = None, reading=None) -> Network:
    """A NIR file -> a bounded, format-checked integer Network with a compiled bundle's metadata.

    ``reading`` (``frontend.nir_loader.NirReading``) says how to read the neurons (reset, comparison,
    T, dt); an snnc export supplies them itself. The result passes the same checks as a compiled ONNX
    model: the target's number formats and the state bound (``targets.conformance.check_formats``) and
    the mapping onto cores; an snnc export gets its original metadata back (plus ``nir_import``)."""
    from .frontend.nir_loader import NirReading, file_sha256, load_nir, read_nir

    config = config or CompileConfig()
    target = load_target(config.target, config.profile)
    reading = reading or NirReading(timesteps=config.timesteps)
    graph = read_nir(path)
    net, rec = load_nir(graph, target.numeric, reading, path=path)
    check_formats(net, target, source=str(path))
    net.check_schedule(config.schedule)
    if rec.snnc_export:
        net.metadata["nir_import"] = rec.to_dict()
        return net
    sha, size = file_sha256(path)
    cfg = config.to_dict()
    cfg.update(timesteps=net.timesteps, neuron="if", v0="zero")  # NIR has no V0; a '>' graph's shift is in nir_import
    net.metadata = {
        "snnc_version": __version__,
        "config": cfg,
        "target": target.to_dict(),
        "source_model": {"path": str(path), "sha256": sha, "bytes": size, "format": "nir"},
        "layers": [],
        "levels": net.timesteps,
        "nir_import": rec.to_dict(),
    }
    net.metadata["placement"] = map_network(net, target, config.chips, config.system, None)
    return net


def compile_nir_to_file(path: str | os.PathLike, out_path: str | os.PathLike, config: CompileConfig | None = None,
                        reading=None) -> Network:
    """A NIR file -> ``out_path`` (a .snnc bundle, written atomically; never replaces the NIR file)."""
    net = compile_nir(path, config, reading)
    save(net, out_path, inputs=(path,), make_parents=True)
    return net
