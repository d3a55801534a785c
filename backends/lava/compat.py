"""Make lava-nc 0.10.0 importable on Python 3.11, without touching site-packages.

Why
    lava-nc 0.10.0 declares ``python_requires <3.11`` (hence ``pip install --no-deps
    --ignore-requires-python lava-nc==0.10.0``, see docs/lava.md). On 3.11 exactly one thing breaks:
    ``lava/magma/compiler/var_model.py`` declares dataclass fields whose default is an *instance*
    of another (unhashable, hence "mutable") dataclass::

        @dataclass
        class CoreEncoder:
            x: ByteEncoder = ByteEncoder()      # ValueError on Python >= 3.11

    Python 3.11's ``dataclasses`` refuses such defaults (``ValueError: mutable default <class
    '...ByteEncoder'> for field x is not allowed: use default_factory``), and every Lava import
    (run configs, Dense, ...) goes through that module.

What
    A meta-path finder serves *only* the module ``lava.magma.compiler.var_model``: it loads the
    installed source, rewrites each ``<name>: ByteEncoder = ByteEncoder()`` into
    ``<name>: ByteEncoder = _snnc_field(default_factory=ByteEncoder)`` and adds
    ``from dataclasses import field as _snnc_field`` to the end of the existing ``from dataclasses
    import`` line (line numbers are unchanged). Nothing else is altered; the semantics are the
    ones the authors meant (a fresh ByteEncoder per instance).

Idempotent / no-op
    ``ensure_lava()`` first tries a plain ``import lava.magma.compiler.var_model``. If that works
    (a fixed Lava, or the hook already installed), no hook is installed. The hook is installed
    at most once.

Second issue: the multiprocessing start method
    ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
    ``multiprocessing.set_start_method('fork')`` at import. That raises ``RuntimeError: context has
    already been set`` when anything imported earlier fixed the start method (tqdm's lock, a test
    runner). ``ensure_lava`` imports that module once with ``set_start_method`` wrapped to pass
    ``force=True`` -- the method Lava asks for ('fork') is then in force either way.

How to remove it
    When a Lava release imports on 3.11 (upstream uses ``field(default_factory=...)``), delete the
    hook (``_VarModelFinder``/``_install_hook``) and keep ``ensure_lava`` as a plain import check.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

from snnc.backends.base import BackendUnavailableError

TARGET = "lava.magma.compiler.var_model"
INSTALL_HINT = (
    "lava-nc is not installed. Run `make setup`, or "
    "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0` in the snnc virtual "
    "environment (see docs/lava.md)."
)
_BAD_DEFAULT = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)[ \t]*$", re.MULTILINE)
_DC_IMPORT = re.compile(r"^(from dataclasses import [^\n]*)$", re.MULTILINE)

_state = {"checked": False}


def patch_source(src: str) -> str:
    """The text transformation, exposed for tests. Idempotent."""
    if "_snnc_field" in src:
        return src
    new = _BAD_DEFAULT.sub(r"\1_snnc_field(default_factory=ByteEncoder)", src)
    if new == src:
        return src
    new, n = _DC_IMPORT.subn(r"\1; from dataclasses import field as _snnc_field", new, count=1)
    if n == 0:  # no dataclasses import line: prepend (line numbers shift by one, harmless)
        new = "from dataclasses import field as _snnc_field\n" + new
    return new


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):  # the source bytes; bytecode caches are bypassed below
        data = super().get_data(path)
        if str(path).endswith(".py"):
            return patch_source(data.decode("utf-8")).encode("utf-8")
        return data

    def get_code(self, fullname):
        # Compile from the patched source; never read or write a .pyc for this module, so the
        # installed package's cache is left as it is.
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        spec.loader = _PatchingLoader(fullname, spec.origin)
        return spec


def _install_hook() -> None:
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())


def ensure_lava() -> None:
    """Make ``import lava...`` work; raise BackendUnavailableError when Lava is not installed."""
    if _state["checked"]:
        return
    if importlib.util.find_spec("lava") is None:
        raise BackendUnavailableError(INSTALL_HINT)
    try:
        importlib.import_module(TARGET)
    except ValueError as e:
        if "mutable default" not in str(e):
            raise
        for mod in [m for m in sys.modules if m == TARGET or m.startswith(TARGET + ".")]:
            del sys.modules[mod]
        _install_hook()
        importlib.import_module(TARGET)
    except ImportError as e:
        raise BackendUnavailableError(f"{INSTALL_HINT} (import failed: {e})") from None
    _import_runtime_forcing_fork()
    _state["checked"] = True


_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _import_runtime_forcing_fork() -> None:
    import multiprocessing

    if _MP_MODULE in sys.modules:
        return
    original = multiprocessing.set_start_method

    def forced(method, force=False):
        original(method, force=True)

    multiprocessing.set_start_method = forced
    try:
        importlib.import_module(_MP_MODULE)
    finally:
        multiprocessing.set_start_method = original


def lava_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return "unknown"


def import_lava():
    """ensure_lava() and return the top-level ``lava`` package."""
    ensure_lava()
    return importlib.import_module("lava")
