"""Headless Chromium on the built book, offline: pages load cleanly, math is typeset, plotly figures are drawn,
and moving a slider changes the plotted data. Skips (with the reason) only where no Chromium is installed."""
import json
import shutil

import pytest

from book_toc import CHAPTERS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium; .ci/run does)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PAGES = ["book/intro", "book/notation"] + CHAPTERS


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, html_dir):
    """Open a built page with every non-file request blocked; collect JS errors and blocked requests."""
    opened = []

    def _open(name):
        ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
        page = ctx.new_page()
        page.errors, page.blocked = [], []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))

        def route(r):
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                page.blocked.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page.goto((html_dir / f"{name}.html").as_uri(), wait_until="load")
        opened.append(ctx)
        return page

    yield _open
    for ctx in opened:
        ctx.close()


def _wait_for_math(page):
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
    page.evaluate("() => MathJax.startup.promise")


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_with_math_typeset(open_page, name):
    page = open_page(name)
    _wait_for_math(page)
    assert page.locator("mjx-container").count() > 0, f"{name}: no typeset math"
    assert page.locator("mjx-merror").count() == 0, f"{name}: MathJax reports an error in a formula"
    assert not page.errors, f"{name}: JavaScript errors: {page.errors}"
    needed = [u for u in page.blocked if "mathjax" in u.lower() or "plotly" in u.lower()]
    assert not needed, f"{name}: needs the network for {needed}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_figures_drawn_and_sliders_change_data(open_page, name):
    page = open_page(name)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", timeout=30000)
    n_figs = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
    drawn = page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                          ".filter(g => g.querySelector('.main-svg') && g.data && g.data.length).length")
    assert n_figs > 0 and drawn == n_figs, f"{name}: {drawn} of {n_figs} plotly figures drawn"
    sliders = page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                            ".map((g, i) => [i, (g.layout.sliders || []).length]).filter(x => x[1] > 0).map(x => x[0])")
    assert sliders, f"{name}: no figure with sliders"
    for idx in sliders:
        gd = f"document.querySelectorAll('.plotly-graph-div')[{idx}]"
        n_sliders = page.evaluate(f"() => {gd}.layout.sliders.length")
        for k in range(n_sliders):  # every slider of every explorer must change the plotted data
            page.evaluate(f"() => {gd}.scrollIntoView({{block: 'center'}})")
            before = page.evaluate(f"() => JSON.stringify([{gd}.data, {gd}.layout.title])")
            active, n_steps = page.evaluate(
                f"() => [{gd}._fullLayout.sliders[{k}].active, {gd}.layout.sliders[{k}].steps.length]")
            if n_steps < 2:
                continue
            rail = page.locator(f".plotly-graph-div >> nth={idx}").locator(".slider-rail-touch-rect").nth(k)
            box = rail.bounding_box()
            frac = 0.02 if active == n_steps - 1 else 0.98  # the step opposite to the active one
            page.mouse.click(box["x"] + frac * box["width"], box["y"] + box["height"] / 2)
            page.wait_for_function(f"() => JSON.stringify([{gd}.data, {gd}.layout.title]) !== {json.dumps(before)}",
                                   timeout=10000)
            assert page.evaluate(f"() => {gd}._fullLayout.sliders[{k}].active") != active, \
                f"{name}: figure {idx}, slider {k} did not move"
        assert page.evaluate(f"() => {gd}.querySelector('.main-svg') !== null")
    assert not page.errors, f"{name}: JavaScript errors: {page.errors}"
