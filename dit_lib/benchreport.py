"""Figures and tables of the benchmark results that ``python -m dit_lib.bench`` writes (the benchmarks page).

The benchmarks of :mod:`dit_lib.bench` are too slow to run during a book build, so they write their records to
``bench_results/<name>.json`` (``python -m dit_lib.bench NAME --json bench_results/NAME.json``) and the book's
benchmarks page only *reads* those files. This module finds and validates a results file, and turns its records
into plotly figures (time against ``L`` on log-log axes, error, speed-up over the exact baseline), an explorer
specification for :func:`dit_lib.explorer`, and Markdown tables. It never runs a benchmark.

Every record carries ``L``, ``B``, ``method``, ``degree``, ``rank``, ``seconds`` and an error field
(``max_abs_error`` for the attention benchmark of chapter 4, ``rel_error`` for the gradient benchmark of
chapter 5); a speed-up is read from ``speedup_vs_sdpa`` / ``speedup`` when recorded, else computed against the
baseline method (``sdpa`` or ``autograd_sdpa``) at the same ``L``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._checks import check_array, check_choice, check_float, check_int
from .figures import PALETTE

__all__ = ["BENCHMARKS", "BenchResult", "results_dir", "result_path", "regenerate_command", "load_result",
           "missing_message", "variant_label", "loglog_slope", "overview_figure", "method_figure",
           "explorer_spec", "records_markdown", "crossover_markdown", "headline_markdown", "machine_summary"]

#: The benchmarks this page knows, with their exact baseline method and the chapter that explains them.
BENCHMARKS = {
    "attention": {"baseline": "sdpa", "chapter": 4},
    "gradient": {"baseline": "autograd_sdpa", "chapter": 5},
}
_ERROR_FIELDS = {"max_abs_error": "max abs error vs float64 exact",
                 "rel_error": "relative max error vs float64 exact"}
_ERROR_SHORT = {"max_abs_error": "max error", "rel_error": "rel. error"}
_SPEEDUP_FIELDS = ("speedup_vs_sdpa", "speedup")
#: How the attention benchmark's degree rules are labelled: an "oracle" degree was picked after measuring the error.
#: (Legends: "a-priori CS" is the a-priori Cauchy–Schwarz rule.)
RULE_LABELS = {"guaranteed": "guaranteed", "a_priori_cs": "a-priori CS", "oracle": "oracle, picked after measuring",
               "measured": "oracle, picked after measuring"}
#: Short names of the degree rules for the records table.
_RULE_SHORT = {"guaranteed": "guaranteed", "a_priori_cs": "a-priori CS", "oracle": "oracle", "measured": "oracle"}
#: One colour per degree rule, the same in the overview and in the explorer (poly and Performer share it: Performer
#: has the feature count of that rule's poly record); the exact baseline is drawn in the first colour of the palette.
RULE_COLORS = {"guaranteed": PALETTE[2], "a_priori_cs": PALETTE[1], "oracle": PALETTE[3], "measured": PALETTE[3]}
_OTHER_COLORS = [PALETTE[k] for k in (2, 4, 5, 1, 3, 6, 7)]      # curves without a degree rule (gradient benchmark)
#: Markers and line styles: a method other than poly is drawn dotted with diamonds; anything computed from SDPA's
#: *extrapolated* time (its own curve, and the speed-ups against it) dashed with open markers.
_SYMBOLS = {"poly": "circle", "lowrank": "circle"}
#: Legend layout: two entries per row, each row this many pixels; the title takes the top ``_TITLE_PX``.
_LEGEND_ROW_PX, _TITLE_PX, _LEGEND_ENTRY_PX = 22, 62, 290
_REQUIRED = ("L", "B", "method", "seconds")
#: Environment variable that overrides where results files are looked for.
ENV_DIR = "DIT_BENCH_RESULTS"


def regenerate_command(name: str) -> str:
    """The shell command (run from the repository root) that rewrites ``bench_results/<name>.json``."""
    check_choice("name", name, list(BENCHMARKS))
    return f"python -m dit_lib.bench {name} --json bench_results/{name}.json"


def results_dir(directory: str | os.PathLike | None = None) -> Path:
    """The folder holding the results files (benchmarks page).

    In order: ``directory`` if given; the environment variable ``DIT_BENCH_RESULTS``; the first folder named
    ``bench_results`` found in the current directory or one of its parents; ``bench_results`` in the
    repository that holds the installed :mod:`dit_lib` (the usual case for a book build, whose notebooks run
    in ``book/`` or in a scratch copy of it). The folder need not exist.
    """
    if directory is not None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path (str or os.PathLike) or None, got {type(directory).__name__}")
        return Path(directory)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "bench_results").is_dir():
            return folder / "bench_results"
    return Path(__file__).resolve().parents[1] / "bench_results"


def result_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Where the results file of benchmark ``name`` (``"attention"`` or ``"gradient"``) is expected."""
    check_choice("name", name, list(BENCHMARKS))
    return results_dir(directory) / f"{name}.json"


