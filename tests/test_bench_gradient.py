"""Smoke test of ``python -m dit_lib.bench gradient``: a tiny run and the fields of its JSON records (no timing goals)."""
from __future__ import annotations

import json

from dit_lib.bench import __main__ as dispatcher
from dit_lib.bench import gradient


def test_tiny_run_writes_records(tmp_path, capsys):
    path = tmp_path / "sub" / "gradient.json"
    rc = gradient.main(["--sizes", "64", "128", "--d", "4", "--degree", "4", "--repeats", "1", "--json", str(path)])
    assert rc == 0
    data = json.loads(path.read_text())
    assert data["benchmark"] == "gradient"
    recs = data["records"]
    # per size: autograd + lowrank at g; the largest size with a reference adds g-1 and g+1
    assert [(r["L"], r["method"], r["degree"]) for r in recs] == [
        (64, "autograd_sdpa", None), (64, "lowrank", 4),
        (128, "autograd_sdpa", None), (128, "lowrank", 4), (128, "lowrank", 3), (128, "lowrank", 5)]
    for r in recs:
        assert {"L", "d", "B", "method", "degree", "rank", "seconds", "rel_error"} <= set(r)
        assert r["d"] == 4 and r["B"] == 1.0 and r["seconds"] > 0
        assert r["method"] in ("autograd_sdpa", "lowrank")
        assert r["reference"] is not None and 0 <= r["rel_error"] < 1e-2
    assert [r["rank"] for r in recs if r["method"] == "lowrank"] == [70, 70, 35, 126]   # binom(4+g, g)
    out = capsys.readouterr().out
    assert "autograd_sdpa" in out and "not measured in this run" in out


def test_no_reference_beyond_exact_max_L(tmp_path):
    path = tmp_path / "g.json"
    assert gradient.main(["--sizes", "32", "--d", "2", "--repeats", "1", "--exact-max-L", "16",
                          "--extra-degrees", "--json", str(path)]) == 0
    recs = json.loads(path.read_text())["records"]
    assert len(recs) == 2 and all(r["rel_error"] is None and r["reference"] is None for r in recs)


def test_dispatcher_and_bad_arguments(capsys):
    assert dispatcher.main(["--help"]) == 0
    assert "gradient" in capsys.readouterr().out
    assert gradient.main(["--sizes", "0"]) == 2
    assert gradient.main(["--sizes", "8", "--threads", "0"]) == 2
