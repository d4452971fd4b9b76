"""Sphinx extension of the book: numbers a reader can follow.

Sphinx (with sphinx-proof and sphinx-exercise) numbers every box type, exercise and displayed equation with one
counter running through the whole book, so the paper's Proposition 4.1 came out as "Theorem 4" and chapter 4's second
exercise as "Exercise 11". After Sphinx has assigned its numbers (``env-get-updated``), this extension replaces them:

* a box that restates the paper carries the paper's number, given by a class on the box,
  ``:class: paper-3-2-1`` for Corollary 3.2.1 (``paper-2-1`` for Lemma 2.1, ...);
* every other box is the book's own and is numbered by chapter and letter, in order of appearance across all box
  types of the chapter: Definition 1.a, Definition 1.b, Theorem 4.c, ... (letters never collide with the paper's
  digits);
* exercises, displayed equations, figures and tables are numbered per chapter: Exercise 4.2 is the second exercise of
  chapter 4, equation (5.3) the third numbered display of chapter 5.

The chapter number is the leading number of the page's file name (``book/04_seth_thresholds`` is chapter 4); pages
without one (notation, notes) keep a plain count of their own. Cross-references (``{prf:ref}``, ``{numref}``,
``{eq}``) and the boxes' own titles read the same table, so they cannot disagree.
"""
from __future__ import annotations

import re
import string

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

PAPER_CLASS = re.compile(r"^paper-(\d+(?:-\d+)*)$")
CHAPTER = re.compile(r"(?:^|/)(\d+)_[^/]*$")


def _proof_types() -> set[str]:
    try:
        from sphinx_proof.proof_type import PROOF_TYPES
    except ImportError:  # sphinx-proof absent: nothing of its kind to renumber
        return set()
    return set(PROOF_TYPES)


def chapter_of(docname: str) -> int | None:
    """The chapter number of a page (``book/05_lowrank_gradients`` -> 5), or None for a page outside the chapters."""
    m = CHAPTER.search(docname)
    return int(m.group(1)) if m else None


def letters(k: int) -> str:
    """1 -> 'a', 26 -> 'z', 27 -> 'aa': the book's own boxes are numbered by chapter and letter."""
    out = ""
    while k > 0:
        k, rem = divmod(k - 1, 26)
        out = string.ascii_lowercase[rem] + out
    return out


def paper_number(classes) -> tuple[str, ...] | None:
    """The paper's number a box carries in a ``paper-N-M`` class, as a tuple of strings, else None."""
    for c in classes:
        m = PAPER_CLASS.match(c)
        if m:
            return tuple(m.group(1).split("-"))
    return None


def _renumber(app, env) -> list[str]:
    proof_types = _proof_types()
    for docname, by_type in env.toc_fignumbers.items():
        if not by_type:
            continue
        chapter = chapter_of(docname)
        head = () if chapter is None else (str(chapter),)
        # Every other kind: a count per chapter, in the order Sphinx found them (document order within a kind).
        for figtype, numbers in by_type.items():
            if figtype in proof_types:
                continue
            ordered = sorted(numbers, key=lambda i: numbers[i])
            by_type[figtype] = {i: head + (str(k),) for k, i in enumerate(ordered, start=1)}
        boxes = {i: t for t, numbers in by_type.items() if t in proof_types for i in numbers}
        if not boxes:
            continue
        # Boxes: one letter sequence across all box types of the chapter, in document order.
        doctree = env.get_doctree(docname)
        k = 0
        for node in doctree.findall(nodes.Element):
            ids = [i for i in node.get("ids", []) if i in boxes]
            if not ids:
                continue
            typ = boxes[ids[0]]
            paper = paper_number(node.get("classes", []))
            if paper is None:
                k += 1
                number = head + (letters(k),) if head else (letters(k),)
            else:
                number = paper
            for i in ids:
                by_type[typ][i] = number
    return []


def setup(app):
    app.connect("env-get-updated", _renumber, priority=900)  # after Sphinx's TocTreeCollector assigned its numbers
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
