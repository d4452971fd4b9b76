"""Sphinx extension of the book: static rendering mode and offline assets.

* Sets ``DIT_BOOK_BUILD=1`` before any notebook runs, so kernels started by the build render figures as
  static HTML and explorers as plotly sliders (never as widgets that would be dead without a kernel).
* Serves plotly.js once for the whole site (copied from the installed ``plotly`` package) and MathJax 3
  from a local copy (unpacked from the npm registry's ``mathjax`` package with ``npm pack``), so the
  built book works with no network. If MathJax cannot be had, the build says so and keeps the CDN.
* Gives MathJax the book's TeX macros from ``_ext/macros.json``, the one source of them that ``make lab``
  (``tools/lab.py``) also reads, so every formula renders the same in the HTML book and in JupyterLab.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
os.environ["DIT_BOOK_BUILD"] = "1"

MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"
MACROS_FILE = Path(__file__).with_name("macros.json")


def tex_macros() -> dict[str, str]:
    """The book's TeX macros: name (no backslash) to its expansion, e.g. ``{"N": "\\mathcal{N}"}``."""
    return json.loads(MACROS_FILE.read_text())


def _set_macros(app, config) -> None:
    mj = dict(config.mathjax3_config or {})
    tex = dict(mj.get("tex", {}))
    tex["macros"] = {**tex.get("macros", {}), **tex_macros()}
    mj["tex"] = tex
    config.mathjax3_config = mj


def _plotly_js(dest: Path) -> Path:
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    out = dest / "plotly" / "plotly.min.js"
    if not out.exists() or out.stat().st_size != src.stat().st_size:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    return out


def _mathjax(dest: Path) -> str | None:
    """Unpack MathJax's es5 build into ``dest/mathjax``; return None on success, else the reason."""
    target = dest / "mathjax"
    stamp = target / f".version-{MATHJAX_VERSION}"
    if stamp.exists() and (target / MATHJAX_ENTRY).exists():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"], cwd=tmp, check=True,
                           capture_output=True, timeout=180)
        except (subprocess.SubprocessError, OSError) as exc:
            return f"npm pack mathjax@{MATHJAX_VERSION} failed ({exc})"
        tgz = next(Path(tmp).glob("mathjax-*.tgz"))
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        es5 = Path(tmp) / "package" / "es5"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # The entry bundle plus what it loads lazily; the speech-rule engine (sre, 4 MB) is left out.
        shutil.copy(es5 / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
        for sub in ("input", "output", "ui", "a11y", "adaptors"):
            if (es5 / sub).exists():
                shutil.copytree(es5 / sub, target / sub)
    stamp.touch()
    return None


def _setup_assets(app) -> None:
    dest = Path(app.srcdir) / "_assets"
    dest.mkdir(exist_ok=True)
    _plotly_js(dest)
    app.add_js_file("plotly/plotly.min.js")
    shutil.copyfile(Path(__file__).with_name("dit_book.css"), dest / "dit_book.css")  # the book's own styles
    app.add_css_file("dit_book.css")
    reason = _mathjax(dest)
    if reason is None:
        app.config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
    else:
        # Not a warning: the book still builds; it then needs a network to typeset math.
        logger.info(f"[dit_book] local MathJax unavailable ({reason}); falling back to the CDN: "
                    f"{app.config.mathjax_path}")
        print(f"dit_book: local MathJax unavailable ({reason}); math will load from the CDN")
    app.config.html_static_path = list(app.config.html_static_path) + [str(dest)]


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated script tags: sphinx-thebe registers its inline config twice under jupyter-book 1.x,
    which redeclares a ``const`` and throws a JavaScript error on every page."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("config-inited", _set_macros)
    app.connect("builder-inited", _setup_assets)
    app.connect("html-page-context", _dedupe_scripts, priority=900)  # after the theme adds its scripts
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
