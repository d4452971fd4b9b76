"""Explorers: one function owns both renderings of every interactive figure in the book.

``explorer(make_figure, grid)`` takes a function that draws one plotly figure for one choice of
parameters (``B``, ``d``, ``L``, ``n``, ``t`` ...) and

* in the **static book** evaluates it on the whole ``grid`` and returns a single plotly figure with one
  slider per parameter; a few lines of JavaScript combine the sliders' positions and redraw with the
  precomputed figure, so the sliders work in plain HTML with no kernel;
* in a **live kernel** (JupyterLab) returns ipywidgets controls that call ``make_figure`` on every move: by
  default exactly the grid values, or every step of a :class:`LiveRange` where the figure function computes any value.

Because both renderings call the same ``make_figure``, they cannot drift apart. Used by every chapter.
"""
from __future__ import annotations

import itertools
import json
import math
import numbers
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from .figures import figure_html, is_static

__all__ = ["explorer", "LiveRange", "StaticExplorer", "check_live", "ExplorerCheckError", "MAX_COMBINATIONS"]

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
        if not isinstance(figure, go.Figure):
            raise TypeError(f"figure must be a plotly Figure, got {type(figure).__name__}")
        if not isinstance(combos, dict):
            raise TypeError(f"combos must be a dict of precomputed figures, got {type(combos).__name__}")
        if not isinstance(state, list) or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0
                                                  for k in state):
            raise TypeError(f"state must be a list of slider positions (integers >= 0), got {state!r}")
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
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"grid[{name!r}] must be a list of values, got {values!r}")
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
    d = json.loads(pio.to_json(_checked(fig, name), validate=False))
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
        combos["_".join(map(str, idx))] = _fig_dict(make_figure(**params), params)
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


