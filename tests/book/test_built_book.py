"""Checks of the built HTML book: every chapter executed, rendered, interactive, offline, and clean."""
import json
import re

import pytest

from book_toc import CHAPTERS, REPO_CHAPTERS

MAX_SITE_MB = 30


def test_every_toc_entry_has_a_page(html_dir, toc_entries):
    missing = [f for f in toc_entries if not (html_dir / f"{f}.html").exists()]
    assert not missing, f"toc entries without an HTML page: {missing}"


def test_every_chapter_was_executed_by_nbmake(book_src, chapters):
    assert chapters, "the table of contents lists no notebook chapter"
    for ch in chapters:
        nb = json.loads((book_src / f"{ch}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), \
            f"{ch}.ipynb was not executed in the test run (missing from the nbmake run?)"


def test_every_repository_chapter_is_in_the_run(chapters):
    # The scratch copy is made from the repository's _toc.yml: both lists must agree.
    assert chapters == REPO_CHAPTERS, "the built book's chapters differ from the repository's _toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_has_plotly_figure_with_sliders(html_dir, chapter):
    html = (html_dir / f"{chapter}.html").read_text()
    assert "Plotly.newPlot" in html, f"{chapter}: no plotly figure"
    assert re.search(r'"sliders":\s*\[\{', html), f"{chapter}: no plotly figure with sliders"


def test_no_page_shows_errors_or_dropped_outputs(html_dir):
    bad = {"Traceback (most recent call last)": "a traceback", "skipping unknown output mime type": "a dropped output",
           'class="output traceback': "an error cell", 'class="output stderr': "stderr output (a warning?)",
           "application/vnd.jupyter.widget-view+json": "a widget that would be dead without a kernel"}
    problems = []
    for page in html_dir.rglob("*.html"):
        if "_static" in page.parts or "_modules" in page.parts:
            continue
        text = page.read_text(errors="replace")
        problems += [f"{page.relative_to(html_dir)}: {why}" for needle, why in bad.items() if needle in text]
    assert not problems, "\n".join(problems)


def test_assets_are_served_locally(html_dir):
    page = (html_dir / "book" / "intro.html").read_text()
    assert re.search(r'src="[./]*_static/plotly/plotly\.min\.js', page), "plotly.js is not served from the site"
    assert re.search(r'src="[./]*_static/mathjax/tex-mml-chtml\.js', page), "MathJax is not served from the site"
    assert (html_dir / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_site_size_is_bounded(html_dir):
    total = sum(p.stat().st_size for p in html_dir.rglob("*") if p.is_file())
    assert total < MAX_SITE_MB * 2**20, f"site is {total / 2**20:.1f} MB (limit {MAX_SITE_MB} MB)"
