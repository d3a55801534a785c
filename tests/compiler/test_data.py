"""Data files are read without trusting them (compiler/data.py): only the samples asked for, declared
sizes against the budget before anything is read, labels validated, every error naming the file."""

import io
import os
import resource
import struct
import zipfile

import numpy as np
import pytest

from snnc.compiler.data import check_samples, load_arrays, random_inputs
from snnc.compiler.errors import DataFileError, SnncError

SHAPE = (6,)


def npy_header(descr, shape, fortran=False):
    hdr = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    hdr += b" " * (64 - (10 + len(hdr) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr


def npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def zeros_npz(path, n):
    """x (n, 6) float32 and y (n,) of zeros, streamed: a few MB on disk, n * 32 bytes when loaded."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, descr, shape, nbytes in (("x.npy", "<f4", (n, 6), n * 24), ("y.npy", "<i8", (n,), n * 8)):
            with zf.open(name, "w", force_zip64=True) as out:
                out.write(npy_header(descr, shape))
                chunk = bytes(1 << 22)
                for i in range(0, nbytes, len(chunk)):
                    out.write(chunk[: min(len(chunk), nbytes - i)])
    return path


def x8():
    return np.random.default_rng(0).uniform(0, 1, (8, 6)).astype(np.float32)


def test_reads_only_the_samples_asked_for_from_a_bomb(tmp_path):
    """A ~2 MB npz declaring 1.5 GB of x: 4 samples read in a blink, all of it refused by the budget."""
    p = zeros_npz(tmp_path / "bomb.npz", (3 << 29) // 24)
    assert p.stat().st_size < 4 << 20
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x, y = load_arrays(p, SHAPE, limit=4, classes=3)
    assert x.shape == (4, 6) and x.dtype == np.float32 and y.tolist() == [0, 0, 0, 0]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024  # KB: < 100 MB more
    with pytest.raises(DataFileError, match="bomb.npz.*x declares 67,108,864 samples.*use --samples"):
        load_arrays(p, SHAPE)


@pytest.mark.parametrize("arrays,msg", [
    ({"data": x8()}, "must be an .npz with an array 'x'"),
    ({"x": np.zeros((8, 7), np.float32)}, r"x has shape \(8, 7\); the network's input 'input' expects \(N, 6\)"),
    ({"x": np.zeros((0, 6), np.float32)}, "x holds no samples"),
    ({"x": np.array([["a"] * 6] * 8)}, "x holds <U1 values; expected numbers"),
    ({"x": np.zeros((8, 6), bool)}, "x holds bool values"),
    ({"x": np.zeros((8, 6), np.complex64)}, "x holds complex64 values"),
    ({"x": np.full((8, 6), np.nan, np.float32)}, "x must be finite numbers"),
    ({"x": x8(), "y": np.array([0, 1, np.nan, 2, 0, 1, 2, 0])}, "label nan is not an integer"),
    ({"x": x8(), "y": np.array(list("abcabcab"))}, "labels y hold <U1 values; expected integer class labels"),
    ({"x": x8(), "y": np.array([0, 1, 7, 2, 0, 1, 2, 0])}, "label 7 is outside the network's 3 classes"),
    ({"x": x8(), "y": np.array([0, 1, -1, 2, 0, 1, 2, 0])}, "label -1 is outside"),
    ({"x": x8(), "y": np.array([0, 1.5, 1, 2, 0, 1, 2, 0])}, "label 1.5 is not an integer"),
    ({"x": x8(), "y": np.array([0, 1, 2])}, "y has 3 labels but x has 8 samples"),
    ({"x": x8(), "y": np.eye(3)[np.arange(8) % 3]}, r"labels y have shape \(8, 3\); expected .* not one-hot"),
])
def test_bad_contents_are_named(tmp_path, arrays, msg):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataFileError, match=msg) as e:
        load_arrays(p, SHAPE, classes=3)
    assert "d.npz" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("member,msg", [
    (npy_header("<f4", (10 ** 9, 6)) + b"\0" * 96, r"declares \(1000000000, 6\) float32 .* but holds 96 data bytes"),
    (npy_header("<f4", (8, 6)) + b"\0" * 40, "holds 40 data bytes"),
    (npy(np.array([{"a": 1}] * 8, dtype=object)), "holds object values"),
    (b"\x93NUMPY\x09\x00junk", "unsupported .npy format version|unreadable"),
    (b"not an npy", "unreadable"),
])
def test_lying_and_hostile_members(tmp_path, member, msg):
    p = tmp_path / "d.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", member)
    with pytest.raises(DataFileError, match=msg):
        load_arrays(p, SHAPE, limit=4)


def test_valid_variants(tmp_path):
    x = x8()
    for xs in (x, (x * 255).astype(np.uint8), x.astype(np.float16), x.astype(">f4"), np.asfortranarray(x)):
        np.savez(tmp_path / "d.npz", x=xs, y=np.arange(8) % 3)
        got, y = load_arrays(tmp_path / "d.npz", SHAPE, limit=5, classes=3)
        assert got.dtype == np.float32 and got.shape == (5, 6) and y.tolist() == [0, 1, 2, 0, 1]
        np.testing.assert_array_equal(got, xs[:5].astype(np.float32))
    np.savez(tmp_path / "f.npz", x=x, y=(np.arange(8) % 3).astype(np.float64))
    assert load_arrays(tmp_path / "f.npz", SHAPE, classes=3)[1].dtype == np.int64
    _, y = load_arrays(tmp_path / "f.npz", SHAPE, limit=1000)
    assert len(y) == 8


def test_paths_that_are_not_data_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(DataFileError, match="FIFO"):
        load_arrays(tmp_path / "fifo.npz", SHAPE)
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(DataFileError, match="folder"):
        load_arrays(tmp_path / "dir.npz", SHAPE)
    with pytest.raises(DataFileError, match="does not exist"):
        load_arrays(tmp_path / "missing.npz", SHAPE)
    np.save(tmp_path / "one.npy", x8())
    with pytest.raises(DataFileError, match="not an .npz data file"):
        load_arrays(tmp_path / "one.npy", SHAPE)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "4"])
def test_sample_counts_must_be_positive_integers(n):
    with pytest.raises(SnncError, match="--samples must be an integer >= 1"):
        check_samples(n)


def test_random_inputs_refuse_zero(mlp_path):
    from snnc.compiler.api import compile_model

    net, _ = compile_model(mlp_path)
    assert random_inputs(net, 3).shape == (3, 6)
    with pytest.raises(SnncError, match="--samples"):
        random_inputs(net, 0)