@dataclass(frozen=True)
class LiveRange:
    """A continuous live control: the figure function computes the figure for **any** value it reaches.

    Use it in ``explorer(..., live={"B": LiveRange(0.25, 3.0, 0.05)})`` only when ``make_figure`` can compute
    every value of ``[min, max]`` on the step grid (every chapter's B, d, L, t explorers). The values the
    function receives are clean numbers on that grid (``1.05``, never ``1.0500000000000003``): integers when
    ``min``, ``max`` and ``step`` are all integers, otherwise floats rounded to the step's decimals (linear) or
    to two significant digits (``log=True``, where ``step`` is in decades, like ipywidgets' FloatLogSlider).

    Parameters
    ----------
    min, max : float
        The range; ``min < max`` (and ``min > 0`` for ``log=True``).
    step : float
        Spacing of the reachable values (in decades when ``log=True``); positive.
    log : bool
        A logarithmic slider.
    """

    min: float
    max: float
    step: float
    log: bool = False

    def __post_init__(self):
        for name in ("min", "max", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise TypeError(f"LiveRange {name} must be a finite number, got {v!r}")
        if not self.min < self.max:
            raise ValueError(f"LiveRange needs min < max, got min={self.min!r}, max={self.max!r}")
        if not self.step > 0:
            raise ValueError(f"LiveRange step must be > 0, got {self.step!r}")
        if self.log and self.min <= 0:
            raise ValueError(f"LiveRange with log=True needs min > 0, got {self.min!r}")
        if not isinstance(self.log, bool):
            raise TypeError(f"LiveRange log must be True or False, got {self.log!r}")

    @property
    def integer(self) -> bool:
        return not self.log and all(isinstance(v, numbers.Integral) for v in (self.min, self.max, self.step))

    def _span(self) -> tuple[float, float]:
        return (math.log10(self.min), math.log10(self.max)) if self.log else (self.min, self.max)

    def positions(self) -> int:
        """How many values the slider reaches."""
        lo, hi = self._span()
        return int(math.floor((hi - lo) / self.step + 1e-9)) + 1

    def raw(self, k: int) -> float:
        """The k-th reachable value as a slider computes it (with its float noise)."""
        n = self.positions()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < n:
            raise ValueError(f"k must be an integer in [0, {n - 1}], got {k!r}")
        lo, _ = self._span()
        return 10 ** (lo + k * self.step) if self.log else lo + k * self.step

    def clean(self, value: Any):
        """``value`` as the clean number the figure function receives."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise TypeError(f"value must be a finite number, got {value!r}")
        v = float(value)
        if self.integer:
            return int(round(v))
        if self.log:
            return float(f"{v:.2g}")
        decimals = max(_decimals(self.min), _decimals(self.step))
        return round(v, decimals)

    def stops(self, count: int) -> list:
        """``count`` clean values spread over the range, both ends included (all values when there are fewer)."""
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 2:
            raise ValueError(f"count must be an integer >= 2, got {count!r}")
        n = self.positions()
        ks = range(n) if n <= count else sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})
        return list(dict.fromkeys(self.clean(self.raw(k)) for k in ks))


def _decimals(x: float) -> int:
    """Decimals needed to write ``x`` exactly as typed (0.05 -> 2, 1e-3 -> 3, 2.0 -> 0)."""
    exp = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exp))


class _Control:
    """One parameter's live control: either exactly a list of options, or a :class:`LiveRange`."""

    def __init__(self, name: str, default: Any, options: list | None = None, rng: LiveRange | None = None):
        self.name, self.default, self.options, self.range = name, default, options, rng

    @property
    def computes(self) -> bool:
        return self.range is not None

    def describe(self) -> str:
        if self.range is None:
            return f"{self.name}: options {[_label(v) for v in self.options]}"
        r = self.range
        kind = "log " if r.log else ""
        return f"{self.name}: {kind}range {_label(r.min)}..{_label(r.max)} step {_label(r.step)}"

    def clean(self, value: Any):
        return value if self.range is None else self.range.clean(value)

    def reachable(self, stops: int) -> list:
        """Every option, or ``stops`` values across the range."""
        return list(self.options) if self.range is None else self.range.stops(stops)

    def first(self, initial: Any):
        if self.range is None:
            return initial if initial in self.options else self.options[0]
        r = self.range
        lo, hi = r._span()
        x = math.log10(initial) if r.log else initial
        k = min(max(round((x - lo) / r.step), 0), r.positions() - 1)
        return r.clean(r.raw(k))

    def widget(self, initial: Any):
        import ipywidgets as W

        kw = dict(description=self.name, continuous_update=False, style={"description_width": "initial"})
        value = self.first(initial)
        if self.range is None:
            return W.SelectionSlider(options=[(_label(v), v) for v in self.options], value=value, **kw)
        r = self.range
        if r.integer:
            return W.IntSlider(min=r.min, max=r.min + (r.positions() - 1) * r.step, step=r.step, value=value, **kw)
        if r.log:
            lo, hi = r._span()
            return W.FloatLogSlider(min=lo, max=hi, step=r.step, base=10, value=value, readout_format=".2g", **kw)
        decimals = max(_decimals(r.min), _decimals(r.step))
        return W.FloatSlider(min=r.min, max=r.max, step=r.step, value=value, readout_format=f".{decimals}f", **kw)


def _validated(grid, live, initial) -> tuple[dict[str, list], dict[str, _Control]]:
    """The checked grid and the live controls, or a TypeError/ValueError naming the bad argument."""
    for arg, value in (("live", live), ("initial", initial)):
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{arg} must be a dict keyed by parameter name, got {type(value).__name__}")
    checked = _as_grid(grid)
    controls = _controls(checked, live)
    for n, v in (initial or {}).items():
        if n not in checked or v not in checked[n]:
            raise ValueError(f"initial[{n!r}] must be one of the grid values {checked.get(n)}, got {v!r}")
    return checked, controls


def _controls(grid: dict[str, list], live: Mapping[str, Any] | None) -> dict[str, _Control]:
    live = dict(live or {})
    unknown = set(live) - set(grid)
    if unknown:
        raise ValueError(f"live names parameters not in grid: {sorted(unknown)}; allowed: {list(grid)}")
    controls = {}
    for name, values in grid.items():
        spec = live.get(name)
        if isinstance(spec, tuple) and len(spec) == 3:
            spec = LiveRange(*spec)
        if spec is None:                       # default: exactly the precomputed values
            controls[name] = _Control(name, values[0], options=values)
        elif isinstance(spec, LiveRange):
            bad = [v for v in values if not isinstance(v, numbers.Real) or not spec.min <= v <= spec.max]
            if bad:
                raise ValueError(f"live[{name!r}] = {spec} must contain every grid value; outside it: {bad}")
            controls[name] = _Control(name, values[0], rng=spec)
        elif isinstance(spec, (list, range)) and len(spec) > 0:
            controls[name] = _Control(name, values[0], options=list(spec))
        else:
            raise TypeError(f"live[{name!r}] must be a LiveRange, a (min, max, step) tuple or a non-empty list of "
                            f"options, got {spec!r}")
    return controls


class LiveExplorer:
    """The live rendering: one ipywidgets control per parameter, redrawing ``make_figure`` on every move.

    Attributes
    ----------
    controls : dict[str, ipywidgets.Widget]
        The widgets (SelectionSlider for fixed options, Int/Float/FloatLogSlider for a :class:`LiveRange`).
    widget : ipywidgets.VBox
        Controls above the output area; displaying the explorer displays this.
    """

    def __init__(self, make_figure: Callable[..., go.Figure], controls: dict[str, _Control],
                 initial: Mapping[str, Any] | None = None, *, wire: bool = True):
        import ipywidgets as W

        self.make_figure, self._controls = make_figure, controls
        initial = dict(initial or {})
        self.controls = {n: c.widget(initial.get(n, c.default))
                         for n, c in controls.items()}
        self.output = W.Output()
        if wire:                                  # check_live drives the controls without drawing
            W.interactive_output(self.redraw, self.controls)
        self.widget = W.VBox([W.HBox(list(self.controls.values())), self.output])

    def figure(self, **params) -> go.Figure:
        """The figure for these control values, cleaned exactly as a slider move delivers them."""
        clean = {n: self._controls[n].clean(v) for n, v in params.items()}
        return _checked(self.make_figure(**clean), clean)

    def redraw(self, **params) -> None:
        from IPython.display import display

        with self.output:
            self.output.clear_output(wait=True)
            display(self.figure(**params))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _checked(fig: Any, params: Mapping) -> go.Figure:
    if not isinstance(fig, go.Figure):
        raise TypeError(f"make_figure must return a plotly Figure, got {type(fig).__name__} for {params}")
    return fig


def live_explorer(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence],
                  live: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None) -> LiveExplorer:
    """ipywidgets controls that redraw ``make_figure`` (JupyterLab; every chapter). See :func:`explorer`."""
    return LiveExplorer(make_figure, _validated(grid, live, initial)[1], initial)


