"""Zip archives of ``.npy`` members (the layout of NumPy's ``.npz``), written deterministically and read
with every size checked before anything is decompressed.

Writing: members in the given order, each with a fixed timestamp (1980-01-01), fixed permissions and
the same compression, so identical content gives identical bytes.

Reading (``NpyArchive``): the zip directory is read first (its size is the file's); a member is opened
only when asked for, its ``.npy`` header is parsed from the first bytes, and its dtype, shape, order
and size are checked against what the caller expects and against the memory budget *before* its data
is read, in chunks, straight into the array's buffer. Object arrays are never read (no pickle).
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 22


class ArchiveError(ValueError):
    """The archive or one of its members is not what it must be; the message says what (no path:
    the caller names the file)."""


#: deflate level of every member: 1 compresses integer weights 5x faster than the default 6 for a file
#: about 15% larger (float members, e.g. an embedded ONNX model, hardly compress at any level)
COMPRESS_LEVEL = 1


def write_npz(fh: BinaryIO, members: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write ``members`` (name without ``.npy``, array) as a deflated zip to ``fh``, deterministically."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for name, arr in members:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = COMPRESS_LEVEL  # zipfile (3.11) reads the level of a ZipInfo written through open() here
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(arr), allow_pickle=False)


def regular_file(path: Path) -> os.stat_result:
    """stat of ``path``, which must be a regular file (a FIFO would block the reader, a device never end)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ArchiveError(f"is {kind}, not a regular file")
    return st


