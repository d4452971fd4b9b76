"""Numbers a reader can follow, checked on the built HTML (see `_ext/dit_numbering.py`).

* every reference to a numbered box or exercise reads exactly the number the box itself shows;
* no two boxes (or exercises) of the book show the same number;
* exercises are numbered per chapter, in order: Exercise N.1, N.2, ... on chapter N's page;
* the boxes that restate the paper show the paper's numbers, and no box of the book's own shows a bare number
  that could be mistaken for one of the paper's.
"""
import re
from collections import Counter

import pytest

from book_toc import CHAPTERS

BOX = re.compile(r'<div class="(?P<cls>[^"]*\badmonition\b[^"]*)" id="(?P<id>[^"]+)">\s*'
                 r'<p class="admonition-title"><span class="caption-number">(?P<num>[^<]+?)\s*</span>')
LINK = re.compile(r'<a class="reference internal" href="(?P<page>[^"#]*)#(?P<id>[^"]+)"[^>]*>(?P<text>.*?)</a>', re.S)
CHAPTER = re.compile(r"(?:^|/)(\d+)_[^/]*$")
PAPER_NUMBERS = {"Lemma 2.1", "Theorem 3.1", "Theorem 3.2", "Corollary 3.2.1", "Proposition 4.1", "Proposition 4.2",
                 "Theorem 4.1"}


def _pages(html_dir):
    return {p.relative_to(html_dir).with_suffix("").as_posix(): p.read_text(errors="replace")
            for p in html_dir.rglob("*.html") if "_static" not in p.parts and "_modules" not in p.parts}


@pytest.fixture(scope="module")
def boxes(html_dir):
    """(page, id) -> (classes, shown number such as 'Theorem 3.1') for every numbered box and exercise."""
    out = {}
    for name, text in _pages(html_dir).items():
        for m in BOX.finditer(text):
            out[name, m["id"]] = (m["cls"].split(), " ".join(m["num"].split()))
    assert out, "no numbered box found in the built book"
    return out


def test_every_reference_reads_the_number_of_its_target(html_dir, boxes):
    wrong = []
    for name, text in _pages(html_dir).items():
        folder = name.rsplit("/", 1)[0] if "/" in name else ""
        for m in LINK.finditer(text):
            page = m["page"][:-5] if m["page"].endswith(".html") else m["page"]
            target = (f"{folder}/{page}".strip("/") if page else name, m["id"])
            if target not in boxes:
                continue
            shown = " ".join(re.sub(r"<[^>]+>", "", m["text"]).split())
            number = boxes[target][1]
            # a link that starts with a kind and a number ("Theorem 3.1", "Exercise 4.2 (title)") must read the
            # number its target shows; a link with free text ("exercise 2") is not a number and is not checked
            lead = re.match(r"^[A-Z][a-z]+ [0-9][0-9a-z.]*", shown)
            if lead and lead.group(0).rstrip(".") != number:
                wrong.append(f"{name}: link to {target[1]} reads {shown!r}, the box shows {number!r}")
            # a bare number ("1.2" in the teaching guide's table) must be the target's number
            bare = re.match(r"^[0-9]+(\.[0-9a-z]+)+", shown)
            if bare and not number.endswith(" " + bare.group(0)):
                wrong.append(f"{name}: link to {target[1]} reads {shown!r}, the box shows {number!r}")
    assert not wrong, "\n".join(wrong)


def test_no_two_boxes_share_a_number(boxes):
    counts = Counter(num for _, num in boxes.values())
    dup = {num: [k for k, v in boxes.items() if v[1] == num] for num, c in counts.items() if c > 1}
    assert not dup, f"numbers shown by more than one box: {dup}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_exercises_numbered_per_chapter(boxes, chapter):
    n = CHAPTER.search(chapter)
    if n is None:
        pytest.skip(f"{chapter} has no chapter number")
    shown = [num for (page, _), (cls, num) in boxes.items() if page == chapter and "exercise" in cls]
    expected = [f"Exercise {int(n.group(1))}.{k}" for k in range(1, len(shown) + 1)]
    assert shown == expected, f"{chapter}: exercises read {shown}"


def test_paper_boxes_carry_the_papers_numbers(boxes):
    paper = {num for cls, num in boxes.values() if any(c.startswith("paper-") for c in cls)}
    assert paper >= {"Lemma 2.1", "Theorem 3.1", "Proposition 4.1", "Proposition 4.2", "Theorem 4.1"}, paper
    own = [(k, num) for k, (cls, num) in boxes.items()
           if "exercise" not in cls and not any(c.startswith("paper-") for c in cls)]
    bare = [(k, num) for k, num in own if re.fullmatch(r"[A-Z][a-z]+ [0-9.]+", num)]
    assert not bare, f"boxes of the book's own with a number like the paper's: {bare}"
    assert not [(k, num) for k, num in own if num in PAPER_NUMBERS]
