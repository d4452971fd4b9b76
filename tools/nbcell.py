"""Edit one cell of a chapter notebook from the shell, safely while others edit other cells.

Every write takes an exclusive lock on the notebook, re-reads it, changes one cell and replaces the file atomically,
so two people (or agents) editing different cells of one notebook never lose each other's work. Outputs are never
written: the notebooks are stored clean.

    python tools/nbcell.py list NB                      # index, id, type, first line of every cell
    python tools/nbcell.py get NB ID                    # a cell's source to stdout
    python tools/nbcell.py set NB ID FILE|-             # replace a cell's source
    python tools/nbcell.py insert NB (--after ID|--before ID|--end) --type markdown|code FILE|- [--tags a,b]
    python tools/nbcell.py replace NB OLDFILE NEWFILE      # replace text that occurs exactly once in the notebook
    python tools/nbcell.py delete NB ID
    python tools/nbcell.py tags NB ID a,b               # set a cell's tags (empty string clears them)
    python tools/nbcell.py new NB                       # create an empty notebook with the python3 kernel
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


@contextlib.contextmanager
def _locked(path: Path):
    lock = path.with_name("." + path.name + ".lock")
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, nb: dict) -> None:
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".nbcell-")
    with os.fdopen(fd, "w") as fh:
        json.dump(nb, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)


def _lines(text: str) -> list[str]:
    text = text.rstrip("\n")
    return [ln + "\n" for ln in text.split("\n")[:-1]] + [text.split("\n")[-1]] if text else []


def _src(arg: str) -> str:
    return sys.stdin.read() if arg == "-" else Path(arg).read_text()


def _index(nb: dict, cid: str) -> int:
    for i, c in enumerate(nb["cells"]):
        if c.get("id") == cid:
            return i
    raise SystemExit(f"no cell with id {cid!r}")


def _cell(kind: str, text: str, tags: list[str]) -> dict:
    c = {"cell_type": kind, "id": uuid.uuid4().hex[:8], "metadata": {"tags": tags} if tags else {},
         "source": _lines(text)}
    if kind == "code":
        c.update(outputs=[], execution_count=None)
    return c


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["list", "get", "set", "insert", "replace", "delete", "tags", "new"])
    p.add_argument("nb", type=Path)
    p.add_argument("rest", nargs="*")
    p.add_argument("--after")
    p.add_argument("--before")
    p.add_argument("--end", action="store_true")
    p.add_argument("--type", choices=["markdown", "code"], default="markdown")
    p.add_argument("--tags", default="")
    a = p.parse_intermixed_args(argv)
    if a.cmd == "new":
        if a.nb.exists():
            raise SystemExit(f"{a.nb} exists")
        _write(a.nb, {"cells": [], "metadata": {"kernelspec": KERNEL, "language_info": {"name": "python"}},
                      "nbformat": 4, "nbformat_minor": 5})
        return
    with _locked(a.nb):
        nb = _read(a.nb)
        if a.cmd == "list":
            for i, c in enumerate(nb["cells"]):
                first = "".join(c["source"]).split("\n")[0][:90]
                tags = ",".join(c.get("metadata", {}).get("tags", []))
                print(f"{i:3d} {c.get('id')} {c['cell_type'][:4]} {('[' + tags + '] ') if tags else ''}{first}")
            return
        if a.cmd == "get":
            sys.stdout.write("".join(nb["cells"][_index(nb, a.rest[0])]["source"]) + "\n")
            return
        if a.cmd == "set":
            nb["cells"][_index(nb, a.rest[0])]["source"] = _lines(_src(a.rest[1]))
        elif a.cmd == "replace":
            old, new = Path(a.rest[0]).read_text(), Path(a.rest[1]).read_text()
            hits = [c for c in nb["cells"] if old in "".join(c["source"])]
            count = sum("".join(c["source"]).count(old) for c in hits)
            if count != 1:
                raise SystemExit(f"the old text occurs {count} times in {a.nb}; it must occur exactly once")
            hits[0]["source"] = _lines("".join(hits[0]["source"]).replace(old, new))
            print(hits[0].get("id"))
        elif a.cmd == "delete":
            del nb["cells"][_index(nb, a.rest[0])]
        elif a.cmd == "tags":
            md = nb["cells"][_index(nb, a.rest[0])].setdefault("metadata", {})
            tags = [t for t in a.rest[1].split(",") if t] if len(a.rest) > 1 else []
            md.pop("tags", None) if not tags else md.__setitem__("tags", tags)
        elif a.cmd == "insert":
            cell = _cell(a.type, _src(a.rest[0]), [t for t in a.tags.split(",") if t])
            if a.end:
                pos = len(nb["cells"])
            elif a.after:
                pos = _index(nb, a.after) + 1
            elif a.before:
                pos = _index(nb, a.before)
            else:
                raise SystemExit("insert needs --after ID, --before ID or --end")
            nb["cells"].insert(pos, cell)
            print(cell["id"])
        _write(a.nb, nb)


if __name__ == "__main__":
    main()
