"""Fixtures for the checks of the built book (run by `make test` after the -W build).

DIT_BUILT_BOOK names the book source folder whose `_build/html` holds the built site (the scratch copy that
nbmake executed). Without it these tests skip and say why.
"""
import os
from pathlib import Path

import pytest
import yaml
from book_toc import toc_files


@pytest.fixture(scope="session")
def book_src() -> Path:
    src = os.environ.get("DIT_BUILT_BOOK")
    if not src:
        pytest.skip("DIT_BUILT_BOOK is not set: run these through `make test`, which builds the book first")
    path = Path(src)
    if not (path / "_build" / "html" / "index.html").exists():
        pytest.fail(f"no built book under {path}/_build/html: the -W build did not produce it")
    return path


@pytest.fixture(scope="session")
def html_dir(book_src) -> Path:
    return book_src / "_build" / "html"


@pytest.fixture(scope="session")
def toc_entries(book_src) -> list[str]:
    return toc_files(yaml.safe_load((book_src / "_toc.yml").read_text()))


@pytest.fixture(scope="session")
def chapters(book_src, toc_entries) -> list[str]:
    """The toc entries that are notebooks (the executable chapters)."""
    return [f for f in toc_entries if (book_src / f"{f}.ipynb").exists()]