class ExplorerCheckError(AssertionError):
    """A live control reaches a value whose figure fails, or a control never changes the figure."""


def check_live(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence], *,
               live: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None,
               stops: int = 12) -> dict:
    """Drive every live control of an explorer through every value it can reach (tests of every chapter).

    Builds the live rendering of :func:`explorer` and, for each control in turn, the others held at their initial
    values, sets the widget to each reachable value (every option; ``stops`` values spread over a
    :class:`LiveRange`) and draws the figure exactly as a slider move does. Used by the live-rendering test
    (``DIT_LIVE_CHECK``, see :func:`explorer`).

    Returns
    -------
    dict
        ``{"name", "controls": [{"name", "computes", "describe", "values", "distinct", "errors"}],
        "redraw_s": [seconds per figure, figure built and serialised], "failures": [str]}``.
    """
    if not callable(make_figure):
        raise TypeError(f"make_figure must be callable, got {type(make_figure).__name__}")
    if isinstance(stops, bool) or not isinstance(stops, numbers.Integral) or stops < 2:
        raise ValueError(f"stops must be an integer >= 2, got {stops!r}")
    _, ctrls = _validated(grid, live, initial)
    ex = LiveExplorer(make_figure, ctrls, initial, wire=False)
    held = {n: w.value for n, w in ex.controls.items()}
    report = {"name": getattr(make_figure, "__name__", repr(make_figure)), "controls": [], "redraw_s": [],
              "failures": []}
    for name, ctrl in ctrls.items():
        seen, errors, values = set(), [], ctrl.reachable(stops)
        for v in values:
            params = dict(held)
            try:
                ex.controls[name].value = v
                params[name] = ex.controls[name].value
                t0 = time.perf_counter()
                fig_json = pio.to_json(ex.figure(**params), validate=False)
                report["redraw_s"].append(time.perf_counter() - t0)
                seen.add(fig_json)
            except Exception as err:  # noqa: BLE001 - every failure is reported with its value
                errors.append(f"{name}={v!r}: {type(err).__name__}: {err}")
        ex.controls[name].value = held[name]
        report["controls"].append({"name": name, "computes": ctrl.computes, "describe": ctrl.describe(),
                                   "values": [_label(v) for v in values], "distinct": len(seen), "errors": errors})
        report["failures"] += errors
        if not errors and len(seen) < 2:
            report["failures"].append(f"{name}: the figure never changes over {[_label(v) for v in values]}")
    return report


