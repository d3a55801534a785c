"""The safe output writer (snnc.ir.atomic): what it refuses, what it leaves behind, permissions,
signals and full disks. Special files are made inside tmp_path only."""

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from snnc.ir.atomic import (TEMP_SUFFIX, check_output, current_umask, sweep_stale, temp_name, write_bytes,
                            write_file, write_folder)
from snnc.ir.errors import OutputError


def listing(d):
    return sorted(p.name for p in d.iterdir())


def test_writes_atomically_and_leaves_nothing_else(tmp_path):
    p = tmp_path / "out.bin"
    assert write_bytes(p, b"abc") == p
    assert p.read_bytes() == b"abc" and listing(tmp_path) == ["out.bin"]
    write_bytes(p, b"defg")
    assert p.read_bytes() == b"defg" and listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("make,kind", [
    (lambda p: p.mkdir(), "a folder"),
    (lambda p: os.mkfifo(p), "FIFO"),
    (lambda p: socket.socket(socket.AF_UNIX).bind(str(p)), "a socket"),
])
def test_refuses_what_is_not_a_regular_file_by_name(tmp_path, make, kind):
    p = tmp_path / "target"
    make(p)
    before = os.lstat(p)
    with pytest.raises(OutputError, match=f"'{p}' is .*{kind}"):
        write_bytes(p, b"x")
    after = os.lstat(p)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
    assert listing(tmp_path) == ["target"]


def test_refuses_a_character_device_made_in_tmp(tmp_path):
    p = tmp_path / "null"
    try:
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("mknod is not permitted here")
    with pytest.raises(OutputError, match="character device"):
        write_bytes(p, b"x")
    assert stat.S_ISCHR(os.lstat(p).st_mode)


def test_refuses_the_input_itself_also_through_a_symlink(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    with pytest.raises(OutputError, match="is the input"):
        write_bytes(model, b"bundle", inputs=[model])
    os.symlink("m.onnx", tmp_path / "link.snnc")
    with pytest.raises(OutputError, match="is the input"):
        write_bytes(tmp_path / "link.snnc", b"bundle", inputs=[str(model)])
    assert model.read_bytes() == b"model"


def test_a_symlink_to_a_regular_file_writes_that_file_and_a_dangling_one_is_refused(tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    os.symlink("real", tmp_path / "link")
    write_bytes(tmp_path / "link", b"new")
    assert os.path.islink(tmp_path / "link") and (tmp_path / "real").read_bytes() == b"new"
    os.symlink("nowhere/x", tmp_path / "dangling")
    with pytest.raises(OutputError, match="does not exist"):
        write_bytes(tmp_path / "dangling", b"x")


@pytest.mark.parametrize("path,msg", [("", "empty"), ("   ", "empty"), ("dir/", "names a folder")])
def test_refuses_empty_and_folder_names(tmp_path, path, msg):
    with pytest.raises(OutputError, match=msg):
        write_bytes(path, b"x")


def test_missing_parent_is_an_error_or_created_only_on_success(tmp_path):
    with pytest.raises(OutputError, match="does not exist; create it first"):
        write_bytes(tmp_path / "a" / "b" / "f", b"x")
    assert listing(tmp_path) == []

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("the content failed")

    with pytest.raises(RuntimeError, match="the content failed"):  # the writer's own error, unchanged
        write_file(tmp_path / "a" / "b" / "f", boom, make_parents=True)
    assert listing(tmp_path) == []  # no folder, no temporary file
    write_bytes(tmp_path / "a" / "b" / "f", b"x", make_parents=True)
    assert (tmp_path / "a" / "b" / "f").read_bytes() == b"x" and listing(tmp_path) == ["a"]


def test_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="is a regular file, not a folder"):
        write_bytes(tmp_path / "file" / "x", b"x", make_parents=True)


def test_permissions_follow_the_umask_and_an_overwrite_keeps_the_mode(tmp_path):
    old = os.umask(0o002)
    try:
        assert current_umask() == 0o002
        write_bytes(tmp_path / "new", b"x")
        assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o664
        os.umask(0o077)
        write_bytes(tmp_path / "new077", b"x")
        assert stat.S_IMODE(os.stat(tmp_path / "new077").st_mode) == 0o600
        (tmp_path / "shared").write_bytes(b"x")
        os.chmod(tmp_path / "shared", 0o664)
        write_bytes(tmp_path / "shared", b"y")
        assert stat.S_IMODE(os.stat(tmp_path / "shared").st_mode) == 0o664
    finally:
        os.umask(old)


@pytest.mark.parametrize("code,why", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                      (errno.EACCES, "permission denied"), (errno.EFBIG, "too large"),
                                      (errno.EDQUOT, "quota")])
