"""The live rendering of every explorer (issue 11), as driven during `make test`'s single chapter run.

`make notebooks` executes every chapter once with ``DIT_LIVE_CHECK`` set: each ``dl.explorer`` call, whatever the
chapter (new chapters included, with no change here), then also builds its JupyterLab controls and draws the figure
for every value they reach (every option, a dozen stops across a slider, the other controls held), exactly as a
slider move does, and writes a record to ``<scratch book>/.live/``. A failing value raises in the chapter's cell,
so nbmake already fails there; these tests check that every chapter with an explorer left records, that no record
holds a failure or a control that never changes the figure, and print the table of explorers and redraw times.
"""
import json
import statistics

import nbformat
import pytest


@pytest.fixture(scope="module")
def records(book_src):
    folder = book_src / ".live"
    if not folder.is_dir():
        pytest.fail(f"no live-explorer records in {folder}: `make notebooks` runs the chapters with DIT_LIVE_CHECK")
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _calls_explorer(path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and "explorer(" in c.source for c in nb.cells)


def test_every_chapter_with_an_explorer_was_driven_live(book_src, chapters, records):
    driven = {r["notebook"].split("/")[-1] for r in records}
    missing = [c for c in chapters if _calls_explorer(book_src / f"{c}.ipynb") and f"{c.split('/')[-1]}.ipynb" not in driven]
    assert not missing, f"chapters whose explorers left no live record: {missing}"


def test_every_live_control_reaches_only_working_values_and_changes_the_figure(records, capsys):
    assert records, "no explorer was recorded"
    lines = []
    for r in records:
        controls = "; ".join(f"{c['describe']} ({'computed' if c['computes'] else 'fixed values'}, "
                             f"{c['distinct']} figures)" for c in r["controls"])
        lines.append(f"{r['notebook'].split('/')[-1]} {r['name']}: {controls}; redraw median "
                     f"{statistics.median(r['redraw_s']):.3f} s, max {max(r['redraw_s']):.3f} s")
    with capsys.disabled():
        print("\nlive explorers:\n  " + "\n  ".join(lines))
    failures = [f"{r['notebook']} {r['name']}: {f}" for r in records for f in r["failures"]]
    assert not failures, "\n".join(failures)
    for r in records:
        for c in r["controls"]:
            assert not c["errors"] and c["distinct"] >= 2, (r["name"], c)
