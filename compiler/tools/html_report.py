"""``snnc report``: one self-contained HTML page (inline CSS, no scripts, no network) plus PNG figures
about a compiled bundle: spike rates, conversion (unevenness) error per schedule, SOPs and energy
against the ANN, a spike raster of one sample, core utilization (once placed) and the bundle's
metadata. See docs/report.md.

The folder is written atomically: everything goes into a hidden temporary folder next to the
destination, which is renamed into place only once complete, so a failure never leaves a
half-written report behind.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path

import numpy as np

from snnc.backends.reference import simulate
from snnc.ir import Schedule
from snnc.ir.atomic import check_output, write_folder

from ..errors import SnncError
from ..metadata import Conversion, conversion_of, layer_records
from .backend_choice import BackendChoice
from .report_figures import plot_conversion_error, plot_raster, plot_sops_energy, plot_spike_rates


#: Section headings of index.html, in page order (tests check them).
SECTIONS = (
    "Summary",
    "Accuracy",
    "Spike rates",
    "Conversion error",
    "SOPs and energy",
    "Spike raster",
    "Core utilization",
    "Bundle metadata",
)

#: Figures written next to index.html.
FIGURES = ("spike_rates.png", "conversion_error.png", "sops_energy.png", "raster.png")
#: Figures written only when the bundle holds a placement.
PLACEMENT_FIGURES = ("cores.png",)

_REPORT_FILES = {"index.html", *FIGURES, *PLACEMENT_FIGURES}


class ReportError(SnncError):
    pass


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------

def write_report(bundle_path, out_dir, data=None, energy: str = "qiao2015", samples: int | None = None,
                 backend: BackendChoice | None = None) -> Path:
    """Write ``out_dir/index.html`` and its PNGs for the bundle at ``bundle_path``; returns the HTML path.

    ``data``: .npz with ``x`` (and optional ``y``); without it, ``samples`` (default 64) random inputs.
    ``energy``: built-in energy model name or a .toml file. ``samples``: use only the first N samples.
    ``backend``: what runs the verification and the op counts (default: the reference simulator); the
    schedules the network runs in and the raster come from the reference on one sample.
    """
    from ..bundles import load_bundle
    from ..data import check_samples, load_data, random_inputs
    from ..energy import load_energy_model
    from .stats import compute_stats
    from .verify import verify_against_ann
    from .verify_float import verify_training_free

    check_samples(samples)
    inputs = (bundle_path, data, energy if Path(energy).suffix == ".toml" else None)
    _check_destination(Path(out_dir))
    check_output(out_dir, inputs=inputs, what="report folder", folder=True, make_parents=True)
    bundle_path, out_dir = Path(bundle_path), Path(out_dir)
    choice = backend or BackendChoice("reference")
    loaded = load_bundle(bundle_path)
    net, extras = loaded.network, loaded.extras
    choice.counting_backend(net, Schedule.PIPELINED)   # a backend or device that cannot run is refused now
    em = load_energy_model(energy)
    if data is not None:
        x, y = load_data(data, net, samples)
        data_desc = f"{data} ({len(x)} samples{'' if y is not None else ', no labels'})"
    else:
        n = 64 if samples is None else samples
        x, y = random_inputs(net, n, 0), None
        data_desc = f"{n} random inputs (uniform over the input range, seed 0); no labels"
    if len(x) == 0:
        raise ReportError("no samples to report on")

    first = supported_schedules(net, x[:1])   # sample 0 in every schedule the network runs in
    scheds = list(first)
    default_sched = Schedule(net.metadata.get("config", {}).get("schedule", "layerwise"))
    if default_sched not in scheds:
        default_sched = scheds[0]
    training_free = conversion_of(net) is Conversion.TRAINING_FREE
    if training_free:  # no quantized ANN: measured against the float ANN (embedded model), pipelined
        mb = bytes(extras["onnx_model"]) if "onnx_model" in extras else None
        ver = {s.value: (None if mb is None else verify_training_free(
            net, x, y, mb, backend=choice.counting_backend(net, s)).to_dict()) for s in scheds}
    else:
        ver = {s.value: verify_against_ann(net, x, y, s, None, backend=choice.counting_backend(net, s)).to_dict()
               for s in scheds}
    stats = {s.value: compute_stats(net, x, s, em, backend=choice.counting_backend(net, s)).to_dict() for s in scheds}
    raster_sched = scheds[0]
    raster = first[raster_sched]
    latency = {s.value: r.latency_steps for s, r in first.items()}

    ctx = {
        "bundle": str(bundle_path), "net": net, "extras": sorted(extras), "data_desc": data_desc,
        "labels": y is not None, "energy": em, "default_schedule": default_sched.value,
        "verify": ver, "stats": stats, "raster": raster, "raster_schedule": raster_sched.value,
        "samples": len(x), "latency": latency, "schedules": [s.value for s in scheds],
        "training_free": training_free,
    }

    written = write_folder(out_dir, lambda stage: _write_all(stage, ctx), inputs=inputs, what="report folder",
                           make_parents=True, may_replace=_not_a_report)
    return written / "index.html"


def supported_schedules(net, x) -> dict:
    """{schedule: its recorded run on ``x``} for the schedules this network runs in (pipelined first):
    multi-threshold neurons and graded units run pipelined only, mixed quantization levels layerwise only."""
    from snnc.ir import IRError

    out = {}
    for s in (Schedule.PIPELINED, Schedule.LAYERWISE):
        try:
            out[s] = simulate(net, x, schedule=s, record=True)
        except (NotImplementedError, IRError):
            continue
    if not out:
        raise ReportError("the network runs in neither schedule in the reference simulator")
    return out


def _not_a_report(out_dir: Path) -> str | None:
    """Why ``out_dir`` may not be replaced (it holds files a report does not write), or None."""
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in _REPORT_FILES)
    if foreign:
        return (f"it is not empty and not an snnc report (it holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''})")
    return None


def _check_destination(out_dir: Path) -> None:
    """Refuse to replace anything but a previous report (index.html + our PNGs), before any work."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ReportError(f"'{out_dir}' exists and is not a folder")
    why = _not_a_report(out_dir)
    if why:
        raise ReportError(f"'{out_dir}' {why.removeprefix('it ')}; choose another -o folder")


