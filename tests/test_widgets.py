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


def test_live_explorer_builds_widgets_for_every_parameter():
    import ipywidgets as W

    box = dl.explorer(make, {"B": [0.5, 1.0, 2.0], "L": [4, 8, 16]}, mode="live", live={"L": [4, 8, 16, 32]})
    sliders = box.children[0].children
    assert isinstance(sliders[0], W.FloatSlider) and sliders[0].max == 2.0
    assert isinstance(sliders[1], W.SelectionSlider) and list(sliders[1].options) == [4, 8, 16, 32]


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
