"""The figures of ``snnc report`` (docs/report.md): spike rates, conversion error, SOPs and energy,
and a spike raster of one sample, each a PNG drawn from the report's context (``html_report.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_RASTER_NEURONS = 2000
RASTER_PIXEL_ROWS = 500
COLORS = {"pipelined": "#d95f02", "layerwise": "#1b9e77", "ann": "#7570b3", "snn": "#1b9e77"}


def _fig(w=9.0, h=3.6):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(w, h), dpi=110)
    return fig, ax


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _grouped(ax, names, series: dict, colors: dict, log=False, fmt="{:.3g}"):
    k = len(series)
    width = 0.8 / max(k, 1)
    xs = np.arange(len(names))
    for i, (label, vals) in enumerate(series.items()):
        pos = xs - 0.4 + width * (i + 0.5)
        vals = np.asarray(vals, dtype=float)
        plot_vals = np.where(vals > 0, vals, np.nan) if log else vals
        bars = ax.bar(pos, plot_vals, width, label=label, color=colors.get(label.split(" ")[0].lower()))
        for b, v, p in zip(bars, vals, pos):
            y = b.get_height() if np.isfinite(b.get_height()) else 0
            if log and v <= 0:
                ax.annotate("0", (p, 0), xytext=(0, 2), textcoords="offset points", xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=7)
            else:
                ax.annotate(fmt(v) if callable(fmt) else fmt.format(v), (p, y), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, names)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.margins(y=0.15)


def plot_spike_rates(path: Path, ctx: dict) -> None:
    net = ctx["net"]
    names = [p.name for p in net.populations]
    series = {}
    for s in ctx["schedules"]:
        by = {L["name"]: L["spike_rate"] for L in ctx["stats"][s]["layers"]}
        series[s] = [by.get(n, 0.0) for n in names]
    fig, ax = _fig()
    _grouped(ax, names, series, COLORS, fmt="{:.3f}")
    ax.set_ylabel("spikes per neuron per step")
    ax.set_title(f"Spike rate per layer (T = {net.timesteps}, {ctx['samples']} samples)")
    ax.legend(title="schedule", fontsize=8)
    _save(fig, path)


def plot_conversion_error(path: Path, ctx: dict) -> None:
    vers = {s: v for s, v in ctx["verify"].items() if v is not None}
    fig, ax = _fig()
    if not vers:
        ax.text(0.5, 0.5, "no reference (the bundle does not embed its ONNX model)", ha="center", va="center")
        _save(fig, path)
        return
    key = "mean_abs_error" if ctx["training_free"] else "unevenness_error"
    names = [L["name"] for L in next(iter(vers.values()))["layers"]]
    series = {s: [L[key] for L in v["layers"]] for s, v in vers.items()}
    _grouped(ax, names, series, COLORS, fmt="{:.4f}")
    if ctx["training_free"]:
        ax.set_ylabel(r"mean $|a_{SNN} - a_{float}|/\theta$ per neuron")
        ax.set_title("Conversion error per layer: SNN values vs the float ANN's ReLU activations")
    else:
        ax.set_ylabel(r"mean $\lambda/T\cdot|M-N|$ per neuron")
        ax.set_title("Conversion (unevenness) error per layer: SNN counts vs integer ANN levels")
    ax.legend(title="schedule", fontsize=8)
    if max((v for vals in series.values() for v in vals), default=0) == 0:
        ax.set_ylim(0, 1)
    _save(fig, path)


def _si(v: float) -> str:
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def plot_sops_energy(path: Path, ctx: dict) -> None:
    import matplotlib.pyplot as plt

    st = ctx["stats"][ctx["default_schedule"]]
    names = [L["name"] for L in st["layers"]]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=110)
    _grouped(a1, names, {"ANN MACs": [L["macs"] for L in st["layers"]],
                         "SNN SOPs": [L["sops_per_sample"] for L in st["layers"]]},
             {"ann": COLORS["ann"], "snn": COLORS["snn"]}, log=True, fmt=_si)
    a1.set_title("Operations per sample")
    a1.legend(fontsize=8)
    _grouped(a2, names, {"ANN energy": [L["energy_ann_j"] for L in st["layers"]],
                         "SNN energy": [L["energy_snn_j"] for L in st["layers"]]},
             {"ann": COLORS["ann"], "snn": COLORS["snn"]}, log=True, fmt="{:.2e}")
    a2.set_ylabel("J per sample")
    a2.set_title(f"Energy per sample ({st['energy_model']}, {st['schedule']})")
    a2.legend(fontsize=8)
    _save(fig, path)


def _raster_selection(sizes: list[int], limit: int) -> list[np.ndarray]:
    """Evenly spaced neuron indices per population, at most ``limit`` in all (at least one each)."""
    total = sum(sizes)
    if total <= limit:
        return [np.arange(n) for n in sizes]
    out = []
    for n in sizes:
        k = max(1, min(n, int(round(limit * n / total))))
        out.append(np.unique(np.linspace(0, n - 1, k).round().astype(int)))
    return out


def plot_raster(path: Path, ctx: dict) -> str:
    import matplotlib.pyplot as plt

    net, res = ctx["net"], ctx["raster"]
    T = net.timesteps
    pops = net.populations
    sel = _raster_selection([p.size for p in pops], MAX_RASTER_NEURONS)
    # a population's train has its own number of steps (mixed L: tau_p; docs/ir.md "Mixed levels")
    steps = {p.name: res.spikes[p.name].shape[0] for p in pops}
    t_max = max((res.phase.get(p.name, 0) * T + steps[p.name] for p in pops), default=T)
    rows, bounds, ticks, labels = [], [], [], []
    offset = 0
    for p, idx in zip(pops, sel):
        k = steps[p.name]
        tr = np.sign(res.spikes[p.name][:, 0].reshape(k, -1)[:, idx].T)  # (neurons, k); graded messages by sign
        t0 = res.phase.get(p.name, 0) * T
        block = np.zeros((len(idx), t_max), np.int8)   # -1: a negative spike or message (drawn red)
        block[:, t0:t0 + k] = tr
        rows.append(block)
        ticks.append(offset + len(idx) / 2 - 0.5)
        labels.append(f"{p.name}\n({len(idx)} of {p.size})" if len(idx) < p.size else f"{p.name}\n({p.size})")
        offset += len(idx)
        bounds.append(offset - 0.5)
    spk = np.concatenate(rows) if rows else np.zeros((1, t_max), np.int8)
    n_rows = spk.shape[0]
    f = -(-n_rows // RASTER_PIXEL_ROWS)  # rows per image row: the figure has ~500 pixel rows
    pos, neg = (spk > 0).astype(float), (spk < 0).astype(float)
    if f > 1:  # average groups of f neurons: grey = fraction of them spiking (no aliasing, crisp in time)
        pad = (-n_rows) % f
        pos, neg = (np.concatenate([a, np.zeros((pad, t_max))]).reshape(-1, f, t_max).mean(axis=1) for a in (pos, neg))
    # white background; positive spikes darken to black, negative spikes to red
    img = np.stack([1 - pos, 1 - pos - neg, 1 - pos - neg], axis=-1).clip(0, 1)
    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    ax.imshow(img, aspect="auto", interpolation="nearest",
              extent=(0.5, t_max + 0.5, img.shape[0] * f - 0.5, -0.5))
    for b in bounds[:-1]:
        ax.axhline(b, color="#d95f02", lw=1.6)
    ax.set_ylim(offset - 0.5, -0.5)
    ax.set_xlim(0.5, t_max + 0.5)
    ax.set_xticks(range(1, t_max + 1) if t_max <= 32 else np.linspace(1, t_max, 9).round().astype(int))
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("global timestep")
    ax.set_ylabel("neuron (stacked by population)")
    n_pos, n_neg = int(sum((r > 0).sum() for r in rows)), int(sum((r < 0).sum() for r in rows))
    ax.set_title(f"Spike raster, sample 0, {ctx.get('raster_schedule', 'pipelined')} schedule ({n_pos} spikes"
                 + (f", {n_neg} negative spikes in red)" if n_neg else ")"))
    _save(fig, path)
    shown, total = sum(len(i) for i in sel), sum(p.size for p in pops)
    note = (f"{total} neurons, all shown." if shown == total
            else f"{total} neurons; {shown} shown (evenly spaced within each population).")
    if f > 1:
        note += f" Each image row averages {f} neighbouring neurons: grey = the fraction of them spiking."
    return note


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------
