"""Target profiles, energy models (TOML) and command-line options."""

from __future__ import annotations

import json
import os

from .core import Case, Ctx, Result, Run

LOIHI = """name = "mine"
description = "a copy of loihi"
[numeric]
weight_bits = 8
weight_exp_min = 0
weight_exp_max = 7
state_bits = 24
bias_mant_bits = 13
bias_exp_max = 7
input_bits = 8
[core]
neurons = 1024
input_axons = 4096
output_axons = 4096
synapse_memory_bits = 1048576
[chip]
cores = 128
"""

ENERGY = """name = "mine"
source = "test"
[ann]
energy_per_mac_j = 4.6e-12
[snn]
energy_per_sop_j = 0.9e-12
energy_per_input_op_j = 0.9e-12
energy_per_spike_j = 0.0
energy_per_update_active_j = 0.0
energy_per_update_inactive_j = 0.0
"""


def profile_case(cid, what, text, mention, as_target=False, expect=2, phase2=None):
    """``compile mlp.onnx --profile p.toml`` (or ``--target p.toml`` for a whole target)."""
    def make(ctx: Ctx) -> Run:
        ctx.copy("mlp.onnx")
        if text is None:
            ctx.p("p.toml").mkdir()
        elif text == "FIFO":
            os.mkfifo(ctx.p("p.toml"))
        else:
            ctx.p("p.toml").write_text(text)
        opt = "--target" if as_target else "--profile"
        return Run(["compile", "mlp.onnx", opt, "p.toml", "-o", "out.snnc"], expect=expect, mention=mention,
                   outputs=("out.snnc",) if expect == 0 else (), timeout=20)
    return Case(f"profile/{cid}", "target profiles", what, make, phase2)


def _swap(key: str, value: str) -> str:
    lines = [f"{key} = {value}" if ln.split(" = ")[0] == key else ln for ln in LOIHI.splitlines()]
    return "\n".join(lines) + "\n"


def valid_json(res: Result, ctx: Ctx) -> str | None:
    def no_const(c):
        raise ValueError(f"{c} is not JSON")
    try:
        json.loads(res.stdout, parse_constant=no_const)
    except ValueError as e:
        return f"stdout is not valid JSON: {e}"
    return None


def energy_case(cid, what, text, mention="e.toml", expect=2, phase2=None, check=None):
    def make(ctx: Ctx) -> Run:
        ctx.copy("mlp.snnc")
        ctx.copy("mlp.npz")
        ctx.p("e.toml").write_text(text)
        return Run(["stats", "mlp.snnc", "--data", "mlp.npz", "--samples", "2", "--energy", "e.toml", "--json"],
                   expect=expect, mention=mention, check=check, timeout=20)
    return Case(f"energy/{cid}", "energy models", what, make, phase2)


def _energy_swap(key: str, value: str) -> str:
    return "\n".join(f"{key} = {value}" if ln.split(" = ")[0] == key else ln for ln in ENERGY.splitlines()) + "\n"


