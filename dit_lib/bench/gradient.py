"""Benchmark: the chained low-rank gradient against autograd through exact attention (chapter 5, Theorem 4.1).

``python -m dit_lib.bench gradient [--quick] [--json PATH]``

For each sequence length ``L`` it draws one problem (:func:`dit_lib.gradients.random_problem`: entries in
``[-B, B]``, orthogonal ``X`` and ``Y``, a teacher target) and measures, in float32 on the default device,

* ``autograd_sdpa`` — ``dLoss/dX`` by autograd through :func:`torch.nn.functional.scaled_dot_product_attention`
  (time ``O(L^2 d)``; on CPU torch's fused flash kernel);
* ``lowrank`` — :func:`dit_lib.gradients.lowrank_gradient` of degree ``g`` (time ``O(L k1 d^2)``);

and, where ``L <= --exact-max-L``, the relative max error ``max|G - G_exact| / max|G_exact|`` of both against the
float64 exact gradient (blocked formula :func:`dit_lib.gradients.exact_gradient`). Records carry
``L, d, B, method, degree, rank, seconds, rel_error`` (plus ``speedup``, ``dtype``, ``device``, ``reference``).
``seconds`` is the median of ``--repeats`` runs, after one untimed warm-up run for ``L < 16384`` (larger sizes
skip it: the code paths are warm by then and a run of autograd takes many seconds). Timings are wall-clock on a
machine that may be shared: read ratios, not digits. Speed goals are checked here and printed, never in timed tests.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

import torch

from .. import gradients as G
from ..attention import default_device

#: Targets of the issue: at L = 32768, d = 8, B = 1: >= 20x faster than autograd through SDPA, and relative
#: max error <= 1e-2 measured at L = 8192 against the float64 exact gradient.
TARGET_SPEEDUP = (32768, 20.0)
TARGET_ERROR = (8192, 1e-2)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m dit_lib.bench gradient", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--json", metavar="PATH", help="write the records to PATH")
    ap.add_argument("--sizes", type=int, nargs="+", metavar="L", help="sequence lengths (override the preset)")
    ap.add_argument("--d", type=int, default=8, help="token dimension (default 8)")
    ap.add_argument("--B", type=float, default=1.0, help="entry bound (default 1)")
    ap.add_argument("--degree", type=int, default=3, help="polynomial degree g of the low-rank gradient (default 3)")
    ap.add_argument("--extra-degrees", type=int, nargs="*", default=None,
                    help="further degrees timed at the largest L with an exact reference (default: g-1, g+1)")
    ap.add_argument("--exact-max-L", type=int, default=None,
                    help="largest L with a float64 exact reference (default 8192; quick: all)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (default 3; quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice; 1 gives steadier timings on a busy machine)")
    return ap


def _timed(fn: Callable[[], torch.Tensor], repeats: int, warmup: bool, device: str) -> tuple[float, torch.Tensor]:
    def once():
        t0 = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    if warmup:
        once()
    runs = [once() for _ in range(repeats)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def run(sizes: list[int], *, d: int, B: float, degree: int, extra_degrees: list[int], exact_max_L: int,
        repeats: int, seed: int, device: str, log=print) -> list[dict]:
    """Measure every method at every size; return the records (see the module docstring)."""
    records = []
    dtype = torch.float32
    # one warm-up of both code paths so that the first size does not pay for library initialisation
    warm = G.random_problem(256, d, B, seed=seed, device=device).to(dtype)
    G.autograd_gradient(warm, backend="sdpa")
    G.lowrank_gradient(warm, degree=degree, on_cancel="ignore")
    largest_ref = max((L for L in sizes if L <= exact_max_L), default=None)
    for L in sizes:
        prob64 = G.random_problem(L, d, B, seed=seed, device=device)
        prob = prob64.to(dtype)
        exact = G.exact_gradient(prob64) if L <= exact_max_L else None
        ref = "float64 exact (blocked formula)" if exact is not None else None
        warmup = L < 16384
        t_sdpa, g_sdpa = _timed(lambda: G.autograd_gradient(prob, backend="sdpa"), repeats, warmup, device)
        base = dict(L=L, d=d, B=B, dtype="float32", device=device, reference=ref)
        records.append(dict(base, method="autograd_sdpa", degree=None, rank=None, seconds=t_sdpa,
                            rel_error=None if exact is None else G.relative_max_error(g_sdpa, exact), speedup=1.0))
        log(_row(records[-1]))
        degrees = [degree] + (list(extra_degrees) if L == largest_ref else [])
        for g in degrees:
            t_lr, res = _timed(lambda: G.lowrank_gradient(prob, degree=g, on_cancel="ignore"), repeats, warmup, device)
            records.append(dict(base, method="lowrank", degree=g, rank=res.info["rank"], seconds=t_lr,
                                rel_error=None if exact is None else G.relative_max_error(res.grad, exact),
                                speedup=t_sdpa / t_lr, normaliser_ok=res.info["normaliser_ok"]))
            log(_row(records[-1]))
    return records


_HEAD = f"{'L':>6} {'d':>2} {'B':>4} {'method':>14} {'g':>2} {'rank':>5} {'seconds':>9} {'rel_error':>9} {'speedup':>8}"


def _row(r: dict) -> str:
    err = "—" if r["rel_error"] is None else f"{r['rel_error']:.2e}"
    g = "—" if r["degree"] is None else str(r["degree"])
    rank = "L" if r["rank"] is None else str(r["rank"])
    return (f"{r['L']:>6} {r['d']:>2} {r['B']:>4g} {r['method']:>14} {g:>2} {rank:>5} {r['seconds']:>9.4f} "
            f"{err:>9} {r['speedup']:>7.1f}x")


def check_targets(records: list[dict], degree: int) -> list[str]:
    """Lines saying whether the issue's targets are met by these records (or cannot be judged from them)."""
    lines = []
    L_s, want_s = TARGET_SPEEDUP
    hit = [r for r in records if r["method"] == "lowrank" and r["L"] == L_s and r["degree"] == degree]
    if hit:
        s = hit[0]["speedup"]
        verdict = "met" if s >= want_s else "NOT met"
        lines.append(f"target speed-up at L = {L_s}: {s:.1f}x (goal >= {want_s:g}x) -> {verdict}")
    else:
        lines.append(f"target speed-up at L = {L_s}: not measured in this run")
    L_e, want_e = TARGET_ERROR
    hit = [r for r in records if r["method"] == "lowrank" and r["L"] == L_e and r["degree"] == degree
           and r["rel_error"] is not None]
    if hit:
        e = hit[0]["rel_error"]
        lines.append(f"target error at L = {L_e} (vs float64 exact): {e:.2e} (goal <= {want_e:g}) -> "
                     f"{'met' if e <= want_e else 'NOT met'}")
    else:
        lines.append(f"target error at L = {L_e}: not measured in this run")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.sizes:
        sizes = args.sizes
    else:
        sizes = [256, 512, 1024, 2048] if args.quick else [1024, 2048, 4096, 8192, 16384, 32768]
    if any(L < 1 for L in sizes) or args.d < 1 or args.B <= 0 or args.degree < 0:
        print("error: sizes and d must be >= 1, B > 0, degree >= 0", file=sys.stderr)
        return 2
    exact_max_L = args.exact_max_L if args.exact_max_L is not None else (max(sizes) if args.quick else 8192)
    repeats = args.repeats or (2 if args.quick else 3)
    extra = args.extra_degrees if args.extra_degrees is not None else \
        [g for g in (args.degree - 1, args.degree + 1) if g >= 1]
    device = args.device or default_device()
    if args.threads is not None:
        if args.threads < 1:
            print("error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    meta = {"torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "quick": bool(args.quick), "exact_max_L": exact_max_L, "repeats": repeats,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "error": "max|G - G_exact| / max|G_exact| against the float64 exact gradient, where L <= exact_max_L",
            "timed_dtype": "float32"}
    print(f"chained low-rank gradient vs autograd through SDPA — device {device}, {meta['threads']} threads, "
          f"float32; errors vs float64 exact for L <= {exact_max_L}")
    print(_HEAD)
    t0 = time.perf_counter()
    records = run(sizes, d=args.d, B=args.B, degree=args.degree, extra_degrees=extra, exact_max_L=exact_max_L,
                  repeats=repeats, seed=args.seed, device=device)
    meta["total_seconds"] = time.perf_counter() - t0
    for line in check_targets(records, args.degree):
        print(line)
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "gradient", "meta": meta, "records": records}, fh, indent=1)
        print(f"wrote {len(records)} records to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
