"""Smoke test of the attention benchmark (chapter 4): a tiny --quick-style run and its JSON records."""
import json

from dit_lib.bench import attention as bench


def test_tiny_run_writes_records(tmp_path, capsys):
    tiny = {"Ls": [256], "d": 3, "Bs": [0.5, 1.0, 4.0], "scale_Ls": [512]}
    old, old_max = bench.QUICK, bench.MAX_SDPA_SECONDS
    bench.QUICK, bench.MAX_SDPA_SECONDS = tiny, 0.0        # force the extrapolated SDPA row
    try:
        path = tmp_path / "out" / "attention.json"
        assert bench.main(["--quick", "--json", str(path), "--device", "cpu"]) == 0
    finally:
        bench.QUICK, bench.MAX_SDPA_SECONDS = old, old_max
    out = capsys.readouterr().out
    assert "method" in out and "crossover" in out
    data = json.loads(path.read_text())
    assert data["benchmark"] == "attention" and data["meta"]["config"] == tiny
    recs = data["records"]
    for rec in recs:
        for key in ("L", "d", "B", "method", "degree", "rank", "seconds", "max_abs_error"):
            assert key in rec
        assert rec["method"] in ("sdpa", "poly", "performer") and rec["seconds"] > 0
    methods = {r["method"] for r in recs if r["B"] == 1.0}
    assert methods == {"sdpa", "poly", "performer"}
    poly = [r for r in recs if r["method"] == "poly"]
    assert all(r["max_abs_error"] <= r["error_bound"] for r in poly if r["degree_rule"] == "guaranteed")
    assert all(r["rank"] == __import__("math").comb(3 + r["degree"], r["degree"]) for r in poly)
    assert len(data["crossover"]) == 1 and data["crossover"][0]["L"] == 256
    # guaranteed rows are certified within delta; the oracle row is labelled; the scale part extrapolates SDPA
    for r in poly:
        if r["degree_rule"] in ("guaranteed", "a_priori_cs"):
            assert r["error_bound"] <= data["meta"]["delta"]
    assert all(r.get("oracle") for r in poly if r["degree_rule"] == "oracle")
    scale = [r for r in recs if r.get("part") == "scale"]
    sd = [r for r in scale if r["method"] == "sdpa"]
    assert [r["L"] for r in sd] == [512] and sd[0]["extrapolated"] is True
    fit = data["records"][0]["seconds"] / 256**2
    assert abs(sd[0]["seconds"] - fit * 512**2) <= 1e-9 * sd[0]["seconds"]
    assert "cpu_model" in data["meta"] and "created" in data["meta"]


def test_usage_via_dispatcher():
    from dit_lib.bench.__main__ import BENCHMARKS
    assert "attention" in BENCHMARKS
