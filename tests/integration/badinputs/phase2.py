"""Cases that still fail after phase 1, and the file/function phase 2 changes for each (issue 14).

Phase 1 built the library-level checks (bundle schema/digest/limits, conformance, profiles, energy,
data files, the safe writer). What remains is in files other people own while the redesign (issue 15)
moves the commands into a command layer: the CLI must call the checked loaders and writers, and the
error contract (one line, exit codes) must hold for click's own errors and for multi-problem errors.
``test_bad_inputs.py`` marks each of these cases as a strict expected failure with its reason.
"""

LOAD = ("tools/cli._load_bundle (inspect/verify/simulate/stats/report/map) must call snnc.compiler.bundles.load_bundle "
        "(target formats + state proof), not snnc.ir.load_with_extras")
CLICK = ("click usage errors (bad choice/range/int, unknown option or command, click.Path(dir_okay=False) given a "
         "folder) print Usage/Try/Error (3 lines): the command layer must turn click.UsageError into one "
         "'error: ...' line, exit 2 (e.g. standalone_mode=False in main, or a custom Group.main)")
MULTILINE = ("errors.InvalidModelError/UnsupportedOperatorError (and the lowering's 'cannot lower the graph') put one "
             "problem per line: the command layer prints the first problem and 'and N more (-v lists them)' on one "
             "line; the full list only with -v")
COMPILE_OUT = ("tools/cli.compile and tools/compile.compile_command: pass -o unchanged (Path('') is '.', Path('new/') is 'new') and inputs=(model, its "
               "external-data files, --calib, --profile, a --target file) through the pipeline's bundle stage to "
               "ir.save(..., inputs=..., make_parents=True); call ir.atomic.check_output before compiling; drop "
               "the mkdir before compiling")
REPORT = ("tools/html_report.write_report: write through snnc.ir.atomic.write_folder(out_dir, fill, inputs=(bundle, data), "
          "make_parents=True, may_replace=<is a previous report>) instead of its own mkdtemp/rename")
MAP_PLOT = ("tools/cli.map_ / mapping.report.plot_utilization: save through snnc.compiler.outputs.save_figure(fig, path, "
            "inputs=(bundle,)) (refuses FIFOs/folders/the bundle, one line for disk errors, parents on success)")
EVAL_PLOT = ("tools/cli.eval_ / tools/evaluate.plot_accuracy: save through snnc.compiler.outputs.save_figure(fig, path, "
             "inputs=(model, data, calib)) and drop tools/cli.eval_'s own '--plot: folder does not exist' check")
SAMPLES = ("tools/cli._inputs: call compiler.data.check_samples(samples) before anything else and use "
           "`64 if samples is None else samples` (not `samples or 64`)")
TIMESTEPS = ("config.CompileConfig and tools/evaluate.EvalGrid: refuse T above snnc.ir.limits.Limits.max_timesteps by "
             "option name; analysis.bounds: check (T+1) x node size x 8 B against the memory budget before "
             "building envelopes (the MemoryError comes from there)")
OPTION_NAMES = ("config.CompileConfig / tools/evaluate.EvalGrid validation names the config field (timesteps, input_range, "
                "threshold_scale, frac_bits): the command layer must name the option (--timesteps, --input-range, "
                "...) in the message")
SIGINT = "tools/cli.main: KeyboardInterrupt -> one line 'error: interrupted', exit 130 (click prints 'Aborted!', exit 1)"
DOMAIN = ("frontend/onnx_loader.to_fgraph (fidelity owner): refuse nodes whose domain is not ''/'ai.onnx' (Quant only "
          "in _QUANT_DOMAINS), by node name and domain, in both the constant-folding loop and the handler loop")
OPSET = ("frontend/onnx_loader.to_fgraph (fidelity owner): refuse opsets below the lowest the handlers implement "
         "(Clip with min/max inputs needs opset >= 11), naming the opset")
ATTRS = ("frontend/builder.attrs and the handlers (frontend/onnx_loader, frontend/quantizers) (fidelity owner): check attribute types (Gemm transB='yes' is "
         "read as true)")
QUANT_ATTRS = ("frontend/quantizers._quant_params/_fold_quant/_fold_dequantize (fidelity owner): signed and narrow "
               "must be 0 or 1, weight scales (QONNX Quant and DequantizeLinear on a constant) must be > 0")
QUANT_RANGE = ("frontend/quantizers._qdtype/_quantize_linear (fidelity owner) and the lowering: an int32 zero point "
               "makes a 2^32-level quantizer; refuse a level count beyond the target before anything is allocated "
               "per level (MemoryError today)")
