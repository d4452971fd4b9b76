"""Explorers: one function owns both renderings of every interactive figure in the book.

``explorer(make_figure, grid)`` takes a function that draws one plotly figure for one choice of
parameters (``B``, ``d``, ``L``, ``n``, ``t`` ...) and

* in the **static book** evaluates it on the whole ``grid`` and returns a single plotly figure with one
  slider per parameter; a few lines of JavaScript combine the sliders' positions and redraw with the
  precomputed figure, so the sliders work in plain HTML with no kernel;
* in a **live kernel** (JupyterLab) returns ipywidgets sliders that call ``make_figure`` again for any value.

Because both renderings call the same ``make_figure``, they cannot drift apart. Used by every chapter.
"""
from __future__ import annotations

import itertools
import json
import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from .figures import figure_html, is_static

__all__ = ["explorer", "StaticExplorer", "MAX_COMBINATIONS"]

#: Upper bound on the precomputed grid (product of slider lengths) of one static explorer.
MAX_COMBINATIONS = 400

# Runs after Plotly.newPlot; '{plot_id}' is replaced by plotly. COMBOS and STATE are filled in below.
_JS = """
var gd = document.getElementById('{plot_id}');
var combos = __COMBOS__;
var state = __STATE__;
var base = JSON.parse(JSON.stringify(gd.layout.sliders));
var template = gd.layout.template;
gd.setAttribute('data-explorer-state', state.join('_'));
gd.on('plotly_sliderchange', function (e) {
  var fl = gd._fullLayout.sliders || [];
  var si = (e.slider && e.slider._index !== undefined) ? e.slider._index : fl.indexOf(e.slider);
  var k = (e.step && e.step._index !== undefined) ? e.step._index : e.slider.steps.indexOf(e.step);
  if (si < 0 || k < 0 || state[si] === k) { return; }
  state[si] = k;
  var c = combos[state.join('_')];
  var layout = Object.assign({}, c.layout, {template: template, sliders: base.map(function (s, i) {
    return Object.assign({}, s, {active: state[i]}); })});
  gd.setAttribute('data-explorer-state', state.join('_'));
  setTimeout(function () { Plotly.react(gd, c.data, layout); }, 0);
});
"""


class StaticExplorer:
    """A precomputed explorer: a plotly figure with sliders that works in static HTML.

    Attributes
    ----------
    figure : plotly.graph_objects.Figure
        The initial figure, with one slider per parameter.
    combos : dict[str, dict]
        ``"i_j_k"`` (indices into the grid) to the figure's ``{"data", "layout"}`` for that choice.
    """

    def __init__(self, figure: go.Figure, combos: dict[str, dict], state: list[int]):
        self.figure = figure
        self.combos = combos
        self.state = state

    def to_html(self) -> str:
        """The HTML fragment (no plotly.js inside; the page provides it)."""
        payload = json.dumps(self.combos, separators=(",", ":")).replace("</", "<\\/")
        js = _JS.replace("__COMBOS__", payload).replace("__STATE__", json.dumps(self.state))
        return figure_html(self.figure, post_script=js)

    def _repr_html_(self) -> str:
        return self.to_html()


def _as_grid(grid: Mapping[str, Sequence]) -> dict[str, list]:
    if not isinstance(grid, Mapping) or not grid:
        raise TypeError("grid must be a non-empty dict mapping a parameter name to its list of values")
    out = {}
    for name, values in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid keys must be parameter names (str), got {name!r}")
        vals = list(values)
        if not vals:
            raise ValueError(f"grid[{name!r}] must list at least one value")
        out[name] = vals
    total = math.prod(len(v) for v in out.values())
    if total > MAX_COMBINATIONS:
        raise ValueError(f"grid has {total} combinations; at most {MAX_COMBINATIONS} are precomputed "
                         "for the static book (use fewer values per slider)")
    return out


def _label(v: Any) -> str:
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral):
        return f"{float(v):g}"
    return str(v)


def _fig_dict(fig: Any, name: str) -> dict:
    if not isinstance(fig, go.Figure):
        raise TypeError(f"make_figure must return a plotly Figure, got {type(fig).__name__} for {name}")
    d = json.loads(pio.to_json(fig, validate=False))
    d["layout"].pop("template", None)
    d["layout"].pop("sliders", None)
    return d