def _record_live_check(make_figure, grid, live, initial) -> None:
    """Under ``DIT_LIVE_CHECK=DIR`` (make test): check the explorer's live controls and write a JSON record."""
    folder = os.environ.get("DIT_LIVE_CHECK", "")
    if not folder:
        return
    report = check_live(make_figure, grid, live=live, initial=initial)
    report["notebook"] = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[0] or os.getcwd()
    _RECORDED.append(report)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{os.getpid()}-{len(_RECORDED)}-{report['name'].strip('<>')}.json")
    with open(path, "w") as fh:
        json.dump(report, fh, indent=1)
    if report["failures"]:
        raise ExplorerCheckError(f"live explorer {report['name']}: " + "; ".join(report["failures"]))


_RECORDED: list[dict] = []


def explorer(make_figure: Callable[..., go.Figure], grid: Mapping[str, Sequence], *,
             live: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None,
             mode: str | None = None):
    """An interactive figure over parameters such as ``B``, ``d``, ``L``, in the rendering that works here.

    Every chapter. In the static book (``DIT_BOOK_BUILD=1``) returns a :class:`StaticExplorer`, a plotly
    figure with one slider per parameter over the precomputed ``grid``; in JupyterLab returns a
    :class:`LiveExplorer`, ipywidgets controls that call ``make_figure`` on every move.

    The contract for chapter authors (what the live controls may reach):

    * **By default a live control offers exactly the grid values** (a SelectionSlider), so a figure function
      that looks its data up in a dict precomputed on the grid works for every value the control reaches.
    * Where the kernel can compute the figure for any value (B, d, L, t, n in most explorers), say so with
      ``live={"B": LiveRange(0.25, 3.0, 0.05)}`` (or the ``(min, max, step)`` shorthand): the slider then
      reaches every step of the range, and ``make_figure`` must compute the figure for each of them (look up
      precomputed data when the value is on the grid if you like, compute otherwise). The value arrives
      clean (``1.05``, not ``1.0500000000000003``); format it with ``:g`` in titles.
    * ``live={"L": [16, 64, 256, 1024]}`` offers exactly those options (they may extend the grid).

    ``make test`` holds every explorer to this: with ``DIT_LIVE_CHECK=DIR`` set, each call also runs
    :func:`check_live` (every option, a dozen stops across each range, the other controls held), writes a JSON
    record to ``DIR`` and raises :class:`ExplorerCheckError` when a value fails or a control never changes the figure.

    Parameters
    ----------
    make_figure : callable
        ``make_figure(**params) -> plotly.graph_objects.Figure``, one figure per choice of parameters.
    grid : dict[str, sequence]
        Parameter name to the values precomputed for the static book (at most
        :data:`MAX_COMBINATIONS` combinations in all); by default also exactly the live options.
    live : dict, optional
        Per parameter, the live control: a :class:`LiveRange` (or ``(min, max, step)``) containing every grid
        value, where ``make_figure`` computes any value; or a list of options.
    initial : dict, optional
        Starting values (each must be in ``grid``).
    mode : {"static", "live"}, optional
        Force a rendering; by default :func:`dit_lib.figures.is_static` decides.

    Raises
    ------
    TypeError, ValueError
        For an empty or oversized grid, a ``make_figure`` that does not return a Figure, unknown names or a
        live range that leaves out a grid value.
    ExplorerCheckError
        Under ``DIT_LIVE_CHECK`` only, when a live control fails or never changes the figure.
    """
    if not callable(make_figure):
        raise TypeError(f"make_figure must be callable, got {type(make_figure).__name__}")
    if mode is None:
        mode = "static" if is_static() else "live"
    if mode not in ("static", "live"):
        raise ValueError(f"mode must be 'static' or 'live', got {mode!r}")
    checked, _ = _validated(grid, live, initial)   # a bad live spec fails in both renderings
    _record_live_check(make_figure, checked, live, initial)
    if mode == "static":
        return static_explorer(make_figure, checked, initial)
    return live_explorer(make_figure, checked, live, initial)
