"""Safe output writing: every file or folder snnc writes goes through here (bundles, reports, plots, JSON).

The rules (docs/reliability.md, "Output paths"):

- Only regular files (and, for a report, folders) are written. A path that names a directory, a
  character or block device, a FIFO, a socket, a dangling symbolic link or one of the command's own
  inputs is refused *by name* before anything is written; a symbolic link to a regular file writes
  the file it points to.
- Writes are atomic: the content goes to a temporary file in the destination's folder, is flushed to
  disk, then renamed over the destination. A failed write leaves the destination as it was.
- Missing parent folders are created only when the write succeeded (``make_parents``); a failure
  leaves no folder behind.
- Permissions follow the umask like any ``open()``: a new file gets ``0o666 & ~umask``, an
  overwritten file keeps its mode.
- Temporary files are named ``.<name>.<host>-<pid>-<random>.snnc-tmp``. SIGTERM and SIGHUP during a
  write remove the temporary file and then take their default action (the process still dies by
  that signal). A temporary file that survives (kill -9, power loss) is swept by the next write into
  the same folder once its process is gone.
- Every ``OSError`` becomes one ``OutputError`` line naming the path: disk full, file too large,
  read-only file system, permission denied, name too long.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from .errors import OutputError

TEMP_SUFFIX = ".snnc-tmp"
_TEMP_RE = re.compile(r"^\.(?P<name>.*)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<rand>[0-9a-z]+)\.snnc-tmp$")
_CLEANUP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)
# errors of the destination or its disk, explained in one line (others keep their own strerror)
_WHY = {
    errno.ENOSPC: "the disk is full (no space left on device); free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted; free some space or write elsewhere",
    errno.EFBIG: "the file is too large for this file system or the file-size limit (ulimit -f)",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "permission denied; write to a folder you may write to",
    errno.EPERM: "operation not permitted; write to a folder you may write to",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EIO: "input/output error on the device",
}


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_name(name: str) -> str:
    """The temporary name a write of ``name`` uses (recognisable, so a later write can sweep it)."""
    return f".{name[:180]}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return what
    return "a special file"


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def sweep_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files and folders left in ``folder`` by snnc writes on this host whose process
    is gone (kill -9, power loss). Returns what was removed; never raises."""
    removed: list[Path] = []
    host = _host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if m is None or m["host"] != host or _pid_alive(int(m["pid"])):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path)
            elif e.is_file(follow_symlinks=False):
                os.unlink(e.path)
            else:
                continue
            removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def _oserror_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, or its cause/context: zipfile and numpy re-raise I/O
    errors as other errors while closing), or None."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 16:
        if isinstance(e, OSError) and e.errno is not None:
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def explain(err: OSError, path: Path, what: str) -> OutputError:
    """One line for an OSError met while writing ``path``."""
    why = _WHY.get(err.errno or -1) or (err.strerror or str(err))
    return OutputError(f"cannot write {what} '{path}': {why}; nothing was written")


