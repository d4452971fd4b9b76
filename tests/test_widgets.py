"""Unit tests of the explorers (dit_lib.widgets) and plotting set-up (dit_lib.figures)."""
import json

import numpy as np
import plotly.graph_objects as go
import pytest

import dit_lib as dl
from dit_lib import figures, widgets


def make(B, L):
    return go.Figure(go.Scatter(x=[0, 1], y=[B, B * L]), layout=dict(title=f"B={B}, L={L}"))


def test_static_explorer_precomputes_every_combination():
    ex = dl.explorer(make, {"B": [0.5, 1.0, 2.0], "L": [4, 16]}, mode="static", initial={"B": 1.0})
    assert isinstance(ex, widgets.StaticExplorer)
    assert len(ex.combos) == 6 and ex.state == [1, 0]
    assert ex.combos["2_1"]["data"][0]["y"] == [2.0, 32.0]
    assert ex.combos["2_1"]["layout"]["title"]["text"] == "B=2.0, L=16"
    sliders = ex.figure.layout.sliders
    assert [s.currentvalue.prefix for s in sliders] == ["B = ", "L = "]
    assert [st.label for st in sliders[0].steps] == ["0.5", "1", "2"]
    assert sliders[0].active == 1
    # the initial figure is the figure for the initial choice
    assert list(ex.figure.data[0].y) == [1.0, 4.0]


def test_static_explorer_html_uses_page_plotly_and_wires_sliders():
    html = dl.explorer(make, {"B": [1, 2], "L": [3]}, mode="static").to_html()
    assert "plotly_sliderchange" in html and "Plotly.react" in html
    assert "<script src=" not in html  # plotly.js is not inlined: the page serves it once
    start = html.index("var combos = ") + len("var combos = ")
    combos = json.loads(html[start:html.index(";\nvar state")].replace("<\\/", "</"))
    assert set(combos) == {"0_0", "1_0"}


def test_live_controls_offer_exactly_the_grid_unless_a_range_is_declared():
    import ipywidgets as W

    grid = {"B": [0.5, 0.56875, 1.0], "L": [4, 8, 16]}
    ex = dl.explorer(make, grid, mode="live", live={"L": [4, 8, 16, 32]})
    assert isinstance(ex, widgets.LiveExplorer)
    B, L = ex.controls["B"], ex.controls["L"]
    # unevenly spaced decimals: a slider over exactly those values, never a continuous one
    assert isinstance(B, W.SelectionSlider) and [v for _, v in B.options] == grid["B"]
    assert isinstance(L, W.SelectionSlider) and [v for _, v in L.options] == [4, 8, 16, 32]
    ex = dl.explorer(make, grid, mode="live", live={"B": dl.LiveRange(0.25, 3.0, 0.05), "L": (4, 64, 4)},
                     initial={"B": 1.0})
    assert isinstance(ex.controls["B"], W.FloatSlider) and ex.controls["B"].value == 1.0
    assert isinstance(ex.controls["L"], W.IntSlider) and ex.controls["L"].max == 64
    log = dl.explorer(make, grid, mode="live", live={"B": dl.LiveRange(0.01, 3.0, 0.1, log=True)})
    assert isinstance(log.controls["B"], W.FloatLogSlider)


def test_live_values_arrive_clean():
    seen = []

    def rec(B, L):
        seen.append((B, L))
        return make(B, L)

    ex = dl.explorer(rec, {"B": [0.5, 1.0], "L": [4, 8]}, mode="live", live={"B": (0.5, 3.0, 0.05)})
    fig = ex.figure(B=0.5 + 23 * 0.05, L=4)          # what a slider delivers: 1.6500000000000001
    assert seen[-1] == (1.65, 4) and fig.layout.title.text == "B=1.65, L=4"
    r = dl.LiveRange(0.001, 3.0, 0.05, log=True)
    assert all(float(f"{v:.2g}") == v for v in r.stops(12)) and r.stops(12)[0] == 0.001
    assert dl.LiveRange(8, 128, 8).stops(100) == list(range(8, 129, 8))


def test_check_live_finds_a_lookup_that_a_slider_overruns():
    table = {B: 2 * B for B in [0.5, 0.56875, 0.6375]}

    def lookup(B, L):
        return make(table[B], L)

    assert widgets.check_live(lookup, {"B": list(table), "L": [4, 8]})["failures"] == []
    report = widgets.check_live(lookup, {"B": list(table), "L": [4, 8]}, live={"B": (0.5, 1.0, 0.06875)})
    assert report["failures"] and all("KeyError" in f for f in report["failures"])
    assert report["controls"][0]["computes"] and len(report["controls"][0]["values"]) == 8