def missing_message(name: str, directory: str | os.PathLike | None = None) -> str | None:
    """``None`` if the results file of ``name`` exists, else a sentence naming the missing file and the fix."""
    path = result_path(name, directory)
    if path.is_file():
        return None
    return (f"The results file {path} (in directory {path.parent}) does not exist yet, so the {name} benchmark "
            f"cannot be shown. "
            f"Regenerate it from the repository root with: {regenerate_command(name)}")


@dataclass(frozen=True)
class BenchResult:
    """One validated results file of :mod:`dit_lib.bench` (benchmarks page).

    Attributes
    ----------
    name : str
        ``"attention"`` or ``"gradient"``.
    path : pathlib.Path
        The file it was read from.
    meta : dict
        The machine and configuration the benchmark recorded.
    records : list of dict
        One record per measurement (see the module docstring).
    crossover : list of dict
        The attention benchmark's crossover summary per ``L`` (empty for the gradient benchmark).
    """

    name: str
    path: Path
    meta: dict
    records: list
    crossover: list = field(default_factory=list)

    def __post_init__(self) -> None:
        check_choice("name", self.name, list(BENCHMARKS))
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"path must be a path (str or os.PathLike), got {type(self.path).__name__}")
        object.__setattr__(self, "path", Path(self.path))
        if not isinstance(self.meta, dict):
            raise TypeError(f"meta must be a dict, got {type(self.meta).__name__}")
        if not isinstance(self.records, list) or not self.records:
            raise ValueError(f"records of {self.path} must be a non-empty list of records")
        for i, rec in enumerate(self.records):
            missing = [k for k in _REQUIRED if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise ValueError(f"records[{i}] of {self.path} lacks the field(s) {missing}")
        if not any(r["method"] == self.baseline for r in self.records):
            raise ValueError(f"records of {self.path} hold no record of the baseline method {self.baseline!r}")
        if not isinstance(self.crossover, list):
            raise TypeError(f"crossover must be a list, got {type(self.crossover).__name__}")

    @property
    def baseline(self) -> str:
        """The exact method every other one is compared with."""
        return BENCHMARKS[self.name]["baseline"]

    @property
    def error_field(self) -> str:
        """The record field that holds the error (``max_abs_error`` or ``rel_error``)."""
        for key in _ERROR_FIELDS:
            if any(key in r for r in self.records):
                return key
        raise ValueError(f"{self.path}: no record has an error field ({', '.join(_ERROR_FIELDS)})")

    @property
    def error_label(self) -> str:
        """Axis title for the error field."""
        return _ERROR_FIELDS[self.error_field]

    @property
    def methods(self) -> list[str]:
        """The non-baseline methods, in order of first appearance."""
        return list(dict.fromkeys(r["method"] for r in self.records if r["method"] != self.baseline))

    @property
    def Bs(self) -> list[float]:
        """The entry bounds at which some non-baseline method was measured, sorted."""
        return sorted({float(r["B"]) for r in self.records if r["method"] != self.baseline})

    @property
    def main_B(self) -> float:
        """The entry bound at which the baseline was measured (the benchmark's main setting)."""
        Bs = [float(r["B"]) for r in self.records if r["method"] == self.baseline]
        return max(set(Bs), key=Bs.count) if Bs else self.Bs[0]


def load_result(name: str, directory: str | os.PathLike | None = None) -> BenchResult:
    """Read and validate ``bench_results/<name>.json`` (benchmarks page).

    Raises
    ------
    FileNotFoundError
        If the file does not exist; the message says how to regenerate it.
    ValueError
        If the file is not a results file of benchmark ``name`` (wrong ``benchmark`` field, no records, a record
        without ``L``, ``B``, ``method`` or ``seconds``, no baseline record).
    """
    path = result_path(name, directory)
    msg = missing_message(name, directory)
    if msg:
        raise FileNotFoundError(msg)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); regenerate it with: {regenerate_command(name)}") from exc
    if not isinstance(data, dict) or data.get("benchmark") != name:
        got = data.get("benchmark") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} must hold the results of benchmark {name!r}, got benchmark {got!r}")
    result = BenchResult(name, path, dict(data.get("meta") or {}), data.get("records"),
                         list(data.get("crossover") or []))
    result.error_field  # raises ValueError when no record has an error
    return result


