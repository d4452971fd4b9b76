"""`make lab`: JupyterLab on a working copy of the book, with live explorers, MyST rendered and the book's macros.

Usage: python tools/lab.py prepare [DEST]        make or refresh the working copy (default: _lab)
       python tools/lab.py run [-- LAB ARGS...]   prepare _lab, then start JupyterLab on it

Why a working copy: JupyterLab saves outputs into the notebooks it opens, and the book's notebooks are stored
without outputs, so the lab works on ``_lab/`` (git-ignored, beside ``book/`` so that ``../bench_results`` and
the like resolve the same) and ``book/`` stays clean whatever is run and saved. A notebook already in ``_lab/``
that is newer than its source in ``book/`` is kept (it holds the reader's work); delete it to get a fresh copy.

Each copied chapter gets, in its first Markdown cell, a MyST front-matter block with the book's TeX macros read
from ``_ext/macros.json`` (the same file the HTML build gives MathJax), and its ``{cite:t}``/``{cite:p}`` roles
become "Author (year)" text from ``book/references.bib`` (jupyterlab-myst shows bare keys otherwise).
JupyterLab starts with news and update pop-ups off, and with ``--allow-root`` when run as root (containers).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
MACROS = ROOT / "_ext" / "macros.json"
DEFAULT_DEST = ROOT / "_lab"
# Settings that keep a first start quiet: no "receive news?" question, no update check.
# Every cell rendered, not only those in view (windowing off): boxes and formulas are all there when a reader scrolls.
SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"checkForUpdates": False, "fetchNews": "false"},
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}
CITE = re.compile(r"\{cite:(t|p|ts|ps|alp|author|year)\}`([^`]+)`")


def macro_frontmatter() -> str:
    """A MyST front-matter block declaring the book's macros (``math:`` maps ``\\R`` to its expansion)."""
    macros = json.loads(MACROS.read_text())
    lines = ["---", "math:"] + [f"  '\\{name}': {json.dumps(body)}" for name, body in macros.items()] + ["---", ""]
    return "\n".join(lines)


def _authors_years() -> dict[str, tuple[str, str]]:
    """Bib key to (short author list, year), from book/references.bib."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(BOOK / "references.bib")).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        who = (last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2
               else f"{last[0]} et al." if last else key)
        out[key] = (who, entry.fields.get("year", "n.d."))
    return out


def readable_citations(text: str, refs: dict[str, tuple[str, str]]) -> str:
    """``{cite:t}`a,b``` -> "A (2023); B (2024)", ``{cite:p}`a``` -> "(A, 2023)"; unknown keys stay as keys."""
    def one(match):
        kind, keys = match.group(1), [k.strip() for k in match.group(2).split(",")]
        found = [refs.get(k, (k, "?")) for k in keys]
        if kind in ("t", "ts"):
            return "; ".join(f"{who} ({year})" for who, year in found)
        if kind == "author":
            return "; ".join(who for who, _ in found)
        if kind == "year":
            return "; ".join(year for _, year in found)
        return "(" + "; ".join(f"{who}, {year}" for who, year in found) + ")"

    return CITE.sub(one, text)


def lab_notebook(nb: dict, front: str, refs: dict) -> dict:
    """The working-copy version of one chapter: macros front matter first, citations readable, no outputs."""
    first = True
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"])
        src = readable_citations(src, refs)
        if first:
            src, first = front + src, False
        cell["source"] = src
    return nb


def prepare(dest: Path = DEFAULT_DEST) -> list[Path]:
    """Make or refresh the working copy; return the notebooks written."""
    dest.mkdir(exist_ok=True)
    front, refs, written = macro_frontmatter(), _authors_years(), []
    for src in sorted(BOOK.rglob("*")):
        rel = src.relative_to(BOOK)
        if src.is_dir() or any(part.startswith(".") for part in rel.parts):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix != ".ipynb":
            shutil.copy2(src, out)
            continue
        if out.exists() and out.stat().st_mtime > src.stat().st_mtime:
            print(f"lab: keeping your {out} (newer than book/{rel}; delete it for a fresh copy)")
            continue
        nb = lab_notebook(json.loads(src.read_text()), front, refs)
        out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(out)
    if written:   # trusted: outputs and MyST HTML render without a "trust this notebook?" step
        subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, written)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name, value in SETTINGS.items():
        path = dest / ".lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=1))
    return written


def lab_command(dest: Path, extra: list[str]) -> list[str]:
    """The ``jupyter lab`` command line for the working copy ``dest``."""
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={dest}",
           f"--LabApp.user_settings_dir={dest / '.lab-settings'}",
           f"--LabApp.workspaces_dir={dest / '.lab-workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd += ["--allow-root", "--no-browser"]      # containers run as root and have no browser
    return cmd + extra


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("prepare", "run"):
        sys.exit(__doc__)
    if argv[0] == "prepare":
        dest = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_DEST
        print(f"lab: {len(prepare(dest))} notebooks copied to {dest}")
        return
    extra = argv[2:] if len(argv) > 1 and argv[1] == "--" else argv[1:]
    prepare(DEFAULT_DEST)
    print(f"lab: JupyterLab on the working copy {DEFAULT_DEST.relative_to(ROOT)}/ (book/ stays as committed)")
    os.execv(sys.executable, lab_command(DEFAULT_DEST, extra))


if __name__ == "__main__":
    main(sys.argv[1:])