def _write_all(d: Path, ctx: dict) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    plot_spike_rates(d / "spike_rates.png", ctx)
    plot_conversion_error(d / "conversion_error.png", ctx)
    plot_sops_energy(d / "sops_energy.png", ctx)
    raster_note = plot_raster(d / "raster.png", ctx)
    ctx["raster_note"] = raster_note
    placement = ctx["net"].metadata.get("placement")
    if _is_mapped(placement):
        from ..mapping.report import plot_utilization

        plot_utilization(placement, d / "cores.png")
    (d / "index.html").write_text(render_html(ctx), encoding="utf-8")


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f6f4}
main{max-width:1180px;margin:0 auto;padding:16px 28px 40px;background:#fff}
h1{font-size:1.5em;margin:.4em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:2px solid #ddd;padding-bottom:.2em}
h3{font-size:1em;margin:1.1em 0 .4em}
p.sub{color:#666;margin-top:0}
nav{font-size:.9em;margin:.6em 0 1em}nav a{margin-right:1em;color:#1b6ea8;text-decoration:none}
table{border-collapse:collapse;margin:.4em 0 .8em;font-size:.88em}
th,td{border:1px solid #ddd;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#f0f0ee}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee;display:block;margin:.4em 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em;margin:.6em 0}
.ok{color:#1b7e3a;font-weight:600}.bad{color:#b3261e;font-weight:600}
code{font-size:.9em;background:#f3f3f3;padding:0 3px;word-break:break-all}
.kv td:first-child{color:#555;white-space:nowrap}
.cols{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}.cols>div{min-width:0;max-width:100%}
"""


def _e(v) -> str:
    return html.escape(str(v), quote=True)


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _num(v, fmt="{:,.4g}") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return fmt.format(float(v))
    return _e(v)


def _table(headers, rows, num_cols=()) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in headers)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            cls = ' class="num"' if i in num_cols else ""
            cells.append(f"<td{cls}>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _flatten(d, prefix="") -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def _kv(d: dict) -> str:
    rows = []
    for k, v in _flatten(d):
        if isinstance(v, (list, tuple)):
            v = json.dumps(v)
        elif isinstance(v, dict):
            v = "{}"
        elif v is None:
            v = "none"
        rows.append(f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>")
    return f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>'


def _img(name: str, alt: str) -> str:
    return f'<img src="{_e(name)}" alt="{_e(alt)}">'


def _section(title: str, body: str) -> str:
    return f'<section id="{_anchor(title)}"><h2>{_e(title)}</h2>\n{body}\n</section>\n'


def render_html(ctx: dict) -> str:
    net, em, st_all, ver = ctx["net"], ctx["energy"], ctx["stats"], ctx["verify"]
    md = net.metadata
    cfg = md.get("config", {})
    src = md.get("source_model", {})
    tgt = md.get("target", {})
    ds = ctx["default_schedule"]
    st = st_all[ds]
    n_neurons = sum(p.size for p in net.populations)
    n_syn = sum(p.num_synapses for p in net.projections)
    parts = []

    # Summary
    summary = {
        "bundle": ctx["bundle"],
        "source model": f"{src.get('path', '?')} (sha256 {src.get('sha256', '?')})",
        "target": f"{tgt.get('name', cfg.get('target', '?'))} — {tgt.get('description', '')}",
        "timesteps T": net.timesteps,
        "default schedule": ds,
        "latency (steps)": ", ".join(f"{s} {v}" for s, v in ctx["latency"].items()),
        "schedules": ", ".join(ctx["schedules"]) + ("" if len(ctx["schedules"]) == 2 else
                                                     " (the only one this network runs in)"),
        "network": f"{len(net.populations)} populations, {n_neurons:,} neurons, {n_syn:,} synapses, "
                   f"{len(net.readouts)} readout(s)",
        "data": ctx["data_desc"],
        "energy model": f"{em.name} — {em.source or 'no source given'}",
        "simulated on": ", ".join(f"{s} {v['backend']} ({v['device']})" for s, v in st_all.items()),
        "snnc version": md.get("snnc_version", "?"),
    }
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in summary.items())
    parts.append(_section("Summary", f'<table class="kv"><tbody>{rows}</tbody></table>'))

    # Accuracy
    scheds = ctx["schedules"]
    if ctx["training_free"]:
        body = _accuracy_training_free(ver)
    else:
        acc_rows = []
        for s in scheds:
            v = ver[s]
            exact = '<span class="ok">exact</span>' if v["exact"] else '<span class="bad">not exact</span>'
            acc_rows.append([_e(s), _num(v["accuracy"]["snn"]), _num(v["accuracy"]["ann_int"]),
                             _num(v["prediction_agreement"]["snn_vs_ann_int"]),
                             f"{v['neurons_mismatched']:,} of {v['neurons_compared']:,}", exact])
        body = _table(["schedule", "SNN accuracy", "integer ANN accuracy", "SNN vs integer ANN prediction agreement",
                       "neuron counts that differ", "vs integer ANN"], acc_rows, num_cols=(1, 2, 3, 4))
        body += ("<p>Accuracy on the samples above. The float ANN is not run by the report "
                 "(<code>snnc verify --against ann</code> does that with the embedded ONNX model).</p>")
    if not ctx["labels"]:
        body = '<p class="note">No labels in the data: accuracies are n/a; prediction agreement is still shown.</p>' + body
    parts.append(_section("Accuracy", body))

    # Spike rates
    rate_rows = []
    by = {s: {L["name"]: L for L in st_all[s]["layers"]} for s in st_all}
    for p in net.populations:
        rate_rows.append([_e(p.name), _e("×".join(map(str, p.shape))), _num(p.size)]
                         + [_num(by[s][p.name]["spike_rate"]) for s in scheds]
                         + [_num(by[ds][p.name]["spikes_per_sample"], "{:,.1f}")])
    body = (_img("spike_rates.png", "spike rate per layer") +
            _table(["layer", "shape", "neurons"] + [f"rate ({s})" for s in scheds] + [f"spikes/sample ({ds})"],
                   rate_rows, num_cols=tuple(range(2, 4 + len(scheds)))) +
            "<p>Rate = spikes / (neurons · T), averaged over the samples. The readout does not spike.</p>")
    parts.append(_section("Spike rates", body))

    # Conversion error
    parts.append(_section("Conversion error", _conversion_error_html(ctx)))

    # SOPs and energy
    e_rows = []
    for L in st["layers"]:
        e_rows.append([_e(L["name"]), _num(L["macs"]), _num(L["sops_per_sample"], "{:,.0f}"),
                       _num(L["spikes_per_sample"], "{:,.1f}"), _num(L["energy_ann_j"], "{:.3e}"),
                       _num(L["energy_snn_j"], "{:.3e}")])
    tot_rows = []
    for s in scheds:
        t = st_all[s]
        r = t["snn"].get("energy_ratio_ann_over_snn")
        if r is None and t["snn"]["energy_j"] > 0:
            r = t["ann"]["energy_j"] / t["snn"]["energy_j"]
        tot_rows.append([_e(s), _num(t["ann"]["macs"]), _num(t["snn"]["sops_per_sample"], "{:,.0f}"),
                         _num(t["snn"]["spikes_per_sample"], "{:,.1f}"), _num(t["ann"]["energy_j"], "{:.3e}"),
                         _num(t["snn"]["energy_j"], "{:.3e}"), "n/a" if r is None else f"{r:,.1f}×"])
    body = (_img("sops_energy.png", "ANN MACs vs SNN SOPs and energy per layer") +
            f"<h3>Per layer, per sample ({_e(ds)} schedule)</h3>" +
            _table(["layer", "ANN MACs", "SNN SOPs", "spikes", "ANN energy [J]", "SNN energy [J]"],
                   e_rows, num_cols=(1, 2, 3, 4, 5)) +
            "<h3>Totals per sample</h3>" +
            _table(["schedule", "ANN MACs", "SNN SOPs", "SNN spikes", "ANN energy [J]", "SNN energy [J]",
                    "ANN / SNN energy"], tot_rows, num_cols=(1, 2, 3, 4, 5, 6)) +
            f"<p>Energy model <b>{_e(em.name)}</b>: {_e(em.source or 'no source given')}. "
            f"Per operation: ANN {em.ann_energy_per_mac_j:.3g} J/MAC; SNN {em.energy_per_sop_j:.3g} J/SOP, "
            f"{em.energy_per_input_op_j:.3g} J per graded input op, {em.energy_per_spike_j:.3g} J/spike, "
            f"{em.energy_per_update_active_j:.3g} / {em.energy_per_update_inactive_j:.3g} J per active / "
            "inactive neuron update. SOPs of layer l are the synaptic operations delivered into l "
            "(docs/cost.md).</p>")
    parts.append(_section("SOPs and energy", body))

    # Raster
    body = (_img("raster.png", "spike raster of sample 0") +
            f"<p>Sample 0, {_e(ctx['raster_schedule'])} schedule"
            + (f": every population steps every global timestep 1..{net.timesteps}. "
               if ctx["raster_schedule"] == "pipelined" else ": each layer runs its steps after its sources. ") +
            f"Rows are neurons stacked by population (flattened C order), separated by the orange lines. "
            f"{_e(ctx.get('raster_note', ''))}</p>")
    parts.append(_section("Spike raster", body))

    # Core utilization
    parts.append(_section("Core utilization", _placement_html(md.get("placement"), tgt)))

    # Metadata
    body = ('<div class="cols">'
            f"<div><h3>Compile config</h3>{_kv(cfg)}</div>"
            f"<div><h3>Target</h3>{_kv(tgt)}</div>"
            f"<div><h3>Source model</h3>{_kv(src)}</div></div>")
    body += f"<p>Embedded in the bundle: {_e(', '.join(ctx['extras']) or 'nothing')}.</p>"
    layers = [r.to_dict() for r in layer_records(ctx["net"])]
    if layers:
        cols = ["layer", "shape", "onnx_linear", "onnx_activation", "quantizer", "levels", "lambda", "exponent", "ann_macs"]
        extra = sorted({k for L in layers for k in L} - set(cols))
        rows = []
        for L in layers:
            row = []
            for c in cols + extra:
                v = L.get(c)
                if c == "shape" and isinstance(v, (list, tuple)):
                    row.append(_e("×".join(map(str, v))))
                elif c == "lambda" and isinstance(v, float):
                    row.append(_num(v, "{:.5f}"))
                elif isinstance(v, (dict, list)):
                    row.append(f"<code>{_e(json.dumps(v))}</code>")
                else:
                    row.append(_num(v))
            rows.append(row)
        idx = [i for i, c in enumerate(cols + extra) if c in ("levels", "lambda", "exponent", "ann_macs")]
        body += "<h3>Layers (from the ONNX model)</h3>" + _table(cols + extra, rows, num_cols=idx)
    other = {k: v for k, v in md.items()
             if k not in ("config", "target", "source_model", "layers", "layers_version", "placement")}
    if other:
        body += "<h3>Other</h3>" + _kv(other)
    parts.append(_section("Bundle metadata", body))

    nav = "".join(f'<a href="#{_anchor(t)}">{_e(t)}</a>' for t in SECTIONS)
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = f"snnc report: {Path(ctx['bundle']).name}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head>\n<body><main>\n"
        f"<h1>{_e(title)}</h1><p class=\"sub\">generated {when} by snnc {_e(md.get('snnc_version', ''))}</p>"
        f"<nav>{nav}</nav>\n" + "".join(parts) + "</main></body></html>\n"
    )


def _accuracy_training_free(ver: dict) -> str:
    v = next((v for v in ver.values() if v is not None), None)
    if v is None:
        return ('<p class="note">Training-free network: its reference is the float ANN, and this bundle does '
                "not embed the ONNX model (compile with a smaller model or keep it embedded).</p>")
    rows = [[_e(s), _num(r["accuracy"]["snn"]), _num(r["accuracy"]["ann_float"]),
             _num(r["prediction_agreement"]["snn_vs_ann_float"])] for s, r in ver.items() if r is not None]
    return (_table(["schedule", "SNN accuracy", "float ANN accuracy", "SNN vs float ANN prediction agreement"], rows,
                   num_cols=(1, 2, 3)) +
            "<p>A training-free network (paper 004: calibrated thresholds, multi-threshold neurons) has no "
            "quantized ANN to be exact against: it is measured against the float ANN (the embedded ONNX model "
            "run in float64), not proven equal.</p>")


def _conversion_error_html(ctx: dict) -> str:
    ver = {s: v for s, v in ctx["verify"].items() if v is not None}
    if not ver:
        return '<p class="note">No reference to compare with (the ONNX model is not embedded).</p>'
    img = _img("conversion_error.png", "conversion error per layer")
    if ctx["training_free"]:
        rows = [[_e(L["name"]), _e(L["relu"]), _num(L["mean_abs_error"], "{:.5f}"), _num(L["rel_rms_error"], "{:.4f}"),
                 _num(L["compared"])] for L in next(iter(ver.values()))["layers"]]
        return (img + _table(["layer", "ReLU it replaces", "mean |a_SNN − a_float| / θ", "relative rms error",
                              "values compared"], rows, num_cols=(2, 3, 4)) +
                "<p>Per layer, the SNN's value as the float ANN sees it (rate coding θ/2^(n−1)·N/T, differential "
                "coding the encoded value) against the float activation of the ReLU it replaced.</p>")
    heads, cols = ["layer"], []
    for s, v in ver.items():
        heads += [f"unevenness error ({s})", f"counts differing ({s})"]
        cols.append(v["layers"])
    heads.append("counts compared")
    rows = []
    for layer_stats in zip(*cols):
        row = [_e(layer_stats[0]["name"])]
        for L in layer_stats:
            row += [_num(L["unevenness_error"], "{:.5f}"), _num(L["mismatched"])]
        rows.append(row + [_num(layer_stats[0]["compared"])])
    return (img + _table(heads, rows, num_cols=tuple(range(1, len(heads)))) +
            "<p>As in paper 003, Fig. 3: per layer, the mean over neurons and samples of λ/T · |M − N|, "
            "where M is the integer ANN's level and N the SNN's spike count. The pipelined schedule "
            "suffers unevenness error; the layerwise schedule is exact by construction (docs/ir.md), "
            "so its bars are 0.</p>")


def _is_mapped(placement) -> bool:
    """A placement written by compiler/mapping (pieces per core), as opposed to none or a foreign one."""
    return isinstance(placement, dict) and "pieces" in placement and "populations" in placement


def _placement_html(placement, target: dict) -> str:
    if not placement:
        core = target.get("core", {})
        lim = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in core.items() if isinstance(v, int))
        return ('<p class="note"><b>Not placed</b>: this bundle holds no core placement (it was compiled '
                "without a mapper), so there is no core utilization to show; recompile it to place it.</p>"
                + (f"<p>Target core limits: {_e(lim)}; {_e(target.get('cores_per_chip', '?'))} cores per chip.</p>"
                   if lim else ""))
    if _is_mapped(placement):
        from ..mapping.partition import BUDGET_NAMES, BUDGETS
        from ..mapping.report import population_rows, split_readouts, utilization

        lb, used = placement["lower_bound_cores"], placement["cores_used"]
        util = utilization(placement)
        body = (f"<p>{used:,} cores used on {placement['chips_used']:,} chip(s) of {placement['cores_per_chip']} "
                f"cores, target {_e(placement['target'])}; lower bound {lb:,} cores (ratio {used / lb:.3f}). "
                "Run <code>snnc map</code> for every core.</p>")
        body += _img("cores.png", "per-core utilization of every budget")
        body += _table(["budget", "used", "available on the cores used", "mean per core", "max per core",
                        "lower bound (cores)"],
                       [[BUDGET_NAMES[b], _num(util[b]["used"]), _num(util[b]["available"]), f"{util[b]['mean']:.1%}",
                         f"{util[b]['max']:.1%}", _num(placement["lower_bound"]["cores"][b])] for b in BUDGETS],
                       num_cols=(1, 2, 3, 4, 5))
        rows = population_rows(placement)
        body += _table(["population", "slices", "cores", "neurons", "synapse bits", "in axons", "out axons"],
                       [[_e(r["population"]), _num(r["slices"]), _num(r["cores"]), _num(r["neurons"]),
                         _num(r["synapse_bits"]), _num(r["in_axons"]), _num(r["out_axons"])] for r in rows],
                       num_cols=(1, 2, 3, 4, 5, 6))
        splits = split_readouts(placement)
        if splits:
            body += ("<p>Readouts whose fan-in fits no core are placed as partial accumulators, each holding a "
                     "range of the input axons; the host adds the partial values of every output (exact: a sum "
                     "is a sum; docs/mapping.md, \"Split readouts\").</p>")
            body += _table(["readout", "partials per slice", "cores", "the host adds per output"],
                           [[_e(name), _num(sp["partials"]), _num(len(sp["cores"])), f"{sp['partials']} values"]
                            for name, sp in splits.items()], num_cols=(1, 2))
        host = placement.get("host_units")
        if host:
            body += (f"<p>{len(host['units'])} graded units (the transformer's LayerNorm, softmax, GELU / SiLU and "
                     f"two-input MatMul units) are not neuro-core operations: they run on the target's "
                     f"{_e(host['resource'])} ({host['processors_per_chip']} per chip, {host['state_bits']}-bit "
                     "values; docs/transformer_units.md).</p>")
            body += _table(["unit", "kind", "values", "port values", "weights in"],
                           [[_e(u["name"]), _e(u["kind"]), _num(u["values"]), _num(u["port_values"]),
                             _num(u["weights"])] for u in host["units"]], num_cols=(2, 3, 4))
        return body
    cores = placement.get("cores") if isinstance(placement, dict) else placement
    if isinstance(cores, list) and cores and all(isinstance(c, dict) for c in cores):
        cols = list(dict.fromkeys(k for c in cores for k in c))
        rows = [[(f"<code>{_e(json.dumps(c.get(k)))}</code>" if isinstance(c.get(k), (dict, list)) else _num(c.get(k)))
                 for k in cols] for c in cores]
        nums = [i for i, k in enumerate(cols) if all(isinstance(c.get(k), (int, float)) for c in cores)]
        body = f"<p>{len(cores)} cores used.</p>" + _table(cols, rows, num_cols=nums)
        if isinstance(placement, dict):
            rest = {k: v for k, v in placement.items() if k != "cores"}
            if rest:
                body += _kv(rest)
        return body
    if isinstance(placement, dict):
        return _kv(placement)
    return f"<pre>{_e(json.dumps(placement, indent=2, default=str))}</pre>"