def variant_label(record: dict) -> str:
    """A short label of a record's method and setting, e.g. ``"poly, g=5 (r=1287) [guaranteed]"``.

    Benchmarks page. The exact baseline reads ``"sdpa (exact)"``; a random-feature method ``"performer, M=9
    features"``; the attention benchmark's degree rule is added in brackets. On a Performer record the rule only says
    whose feature count it copies (``"performer, M=1287 [r of guaranteed]"``): Performer has no
    degree and no error guarantee.
    """
    if not isinstance(record, dict) or "method" not in record:
        raise TypeError(f"record must be a benchmark record (a dict with a 'method'), got {record!r:.80}")
    method = record["method"]
    rule = record.get("degree_rule")
    rule = RULE_LABELS.get(rule, rule) if rule else ""
    if record.get("degree") is not None:
        return f"{method}, g={record['degree']} (r={record['rank']})" + (f" [{rule}]" if rule else "")
    if record.get("rank") is not None:
        return f"{method}, M={record['rank']}" + (f" [r of {rule.split(',')[0]}]" if rule else " features")
    return f"{method} (exact, extrapolated)" if record.get("extrapolated") else f"{method} (exact)"


def _speedup(result: BenchResult, rec: dict) -> float | None:
    for key in _SPEEDUP_FIELDS:
        if rec.get(key) is not None:
            return float(rec[key])
    base = [r["seconds"] for r in result.records if r["method"] == result.baseline and r["L"] == rec["L"]]
    return float(base[0] / rec["seconds"]) if base else None


def loglog_slope(L: Any, seconds: Any) -> float:
    """Least-squares slope of ``log(seconds)`` against ``log(L)``; ``nan`` with fewer than two lengths."""
    L, s = check_array("L", L), check_array("seconds", seconds)
    if L.shape != s.shape or L.ndim != 1:
        raise ValueError(f"L and seconds must be 1-D of the same length, got shapes {L.shape} and {s.shape}")
    if np.any(L <= 0) or np.any(s <= 0):
        raise ValueError("L and seconds must be positive for a log-log fit")
    if len(np.unique(L)) < 2:
        return float("nan")
    return float(np.polyfit(np.log(L), np.log(s), 1)[0])


def _curves(result: BenchResult, B: float | None, method: str | None) -> dict[str, list[dict]]:
    """Label -> records sorted by L: the baseline (its time does not depend on B) and the selected records."""
    B = result.main_B if B is None else float(B)
    out: dict[str, list[dict]] = {}
    for rec in result.records:
        is_base = rec["method"] == result.baseline
        if is_base and float(rec["B"]) != result.main_B:
            continue
        if not is_base and (float(rec["B"]) != B or (method is not None and rec["method"] != method)):
            continue
        out.setdefault(variant_label(rec), []).append(rec)
    extra = [k for k, v in out.items() if v[0]["method"] == result.baseline and v[0].get("extrapolated")]
    for k in extra:  # the extrapolated curve starts from the last measured point, so the dashes continue the line
        measured = [r for lab, v in out.items() if lab not in extra and v[0]["method"] == result.baseline for r in v]
        if measured:
            out[k] = [max(measured, key=lambda r: r["L"])] + out[k]
    base = [k for k, v in out.items() if v[0]["method"] == result.baseline]
    ordered = {k: out[k] for k in base} | {k: v for k, v in out.items() if k not in base}
    return {k: sorted(v, key=lambda r: r["L"]) for k, v in ordered.items()}