def test_check_live_finds_a_control_that_changes_nothing():
    report = widgets.check_live(lambda B, L: make(B, 1), {"B": [1, 2], "L": [4, 8]})
    assert report["failures"] == ["L: the figure never changes over ['4', '8']"]
    assert [c["distinct"] for c in report["controls"]] == [2, 1]


def test_live_check_under_make_test_records_and_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("DIT_LIVE_CHECK", str(tmp_path))
    dl.explorer(make, {"B": [1, 2], "L": [4, 8]}, mode="static", live={"B": (1, 10, 1)})
    (rec,) = [json.loads(f.read_text()) for f in tmp_path.glob("*.json")]
    assert rec["name"] == "make" and rec["failures"] == [] and len(rec["controls"][0]["values"]) == 10
    with pytest.raises(widgets.ExplorerCheckError, match="never changes"):
        dl.explorer(lambda B, L: make(B, 1), {"B": [1, 2], "L": [4, 8]}, mode="static")


def test_live_range_and_check_reject_bad_input():
    with pytest.raises(ValueError, match="min < max"):
        dl.LiveRange(3, 1, 1)
    with pytest.raises(ValueError, match="step"):
        dl.LiveRange(0, 1, 0)
    with pytest.raises(ValueError, match="min > 0"):
        dl.LiveRange(0, 1, 0.1, log=True)
    with pytest.raises(TypeError, match="finite number"):
        dl.LiveRange("0", 1, 0.1)
    with pytest.raises(ValueError, match="every grid value"):
        dl.explorer(make, {"B": [1, 5], "L": [2]}, mode="static", live={"B": (0, 3, 1)})
    with pytest.raises(TypeError, match="LiveRange"):
        dl.explorer(make, {"B": [1], "L": [2]}, mode="live", live={"B": "fast"})
    with pytest.raises(ValueError, match="stops"):
        widgets.check_live(make, {"B": [1], "L": [2]}, stops=1)
    with pytest.raises(TypeError, match="make_figure"):
        widgets.check_live(None, {"B": [1]})


def test_mode_follows_environment(monkeypatch):
    monkeypatch.setenv("DIT_BOOK_BUILD", "1")
    assert figures.is_static() and isinstance(dl.explorer(make, {"B": [1], "L": [2]}), widgets.StaticExplorer)
    monkeypatch.setenv("DIT_BOOK_BUILD", "0")
    assert not figures.is_static()


def test_explorer_rejects_bad_input():
    with pytest.raises(TypeError, match="make_figure"):
        dl.explorer(3, {"B": [1]})
    with pytest.raises(TypeError, match="grid"):
        dl.explorer(make, {}, mode="static")
    with pytest.raises(ValueError, match="at least one"):
        dl.explorer(make, {"B": [], "L": [1]}, mode="static")
    with pytest.raises(ValueError, match="combinations"):
        dl.explorer(make, {"B": list(range(30)), "L": list(range(30))}, mode="static")
    with pytest.raises(ValueError, match="initial"):
        dl.explorer(make, {"B": [1], "L": [2]}, mode="static", initial={"B": 5})
    with pytest.raises(ValueError, match="mode"):
        dl.explorer(make, {"B": [1], "L": [2]}, mode="pdf")
    with pytest.raises(TypeError, match="Figure"):
        dl.explorer(lambda B: 1, {"B": [1]}, mode="static")
    with pytest.raises(ValueError, match="not in grid"):
        dl.explorer(make, {"B": [1], "L": [2]}, mode="live", live={"d": [1]})


def test_book_renderer_writes_html_without_plotlyjs(monkeypatch):
    monkeypatch.setenv("DIT_BOOK_BUILD", "1")
    assert dl.setup_notebook() == "static"
    bundle = figures.pio.renderers[figures.BOOK_RENDERER].to_mimebundle(make(1, 2).to_dict())
    assert "Plotly.newPlot" in bundle["text/html"] and "<script src=" not in bundle["text/html"]
    with pytest.raises(TypeError):
        figures.figure_html({"data": []})


def test_line_and_patch_figures():
    fig = figures.line_figure([1, 2, 3], {"a": [1, 2, 3], "b": [3, 2, 1]}, log_x=True)
    assert len(fig.data) == 2 and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="shape"):
        figures.line_figure([1, 2], {"a": [1, 2, 3]})
    pf = figures.patch_figure(np.arange(16.0), 2)
    np.testing.assert_array_equal(np.asarray(pf.data[1].z), dl.patchify(np.arange(16.0), 2))
    with pytest.raises(ValueError, match="one latent"):
        figures.patch_figure(np.zeros((2, 16)), 2)
