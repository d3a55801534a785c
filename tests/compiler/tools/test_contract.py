"""The command layer's error contract (compiler/tools/contract.py): one line on stderr and the exit
status for click's usage errors, user errors (multi-problem ones shortened unless -v), internal
errors (traceback only with -vv) and Ctrl-C; and the options named in configuration errors."""

from __future__ import annotations

import click
import pytest

from snnc.compiler.errors import ConfigError, InvalidModelError, UnsupportedOperatorError
from snnc.compiler.tools import contract
from snnc.compiler.tools.cli import cli
from snnc.compiler.tools.contract import Problems, run, verbosity
from snnc.compiler.tools.options import OptionError, naming_options

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_a_multi_problem_error_is_one_line_with_the_count():
    e = InvalidModelError(["node 'a' reads 'x', which nothing produces", "weight 'w' contains NaN",
                           "input 'x' must have a static shape"], source="m.onnx")
    assert Problems.of(str(e)).one_line() == ("invalid model 'm.onnx': node 'a' reads 'x', which nothing produces "
                                              "(and 2 more; -v lists them)")
    assert contract.message_of(e, verbose=1) == str(e) and len(str(e).splitlines()) == 4
    u = UnsupportedOperatorError([("n1", "Softplus"), ("n2", "If")], ["Conv", "Gemm"], source="m.onnx")
    assert Problems.of(str(u)).one_line() == ("'m.onnx': 2 unsupported node(s): node 'n1' (op_type Softplus) "
                                              "(and 1 more; -v lists them); supported operators: Conv, Gemm")
    assert Problems.of("one line only").one_line() == "one line only"


def test_verbosity_counts_v_before_the_command():
    assert verbosity(["-v", "compile", "-v"]) == 1
    assert verbosity(["-vv", "inspect", "b.snnc"]) == 2
    assert verbosity(["--verbose", "-v", "map"]) == 2
    assert verbosity(["inspect", "-v"]) == 0


def _group(exc: BaseException) -> click.Group:
    @click.group(cls=type(cli))
    @click.option("-v", "--verbose", count=True)
    def g(verbose):
        pass

    @g.command()
    def boom():
        raise exc

    return g


@pytest.mark.parametrize("exc, status, first", [
    (InvalidModelError(["p1", "p2"]), 2, "error: invalid model: p1 (and 1 more; -v lists them)"),
    (KeyboardInterrupt(), 130, "error: interrupted"),
    (RuntimeError("unexpected\nsecond"), 3, "internal error: RuntimeError: unexpected (a bug in snnc"),
])
def test_run_prints_one_line_and_returns_the_status(capsys, exc, status, first):
    assert run(_group(exc), ["boom"]) == status
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(first), err


def test_verbose_lists_every_problem_and_vv_shows_an_internal_traceback(capsys):
    assert run(_group(InvalidModelError(["p1", "p2"])), ["-v", "boom"]) == 2
    assert _lines(capsys.readouterr().err) == ["error: invalid model:", "  - p1", "  - p2"]
    assert run(_group(RuntimeError("unexpected")), ["-vv", "boom"]) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize("args, named", [
    (["inspect", "b.snnc", "--frobnicate"], "--frobnicate"),
    (["frobnicate"], "frobnicate"),
    (["compile", str(DIGITS_MODEL), "--chips", "0", "-o", "x.snnc"], "--chips"),
    (["verify", "b.snnc", "--samples", "abc"], "--samples"),
])
def test_click_usage_errors_are_one_line_exit_2(capsys, args, named):
    assert run(cli, args) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("error: snnc") and named in err[0], err


def test_help_and_version_exit_0_and_list_the_exit_statuses(capsys):
    assert run(cli, ["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 ok; 1 a check failed" in out and "130 interrupted" in out
    assert run(cli, ["--version"]) == 0


def test_config_errors_name_the_option():
    with pytest.raises(OptionError, match=r"^--input-range must be two finite numbers"):
        with naming_options():
            raise ConfigError("input_range", "must be two finite numbers lo < hi, got (1.0, 0.0)")
    with pytest.raises(OptionError, match=r"^--calib "):
        with naming_options():
            raise ConfigError("calibration_data", "must be a non-empty string")


@pytest.mark.parametrize("args, first", [
    (["--timesteps", "0"], "error: --timesteps must be >= 1, got 0"),
    (["--timesteps", "100000"], "error: --timesteps must be <= 65536"),
    (["--input-range", "0,inf"], "error: --input-range must be two finite numbers lo < hi"),
])
def test_compile_options_are_named(capsys, tmp_path, args, first):
    assert run(cli, ["compile", str(DIGITS_MODEL), *args, "-o", str(tmp_path / "o.snnc")]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith(first), err
    assert list(tmp_path.iterdir()) == []


def test_samples_below_one_are_refused_everywhere(capsys, tmp_path):
    for n in ("0", "-1"):
        assert run(cli, ["eval", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--samples", n]) == 2
        assert _lines(capsys.readouterr().err) == [f"error: --samples must be an integer >= 1 (how many samples to "
                                                   f"use), got {n}"]


def test_bare_snnc_shows_the_help(capsys):
    assert run(cli, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: snnc [OPTIONS] COMMAND") and "Exit status" in err