def _style(result: BenchResult, recs: list[dict], k_other: int) -> dict:
    """Colour, line and marker of one curve: colour by degree rule, dotted diamonds for a method other than poly."""
    rec = recs[0]
    if rec["method"] == result.baseline:
        color = PALETTE[0]
    else:
        color = RULE_COLORS.get(rec.get("degree_rule"), _OTHER_COLORS[k_other % len(_OTHER_COLORS)])
    extrapolated = any(r.get("extrapolated") for r in recs)        # drawn from a fitted law, not timed
    dash = "dash" if extrapolated else (None if rec["method"] in _SYMBOLS or rec["method"] == result.baseline
                                         else "dot")
    symbol = _SYMBOLS.get(rec["method"], "circle" if rec["method"] == result.baseline else "diamond")
    return dict(mode="lines+markers", line=dict(color=color, dash=dash),
                marker=dict(size=8, color=color, symbol=symbol + "-open" if extrapolated else symbol))


def _legend_rows(curves: dict[str, list[dict]]) -> int:
    return max(1, math.ceil(len(curves) / 2))


def _panel_figure(result: BenchResult, curves: dict[str, list[dict]], title: str, height: int,
                  legend_rows: int | None = None, missing: str | None = None) -> go.Figure:
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.1)
    k_other = 0
    for label, recs in curves.items():
        style = _style(result, recs, k_other)
        k_other += recs[0]["method"] != result.baseline and recs[0].get("degree_rule") not in RULE_COLORS
        L = [r["L"] for r in recs]
        sec = [r["seconds"] for r in recs]
        slope = loglog_slope(L, sec) if len(L) > 1 else float("nan")
        name = label if math.isnan(slope) else f"{label}: slope {slope:.2f}"
        fig.add_trace(go.Scatter(x=L, y=[float(f"{s:.4g}") for s in sec], name=name, legendgroup=label, **style),
                      1, 1)
        err = [(r["L"], r.get(result.error_field)) for r in recs if r.get(result.error_field) is not None]
        if err:
            fig.add_trace(go.Scatter(x=[e[0] for e in err], y=[float(f"{e[1]:.3g}") for e in err], name=name,
                                     legendgroup=label, showlegend=False, **style), 1, 2)
        if recs[0]["method"] != result.baseline:
            extrapolated = {r["L"] for r in result.records if r["method"] == result.baseline and r.get("extrapolated")}
            sp = [(r["L"], _speedup(result, r), bool(r.get("sdpa_extrapolated")) or r["L"] in extrapolated)
                  for r in recs]
            sp = [s for s in sp if s[1] is not None]
            timed = [s for s in sp if not s[2]]
            # Speed-ups over SDPA's *extrapolated* time: dashed with open markers, like the extrapolated SDPA curve,
            # continuing from the last speed-up over a timed SDPA.
            extra = timed[-1:] + [s for s in sp if s[2]] if any(s[2] for s in sp) else []
            for part, dashed in ((timed, False), (extra, True)):
                if not part:
                    continue
                st = style if not dashed else {**style, "line": {**style["line"], "dash": "dash"},
                                               "marker": {**style["marker"],
                                                          "symbol": style["marker"]["symbol"] + "-open"}}
                fig.add_trace(go.Scatter(x=[s[0] for s in part], y=[float(f"{s[1]:.3g}") for s in part],
                                         name=name + (" (over extrapolated SDPA)" if dashed else ""),
                                         legendgroup=label, showlegend=False, **st), 1, 3)
    fig.add_hline(y=1.0, line=dict(dash="dot", color="gray"), row=1, col=3, exclude_empty_subplots=False)
    for col, ytitle in enumerate(["seconds", result.error_label, f"speed-up over {result.baseline}"], start=1):
        fig.update_xaxes(type="log", title="L", row=1, col=col)
        fig.update_yaxes(type="log", exponentformat="power", title=ytitle, row=1, col=col)
    if missing:   # a method that was not measured here: its panels stay, with the reason written in them
        Ls = sorted({r["L"] for recs in curves.values() for r in recs}) or [1, 10]
        for col in (1, 2, 3):       # the same L range in every panel, which an empty panel would not get
            fig.update_xaxes(range=[math.log10(Ls[0]) - 0.15, math.log10(Ls[-1]) + 0.15], row=1, col=col)
        fig.add_trace(go.Scatter(x=[Ls[0], Ls[-1]], y=[1, 1], mode="markers", marker=dict(opacity=0),
                                 hoverinfo="skip", showlegend=False), 1, 3)      # keeps the panel's axes
        fig.add_annotation(text=missing.replace(": ", ":<br>", 1).replace(" (", "<br>(", 1), showarrow=False, font=dict(size=12),
                           xref="x3 domain", yref="y3 domain", x=0.5, y=0.75, bgcolor="rgba(255,255,255,0.85)")
    # The legend sits above the panels (below them is where dit_lib.explorer puts its sliders), two entries a row,
    # under the title: the top margin is the title's band plus the legend's rows, so the two never overlap.
    rows = max(_legend_rows(curves), legend_rows or 0)
    fig.update_layout(title=dict(text=title), height=height,
                      margin=dict(l=60, r=20, t=_TITLE_PX + _LEGEND_ROW_PX * rows + 12, b=55),
                      legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom", font=dict(size=11),
                                  entrywidth=_LEGEND_ENTRY_PX, entrywidthmode="pixels", traceorder="normal"))
    return fig


