"""The chapters listed in the repository's _toc.yml (shared by the built-book tests)."""
import os
from pathlib import Path

import yaml


def toc_files(toc: dict) -> list[str]:
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    return files


def chapter_ids(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return [f for f in toc_files(toc) if (root / f"{f}.ipynb").exists()]


ROOT = Path(__file__).resolve().parents[2]
#: chapters of the repository's table of contents
REPO_CHAPTERS = chapter_ids(ROOT)
#: chapters of the built book under test (the scratch copy named by DIT_BUILT_BOOK), else the repository's
_BUILT = os.environ.get("DIT_BUILT_BOOK")
CHAPTERS = chapter_ids(Path(_BUILT)) if _BUILT and (Path(_BUILT) / "_toc.yml").exists() else REPO_CHAPTERS
