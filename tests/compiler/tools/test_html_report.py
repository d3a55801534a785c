"""`snnc report`: a self-contained HTML page with its PNGs, written atomically."""

import re

import pytest

import snnc.compiler.tools.html_report as report
from snnc.compiler.api import compile_to_file
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.html_report import FIGURES, PLACEMENT_FIGURES, SECTIONS, ReportError, write_report
from snnc.ir import load_with_extras, save

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    p = tmp_path_factory.mktemp("bundle") / "digits.snnc"
    compile_to_file(DIGITS_MODEL, p, runner=reference_runner)
    return p


def _check_page(out):
    page = out / "index.html"
    assert page.is_file()
    text = page.read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text, title
    srcs = re.findall(r'<img src="([^"]+)"', text)
    assert set(FIGURES) <= set(srcs) <= set(FIGURES) | set(PLACEMENT_FIGURES) and len(srcs) == len(set(srcs))
    for s in srcs:
        png = out / s
        assert png.is_file() and png.stat().st_size > 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"https?://", text, re.I)  # readable offline: nothing fetched
    assert "<script" not in text.lower()
    return text


def test_report_digits(bundle, tmp_path):
    out = tmp_path / "rep"
    path = write_report(bundle, out, data=DIGITS_DATA, energy="qiao2015", samples=16)
    assert path == out / "index.html"
    text = _check_page(out)
    assert "16 samples" in text
    assert "qiao2015" in text and "Qiao et al. 2015" in text  # energy model and its source
    core = text.split("<h2>Core utilization</h2>")[1].split("</section>")[0]
    assert "Not placed" not in core and "cores used on 1 chip(s)" in core and 'src="cores.png"' in core
    assert (out / "cores.png").read_bytes()[:4] == b"\x89PNG" and "<td>conv2</td>" in core
    assert "examples/digits/qcfs_cnn.onnx" in text and "sha256" in text
    for layer in ("conv1", "conv2", "fc1", "readout"):
        assert f"<td>{layer}</td>" in text
    assert "SNN accuracy" in text and "n/a" not in text.split("<h2>Spike rates</h2>")[0].split("<h2>Accuracy</h2>")[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporary folder left over


def test_report_random_inputs_and_replace(bundle, tmp_path):
    out = tmp_path / "rep"
    write_report(bundle, out, samples=4)
    first = (out / "index.html").read_text()
    assert "random inputs" in first and "No labels" in first
    write_report(bundle, out, data=DIGITS_DATA, samples=4)  # a previous report is replaced
    assert "random inputs" not in (out / "index.html").read_text()
    _check_page(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_failure_leaves_nothing(bundle, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report, "plot_raster", boom)
    out = tmp_path / "rep"
    with pytest.raises(RuntimeError, match="plotting failed"):
        write_report(bundle, out, data=DIGITS_DATA, samples=4)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_report(bundle, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    write_report(bundle, out, data=DIGITS_DATA, samples=4)
    before = (out / "index.html").read_bytes()
    monkeypatch.setattr(report, "render_html", lambda ctx: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(bundle, out, data=DIGITS_DATA, samples=4)
    assert (out / "index.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_refuses_foreign_folder(bundle, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="not an snnc report"):
        write_report(bundle, out, samples=2)
    assert (out / "notes.txt").read_text() == "mine"
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        write_report(bundle, f, samples=2)


def test_placement_table(bundle, tmp_path):
    net, extras = load_with_extras(bundle)
    net.metadata["placement"] = {"chips": 1, "cores": [
        {"core": 0, "layer": "conv1", "neurons": 512, "synapses": 4000},
        {"core": 1, "layer": "conv2", "neurons": 1024, "synapses": 70000},
    ]}
    placed = tmp_path / "placed.snnc"
    save(net, placed, extras)
    out = tmp_path / "rep"
    text = _check_page(write_report(placed, out, samples=2).parent)
    core = text.split("<h2>Core utilization</h2>")[1].split("</section>")[0]
    assert "Not placed" not in core and "2 cores used" in core and "<td>conv2</td>" in core


def test_split_readouts_are_shown(bundle, tmp_path):
    """A placement with a readout split into partial accumulators (compiler/mapping/split.py) lists it,
    with what the host adds per output."""
    import importlib.util
    from pathlib import Path

    from snnc.compiler.mapping import map_network

    spec = importlib.util.spec_from_file_location(
        "_split_tests", Path(__file__).parents[1] / "mapping" / "test_split_readout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    placement = map_network(mod._net(), mod._tight())
    k = next(p["split"]["partials"] for p in placement["populations"] if p["name"] == "out")
    assert k > 1
    net, extras = load_with_extras(bundle)
    net.metadata["placement"] = placement
    placed = tmp_path / "split.snnc"
    save(net, placed, extras)
    text = _check_page(write_report(placed, tmp_path / "rep", samples=2).parent)
    core = text.split("<h2>Core utilization</h2>")[1].split("</section>")[0]
    assert "partial accumulators" in core and "<td>out</td>" in core and f"{k} values" in core


def test_report_of_a_mixed_levels_network(tmp_path):
    """Layers with their own L run their own number of steps: the raster takes each train's length."""
    import onnx

    from snnc.compiler.api import compile_to_file
    from snnc_testutil import make_mlp_onnx

    onnx.save(make_mlp_onnx(L=[8, 3]), tmp_path / "mix.onnx")
    bundle = tmp_path / "mix.snnc"
    net = compile_to_file(tmp_path / "mix.onnx", bundle, runner=reference_runner)
    assert net.mixed_steps
    text = _check_page(write_report(bundle, tmp_path / "rep", samples=2).parent)
    assert "raster" in text.lower()


def test_report_of_a_training_free_network(tmp_path):
    """Multi-threshold neurons run pipelined only and have no quantized ANN: the report runs the one
    schedule and measures against the embedded float ANN."""
    from snnc.compiler.config import CompileConfig
    from snnc_testutil import REPO

    digits = REPO / "examples" / "digits"
    bundle = tmp_path / "tf.snnc"
    compile_to_file(digits / "relu_maxpool_cnn.onnx", bundle, CompileConfig(
        neuron="multi-threshold", mt_n=4, coding="differential", timesteps=4,
        calibration_data=str(digits / "calib.npz"), schedule="pipelined"), runner=reference_runner)
    text = _check_page(write_report(bundle, tmp_path / "rep", data=DIGITS_DATA, samples=24).parent)
    acc = text.split("<h2>Accuracy</h2>")[1].split("</section>")[0]
    assert "float ANN accuracy" in acc and "integer ANN" not in acc
    assert "the only one this network runs in" in text
    err = text.split("<h2>Conversion error</h2>")[1].split("</section>")[0]
    assert "ReLU it replaces" in err
