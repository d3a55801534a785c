"""Without the interop extras (Sinabs, NeuroBench) the commands that need them say how to install
them, in one line, exit 2; everything NIR itself needs works."""

import importlib.util

import pytest
from click.testing import CliRunner

from snnc.compiler.tools.cli import cli

from snnc_testutil import DIGITS_DATA

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sinabs") is not None, reason="sinabs is installed")


def test_verify_and_stats_say_how_to_install(interop_bundles):
    b = str(interop_bundles["cnn"])
    r = CliRunner().invoke(cli, ["verify", b, "--against", "sinabs", "--data", str(DIGITS_DATA), "--samples", "2"])
    assert r.exit_code == 2 and "make interop" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["stats", b, "--data", str(DIGITS_DATA), "--samples", "2", "--neurobench"])
    assert r.exit_code == 2 and "make interop" in r.output and "Traceback" not in r.output