PROFILE_CASES = [
    profile_case("valid-target", "a whole target file (a copy of loihi)", LOIHI, None, as_target=True, expect=0),
    profile_case("valid-profile", "a profile that changes the neurons per core", "[core]\nneurons = 512\n", None,
                 expect=0),
    profile_case("bias-mant-bits-0", "bias_mant_bits = 0", "[numeric]\nbias_mant_bits = 0\n", "bias_mant_bits"),
    profile_case("neurons-1e20", "neurons = 1e20", "[core]\nneurons = 1e20\n", "neurons"),
    profile_case("neurons-2^62", "neurons = 2^62 (an integer)", f"[core]\nneurons = {2 ** 62}\n", "neurons"),
    profile_case("weight-exp-max-1000", "weight_exp_max = 1000", "[numeric]\nweight_exp_max = 1000\n", "weight_exp_max"),
    profile_case("input-bits-0", "input_bits = 0", "[numeric]\ninput_bits = 0\n", "input_bits"),
    profile_case("state-bits-80", "state_bits = 80", "[numeric]\nstate_bits = 80\n", "state_bits"),
    profile_case("weight-bits-1", "weight_bits = 1", "[numeric]\nweight_bits = 1\n", "weight_bits"),
    profile_case("weight-bits-string", "weight_bits = \"8\"", "[numeric]\nweight_bits = \"8\"\n", "weight_bits"),
    profile_case("weight-bits-true", "weight_bits = true", "[numeric]\nweight_bits = true\n", "weight_bits"),
    profile_case("neurons-nan", "neurons = nan", "[core]\nneurons = nan\n", "neurons"),
    profile_case("neurons-inf", "neurons = inf", "[core]\nneurons = inf\n", "neurons"),
    profile_case("neurons-negative", "neurons = -5", "[core]\nneurons = -5\n", "neurons"),
    profile_case("exp-min-above-max", "weight_exp_min = 9 > weight_exp_max", "[numeric]\nweight_exp_min = 9\n",
                 "weight_exp_min"),
    profile_case("weights-wider-than-state", "weight_bits 24 + exp 7 do not fit 24-bit state",
                 "[numeric]\nweight_bits = 24\n", "state_bits"),
    profile_case("unknown-section", "an unknown section [bogus]", "[bogus]\nx = 1\n", "bogus"),
    profile_case("unknown-key", "an unknown key in [numeric]", "[numeric]\nweight_bitz = 8\n", "weight_bitz"),
    profile_case("unknown-top-key", "an unknown top-level key", "colour = \"red\"\n", "colour"),
    profile_case("section-not-table", "numeric = 3", "numeric = 3\n", "numeric"),
    profile_case("index-bits-empty", "index_bits = []", "[synapse]\nindex_bits = []\n", "index_bits"),
    profile_case("index-bits-100", "index_bits = [100]", "[synapse]\nindex_bits = [100]\n", "index_bits"),
    profile_case("cores-0", "[chip] cores = 0", "[chip]\ncores = 0\n", "cores"),
    profile_case("systems-zero", "a system of 0 chips", "[systems]\nnone = 0\n", "none"),
    profile_case("name-number", "name = 5", "name = 5\n", "name"),
    profile_case("not-toml", "a file that is not TOML", "this is = = not toml [[\n", "p.toml"),
    profile_case("target-missing-section", "a target file without [core]",
                 LOIHI.split("[core]")[0], "core", as_target=True),
    profile_case("target-state-80", "a target file with state_bits = 80", _swap("state_bits", "80"), "state_bits",
                 as_target=True),
    profile_case("huge-file", "a 20 MB profile", "# " + "x" * (20 << 20) + "\n", "p.toml"),
    profile_case("directory", "the profile path is a folder", None, "p.toml"),
    profile_case("fifo", "the profile path is a FIFO", "FIFO", "p.toml"),
]

