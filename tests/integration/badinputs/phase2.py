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
    # the frontend (fidelity owner)
    "quantizer/qonnx-weight-bits-0": QUANT_ATTRS,
    "onnx/evil-domain": DOMAIN,
    "onnx/opset-7": OPSET,
    "onnx/attr-wrong-type": ATTRS,
    "onnx/huge-input-shape": INPUT_SIZE,
    **{k: QUANT_ATTRS for k in ("quantizer/qonnx-signed-5", "quantizer/qonnx-narrow-2",
                                "quantizer/qonnx-weight-scale-zero", "quantizer/qdq-weight-scale-zero")},
    "quantizer/qdq-zero-point-int32": QUANT_RANGE,
}