def static_explorer(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence],
                    initial: Mapping[str, Any] | None = None) -> StaticExplorer:
    """Evaluate ``make_figure`` on the whole grid and return a :class:`StaticExplorer` (every chapter)."""
    grid = _as_grid(grid)
    names = list(grid)
    state = []
    for name in names:
        if initial and name in initial:
            if initial[name] not in grid[name]:
                raise ValueError(f"initial[{name!r}] must be one of the grid values {grid[name]}, got {initial[name]!r}")
            state.append(grid[name].index(initial[name]))
        else:
            state.append(0)
    combos = {}
    for idx in itertools.product(*(range(len(grid[n])) for n in names)):
        params = {n: grid[n][i] for n, i in zip(names, idx)}
        combos["_".join(map(str, idx))] = _fig_dict(make_figure(**params), repr(params))
    first = make_figure(**{n: grid[n][i] for n, i in zip(names, state)})
    first = go.Figure(first)
    # Sliders sit below the plot area, 80 px apart; positions are in paper units, so convert.
    step_px, top_px = 80, 55
    height = (first.layout.height or 420) + step_px * len(names)
    margin = first.layout.margin.to_plotly_json() if first.layout.margin else {}
    margin.setdefault("t", 60)
    margin["b"] = top_px + step_px * len(names)
    plot_px = max(height - margin["t"] - margin["b"], 100)
    sliders = []
    for k, name in enumerate(names):
        sliders.append(dict(
            active=state[k], currentvalue=dict(prefix=f"{name} = ", font=dict(size=13)),
            pad=dict(t=0, b=0), len=0.9, x=0.05, y=-(top_px + step_px * k) / plot_px, yanchor="top",
            steps=[dict(label=_label(v), method="skip", args=[]) for v in grid[name]],
        ))
    first.update_layout(sliders=sliders, height=height, margin=margin)
    for d in combos.values():
        d["layout"]["height"] = height
        d["layout"]["margin"] = dict(d["layout"].get("margin", {}), t=margin["t"], b=margin["b"])
    return StaticExplorer(first, combos, state)


def _live_widget(name: str, values: list, spec: Any):
    import ipywidgets as W

    style = {"description_width": "initial"}
    if spec is not None:
        if isinstance(spec, W.Widget):
            return spec
        if isinstance(spec, tuple) and len(spec) == 3:
            lo, hi, step = spec
            cls = W.IntSlider if all(isinstance(s, numbers.Integral) for s in spec) else W.FloatSlider
            return cls(min=lo, max=hi, step=step, value=values[0] if lo <= values[0] <= hi else lo,
                       description=name, continuous_update=False, style=style)
        # An explicit list means exactly these options.
        options = list(spec)
        return W.SelectionSlider(options=options, value=options[0], description=name, continuous_update=False,
                                 style=style)
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values) and len(values) > 1:
        diffs = {b - a for a, b in zip(values, values[1:])}
        if len(diffs) == 1 and diffs.pop() > 0:
            return W.IntSlider(min=values[0], max=values[-1], step=values[1] - values[0], value=values[0],
                               description=name, continuous_update=False, style=style)
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values) and len(values) > 1 \
            and sorted(values) == values and not all(isinstance(v, numbers.Integral) for v in values):
        step = (values[-1] - values[0]) / 40
        return W.FloatSlider(min=values[0], max=values[-1], step=step, value=values[0], description=name,
                             continuous_update=False, style=style)
    return W.SelectionSlider(options=values, value=values[0], description=name, continuous_update=False, style=style)


def live_explorer(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence],
                  live: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None):
    """ipywidgets sliders that redraw ``make_figure`` for any value (JupyterLab; every chapter)."""
    import ipywidgets as W
    from IPython.display import display

    grid = {k: list(v) for k, v in grid.items()}
    live = dict(live or {})
    unknown = set(live) - set(grid)
    if unknown:
        raise ValueError(f"live names parameters not in grid: {sorted(unknown)}; allowed: {list(grid)}")
    controls = {n: _live_widget(n, grid[n], live.get(n)) for n in grid}
    for n, v in (initial or {}).items():
        if n in controls:
            controls[n].value = v
    out = W.Output()

    def redraw(**params):
        with out:
            out.clear_output(wait=True)
            display(make_figure(**params))

    W.interactive_output(redraw, controls)
    return W.VBox([W.HBox(list(controls.values())), out])


def explorer(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence], *,
             live: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None,
             mode: str | None = None):
    """An interactive figure over parameters such as ``B``, ``d``, ``L``, in the rendering that works here.

    Every chapter. In the static book (``DIT_BOOK_BUILD=1``) returns a :class:`StaticExplorer`, a plotly
    figure with one slider per parameter over the precomputed ``grid``; in JupyterLab returns ipywidgets
    sliders that call ``make_figure`` for any value. A reader never meets a slider that changes nothing.

    Parameters
    ----------
    make_figure : callable
        ``make_figure(**params) -> plotly.graph_objects.Figure``, one figure per choice of parameters.
    grid : dict[str, sequence]
        Parameter name to the values precomputed for the static book (at most
        :data:`MAX_COMBINATIONS` combinations in all). Also the default range of the live sliders.
    live : dict, optional
        Per parameter, a finer live control: a ``(min, max, step)`` tuple, a list of options, or a widget.
    initial : dict, optional
        Starting values (each must be in ``grid``).
    mode : {"static", "live"}, optional
        Force a rendering; by default :func:`dit_lib.figures.is_static` decides.

    Raises
    ------
    TypeError, ValueError
        For an empty or oversized grid, a ``make_figure`` that does not return a Figure, or unknown names.
    """
    if not callable(make_figure):
        raise TypeError(f"make_figure must be callable, got {type(make_figure).__name__}")
    if mode is None:
        mode = "static" if is_static() else "live"
    if mode not in ("static", "live"):
        raise ValueError(f"mode must be 'static' or 'live', got {mode!r}")
    if mode == "static":
        return static_explorer(make_figure, grid, initial)
    return live_explorer(make_figure, _as_grid(grid), live, initial)
