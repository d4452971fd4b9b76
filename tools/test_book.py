"""Prepare the scratch copy of the book that `make test` executes with nbmake and then builds with -W.

Usage: python tools/test_book.py prepare DEST     make the scratch copy
       python tools/test_book.py chapters DEST    print the notebook chapters its _toc.yml lists

The copy holds the book sources and the build configuration with execution switched off: the notebooks
there are executed (in place) by nbmake first, and the -W build renders exactly those outputs.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ["_config.yml", "_toc.yml", "book", "_ext"]


def prepare(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    if (ROOT / "_assets").is_dir():  # reuse assets fetched by an earlier build
        shutil.copytree(ROOT / "_assets", dest / "_assets")
    cfg = dest / "_config.yml"
    text, n = re.subn(r"execute_notebooks:\s*\w+", 'execute_notebooks: "off"', cfg.read_text())
    if n != 1:
        sys.exit("tools/test_book.py: could not find execute_notebooks in _config.yml")
    cfg.write_text(text)
    print(f"prepared {dest} (execution off; nbmake executes the notebooks in place)")


def chapters(src: Path) -> list[Path]:
    """Every notebook that _toc.yml lists: nbmake runs exactly these, so none can be left out."""
    sys.path.insert(0, str(ROOT / "tests" / "book"))
    from book_toc import chapter_ids

    return [src / f"{c}.ipynb" for c in chapter_ids(src)]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "chapters"):
        sys.exit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(Path(sys.argv[2]))
    else:
        print(" ".join(str(p) for p in chapters(Path(sys.argv[2]))))
