"""Dispatch ``python -m dit_lib.bench NAME [options]`` to ``dit_lib.bench.NAME.main``."""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "attention": "fast attention (polynomial method) vs SDPA vs Performer — chapter 4",
    "gradient": "chained low-rank gradient vs autograd through SDPA — chapter 5",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        print("usage: python -m dit_lib.bench {%s} [--quick] [--json PATH]\n" % ",".join(BENCHMARKS))
        for k, v in BENCHMARKS.items():
            print(f"  {k:10s} {v}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"dit_lib.bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
