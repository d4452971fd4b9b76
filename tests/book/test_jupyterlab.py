"""`make lab` in a real JupyterLab, driven by headless Chromium (issue 11).

Starts ``jupyter lab`` (as ``tools/lab.py`` does: working copy, jupyterlab-myst, the book's macros) on a free port
over a temporary working copy of the book, opens a chapter, runs every cell, moves an explorer's slider with the
keyboard and checks that the plot redraws, that no cell shows an error, that MyST boxes render (no directive
source, solutions folded) and that no formula fails to typeset. Skips, saying why, when Chromium is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = os.environ.get("DIT_LAB_CHAPTER", "01_subspace_data.ipynb")   # the quickest chapter with explorers
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "dit-lab-test"
RUN_ALL_S = 900


def _lab_module():
    spec = importlib.util.spec_from_file_location("dit_lab", ROOT / "tools" / "lab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install chromium): the JupyterLab check needs a browser")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    lab_tool = _lab_module()
    dest = tmp_path_factory.mktemp("lab")
    lab_tool.prepare(dest)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DIT_BOOK_BUILD", "DIT_LIVE_CHECK")}
    env.update(OMP_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(dest / ".jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(dest / ".jupyter-runtime"))
    cmd = lab_tool.lab_command(dest, ["--no-browser", f"--port={port}", "--ip=127.0.0.1",
                                      f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True"])
    if "--allow-root" not in cmd:
        cmd.append("--allow-root")   # harmless when not root; the tool adds it itself as root
    log_path = dest.parent / "lab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=dest, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {log_path.read_text()[-2000:]}")
                time.sleep(1)
        else:
            pytest.fail(f"jupyter lab did not answer: {log_path.read_text()[-2000:]}")
        yield url, dest
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _plot_title(page) -> str:
    return page.evaluate("""() => {
        const t = document.querySelector('.jp-OutputArea .widget-output .js-plotly-plot .gtitle');
        return t ? t.textContent : null; }""")


def _error_outputs(page) -> list[str]:
    """Error outputs of the open notebook's cells, and stderr text showing a traceback (widget output included)."""
    return page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const model = nb.widgets.flatMap(c => c.model.type === 'code' ? c.model.outputs.toJSON() : [])
            .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);
        const shown = [...document.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => e.innerText).filter(t => /Traceback|Error/.test(t));
        return model.concat(shown); }""")


def test_run_all_and_move_a_slider_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, dest = lab
    source = (ROOT / "book" / CHAPTER).read_bytes()
    shots = Path(os.environ.get("DIT_LAB_SHOTS", tmp_path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/lab/tree/{CHAPTER}?token={TOKEN}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=120_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=120_000)
        page.wait_for_selector(".jp-MarkdownCell .myst", timeout=60_000)
        # every Markdown cell rendered by the MyST extension before anything is counted (a cold start is slow)
        page.wait_for_function("""() => {
            const md = window.jupyterapp.shell.currentWidget.content.widgets.filter(c => c.model.type === 'markdown');
            return md.length > 0 && md.every(c => c.node.querySelector('.myst'))
                   && document.querySelectorAll('.jp-MarkdownCell .katex').length > 0; }""",
                               timeout=120_000, polling=1000)

        # MyST rendered: no directive source left, boxes drawn, solutions folded, no failed formula
        myst = page.evaluate("""() => {
            const md = [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown, .jp-MarkdownCell .myst')];
            const text = md.map(e => e.innerText).join('\\n');
            return {raw: (text.match(/```\\{(prf:|exercise|solution|admonition)/g) || []).length,
                    rawRoles: (text.match(/\\{(cite|prf:ref|ref|numref|eq)\\}`/g) || []).length,
                    details: document.querySelectorAll('.jp-MarkdownCell details').length,
                    open: document.querySelectorAll('.jp-MarkdownCell details[open]').length,
                    merror: document.querySelectorAll('mjx-merror, .katex-error').length,
                    // the book's \\N is the Gaussian (calligraphic N), never KaTeX's built-in naturals
                    gaussN: [...document.querySelectorAll('.jp-MarkdownCell .katex')].filter(e =>
                        /\\N(?![a-zA-Z])/.test((e.querySelector('annotation') || {}).textContent || ''))
                        .map(e => e.querySelector('.mathcal') ? 'cal' : 'other')};
        }""")
        assert myst["raw"] == 0 and myst["rawRoles"] == 0, f"MyST shown as source in the lab: {myst}"
        assert myst["merror"] == 0, f"formulas failed to typeset (macros?): {myst}"
        assert "other" not in myst["gaussN"], f"\\N is not the book's Gaussian in the lab: {myst}"
        if CHAPTER.startswith("01_"):     # chapter 1 writes its Gaussians with \N
            assert myst["gaussN"], f"no \\N found to check: {myst}"

        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function("""() => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            const code = nb.widgets.filter(c => c.model.type === 'code');
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            if (code.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'))) { return true; }
            return kernel && kernel.status === 'idle' && code.length > 0 &&
                   code.every(c => c.model.executionCount !== null && !c.promptNode.textContent.includes('*'));
        }""", timeout=RUN_ALL_S * 1000, polling=2000)
        page.wait_for_selector(".jp-OutputArea .widget-output .js-plotly-plot", timeout=60_000)

        errs = _error_outputs(page)
        assert not errs, f"error output after Run All: {errs[0][:1500]}"

        slider = page.locator(".jp-OutputArea .widget-hslider").first
        slider.scroll_into_view_if_needed()
        before = _plot_title(page)
        page.screenshot(path=str(shots / "lab_before.png"))
        handle = slider.locator(".noUi-handle").first
        handle.focus()
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => {{ const t = document.querySelector("
                               f"'.jp-OutputArea .widget-output .js-plotly-plot .gtitle');"
                               f" return t && t.textContent !== {before!r}; }}", timeout=60_000)
        redraw = time.perf_counter() - t0
        after = _plot_title(page)
        page.screenshot(path=str(shots / "lab_after.png"))
        errs = _error_outputs(page)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=60_000)
        browser.close()
    saved = json.loads((dest / CHAPTER).read_text())
    assert any(c.get("outputs") for c in saved["cells"]), "the lab saved no outputs into its working copy"
    assert (ROOT / "book" / CHAPTER).read_bytes() == source, "running and saving in the lab changed book/"
    assert after and after != before, (before, after)
    assert not errs, f"error output after moving the slider: {errs[0][:1500]}"
    print(f"\nJupyterLab: {CHAPTER} ran; slider moved: {before!r} -> {after!r} in {redraw:.2f} s")
