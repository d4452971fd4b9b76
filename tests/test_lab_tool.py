"""`make lab`'s working copy (tools/lab.py, issue 11): macros from the one source, readable citations, book/ untouched."""
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lab():
    spec = importlib.util.spec_from_file_location("dit_lab", ROOT / "tools" / "lab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_working_copy_has_the_books_macros_and_readable_citations(lab, tmp_path):
    before = {p: p.read_bytes() for p in (ROOT / "book").glob("*.ipynb")}
    written = lab.prepare(tmp_path)
    assert {p.name for p in written} == {p.name for p in before}
    assert {p: p.read_bytes() for p in (ROOT / "book").glob("*.ipynb")} == before     # book/ untouched
    macros = json.loads((ROOT / "_ext" / "macros.json").read_text())
    for path in written:
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "markdown")["source"]
        assert first.startswith("---\nmath:\n")
        for name, body in macros.items():                      # every macro, with the same expansion
            assert f"  '\\{name}': {json.dumps(body)}\n" in first
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert "{cite:" not in text
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code")
    assert (tmp_path / ".lab-settings").is_dir()


def test_citations_become_author_year(lab):
    refs = {"a23": ("Alman and Song", "2023"), "h24": ("Hu et al.", "2024")}
    assert lab.readable_citations("see {cite:t}`h24`.", refs) == "see Hu et al. (2024)."
    assert lab.readable_citations("{cite:p}`a23,h24`", refs) == "(Alman and Song, 2023; Hu et al., 2024)"
    assert lab.readable_citations("{cite:t}`zz`", refs) == "zz (?)"


def test_lab_starts_as_root_and_its_copy_is_ignored_by_git(lab, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cmd = lab.lab_command(ROOT / "_lab", [])
    assert "--allow-root" in cmd and f"--ServerApp.root_dir={ROOT / '_lab'}" in cmd
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab.lab_command(ROOT / "_lab", [])
    ignored = subprocess.run(["git", "check-ignore", "-q", "_lab/01_subspace_data.ipynb"], cwd=ROOT)
    assert ignored.returncode == 0, "_lab/ must be git-ignored so that the lab's saves never show in git status"