INPUT_SIZE = ("frontend/onnx_loader._check_runs (fidelity owner): check the input's declared size (prod(shape) x 8 B) "
              "against snnc.ir.limits.memory_budget(model size) before running the float graph on a probe input")
MISSING_TENSOR = ("frontend/onnx_loader (fidelity owner): an initializer whose data is missing or shorter than its dims "
                  "is reported as 'reads w0, which nothing produces'; name the initializer and the size mismatch "
                  "(and one line: see MULTILINE)")

PHASE2: dict[str, str] = {
    # bundles: the target-format check is built (compiler/bundles.load_bundle), the CLI does not call it yet
    **{f"bundle/{k}": LOAD for k in ("weight-1000", "exponent-9", "bias-1e9", "threshold-2^30", "threshold-2^62",
                                     "v0-2^40", "target-state-80", "target-weight-bits-32", "pop-timesteps-1e9")},
    # click's own usage errors
    **{k: CLICK for k in ("bundle/directory", "data/directory", "onnx/directory", "profile/directory",
                          "output/directory", "output/eval-plot-directory", "output/map-plot-directory",
                          "output/report-onto-file", "cli/against-bogus", "cli/chips-0", "cli/neg-divisor-0",
                          "cli/samples-abc", "cli/schedule-bogus", "cli/unknown-command", "cli/unknown-option")},
    # multi-problem errors
    **{k: MULTILINE for k in ("onnx/constantofshape-huge", "onnx/conv-kernel-too-big", "onnx/cycle",
                              "onnx/duplicate-outputs", "onnx/if-subgraph", "onnx/nan-weight", "onnx/negative-dim",
                              "onnx/string-initializer", "onnx/symbolic-dims", "onnx/two-inputs", "onnx/unknown-op",
                              "onnx/zero-dim", "quantizer/qdq-scale-nan", "quantizer/qdq-scale-negative",
                              "quantizer/qdq-scale-zero", "quantizer/qonnx-bits-0", "quantizer/qonnx-bits-1.5",
                              "quantizer/qonnx-bits-1000", "quantizer/qonnx-bits-64", "quantizer/qonnx-bits-nan",
                              "quantizer/qonnx-bits-negative", "quantizer/qonnx-rounding-bogus",
                              "quantizer/qonnx-scale-inf", "quantizer/qonnx-scale-nan", "quantizer/qonnx-scale-negative",
                              "quantizer/qonnx-scale-zero", "quantizer/qonnx-weight-bits-0")},
    **{k: MISSING_TENSOR for k in ("onnx/raw-data-lies", "onnx/dims-2^40-no-data", "external/short-file")},
    # output paths
    **{k: COMPILE_OUT for k in ("output/input-itself", "output/input-via-symlink", "output/calib-itself",
                                "output/empty", "output/trailing-slash", "output/missing-parent-failure")},
    **{k: REPORT for k in ("output/report-read-only", "output/report-disk-full", "output/report-file-size-limit")},
    **{k: MAP_PLOT for k in ("output/map-plot-fifo", "output/map-plot-input", "output/map-plot-missing-parent",
                             "output/map-plot-read-only", "output/map-plot-disk-full", "output/map-plot-file-size-limit")},
    **{k: EVAL_PLOT for k in ("output/eval-plot-fifo", "output/eval-plot-input", "output/eval-plot-missing-parent",
                              "output/eval-plot-disk-full", "output/eval-plot-file-size-limit")},
    # options
    "cli/samples--1-simulate-random": SAMPLES,
    "cli/samples-0-simulate-random": SAMPLES,
    "cli/compile-timesteps-1e9": TIMESTEPS,
    "cli/eval-timesteps-1e9": TIMESTEPS,
    **{k: OPTION_NAMES for k in ("cli/compile-timesteps-0", "cli/compile-timesteps-negative", "cli/eval-timesteps-zero",
                                 "cli/frac-bits-99", "cli/input-range-equal", "cli/input-range-inf",
                                 "cli/input-range-nan", "cli/input-range-reversed", "cli/threshold-scale-nan",
                                 "cli/threshold-scale-negative")},
    "signal/sigint-during-write": SIGINT,
    # the frontend (fidelity owner)
    "onnx/evil-domain": DOMAIN,
    "onnx/opset-7": OPSET,
    "onnx/attr-wrong-type": ATTRS,
    "onnx/huge-input-shape": INPUT_SIZE,
    **{k: QUANT_ATTRS for k in ("quantizer/qonnx-signed-5", "quantizer/qonnx-narrow-2",
                                "quantizer/qonnx-weight-scale-zero", "quantizer/qdq-weight-scale-zero")},
    "quantizer/qdq-zero-point-int32": QUANT_RANGE,
}