def test_disk_errors_become_one_line_and_leave_nothing(tmp_path, code, why):
    def fill(fh):
        fh.write(b"some bytes")
        raise OSError(code, os.strerror(code))

    (tmp_path / "out").write_bytes(b"previous")
    with pytest.raises(OutputError, match=why) as e:
        write_file(tmp_path / "out", fill)
    assert "\n" not in str(e.value) and "out" in str(e.value)
    assert listing(tmp_path) == ["out"] and (tmp_path / "out").read_bytes() == b"previous"


def test_an_error_while_closing_after_enospc_still_reads_as_disk_full(tmp_path):
    """zipfile raises a ValueError ('seek of closed file') while closing after ENOSPC: the OSError in the
    chain is what the user is told."""
    def fill(fh):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        finally:
            raise ValueError("seek of closed file")

    with pytest.raises(OutputError, match="disk is full"):
        write_file(tmp_path / "out", fill)
    assert listing(tmp_path) == []


def test_stale_temporary_files_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / temp_name("out.snnc").replace(f"-{os.getpid()}-", f"-{dead.pid}-")
    stale.write_bytes(b"half a bundle")
    mine = tmp_path / temp_name("other")  # this process is alive: never swept
    mine.write_bytes(b"in progress")
    unrelated = tmp_path / ".out.snnc.1234.tmp"  # not our pattern: never touched
    unrelated.write_bytes(b"someone else's")
    write_bytes(tmp_path / "out.snnc", b"x")
    assert not stale.exists() and mine.exists() and unrelated.exists()
    assert sweep_stale(tmp_path) == []


def test_write_folder_replaces_only_what_may_be_replaced(tmp_path):
    def fill(d):
        (d / "index.html").write_text("report")

    out = tmp_path / "rep"
    write_folder(out, fill, make_parents=True)
    assert (out / "index.html").read_text() == "report"
    with pytest.raises(OutputError, match="already exists"):
        write_folder(out, fill)
    write_folder(out, lambda d: (d / "index.html").write_text("v2"), may_replace=lambda p: None)
    assert (out / "index.html").read_text() == "v2" and listing(tmp_path) == ["rep"]
    with pytest.raises(OutputError, match="not a report"):
        write_folder(out, fill, may_replace=lambda p: "not a report")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_folder(tmp_path / "file", fill)
    bundle = out / "b.snnc"
    bundle.write_bytes(b"b")
    with pytest.raises(OutputError, match="holds the input"):
        write_folder(out, fill, inputs=[bundle], may_replace=lambda p: None)

    def boom(d):
        (d / "half").write_text("x")
        raise RuntimeError("plot failed")

    with pytest.raises(RuntimeError):
        write_folder(tmp_path / "new" / "rep", boom, make_parents=True)
    assert sorted(listing(tmp_path)) == ["file", "rep"]


def test_check_output_runs_before_any_work(tmp_path):
    d = check_output(tmp_path / "x" / "y.snnc", make_parents=True)
    assert d.missing == [tmp_path / "x"] and not (tmp_path / "x").exists()


SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from snnc.ir.atomic import write_file
    def fill(fh):
        fh.write(b"x" * 1000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(30)
    write_file(sys.argv[1], fill)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_write_removes_the_temporary_file_and_still_kills(tmp_path, sig):
    out = tmp_path / "out.snnc"
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(out)], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"writing"
    assert any(n.endswith(TEMP_SUFFIX) for n in listing(tmp_path))
    p.send_signal(sig)
    assert p.wait(20) == -sig  # died by the signal, as without the handler
    assert listing(tmp_path) == []


def test_kill_9_leaves_a_temporary_file_that_the_next_write_sweeps(tmp_path):
    out = tmp_path / "out.snnc"
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(out)], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"writing"
    p.kill()
    p.wait(20)
    assert len(listing(tmp_path)) == 1
    write_bytes(out, b"done")
    assert listing(tmp_path) == ["out.snnc"]


def test_a_file_size_limit_is_one_clear_error(tmp_path):
    code = textwrap.dedent("""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from snnc.ir.atomic import write_bytes
        from snnc.ir.errors import OutputError
        try:
            write_bytes(sys.argv[1], b"x" * 100000)
        except OutputError as e:
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big")], capture_output=True, text=True, timeout=60)
    assert "too large" in r.stdout and r.stderr == ""
    assert listing(tmp_path) == []


def test_signal_handlers_are_restored_after_a_write(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    write_bytes(tmp_path / "x", b"1")
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_slow_write_does_not_block_on_time(tmp_path):
    t0 = time.perf_counter()
    write_bytes(tmp_path / "x", b"1" * (1 << 20))
    assert time.perf_counter() - t0 < 10
