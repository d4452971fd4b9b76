"""Plotly set-up and small plotting helpers shared by every chapter.

Two renderings exist (see the "Interactivity" section of the README):

* **static** — inside the book build and nbmake (``DIT_BOOK_BUILD=1``, set by the book's Sphinx extension
  and by the Makefile): figures are written as HTML that calls the page's one copy of ``plotly.js``;
* **live** — in JupyterLab: plotly's own JupyterLab renderer, and explorers become ipywidgets.

Used by every chapter through :func:`setup_notebook`.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_array, check_bool, check_int
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

__all__ = ["is_static", "setup_notebook", "figure_html", "BOOK_RENDERER", "PALETTE", "line_figure", "patch_figure"]

BOOK_RENDERER = "dit_book"
#: Colours used consistently across the book (colour-blind safe, Okabe–Ito).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
_CONFIG = {"displaylogo": False, "responsive": True}
#: The book's plotly template: ``plotly_white`` with every title placed below the mode bar (the toolbar plotly draws in
#: the top-right corner on hover), which otherwise covers the right end of a long title. The title is anchored to the
#: top of the figure, 32 px down, and ``automargin`` grows the top margin to fit it, whatever margin a figure sets;
#: explorers keep the template when their sliders redraw the figure.
BOOK_TEMPLATE = "dit_book"
_TITLE_BELOW_MODEBAR = dict(yref="container", y=1, yanchor="top", pad=dict(t=32, b=8), automargin=True)


def is_static() -> bool:
    """True when figures must render as static HTML (book build, nbmake), false in a live Jupyter session."""
    return os.environ.get("DIT_BOOK_BUILD", "") == "1"


def figure_html(fig: go.Figure, post_script: str | None = None) -> str:
    """A figure as an HTML fragment that uses the page's global ``Plotly`` (no plotly.js inlined)."""
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig must be a plotly.graph_objects.Figure, got {type(fig).__name__}")
    if post_script is not None and not isinstance(post_script, str):
        raise TypeError(f"post_script must be a str of JavaScript or None, got {type(post_script).__name__}")
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, config=_CONFIG,
                       post_script=post_script, validate=False)


class _BookRenderer(MimetypeRenderer):
    """Writes ``text/html`` that draws with the site-wide plotly.js the book serves once."""

    def to_mimebundle(self, fig_dict):
        return {"text/html": figure_html(go.Figure(fig_dict))}


pio.renderers[BOOK_RENDERER] = _BookRenderer()


def setup_notebook(seed_print: bool = True) -> str:
    """Configure plotly for the current rendering and return its name (``"static"`` or ``"live"``).

    Call once at the top of every chapter. In the book it selects the HTML renderer that uses the
    site-wide plotly.js; in JupyterLab it keeps plotly's own renderer so figures and widgets are live.
    In both it makes :data:`BOOK_TEMPLATE` the default plotly template (titles below the mode bar).
    It also makes numpy scalars print as plain numbers (``0.5``, not numpy 2's ``np.float64(0.5)``): myst-nb's
    ``glue`` stores a value's ``repr``, and ``{glue:text}`` with a format spec can only read a plain number.
    """
    seed_print = check_bool("seed_print", seed_print)
    if BOOK_TEMPLATE not in pio.templates:
        template = go.layout.Template(pio.templates["plotly_white"])
        template.layout.title.update(_TITLE_BELOW_MODEBAR)
        pio.templates[BOOK_TEMPLATE] = template
    pio.templates.default = BOOK_TEMPLATE
    np.set_printoptions(legacy="1.25")  # scalar reprs as plain numbers (glued values, printed lists)
    if seed_print:
        np.set_printoptions(precision=4, suppress=True)
    if is_static():
        pio.renderers.default = BOOK_RENDERER
        return "static"
    return "live"


def _check_labels(**labels: Any) -> None:
    for name, value in labels.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
        if name == "title" and value is None:
            raise TypeError("title must be a str, got None")


def _check_height(height: Any) -> int:
    return check_int("height", height, low=100, high=4000)


def line_figure(x, ys: dict, *, title: str = "", xaxis: str = "", yaxis: str = "", log_x: bool = False,
                log_y: bool = False, height: int = 380) -> go.Figure:
    """A line plot of several named curves over one x grid (any chapter).

    Parameters
    ----------
    x : array-like
        Shared x values.
    ys : dict[str, array-like]
        Curve name to y values, each the length of ``x``.
    """
    x = check_array("x", x, ndim=1)
    if not isinstance(ys, dict) or not ys:
        raise TypeError("ys must be a non-empty dict mapping a curve name to its y values")
    _check_labels(title=title, xaxis=xaxis, yaxis=yaxis)
    log_x, log_y = check_bool("log_x", log_x), check_bool("log_y", log_y)
    height = _check_height(height)
    if log_x and np.any(x <= 0):
        raise ValueError("log_x needs x > 0 (a log axis cannot show x <= 0)")
    fig = go.Figure()
    for k, (name, y) in enumerate(ys.items()):
        y = check_array(f"ys[{name!r}]", y, finite=False)  # NaN marks a missing point on purpose
        if y.shape != x.shape:
            raise ValueError(f"ys[{name!r}] must have the shape of x {x.shape}, got {y.shape}")
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers",
                                 line=dict(color=PALETTE[k % len(PALETTE)])))
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(title=xaxis, type="log" if log_x else "linear")
    fig.update_yaxes(title=yaxis, type="log" if log_y else "linear")
    return fig


def patch_figure(h, p: int, *, title: str | None = None, height: int = 360) -> go.Figure:
    """A latent vector drawn as its ``i x i`` image cut into ``p x p`` patches, beside the ``d x L`` token matrix.

    Chapters 1 and 2: the reshape ``R`` of Definition 3.1 made visible. Patch ``l`` of the image is
    column ``l`` of the token matrix; both panels share one colour scale.
    """
    from plotly.subplots import make_subplots

    from .patches import patch_geometry, patchify

    h = check_array("h", h)
    if h.ndim != 1:
        raise ValueError(f"h must be one latent vector of shape (d0,), got shape {h.shape}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    height = _check_height(height)
    g = patch_geometry(h.size, p)
    X = patchify(h, p)
    img = h.reshape(g.i, g.i)
    lim = float(np.abs(h).max()) or 1.0
    fig = make_subplots(rows=1, cols=2, column_widths=[0.42, 0.58], horizontal_spacing=0.1,
                        subplot_titles=(f"latent image {g.i}×{g.i}, patches {p}×{p}",
                                        f"tokens R(h): d = {g.d} rows × L = {g.L} columns"))
    common = dict(colorscale="RdBu", zmin=-lim, zmax=lim)
    fig.add_trace(go.Heatmap(z=np.round(img, 3), showscale=False, **common), 1, 1)
    fig.add_trace(go.Heatmap(z=np.round(X, 3), colorbar=dict(len=0.8), **common), 1, 2)
    for k in range(0, g.i + 1, p):  # patch boundaries
        fig.add_shape(type="line", x0=k - 0.5, x1=k - 0.5, y0=-0.5, y1=g.i - 0.5, line=dict(width=2), row=1, col=1)
        fig.add_shape(type="line", y0=k - 0.5, y1=k - 0.5, x0=-0.5, x1=g.i - 0.5, line=dict(width=2), row=1, col=1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", row=1, col=1)
    fig.update_yaxes(autorange="reversed", title="pixel in patch", row=1, col=2)
    fig.update_xaxes(title="token (patch) index", row=1, col=2)
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=60, b=40),
                      title=title or f"d0 = {g.d0} = d·L = {g.d}·{g.L}")
    return fig
