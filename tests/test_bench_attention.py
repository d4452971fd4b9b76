"""Smoke test of the attention benchmark (chapter 4): a tiny --quick-style run and its JSON records."""
import json

from dit_lib.bench import attention as bench


def test_tiny_run_writes_records(tmp_path, capsys):
    tiny = {"Ls": [256], "d": 3, "Bs": [0.5, 1.0, 4.0]}
    old = bench.QUICK
    bench.QUICK = tiny
    try:
        path = tmp_path / "out" / "attention.json"
        assert bench.main(["--quick", "--json", str(path), "--device", "cpu"]) == 0
    finally:
        bench.QUICK = old
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


def test_usage_via_dispatcher():
    from dit_lib.bench.__main__ import BENCHMARKS
    assert "attention" in BENCHMARKS
