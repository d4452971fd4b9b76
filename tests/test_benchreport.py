"""Tests of dit_lib.benchreport: reading benchmark results files and turning them into figures and tables."""
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from dit_lib import benchreport as br
from dit_lib.widgets import StaticExplorer, explorer


def _attention_records():
    recs = []
    for L, t_sdpa in [(1024, 0.04), (4096, 0.64)]:
        recs.append(dict(L=L, d=4, B=1.0, method="sdpa", degree=None, rank=None, seconds=t_sdpa, max_abs_error=1e-8))
        for B, g, r, t in [(0.5, 2, 15, 0.002 * L / 1024), (1.0, 4, 70, 0.01 * L / 1024)]:
            recs.append(dict(L=L, d=4, B=B, method="poly", degree=g, rank=r, seconds=t, max_abs_error=1e-6 * B,
                             degree_rule="guaranteed", speedup_vs_sdpa=t_sdpa / t))
            recs.append(dict(L=L, d=4, B=B, method="performer", degree=None, rank=r, seconds=2 * t,
                             max_abs_error=1e-3, degree_rule="guaranteed"))  # no recorded speed-up: computed
    return recs


def _write(folder, name, records, **extra):
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "meta": {"cpu_count": 2, "torch": "2.x", "threads": 1},
                                "records": records, **extra}))
    return path


@pytest.fixture
def attention(tmp_path):
    _write(tmp_path, "attention", _attention_records(),
           crossover=[{"L": 1024, "sdpa_seconds": 0.04, "B_last_win": 1.0, "B_first_loss": None, "reason": "wins"}])
    return br.load_result("attention", tmp_path)


@pytest.fixture
def gradient(tmp_path):
    recs = []
    for L in (512, 1024, 2048):
        t_auto, t_lr = 1e-8 * L**2, 1e-5 * L
        recs.append(dict(L=L, d=4, B=1.0, method="autograd_sdpa", degree=None, rank=None, seconds=t_auto,
                         rel_error=1e-7, speedup=1.0))
        recs.append(dict(L=L, d=4, B=1.0, method="lowrank", degree=3, rank=35, seconds=t_lr,
                         rel_error=None if L == 2048 else 1e-3, speedup=t_auto / t_lr))
    _write(tmp_path, "gradient", recs)
    return br.load_result("gradient", tmp_path)


def test_missing_file_is_named_with_the_command_that_writes_it(tmp_path):
    msg = br.missing_message("attention", tmp_path)
    assert str(tmp_path / "attention.json") in msg
    assert "python -m dit_lib.bench attention --json bench_results/attention.json" in msg
    with pytest.raises(FileNotFoundError, match="attention.json"):
        br.load_result("attention", tmp_path)


