"""Reading a bundle for a command: the one function every command calls on load.

``load_bundle(path)`` = ``snnc.ir.read_bundle`` (zip directory and member sizes checked before anything
is decompressed, header schema without coercion, digest, memory budget) + ``check_formats`` (the
network against its stored target's formats and state width, the checks the compiler proves).
``check_source(bundle, model)`` tells whether a model file is the one the bundle was compiled from.
Every failure is one line: ``BundleError`` (an ``IRError``) or ``FormatError``/``SourceMismatchError``
(``SnncError``s); the CLI maps both to exit status 2.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from snnc.ir import Extras, Network, read_bundle
from snnc.ir.limits import DEFAULT_LIMITS, Limits, file_size

from .errors import SnncError
from .targets.conformance import FormatReport, check_formats


class SourceMismatchError(SnncError):
    """``--model`` is not the model the bundle was compiled from."""


@dataclass
class LoadedBundle:
    """A bundle read and checked: ``formats`` says whether its target's formats were checked."""

    path: Path
    network: Network
    extras: Extras
    header: dict
    formats: FormatReport


def load_bundle(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> LoadedBundle:
    """Read ``path`` and check it completely (see the module doc)."""
    b = read_bundle(path, limits)
    report = check_formats(b.network, source=str(path), limits=limits, input_bytes=file_size(path))
    return LoadedBundle(b.path, b.network, b.extras, b.header, report)


def source_sha256(model_path: str | os.PathLike) -> str:
    """The sha256 a bundle records for its source model: of the model's self-contained bytes (external
    data inlined), as ``compiler.api.ImportedModel.sha256`` computes it."""
    from .frontend.onnx_loader import load_model, model_bytes

    return hashlib.sha256(model_bytes(load_model(model_path))).hexdigest()


def check_source(bundle: LoadedBundle, model_path: str | os.PathLike) -> None:
    """Raise ``SourceMismatchError`` unless ``model_path`` is the model ``bundle`` was compiled from."""
    src = bundle.network.metadata.get("source_model") if isinstance(bundle.network.metadata, dict) else None
    want = src.get("sha256") if isinstance(src, dict) else None
    if not isinstance(want, str):
        raise SourceMismatchError(f"'{bundle.path}' records no source model sha256, so --model '{model_path}' "
                                  "cannot be checked against it; recompile the model with this snnc")
    got = source_sha256(model_path)
    if got != want:
        raise SourceMismatchError(f"--model '{model_path}' is not the model '{bundle.path}' was compiled from "
                                  f"(sha256 {got[:16]}..., the bundle records {want[:16]}...); give the right "
                                  "model or recompile")
