"""The book's numbering extension (`_ext/dit_numbering.py`): chapter numbers from page names, letters for the book's
own boxes, the paper's numbers from a box's class. The built book is checked by tests/book/test_numbering.py."""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "dit_numbering", Path(__file__).resolve().parents[1] / "_ext" / "dit_numbering.py")
numbering = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numbering)


@pytest.mark.parametrize("doc, chapter", [("book/04_seth_thresholds", 4), ("book/00_diffusion_primer", 0),
                                          ("book/notation", None), ("book/benchmarks", None), ("12_x", 12)])
def test_chapter_of(doc, chapter):
    assert numbering.chapter_of(doc) == chapter


def test_letters_run_a_to_z_then_two_letters():
    assert [numbering.letters(k) for k in (1, 2, 26, 27, 28, 52, 53)] == ["a", "b", "z", "aa", "ab", "az", "ba"]
    assert len({numbering.letters(k) for k in range(1, 200)}) == 199


def test_paper_number_from_class():
    assert numbering.paper_number(["proof", "paper-3-2-1"]) == ("3", "2", "1")
    assert numbering.paper_number(["paper-4-1", "other"]) == ("4", "1")
    assert numbering.paper_number(["proof", "theorem"]) is None
    assert numbering.paper_number(["paper-", "paper-x-1"]) is None