class Destination:
    """A checked output path: ``path`` is what the user named, ``real`` the file or folder written
    (a symbolic link resolved), ``existing`` its stat or None, ``missing`` the parent folders to create."""

    def __init__(self, path: Path, real: Path, existing: os.stat_result | None, missing: list[Path], what: str):
        self.path, self.real, self.existing, self.missing, self.what = path, real, existing, missing, what

    @property
    def folder(self) -> Path:
        """The nearest existing folder at or above the destination's parent (temporary files go there)."""
        return self.missing[-1].parent if self.missing else self.real.parent


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (), what: str = "output",
                 folder: bool = False, make_parents: bool = False) -> Destination:
    """Check an output path before any work is done; raise ``OutputError`` naming the path otherwise.

    ``inputs``: the command's input files (never overwritten, nor, for a folder output, deleted with
    the folder). ``folder``: the output is a folder (a report), else a regular file.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise OutputError(f"the {what} path is empty; give a file name")
    if "\0" in text:
        raise OutputError(f"the {what} path {text!r} contains a NUL character")
    p = Path(text)
    if not folder and (text.endswith(os.sep) or p.name in ("", ".", "..")):
        raise OutputError(f"{what} '{text}' names a folder; give a file name")
    try:
        st = os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):  # the parent walk below names a parent that is a file
        st = None
    except OSError as e:
        raise OutputError(f"cannot use {what} '{p}': {e.strerror}") from None
    real = p
    if st is not None and stat.S_ISLNK(st.st_mode):
        real = Path(os.path.realpath(p))
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise OutputError(f"{what} '{p}' is a symbolic link to '{real}', which does not exist; "
                              "give the real path") from None
        except OSError as e:
            raise OutputError(f"cannot use {what} '{p}': {e.strerror}") from None
    if st is not None:
        ok = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
        if not ok:
            want = "a folder" if folder else "a regular file"
            hint = " (give a file name inside it)" if stat.S_ISDIR(st.st_mode) else ""
            raise OutputError(f"{what} '{p}' is {_kind(st.st_mode)}, not {want}; snnc writes only {want}s, "
                              f"it does not replace anything else{hint}")
    _check_not_an_input(p, real, st, inputs, what, folder)
    missing: list[Path] = []
    parent = real.parent if str(real.parent) else Path(".")
    probe = parent
    while True:
        try:
            pst = os.stat(probe)
        except (FileNotFoundError, NotADirectoryError):
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
            continue
        except OSError as e:
            raise OutputError(f"cannot use {what} '{p}': '{probe}': {e.strerror}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise OutputError(f"cannot write {what} '{p}': '{probe}' is {_kind(pst.st_mode)}, not a folder")
        break
    if missing and not make_parents:
        raise OutputError(f"cannot write {what} '{p}': folder '{parent}' does not exist; create it first")
    return Destination(p, real, st, missing, what)


def _check_not_an_input(p: Path, real: Path, st, inputs, what: str, folder: bool) -> None:
    for inp in inputs:
        if inp is None or os.fspath(inp) == "":
            continue
        try:
            ist = os.stat(inp)
        except OSError:
            continue
        if st is not None and os.path.samestat(st, ist):
            raise OutputError(f"{what} '{p}' is the input '{inp}'; writing there would replace it, "
                              "choose another output name")
        if folder:
            inside = os.path.realpath(inp)
            root = os.path.realpath(real)
            if os.path.commonpath([inside, root]) == root:
                raise OutputError(f"{what} folder '{p}' holds the input '{inp}'; replacing the folder would "
                                  "delete it, choose another output folder")


@contextlib.contextmanager
def _remove_on_signal(remove: Callable[[], None]) -> Iterator[None]:
    """While the block runs, SIGTERM/SIGHUP first call ``remove`` and then take their previous action:
    the default one (the process dies by that signal) or a handler of the program's own. Signals the
    program ignores stay ignored. Only the main thread can install handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, object] = {}

    def handler(signum, frame):
        prev = previous.get(signum, signal.SIG_DFL)
        if callable(prev):  # the program's own handler decides; if it raises, the write's cleanup runs
            prev(signum, frame)
            return
        remove()
        for s, p in previous.items():
            signal.signal(s, p)
        os.kill(os.getpid(), signum)  # default action: die by this signal, as if we had not been here
        os._exit(128 + signum)  # pragma: no cover - only if the signal did not end the process

    try:
        for s in _CLEANUP_SIGNALS:
            prev = signal.getsignal(s)
            if prev is signal.SIG_IGN or prev is None:
                continue
            previous[s] = prev
            signal.signal(s, handler)
    except ValueError:  # not the main interpreter
        pass
    try:
        yield
    finally:
        for s, p in previous.items():
            signal.signal(s, p)


def _unlink_quiet(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _rmtree_quiet(path: Path) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _make_parents(missing: list[Path]) -> list[Path]:
    """Create the missing folders (outermost first); returns those created, for undoing."""
    created: list[Path] = []
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o777)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
            continue
        created.append(d)
    return created


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mode_for(dest: Destination, default_bits: int) -> int:
    if dest.existing is not None:
        return stat.S_IMODE(dest.existing.st_mode)
    return default_bits & ~current_umask()