def read_npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header length) of the ``.npy`` stream ``f`` positioned at its start."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ArchiveError(f"unsupported .npy format version {version}")
    except ArchiveError:
        raise
    except (ValueError, TypeError, SyntaxError, EOFError, OSError, zlib.error, zipfile.BadZipFile) as e:
        raise ArchiveError(f"its .npy header is unreadable ({str(e).splitlines()[0][:120]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ArchiveError(f"holds {dtype} values (objects/records are never read)")
    if not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ArchiveError(f"declares an invalid shape {shape}")
    return tuple(shape), bool(fortran), dtype, f.tell()


def nbytes_of(shape: tuple[int, ...], dtype: np.dtype) -> int:
    n = dtype.itemsize
    for s in shape:
        n *= s
    return n


def read_exact(f: BinaryIO, nbytes: int, hasher=None) -> bytearray:
    """``nbytes`` bytes from ``f`` into one buffer (allocated once), in chunks; short data is an error."""
    try:
        buf = bytearray(nbytes)
    except MemoryError:
        raise ArchiveError(f"needs {nbytes:,} bytes of memory, more than this process can get") from None
    view = memoryview(buf)
    got = 0
    try:
        while got < nbytes:
            n = f.readinto(view[got:got + CHUNK]) if hasattr(f, "readinto") else None
            if n is None:
                chunk = f.read(min(CHUNK, nbytes - got))
                n = len(chunk)
                view[got:got + n] = chunk
            if not n:
                raise ArchiveError(f"holds {got} of the {nbytes} data bytes its header declares (truncated)")
            if hasher is not None:
                hasher.update(view[got:got + n])
            got += n
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise ArchiveError(f"cannot be decompressed ({str(e).splitlines()[0][:120]})") from None
    return buf


def skip_exact(f: BinaryIO, nbytes: int) -> None:
    """Read and drop ``nbytes`` bytes of ``f`` in chunks (a compressed member cannot seek)."""
    left = nbytes
    try:
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise ArchiveError(f"holds {nbytes - left} of the {nbytes} bytes it must skip (truncated)")
            left -= len(chunk)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise ArchiveError(f"cannot be decompressed ({str(e).splitlines()[0][:120]})") from None


class NpyArchive:
    """A zip of ``.npy`` members, opened for checked reading (use as a context manager)."""

    def __init__(self, path: str | os.PathLike, max_members: int):
        self.path = Path(path)
        self.size = regular_file(self.path).st_size
        try:
            self.zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            raise ArchiveError(f"is not a readable zip archive ({str(e).splitlines()[0][:120]})") from None
        try:
            infos = self.zf.infolist()
            if len(infos) > max_members:
                raise ArchiveError(f"has {len(infos)} members; at most {max_members} are allowed")
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise ArchiveError("has two members with the same name")
            for i in infos:
                if i.flag_bits & 0x1:
                    raise ArchiveError(f"member '{i.filename[:80]}' is encrypted")
                if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise ArchiveError(f"member '{i.filename[:80]}' uses compression method {i.compress_type} "
                                       "(only stored and deflated are read)")
            self.infos = {i.filename: i for i in infos}
        except BaseException:
            self.zf.close()
            raise

    def __enter__(self) -> "NpyArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.zf.close()

    @property
    def names(self) -> list[str]:
        """Member names without ``.npy`` (members named otherwise are listed as they are)."""
        return [n[:-4] if n.endswith(".npy") else n for n in self.infos]

    def info(self, name: str) -> zipfile.ZipInfo:
        i = self.infos.get(f"{name}.npy")
        if i is None:
            raise ArchiveError(f"has no member '{name[:80]}'")
        return i

    def header(self, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        """The ``.npy`` header of member ``name`` (reads only its first bytes)."""
        with self._open(name) as f:
            return read_npy_header(f)

    def _open(self, name: str):
        try:
            return self.zf.open(self.info(name))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, zlib.error) as e:
            raise ArchiveError(f"member '{name[:80]}' cannot be opened ({str(e).splitlines()[0][:120]})") from None

    def read(self, name: str, check: Callable[[tuple[int, ...], np.dtype], None], max_bytes: int,
             rows: int | None = None, sha256: str | None = None, start: int = 0) -> np.ndarray:
        """Member ``name`` as an array. ``check(shape, dtype)`` raises for what the caller does not accept;
        the bytes to read must fit ``max_bytes`` and the member's stored size; ``rows``: read only the
        first ``rows`` entries of axis 0 (C order: a prefix of the data, the rest is never decompressed);
        ``start``: begin at entry ``start`` of axis 0 (C order only; the entries before it are decompressed
        and dropped chunk by chunk, never held: a shard of a large file costs the memory of the shard);
        ``sha256``: the data must hash to it (full reads only)."""
        info = self.info(name)
        with self._open(name) as f:
            shape, fortran, dtype, hlen = read_npy_header(f)
            check(shape, dtype)
            total = nbytes_of(shape, dtype)
            if info.file_size != hlen + total:
                raise ArchiveError(f"member '{name[:80]}' declares {shape} {dtype} ({total:,} bytes) but holds "
                                   f"{max(info.file_size - hlen, 0):,} data bytes")
            if start:
                if fortran or not shape or not 0 <= start <= shape[0] or sha256 is not None:
                    raise ArchiveError(f"member '{name[:80]}': cannot start at entry {start} of {shape} "
                                       f"({'Fortran order' if fortran else 'out of range'})")
                skip_exact(f, nbytes_of((start,) + shape[1:], dtype))
                shape = (shape[0] - start,) + shape[1:]
            if rows is not None and shape and not fortran and rows < shape[0]:
                shape = (rows,) + shape[1:]
            elif fortran and shape and rows is not None and rows < shape[0]:
                pass  # Fortran order: the first rows are not a prefix; the whole array is read, then sliced
            want = nbytes_of(shape, dtype)
            if want > max_bytes:
                raise ArchiveError(f"member '{name[:80]}' would need {want:,} bytes of memory ({shape} {dtype}); "
                                   f"the limit for this file is {max_bytes:,}")
            hasher = hashlib.sha256() if sha256 is not None else None
            try:
                buf = read_exact(f, want, hasher)
            except ArchiveError as e:
                raise ArchiveError(f"member '{name[:80]}' {e}") from None
            if hasher is not None and hasher.hexdigest() != sha256:
                raise ArchiveError(f"member '{name[:80]}' does not match its digest: the file was changed after "
                                   "snnc wrote it")
        arr = np.frombuffer(buf, dtype=dtype)
        arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
        if rows is not None and fortran and shape and rows < shape[0]:
            arr = arr[:rows]
        return arr