ENERGY_CASES = [
    energy_case("valid", "a valid energy model, stats --json", ENERGY, expect=0, check=valid_json),
    energy_case("ann-3", "ann = 3 (not a table)", "ann = 3\n" + ENERGY.split("[ann]\nenergy_per_mac_j = 4.6e-12\n")[1],
                mention="ann"),
    energy_case("nan", "an energy of nan", _energy_swap("energy_per_sop_j", "nan"), mention="energy_per_sop_j"),
    energy_case("inf", "an energy of inf", _energy_swap("energy_per_sop_j", "inf"), mention="energy_per_sop_j"),
    energy_case("true", "an energy of true", _energy_swap("energy_per_sop_j", "true"), mention="energy_per_sop_j"),
    energy_case("negative", "an energy of -1e-12", _energy_swap("energy_per_sop_j", "-1e-12"),
                mention="energy_per_sop_j"),
    energy_case("string", "an energy of \"1 pJ\"", _energy_swap("energy_per_sop_j", "\"1 pJ\""),
                mention="energy_per_sop_j"),
    energy_case("absurd", "an energy of 1e6 J per operation", _energy_swap("energy_per_sop_j", "1e6"),
                mention="energy_per_sop_j"),
    energy_case("missing-key", "energy_per_spike_j missing",
                "\n".join(ln for ln in ENERGY.splitlines() if not ln.startswith("energy_per_spike_j")) + "\n",
                mention="energy_per_spike_j"),
    energy_case("unknown-key", "an unknown key in [snn]", ENERGY + "energy_per_thought_j = 1e-12\n",
                mention="energy_per_thought_j"),
    energy_case("unknown-section", "an unknown section", ENERGY + "[gpu]\nwatts = 300\n", mention="gpu"),
    energy_case("all-zero", "every energy 0 (ratios undefined): stats --json must stay valid JSON",
                ENERGY.replace("4.6e-12", "0.0").replace("0.9e-12", "0.0"), expect=0, check=valid_json),
    energy_case("not-toml", "a file that is not TOML", "[[[", mention="e.toml"),
]


# ---- command-line options ------------------------------------------------------------------------------
def opt_case(cid, what, args, mention, expect=2, phase2=None, files=("mlp.snnc", "mlp.npz", "mlp.onnx"), timeout=30.0,
             outputs=()):
    def make(ctx: Ctx) -> Run:
        for f in files:
            ctx.copy(f)
        return Run(list(args), expect=expect, mention=mention, timeout=timeout, outputs=outputs)
    return Case(f"cli/{cid}", "command-line options", what, make, phase2)