def _check_height(height: Any) -> int:
    return check_int("height", height, low=100, high=4000)


def overview_figure(result: BenchResult, *, B: float | None = None, height: int = 500) -> go.Figure:
    """Time (log-log, fitted slope in the legend), error and speed-up against ``L`` for every method at ``B``.

    Benchmarks page. ``B`` defaults to the benchmark's main setting (:attr:`BenchResult.main_B`); the exact
    baseline's curve is drawn at that setting because its time does not depend on the entries.
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    height = _check_height(height)
    B = result.main_B if B is None else check_float("B", B)
    if B not in result.Bs:
        raise ValueError(f"B must be one of the measured entry bounds {result.Bs}, got {B}")
    title = f"{result.name} benchmark at B = {B:g}: every method (d = {result.records[0].get('d', '?')})"
    return _panel_figure(result, _curves(result, B, None), title, height)


def _missing_reason(result: BenchResult, method: str, B: float) -> str | None:
    """Why ``method`` has no record at entry bound ``B`` (``None`` if it has one); benchmarks page, explorer title.

    Performer is timed in the attention sweep only while its feature count is at most
    :data:`dit_lib.bench.attention.PERFORMER_MAX_RANK`; a ``B`` where nothing but the baseline was measured lies beyond
    the point where the sweep stopped at every length (the polynomial method had lost to SDPA, or would not fit).
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    check_choice("method", method, result.methods)
    B = check_float("B", B)
    at_B = [r for r in result.records if r["method"] != result.baseline and float(r["B"]) == B]
    if any(r["method"] == method for r in at_B):
        return None
    ranks = sorted({r["rank"] for r in at_B if r.get("degree_rule") == "guaranteed" and r.get("rank") is not None})
    if result.name == "attention" and method == "performer" and ranks:
        from .bench.attention import PERFORMER_MAX_RANK
        if ranks[0] > PERFORMER_MAX_RANK:
            return (f"performer not measured at B = {B:g}: it runs only while r ≤ {PERFORMER_MAX_RANK} "
                    f"(here r = {', '.join(map(str, ranks))})")
    if at_B:
        return f"{method} not measured at B = {B:g} (other methods were)"
    return f"{method} not measured at B = {B:g}: the sweep over B had stopped before it at every L"