def test_existing_file_has_no_missing_message(attention, tmp_path):
    assert br.missing_message("attention", tmp_path) is None
    assert attention.baseline == "sdpa" and attention.error_field == "max_abs_error"
    assert attention.methods == ["poly", "performer"] and attention.Bs == [0.5, 1.0] and attention.main_B == 1.0


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    (json.dumps({"benchmark": "gradient", "records": [{}]}), "benchmark 'attention'"),
    (json.dumps({"benchmark": "attention", "records": []}), "non-empty list"),
    (json.dumps({"benchmark": "attention", "records": [{"L": 4, "B": 1, "method": "sdpa"}]}), "seconds"),
    (json.dumps({"benchmark": "attention", "records": [{"L": 4, "B": 1, "method": "poly", "seconds": 1,
                                                         "max_abs_error": 0.1}]}), "baseline"),
    (json.dumps({"benchmark": "attention", "records": [{"L": 4, "B": 1, "method": "sdpa", "seconds": 1}]}),
     "error field"),
])
def test_malformed_files_are_rejected(tmp_path, content, match):
    (tmp_path / "attention.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        br.load_result("attention", tmp_path)


def test_unknown_benchmark_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="name must be one of"):
        br.result_path("softmax", tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        br.regenerate_command("softmax")


def test_results_dir_order(tmp_path, monkeypatch):
    assert br.results_dir(tmp_path) == tmp_path
    monkeypatch.setenv(br.ENV_DIR, str(tmp_path / "elsewhere"))
    assert br.results_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(br.ENV_DIR)
    (tmp_path / "bench_results").mkdir()
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")  # a notebook runs in book/: the repository's folder is found upwards
    assert br.results_dir() == (tmp_path / "bench_results").resolve()


def test_loglog_slope_recovers_a_power_law():
    L = np.array([512, 1024, 4096, 16384])
    assert br.loglog_slope(L, 3e-9 * L**1.7) == pytest.approx(1.7, abs=1e-12)
    assert math.isnan(br.loglog_slope([1024, 1024], [1.0, 2.0]))
    with pytest.raises(ValueError, match="positive"):
        br.loglog_slope([1, 2], [0.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        br.loglog_slope([1, 2, 3], [1.0, 2.0])


def _traces(fig, col, extrapolated=False):
    """Traces of panel ``col`` by curve; the speed-ups over an extrapolated SDPA time are separate traces."""
    axis = "x" if col == 1 else f"x{col}"
    return {t.legendgroup: t for t in fig.data if t.xaxis == axis and t.legendgroup
            and ("extrapolated SDPA" in t.name) == extrapolated}


def test_overview_figure_plots_the_records(attention):
    fig = br.overview_figure(attention)
    time = _traces(fig, 1)
    assert set(time) == {"sdpa (exact)", "poly, g=4 (r=70) [guaranteed]", "performer, M=70 [r of guaranteed]"}
    poly = time["poly, g=4 (r=70) [guaranteed]"]
    assert list(poly.x) == [1024, 4096] and list(poly.y) == pytest.approx([0.01, 0.04])
    assert "slope 1.00" in poly.name  # seconds proportional to L
    assert "slope 2.00" in time["sdpa (exact)"].name
    speed = _traces(fig, 3)
    assert "sdpa (exact)" not in speed  # no speed-up of the baseline over itself
    perf = speed["performer, M=70 [r of guaranteed]"]
    assert list(perf.y) == pytest.approx([0.04 / 0.02, 0.64 / 0.08])  # computed from the baseline at the same L
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_method_figure_keeps_the_baseline_at_other_B(attention):
    fig = br.method_figure(attention, method="poly", B=0.5)
    time = _traces(fig, 1)
    assert set(time) == {"sdpa (exact)", "poly, g=2 (r=15) [guaranteed]"}
    assert list(_traces(fig, 2)["poly, g=2 (r=15) [guaranteed]"].y) == pytest.approx([5e-7, 5e-7])
    empty = br.method_figure(attention, method="poly", B=3.0)
    assert "not measured" in empty.layout.title.text and "sweep over B had stopped" in empty.layout.title.text
    with pytest.raises(ValueError, match="method must be one of"):
        br.method_figure(attention, method="flash", B=1.0)
    with pytest.raises(ValueError, match="B must be one of"):
        br.overview_figure(attention, B=0.75)
    with pytest.raises(TypeError, match="BenchResult"):
        br.overview_figure({"records": []})


def test_errors_missing_from_a_record_are_left_out(gradient):
    err = _traces(br.overview_figure(gradient), 2)
    assert list(err["lowrank, g=3 (r=35)"].x) == [512, 1024]
    assert list(_traces(br.overview_figure(gradient), 3)["lowrank, g=3 (r=35)"].y) == pytest.approx(
        [1e-3 * L for L in (512, 1024, 2048)], rel=5e-3)  # plotted to 3 significant digits


def test_explorer_spec_drops_parameters_that_do_not_vary(attention, gradient):
    make_figure, grid, initial = br.explorer_spec(attention)
    assert grid == {"B": [0.5, 1.0], "method": ["poly", "performer"]} and initial == {"B": 1.0, "method": "poly"}
    ex = explorer(make_figure, grid, initial=initial, mode="static")
    assert isinstance(ex, StaticExplorer) and len(ex.combos) == 4
    assert all(isinstance(make_figure(B=B, method=m), go.Figure) for B in grid["B"] for m in grid["method"])
    assert br.explorer_spec(gradient) is None  # one B, one method: nothing to explore


def test_tables(attention, gradient):
    table = br.records_markdown(attention).splitlines()
    assert len(table) == 2 + len(attention.records)
    assert table[0].startswith("| L | B | method [rule] | g (rank) |")   # the rule with the method, up front
    assert table[2].endswith("| 1 |") and "| 4 (70) |" in table[-2] and "| – (70) |" in table[-1]
    assert "| – |" in br.records_markdown(gradient).splitlines()[-1]  # the error that was not measured
    assert "rule" not in br.records_markdown(gradient).splitlines()[0]  # no degree rules in the gradient file
    assert "| poly [guaranteed] | 4 (70) |" in table[-2]
    assert "| performer [r of guaranteed] | – (70) |" in table[-1]       # Performer only copies that rule's r
    cross = br.crossover_markdown(attention).splitlines()
    assert len(cross) == 3 and cross[2].startswith("| 1024 | 0.0400 | 1 | – | wins |")
    assert br.crossover_markdown(gradient) is None


def test_scale_records_extrapolated_baseline_is_dashed_and_headlined(tmp_path):
    recs = _attention_records()
    recs.append(dict(L=16384, d=4, B=1.0, method="sdpa", degree=None, rank=None, seconds=0.64 * 16,
                     max_abs_error=None, extrapolated=True, part="scale"))
    recs.append(dict(L=16384, d=4, B=1.0, method="poly", degree=4, rank=70, seconds=0.16, max_abs_error=1e-6,
                     error_bound=5e-4, compute_dtype="float32", degree_rule="guaranteed", part="scale",
                     speedup_vs_sdpa=0.64 * 16 / 0.16, kernel="fused", ratio_to_torch_kernel=0.25))
    recs.append(dict(L=4096, d=4, B=1.0, method="poly", degree=2, rank=15, seconds=0.01, max_abs_error=8e-4,
                     degree_rule="oracle", oracle=True))
    _write(tmp_path, "attention", recs)
    res = br.load_result("attention", tmp_path)
    time = _traces(br.overview_figure(res), 1)
    extra = time["sdpa (exact, extrapolated)"]
    assert extra.line.dash == "dash" and list(extra.x) == [4096, 16384]   # continues from the last measured point
    assert time["sdpa (exact)"].line.dash is None
    assert "poly, g=2 (r=15) [oracle, picked after measuring]" in time
    head = br.headline_markdown(res).splitlines()
    assert len(head) == 2 + 3 + 2 and "10.2 (extrap.)" in head[-3] and "| 64.0 |" in head[-3]
    assert "5.0e\u20114" in head[-3] and br.headline_markdown(res, "a_priori_cs") is None
    assert head[-3].endswith("| 0.25 |") and head[2].endswith("| – |")
    assert head[-1] == ("Degree 4 (rank 70) at every length; computed on: unrecorded kernel, unrecorded "
                        "(L = 1024, 4096); fused kernel, float32 (L = 16384).")
    assert head[0].startswith("| L | seconds |")                     # one degree: no degree column
    recs[-2]["degree"], recs[-2]["rank"] = 5, 126                     # degrees differ: the column comes back
    _write(tmp_path, "attention", recs)
    head = br.headline_markdown(br.load_result("attention", tmp_path)).splitlines()
    assert head[0].startswith("| L | g (rank) |") and "| 5 (126) |" in head[-3] and head[-1].startswith("Computed on")
    assert "(extrap.)" in br.records_markdown(res)
    # The speed-up over an extrapolated SDPA time is drawn like the extrapolated SDPA curve: dashed, open markers,
    # continuing from the last speed-up over a timed SDPA; the timed ones stay solid.
    fig = br.overview_figure(res)
    label = "poly, g=4 (r=70) [guaranteed]"
    timed, extrap = _traces(fig, 3)[label], _traces(fig, 3, extrapolated=True)[label]
    assert timed.line.dash is None and timed.marker.symbol == "circle" and list(timed.x) == [1024, 4096]
    assert extrap.line.dash == "dash" and extrap.marker.symbol == "circle-open" and list(extrap.x) == [4096, 16384]
    assert list(extrap.y) == pytest.approx([0.64 / 0.04, 64.0])
    assert _traces(fig, 1)[label].line.dash is None       # its own time was measured: solid


def test_missing_method_names_the_real_reason_and_keeps_the_panels(tmp_path):
    from dit_lib.bench.attention import PERFORMER_MAX_RANK
    recs = _attention_records()
    big = PERFORMER_MAX_RANK + 1      # poly measured at B = 1.5 with more features than Performer is run with
    recs.append(dict(L=1024, d=4, B=1.5, method="poly", degree=9, rank=big, seconds=0.03, max_abs_error=1e-6,
                     degree_rule="guaranteed", compute_dtype="float64", speedup_vs_sdpa=0.04 / 0.03))
    _write(tmp_path, "attention", recs)
    res = br.load_result("attention", tmp_path)
    reason = br._missing_reason(res, "performer", 1.5)
    assert f"r ≤ {PERFORMER_MAX_RANK}" in reason and f"r = {big}" in reason and "sweep" not in reason
    assert br._missing_reason(res, "poly", 1.5) is None and br._missing_reason(res, "performer", 1.0) is None
    assert "sweep over B had stopped" in br._missing_reason(res, "poly", 3.0)
    fig = br.method_figure(res, method="performer", B=1.5)
    assert fig.layout.title.text == reason
    assert {t.xaxis for t in fig.data} == {"x", "x2", "x3"}            # all three panels keep their axes
    assert any(reason.split(":")[0] in a.text for a in fig.layout.annotations)
    assert fig.layout.xaxis3.range == fig.layout.xaxis.range        # the same L range as the time panel
    with pytest.raises(ValueError, match="legend_rows"):
        br.method_figure(res, method="poly", B=1.0, legend_rows=0)


def test_one_colour_per_degree_rule_and_room_for_the_legend(tmp_path):
    recs = _attention_records()
    recs += [dict(L=L, d=4, B=1.0, method=m, degree=3 if m == "poly" else None, rank=35, seconds=0.005 * L / 1024,
                  max_abs_error=1e-4, degree_rule="a_priori_cs") for L in (1024, 4096) for m in ("poly", "performer")]
    _write(tmp_path, "attention", recs)
    res = br.load_result("attention", tmp_path)

    def colours(fig):
        out = {}
        for t in fig.data:
            if t.xaxis == "x" and t.legendgroup != "sdpa (exact)":
                rule = "a_priori_cs" if "a-priori" in t.name else "guaranteed"
                out.setdefault(rule, set()).add(t.line.color)
        return out

    over = colours(br.overview_figure(res))
    assert all(len(c) == 1 for c in over.values()) and over["guaranteed"] != over["a_priori_cs"]
    make_figure, grid, _ = br.explorer_spec(res)
    for m in grid["method"]:
        for rule, c in colours(make_figure(B=1.0, method=m)).items():
            assert c == over[rule]                                  # the explorer uses the overview's colours
    symbols = {t.name.split(",")[0]: t.marker.symbol for t in br.overview_figure(res).data if t.xaxis == "x"}
    assert symbols["poly"] != symbols["performer"]                  # same colour, told apart by the marker
    # Legend: two entries a row under the title; every explorer figure reserves the rows of the fullest one.
    fig = br.overview_figure(res)
    n = sum(t.showlegend is not False for t in fig.data)
    assert fig.layout.margin.t >= br._TITLE_PX + br._LEGEND_ROW_PX * math.ceil(n / 2)
    tops = {make_figure(B=B, method=m).layout.margin.t for B in grid["B"] for m in grid["method"]}
    assert len(tops) == 1


def test_precision_is_shown_per_record_and_per_crossover(tmp_path):
    recs = _attention_records()
    for r in recs:
        if r["method"] == "poly":
            r["compute_dtype"] = "float64" if r["B"] == 1.0 else "float32"
        r.setdefault("dtype", "float32")
    _write(tmp_path, "attention", recs,
           crossover=[{"L": 1024, "sdpa_seconds": 0.04, "B_last_win": 0.5, "B_first_loss": 1.0, "reason": "slower"}])
    res = br.load_result("attention", tmp_path)
    table = br.records_markdown(res).splitlines()
    col = table[0].split(" | ").index("dtype")
    rows = {(line.split(" | ")[1], line.split(" | ")[2].split(" [")[0]): line.split(" | ")[col] for line in table[2:]}
    assert rows[("1", "poly")] == "float64" and rows[("0.5", "poly")] == "float32"
    assert rows[("1", "sdpa")] == "float32" and rows[("1", "performer")] == "float32"
    cross = br.crossover_markdown(res).splitlines()
    assert "SDPA seconds (float32)" in cross[0]
    assert "| 0.5 (float32) | 1 (float64) |" in cross[2]


def test_machine_summary_says_what_is_not_recorded(gradient):
    text = br.machine_summary(gradient)
    assert "2 CPU cores" in text and "torch 2.x with 1 thread(s)" in text
    assert "date of the run is not recorded" in text and "CPU model is not recorded" in text


@pytest.mark.parametrize("name", list(br.BENCHMARKS))
def test_repository_results_files_are_valid_when_present(name):
    path = br.result_path(name)
    if not path.is_file():
        pytest.skip(f"{path} not written yet ({br.regenerate_command(name)})")
    result = br.load_result(name)
    assert isinstance(br.overview_figure(result), go.Figure)
    assert br.records_markdown(result).count("\n") == 1 + len(result.records)
