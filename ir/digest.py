"""A bundle's content digest: SHA-256 over the header and every array.

``seal(header, arrays)`` records each array member's dtype, shape and the SHA-256 of its bytes (C order,
as stored) in ``header["members"]``, then stores ``header["digest"]``: the SHA-256 of the canonical
JSON of the header without the digest itself. ``load`` recomputes both, so a bundle changed after
snnc wrote it (a weight edited within range, a threshold, a header field) is refused.

The digest detects changes; it does not prove who wrote the file: anyone can recompute it. A bundle
that was changed *and* re-sealed still has to pass the schema (``snnc.ir.schema``) and the target's
formats (``snnc.compiler.targets.conformance``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from .jsonio import canonical_json

ALGORITHM = "sha256"


def array_sha256(arr: np.ndarray) -> str:
    a = np.asarray(arr)
    a = a if a.flags.c_contiguous else a.copy(order="C")
    h = hashlib.sha256()
    h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


def header_digest(header: dict) -> str:
    """``sha256:<hex>`` of the header's canonical JSON, the ``digest`` key left out."""
    body = {k: v for k, v in header.items() if k != "digest"}
    return f"{ALGORITHM}:{hashlib.sha256(canonical_json(body)).hexdigest()}"


def member_entry(arr: np.ndarray) -> dict:
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "sha256": array_sha256(arr)}


def seal(header: dict, arrays: dict[str, np.ndarray]) -> dict:
    """``header`` with ``members`` (one entry per array of ``arrays``) and ``digest`` set; returns it."""
    header["members"] = {k: member_entry(v) for k, v in arrays.items()}
    header["digest"] = header_digest(header)
    return header