def method_figure(result: BenchResult, *, method: str, B: float, height: int = 500,
                  legend_rows: int | None = None) -> go.Figure:
    """Like :func:`overview_figure`, for one method at one entry bound, against the exact baseline.

    Benchmarks page (the explorer over ``B`` and the method). A choice the benchmark did not measure gives a figure
    that keeps its three panels and says why in its title and panels (``_missing_reason``). ``legend_rows``
    reserves room for that many legend rows (the explorer gives every figure the same).
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    check_choice("method", method, result.methods)
    B = check_float("B", B)  # an unmeasured B is allowed: the figure says it was not measured
    height = _check_height(height)
    legend_rows = None if legend_rows is None else check_int("legend_rows", legend_rows, low=1, high=20)
    curves = _curves(result, B, method)
    n_L = sorted({r["L"] for k, v in curves.items() for r in v if r["method"] == method})
    missing = _missing_reason(result, method, B)
    title = f"{method} at B = {float(B):g}: measured at L = {', '.join(map(str, n_L))}" if n_L else missing
    return _panel_figure(result, curves, title, height, legend_rows, None if n_L else missing)


def explorer_spec(result: BenchResult) -> tuple[Callable[..., go.Figure], dict[str, list], dict[str, Any]] | None:
    """``(make_figure, grid, initial)`` for :func:`dit_lib.explorer` over ``B`` and ``method``, or ``None``.

    Benchmarks page. A parameter with a single measured value gets no slider (a slider that changes nothing
    is worse than none); if neither ``B`` nor the method varies, there is nothing to explore and the result
    is ``None``. Every figure reserves as many legend rows as the fullest one needs, so that the explorer's shared
    top margin fits them all.
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    full = {"B": result.Bs, "method": result.methods}
    grid = {k: v for k, v in full.items() if len(v) > 1}
    if not grid:
        return None
    fixed = {k: v[0] for k, v in full.items() if k not in grid}
    rows = max(_legend_rows(_curves(result, B, m)) for B in full["B"] for m in full["method"])

    def make_figure(**params):
        return method_figure(result, **{**fixed, **params}, legend_rows=rows)

    initial = {k: v for k, v in {"B": result.main_B, "method": result.methods[0]}.items() if k in grid}
    return make_figure, grid, initial


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _precision(rec: dict) -> str:
    """The precision a record computed in: ``compute_dtype`` (poly may promote), else the input ``dtype``."""
    return rec.get("compute_dtype") or rec.get("dtype") or "–"


def records_markdown(result: BenchResult) -> str:
    """All records as a Markdown table; benchmarks page.

    Columns: L, B, method with its degree rule in brackets where the file has one (as in the legends: on a Performer
    row ``[r of <rule>]``, since the rule only names whose feature count Performer copies), the degree with the rank in parentheses, the precision computed in
    (where the file records ``compute_dtype``), seconds (4 significant digits), error, speed-up (1 for the baseline).
    Short enough for the page's column.
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    rule = any("degree_rule" in r for r in result.records)
    dtype = any("compute_dtype" in r for r in result.records)
    head = (["L", "B", "method [rule]" if rule else "method", "g (rank)"] + (["dtype"] if dtype else [])
            + ["seconds", _ERROR_SHORT[result.error_field], "speed-up"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.records:
        speedup = "1" if r["method"] == result.baseline else _fmt(_speedup(result, r), ".1f")
        name = _RULE_SHORT.get(r.get("degree_rule"), r.get("degree_rule"))
        name = "" if not name else f" [{name}]" if r.get("degree") is not None else f" [r of {name}]"
        row = [str(r["L"]), f"{float(r['B']):g}", r["method"] + name]
        rank = "" if r.get("rank") is None else f" ({r['rank']})"
        row += [_fmt(r.get("degree"), "d") + rank] + ([_precision(r)] if dtype else [])
        row += [f"{r['seconds']:.4g}" + (" (extrap.)" if r.get("extrapolated") else ""),
                _sci(r.get(result.error_field)), speedup]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def headline_markdown(result: BenchResult, rule: str = "guaranteed") -> str | None:
    """The attention benchmark's headline: the polynomial method at one degree rule (default the guaranteed degree) at
    ``B = 1``, per ``L``: the degree and rank (a column only where they differ), time, SDPA time (measured or extrapolated), speed-up, measured error, certified bound, the
    ratio to its own two dense products on prebuilt features and, where the fused kernels ran, the ratio to the same
    call on the torch kernel; then a line naming the kernel and precision that ran. Benchmarks page and README. ``None`` when the file has no such records.
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    check_choice("rule", rule, list(RULE_LABELS))
    B = result.main_B
    poly = sorted((r for r in result.records if r["method"] == "poly" and r.get("degree_rule") == rule
                   and float(r["B"]) == B), key=lambda r: r["L"])
    if not poly:
        return None
    base = {r["L"]: r for r in result.records if r["method"] == result.baseline and float(r["B"]) == B}
    same_g = len({r["degree"] for r in poly}) == 1         # one degree at every L: say it once, under the table
    lines = ["| L |" + ("" if same_g else " g (rank) |") + " seconds | SDPA seconds | speed-up | max error | certified |"
             " ÷ dense products | ÷ torch kernel |", "|" + "---|" * (8 if same_g else 9)]
    runs: dict[str, list[int]] = {}
    for r in poly:
        sd = base.get(r["L"])
        sd_text = "–" if sd is None else f"{sd['seconds']:.3g}" + (" (extrap.)" if sd.get("extrapolated") else "")
        lines.append(f"| {r['L']} |" + ("" if same_g else f" {r['degree']} ({r['rank']}) |") +
                     f" {r['seconds']:.4f} | {sd_text} | {_fmt(_speedup(result, r), '.1f')} | "
                     f"{_sci(r.get('max_abs_error'))} | {_sci(r.get('error_bound'))} | "
                     f"{_fmt(r.get('ratio_to_matmuls'), '.2f')} | {_fmt(r.get('ratio_to_torch_kernel'), '.2f')} |")
        runs.setdefault(f"{r.get('kernel', 'unrecorded')} kernel, {r.get('compute_dtype', 'unrecorded')}", []).append(
            r["L"])
    ran = "; ".join(k if len(runs) == 1 else f"{k} (L = {', '.join(map(str, v))})" for k, v in runs.items())
    degree = f"Degree {poly[0]['degree']} (rank {poly[0]['rank']}) at every length; computed" if same_g else "Computed"
    return "\n".join(lines) + f"\n\n{degree} on: {ran}."


