"""The README's attention headline is the committed benchmark file's: its table, and the speed-up its prose quotes."""
from __future__ import annotations

from pathlib import Path

from dit_lib import benchreport as br

ROOT = Path(__file__).resolve().parents[1]


def test_readme_headline_is_the_benchmark_file():
    readme = (ROOT / "README.md").read_text()
    res = br.load_result("attention", ROOT / "bench_results")
    table = br.headline_markdown(res)
    assert table is not None and table in readme, "README's headline table differs from headline_markdown(file)"
    main = next(r for r in res.records if r["method"] == "poly" and r.get("degree_rule") == "guaranteed"
                and r.get("part") == "main" and float(r["B"]) == res.main_B and r["L"] == 65536)
    assert f"(**{main['speedup_vs_sdpa']:.0f}×**" in readme
    assert f"{main['seconds']:.3f} s at $L = 65536$" in readme
