"""Headless Chromium on the built book: every typeset display and every code line fits the article column.

A displayed formula wider than its column is shown in a box that scrolls sideways (see `_ext/dit_book.css`), so part
of it is hidden until the reader scrolls: a gradient formula cut after its first term reads as a different, sometimes
false, statement. These checks fail when a typeset display is wider than its container at the two widths a reader
is likely to use (a laptop window, 1300 px, and a narrow window or tablet, 800 px), and when a line of code is wider
than its block at 1300 px (code folded with `hide-input` is unfolded first; printed output is not checked). Skips only where no Chromium is installed.
"""
import pytest

from book_toc import CHAPTERS
from test_browser import CHROMIUM, _wait_for_math, browser, open_page  # noqa: F401  (fixtures shared with the checks)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium; .ci/run does)")
PAGES = ["book/intro", "book/notation", "book/notes_on_the_paper"] + CHAPTERS
WIDTHS = [1300, 800]
SLACK_PX = 1  # sub-pixel rounding

# Each display: its typeset width (scrollWidth of the MathJax box, which scrolls when too wide) against the width the
# column gives it (clientWidth), and its right edge against the article's.
WIDE_DISPLAYS = """() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const right = article.getBoundingClientRect().right;
  return [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter(el => el.offsetParent !== null)
    .map(el => {
      const box = el.getBoundingClientRect();
      const tex = (el.closest('.math') || el.parentElement).textContent || '';
      const label = (el.closest('.math, div') || el).id || '';
      return {needed: el.scrollWidth, given: el.clientWidth, over: box.right - right,
              where: label || el.closest('section')?.id || '?', tex: tex.slice(0, 90)};
    })
    .filter(d => d.needed > d.given + %d || d.over > %d);
}""" % (SLACK_PX, SLACK_PX)

WIDE_CODE = """() => {
  document.querySelectorAll('details.hide-input, details.above-input').forEach(d => d.open = true);
  return [...document.querySelectorAll('div.highlight pre')]
    .filter(el => !el.closest('.cell_output'))  // printed output is not code
    .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + %d)
    .map(el => {
      const long = el.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '');
      return {needed: el.scrollWidth, given: el.clientWidth, line: long.slice(0, 100),
              where: el.closest('section')?.id || '?'};
    });
}""" % SLACK_PX


@pytest.fixture(scope="module")
def measured(browser, html_dir):  # noqa: F811  (browser is the shared fixture)
    """Open each page once; measure its displays at every width (the viewport is resized, MathJax's CHTML output
    reflows with the page) and its code at 1300 px. Returns a function page name -> measurements."""
    cache = {}

    def _measure(name):
        if name not in cache:
            ctx = browser.new_context(viewport={"width": WIDTHS[0], "height": 1000})
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            page = ctx.new_page()
            try:
                page.goto((html_dir / f"{name}.html").as_uri(), wait_until="load")
                _wait_for_math(page)
                out = {}
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 1000})
                    page.wait_for_timeout(300)  # let the layout (and MathJax's fonts) settle before measuring
                    out[width] = page.evaluate(WIDE_DISPLAYS)
                page.set_viewport_size({"width": 1300, "height": 1000})
                page.wait_for_timeout(200)
                out["code"] = page.evaluate(WIDE_CODE)
            finally:
                ctx.close()
            cache[name] = out
        return cache[name]

    return _measure


@pytest.mark.parametrize("name", PAGES)
def test_every_display_fits_the_column(measured, name):
    problems = [f"  at {w} px: {d['needed']} px needed, {d['given']} px given, in #{d['where']}"
                for w in WIDTHS for d in measured(name)[w]]
    assert not problems, (f"{name}: displayed formula(s) wider than the column (split them with aligned):\n"
                          + "\n".join(problems))


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_code_line_fits_at_1300px(measured, name):
    wide = measured(name)["code"]
    assert not wide, (f"{name}: {len(wide)} code block(s) scroll sideways at 1300 px:\n" + "\n".join(
        f"  {d['needed']} px needed, {d['given']} px given, in #{d['where']}: {d['line']}" for d in wide))