def _sci(v: Any) -> str:
    """``6.4e-7`` rather than ``6.4e-07``, its hyphen non-breaking (U+2011): narrow table columns never split it."""
    return "–" if v is None else format(v, ".1e").replace("e-0", "e-").replace("e+0", "e+").replace("-", "\u2011")


def crossover_markdown(result: BenchResult) -> str | None:
    """The attention benchmark's crossover summary as a Markdown table, or ``None`` if the file has none.

    Benchmarks page. Each ``B`` is followed by the precision the polynomial method (guaranteed degree) computed in
    there, when recorded: from ``B = 1.25`` it is float64 (float32 cannot certify ``delta``), while SDPA's time is
    always float32's, so a reader sees which precisions a crossover compares.
    """
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    if not result.crossover:
        return None
    sdpa = {_precision(r) for r in result.records if r["method"] == result.baseline}
    poly = {(r["L"], float(r["B"])): _precision(r) for r in result.records
            if r["method"] == "poly" and r.get("degree_rule") == "guaranteed"}

    def at(L: int, B: Any) -> str:
        if B is None:
            return "–"
        dt = poly.get((L, float(B)), "–")
        return f"{float(B):g}" + ("" if dt == "–" else f" ({dt})")

    lines = [f"| L | SDPA seconds ({', '.join(sorted(sdpa))}) | poly wins up to B | poly loses at B | why it stopped |",
             "|---|---|---|---|---|"]
    for c in result.crossover:
        lines.append(f"| {c['L']} | {c['sdpa_seconds']:.4f} | {at(c['L'], c.get('B_last_win'))} | "
                     f"{at(c['L'], c.get('B_first_loss'))} | {c.get('reason', '–')} |")
    return "\n".join(lines)


def machine_summary(result: BenchResult) -> str:
    """One sentence: the machine, software and load the benchmark recorded, and what it did not record."""
    if not isinstance(result, BenchResult):
        raise TypeError(f"result must be a BenchResult (from load_result), got {type(result).__name__}")
    m = result.meta
    devices = sorted({str(r.get("device")) for r in result.records if r.get("device")}) or [str(m.get("device", "?"))]
    parts = [f"device {', '.join(devices)}",
             f"{m['cpu_count']} CPU cores" if "cpu_count" in m else "CPU cores not recorded",
             f"architecture {m['machine']}" if "machine" in m else None,
             f"torch {m['torch']} with {m.get('threads', '?')} thread(s)" if "torch" in m else None,
             f"Python {m['python']}" if "python" in m else None]
    text = "Measured on " + ", ".join(p for p in parts if p)
    if "loadavg_start" in m:
        end = m.get("loadavg_end")
        text += f"; 1-minute load average {m['loadavg_start'][0]:.1f} at the start" + \
            (f" and {end[0]:.1f} at the end" if end else "") + " (the machine was shared)"

    text += f"; written {m['created']}" if "created" in m else "; the date of the run is not recorded in the file"
    text += ". The CPU model is not recorded." if "cpu_model" not in m else f". CPU: {m['cpu_model']}."
    return text