def _samples(cmd, n):
    base = {"verify": ["verify", "mlp.snnc", "--data", "mlp.npz"],
            "simulate": ["simulate", "mlp.snnc", "--data", "mlp.npz"],
            "stats": ["stats", "mlp.snnc", "--data", "mlp.npz"],
            "simulate-random": ["simulate", "mlp.snnc"],
            "eval": ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", "2"]}[cmd]
    return base + ["--samples", str(n)]


CLI_CASES = [
    *[opt_case(f"samples-{n}-{cmd}", f"{cmd} --samples {n}", _samples(cmd, n), "--samples")
      for cmd in ("verify", "simulate", "stats", "simulate-random", "eval") for n in (-1, 0)],
    opt_case("samples-abc", "--samples abc", _samples("verify", "abc"), "--samples"),
    opt_case("compile-timesteps-1e9", "compile --timesteps 1000000000",
             ["compile", "mlp.onnx", "--timesteps", "1000000000", "-o", "out.snnc"], "--timesteps", timeout=60),
    opt_case("compile-timesteps-0", "compile --timesteps 0", ["compile", "mlp.onnx", "--timesteps", "0", "-o", "out.snnc"],
             "--timesteps"),
    opt_case("compile-timesteps-negative", "compile --timesteps -4",
             ["compile", "mlp.onnx", "--timesteps", "-4", "-o", "out.snnc"], "--timesteps"),
    opt_case("eval-timesteps-1e9", "eval --timesteps 1000000000",
             ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", "1000000000", "--samples", "2"], "--timesteps",
             timeout=60),
    opt_case("eval-timesteps-empty", "eval --timesteps ''", ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", ""],
             "--timesteps"),
    opt_case("eval-timesteps-words", "eval --timesteps a,b", ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", "a,b"],
             "--timesteps"),
    opt_case("eval-timesteps-zero", "eval --timesteps 0,2", ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", "0,2"],
             "--timesteps"),
    opt_case("input-range-reversed", "--input-range 1,0", ["compile", "mlp.onnx", "--input-range", "1,0", "-o", "out.snnc"],
             "--input-range"),
    opt_case("input-range-nan", "--input-range nan,1", ["compile", "mlp.onnx", "--input-range", "nan,1", "-o", "out.snnc"],
             "--input-range"),
    opt_case("input-range-inf", "--input-range 0,inf", ["compile", "mlp.onnx", "--input-range", "0,inf", "-o", "out.snnc"],
             "--input-range"),
    opt_case("input-range-one", "--input-range 1", ["compile", "mlp.onnx", "--input-range", "1", "-o", "out.snnc"],
             "--input-range"),
    opt_case("input-range-equal", "--input-range 1,1", ["compile", "mlp.onnx", "--input-range", "1,1", "-o", "out.snnc"],
             "--input-range"),
    opt_case("chips-0", "--chips 0", ["compile", "mlp.onnx", "--chips", "0", "-o", "out.snnc"], "--chips"),
    opt_case("threshold-scale-nan", "--threshold-scale nan",
             ["compile", "relu.onnx", "--calib", "calib.npz", "--neuron", "multi-threshold:2", "--timesteps", "4",
              "--threshold-scale", "nan", "-o", "out.snnc"], "--threshold-scale", files=("relu.onnx", "calib.npz")),
    opt_case("threshold-scale-negative", "--threshold-scale -1",
             ["compile", "relu.onnx", "--calib", "calib.npz", "--neuron", "multi-threshold:2", "--timesteps", "4",
              "--threshold-scale", "-1", "-o", "out.snnc"], "--threshold-scale", files=("relu.onnx", "calib.npz")),
    opt_case("thresholds-percentile-200", "--thresholds percentile:200",
             ["compile", "relu.onnx", "--calib", "calib.npz", "--neuron", "multi-threshold:2", "--timesteps", "4",
              "--thresholds", "percentile:200", "-o", "out.snnc"], "percentile", files=("relu.onnx", "calib.npz")),
    opt_case("frac-bits-99", "--frac-bits 99",
             ["compile", "relu.onnx", "--calib", "calib.npz", "--neuron", "multi-threshold:2", "--coding", "differential",
              "--timesteps", "4", "--frac-bits", "99", "-o", "out.snnc"], "--frac-bits", files=("relu.onnx", "calib.npz")),
    opt_case("neuron-mt-0", "--neuron multi-threshold:0", ["compile", "mlp.onnx", "--neuron", "multi-threshold:0", "-o", "out.snnc"],
             "multi-threshold"),
    opt_case("neuron-mt-99", "--neuron multi-threshold:99",
             ["compile", "mlp.onnx", "--neuron", "multi-threshold:99", "-o", "out.snnc"], "multi-threshold"),
    opt_case("neuron-bogus", "--neuron bogus", ["compile", "mlp.onnx", "--neuron", "bogus", "-o", "out.snnc"], "bogus"),
    opt_case("neg-divisor-0", "--neg-divisor 0", ["compile", "mlp.onnx", "--neg-divisor", "0", "-o", "out.snnc"],
             "--neg-divisor"),
    opt_case("schedule-bogus", "--schedule bogus", ["simulate", "mlp.snnc", "--schedule", "bogus"], "--schedule"),
    opt_case("system-bogus", "--system bogus", ["compile", "mlp.onnx", "--system", "bogus", "-o", "out.snnc"], "bogus"),
    opt_case("target-bogus", "--target bogus", ["compile", "mlp.onnx", "--target", "bogus", "-o", "out.snnc"], "bogus"),
    opt_case("against-bogus", "verify --against bogus", ["verify", "mlp.snnc", "--against", "bogus"], "--against"),
    opt_case("unknown-option", "an unknown option", ["inspect", "mlp.snnc", "--frobnicate"], "--frobnicate"),
    opt_case("unknown-command", "an unknown command", ["frobnicate"], "frobnicate"),
    opt_case("backend-bogus", "simulate --backend bogus", ["simulate", "mlp.snnc", "--backend", "bogus"], "bogus"),
]