def _reraise(exc: BaseException, dest: Destination) -> None:
    err = _oserror_in(exc) if isinstance(exc, Exception) else None
    if err is not None and (isinstance(exc, OSError) or err.errno in _WHY):
        raise explain(err, dest.path, dest.what) from None
    raise exc


def write_file(path: str | os.PathLike, fill: Callable[[BinaryIO], None], *,
               inputs: Iterable[str | os.PathLike | None] = (), what: str = "output",
               make_parents: bool = False) -> Path:
    """Write a regular file atomically: ``fill(fh)`` writes the content to a binary file object.
    Returns the path written. Raises ``OutputError`` (one line) for a bad path or a failed write;
    an exception raised by ``fill`` itself propagates unchanged (after cleanup)."""
    dest = check_output(path, inputs=inputs, what=what, make_parents=make_parents)
    folder = dest.folder
    sweep_stale(folder)
    tmp = folder / temp_name(dest.real.name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    created: list[Path] = []
    with _remove_on_signal(lambda: _unlink_quiet(tmp)):
        try:
            fd = os.open(tmp, flags, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
                os.fchmod(fh.fileno(), _mode_for(dest, 0o666))
            created = _make_parents(dest.missing)
            _recheck(dest)
            os.replace(tmp, dest.real)
        except BaseException as exc:
            _unlink_quiet(tmp)
            _remove_dirs(created)
            _reraise(exc, dest)
    _fsync_dir(dest.real.parent)
    return dest.path


def _recheck(dest: Destination) -> None:
    """Right before the rename: the destination must still be what it was checked to be."""
    try:
        st = os.lstat(dest.real)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode) and not (stat.S_ISDIR(st.st_mode) and dest.existing is not None
                                             and stat.S_ISDIR(dest.existing.st_mode)):
        raise OutputError(f"{dest.what} '{dest.path}' became {_kind(st.st_mode)} while snnc was writing; "
                          "nothing was written")


def write_bytes(path: str | os.PathLike, data: bytes, **kw) -> Path:
    return write_file(path, lambda fh: fh.write(data), **kw)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", **kw) -> Path:
    return write_bytes(path, text.encode(encoding), **kw)


def write_folder(path: str | os.PathLike, fill: Callable[[Path], None], *,
                 inputs: Iterable[str | os.PathLike | None] = (), what: str = "output folder",
                 make_parents: bool = False, may_replace: Callable[[Path], str | None] | None = None) -> Path:
    """Write a folder atomically: ``fill(stage)`` writes every file into a temporary folder, which then
    replaces ``path``. An existing folder is replaced only if ``may_replace(path)`` returns None (else
    the string it returns says why not); without ``may_replace`` an existing folder is refused."""
    dest = check_output(path, inputs=inputs, what=what, folder=True, make_parents=make_parents)

    def refuse_existing() -> None:
        if dest.existing is None:
            return
        why = "it already exists" if may_replace is None else may_replace(dest.real)
        if why:
            raise OutputError(f"{what} '{dest.path}' cannot be replaced: {why}; choose another folder")

    refuse_existing()
    parent = dest.folder
    sweep_stale(parent)
    stage = parent / temp_name(dest.real.name)
    old: Path | None = None
    created: list[Path] = []
    with _remove_on_signal(lambda: _rmtree_quiet(stage)):
        try:
            os.mkdir(stage, 0o700)
            fill(stage)
            os.chmod(stage, _mode_for(dest, 0o777))
            created = _make_parents(dest.missing)
            if os.path.lexists(dest.real):
                refuse_existing()
                old = parent / temp_name(dest.real.name)
                os.rename(dest.real, old)
                try:
                    os.rename(stage, dest.real)
                except BaseException:
                    os.rename(old, dest.real)
                    old = None
                    raise
            else:
                os.rename(stage, dest.real)
        except BaseException as exc:
            _rmtree_quiet(stage)
            _remove_dirs(created)
            _reraise(exc, dest)
    if old is not None:
        _rmtree_quiet(old)
    _fsync_dir(dest.real.parent)
    return dest.path
