"""Fused CPU kernels of the polynomial method (chapter 4), compiled from ``_native/polyattn.c`` on first use.

:func:`dit_lib.attention.fast_attention` spends its time in two thin products, ``U2^T [V, 1]`` and ``U1 M``, each with
only ``d_v + 1`` columns: every feature is used ``d_v + 1`` times, so written to memory and read back the ``L x r``
feature blocks make the method memory-bound. These kernels generate the features of a few keys (or 16 queries) in
cache and multiply them at once, so no feature matrix is ever written to memory.

Arithmetic, in the working precision (float32 or float64, one build of the kernels for each): the same recipe for the
monomials (:func:`dit_lib.attention.monomial_exponents`), every sum of at most ``group`` terms
(:data:`dit_lib.polynomial.SUM_GROUP`) with partial sums added in float64, products possibly fused (one rounding instead
of two), no reassociation. The rounding analysis of
:func:`dit_lib.polynomial.accumulation_length` therefore covers both these kernels and the plain torch path.

The shared library is built with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``; flags
:data:`FLAGS`) into :func:`cache_dir`, named by a hash of the source, the flags, the compiler and the CPU, so a
rebuilt source or another machine never loads a stale build. Set ``DIT_NATIVE=0`` to switch the kernels off. Without a
compiler :func:`available` is ``False`` and fast attention uses its torch path (same results up to rounding).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

__all__ = ["FLAGS", "LANES", "KEY_TILE", "available", "unavailable_reason", "cache_dir"]

SOURCE = Path(__file__).with_name("_native") / "polyattn.c"
#: Every file the build reads (their bytes enter the build's name).
SOURCES = (SOURCE, SOURCE.with_name("polyattn_kernels.h"))
#: Compiler flags. No ``-ffast-math``: the kernels' summation order is the one the rounding analysis describes.
FLAGS = ("-O3", "-march=native", "-std=gnu11", "-shared", "-fPIC")
#: Query chunks of the threads are multiples of this (a multiple of the query tile ``W``: 16 in float32, 8 in float64).
LANES = 16
#: Keys per cache tile of the key kernel (their features, ``rank`` floats each, stay in the L2 cache).
KEY_TILE = 64

_lock = threading.Lock()
_state: dict = {}
_pool: tuple[int, ThreadPoolExecutor] | None = None     # (its number of threads, the pool)


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: start a fresh pool (and lock) when it needs one."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def cache_dir() -> Path:
    """Where the compiled kernels live: ``$DIT_NATIVE_CACHE``, else ``$XDG_CACHE_HOME/dit_lib``, else
    ``~/.cache/dit_lib`` (never inside the repository)."""
    if os.environ.get("DIT_NATIVE_CACHE"):
        return Path(os.environ["DIT_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dit_lib"


def _cpu_id() -> str:
    """The CPU model and its instruction-set flags (a ``-march=native`` build is only valid on such a CPU)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        keep = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "\n".join(dict.fromkeys(keep))
    except OSError:
        return platform.processor() + platform.machine()


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        raise RuntimeError("no C compiler found ($CC, cc, gcc or clang)")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(b"\0".join([*(f.read_bytes() for f in SOURCES), " ".join(FLAGS).encode(),
                                     version.encode(), _cpu_id().encode()])).hexdigest()[:16]
    folder = cache_dir()
    path = folder / f"polyattn-{key}.so"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        try:
            res = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True, timeout=120)
            if res.returncode:
                raise RuntimeError(f"{cc} failed: {res.stderr.strip()[-500:]}")
            os.replace(tmp, path)        # atomic: a concurrent build by another process is harmless
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(path))
    P, I, I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
    for sfx in ("f32", "f64"):
        getattr(lib, f"keys_batch_{sfx}").argtypes = [P, P, I64, I64, I, I, P, I, I, I, I, P, I64, I64, I64]
        getattr(lib, f"queries_batch_{sfx}").argtypes = [P, I64, I64, I, P, I, P, I, I, I, P, I64, I64, I64, I64]
        getattr(lib, f"keys_batch_{sfx}").restype = getattr(lib, f"queries_batch_{sfx}").restype = I
    return lib


_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _lib() -> ctypes.CDLL | None:
    if os.environ.get("DIT_NATIVE", "1") == "0":
        return None
    with _lock:
        if "lib" not in _state and "error" not in _state:
            try:
                _state["lib"] = _build()
            except Exception as exc:  # noqa: BLE001 - any failure means: use the torch path, and say why
                _state["error"] = f"{type(exc).__name__}: {exc}"
        return _state.get("lib")


def available() -> bool:
    """Whether the fused kernels can be used here (built, or buildable now, and not switched off)."""
    return _lib() is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is ``False`` (``None`` when it is ``True``)."""
    if _lib() is not None:
        return None
    if os.environ.get("DIT_NATIVE", "1") == "0":
        return "switched off by DIT_NATIVE=0"
    return _state.get("error", "unknown")


def _run_parts(tasks: list) -> None:
    """Run the kernel calls (ctypes releases the GIL), on up to ``torch.get_num_threads()`` threads."""
    global _pool
    if not tasks:
        return
    if len(tasks) == 1:
        codes = [tasks[0]()]
    else:
        with _lock:
            if _pool is None or _pool[0] < len(tasks):     # grow: replace the pool, letting the old one finish
                if _pool is not None:
                    _pool[1].shutdown(wait=False)
                _pool = (len(tasks), ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="dit_native"))
            pool = _pool[1]
        codes = list(pool.map(lambda f: f(), tasks))
    if any(codes):
        raise MemoryError("fused kernel: could not allocate its cache tiles")


def _splits(n: int, parts: int, align: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``[0, n)``, boundaries at multiples of ``align``."""
    step = -(-max(1, -(-n // parts)) // align) * align
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def _steps(steps: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(steps)[:, :4], dtype=np.int32)


def _work(heads: int, n: int, align: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Head ranges and row ranges for the threads: whole heads per thread when there are enough heads, else each
    head's rows split (at multiples of ``align``) so that every thread has work."""
    threads = max(1, torch.get_num_threads())
    if heads >= threads:
        return _splits(heads, threads, 1), [(0, n)]
    return [(h, h + 1) for h in range(heads)], _splits(n, max(1, threads // heads), align)


def _keys_times_values(X: torch.Tensor, V1: torch.Tensor, steps: np.ndarray, rank: int, group: int) -> torch.Tensor:
    """``mono(X)^T V1`` in float64, ``(H, rank, c)``, per head (internal: :func:`~dit_lib.attention.fast_attention`
    has checked every argument): ``X`` ``(H, n, d)`` and ``V1`` ``(H, n, c)``, float32 or float64 (the working
    precision).

    ``steps`` is the recipe of :func:`dit_lib.attention._layout` (rows ``(i, src, dst, count, degree)``). Keys are
    summed in the working precision in groups of ``group`` (the same groups whatever the number of threads), groups
    in float64.
    """
    kernel = getattr(_lib(), f"keys_batch_{_SUFFIX[X.dtype]}")
    X, V1 = X.contiguous(), V1.contiguous()
    H, n, d = X.shape
    c = V1.shape[2]
    st = _steps(steps)
    heads, rows = _work(H, n, group)
    parts = torch.zeros((H, len(rows), c, rank), dtype=torch.float64)

    def task(h0: int, h1: int, j: int, a: int, b: int):
        return lambda: kernel(X[h0, a].data_ptr(), V1[h0, a].data_ptr(), h1 - h0, b - a, d, c, st.ctypes.data,
                              len(st), rank, group, KEY_TILE, parts[h0, j].data_ptr(), n * d, n * c,
                              len(rows) * c * rank)

    _run_parts([task(h0, h1, j, a, b) for h0, h1 in heads for j, (a, b) in enumerate(rows) if b > a])
    return parts.sum(1).transpose(-1, -2)


def _queries_times_matrix(X: torch.Tensor, M: torch.Tensor, steps: np.ndarray, group: int) -> torch.Tensor:
    """``mono(X) M`` in float64, ``(H, n, c)``, per head (internal, as :func:`_keys_times_values`).

    ``X`` ``(H, n, d)`` and ``M`` ``(H, rank, c)``, float32 or float64 (the working precision, the same for both).
    Each output entry is a sum in the working precision over groups of ``group`` features, the groups added in float64.
    """
    kernel = getattr(_lib(), f"queries_batch_{_SUFFIX[X.dtype]}")
    X, M = X.contiguous(), M.contiguous()
    H, n, d = X.shape
    rank, c = M.shape[1:]
    st = _steps(steps)
    out = torch.empty((H, c, n), dtype=torch.float64)
    heads, rows = _work(H, n, LANES)

    def task(h0: int, h1: int, a: int, b: int):
        return lambda: kernel(X[h0, a].data_ptr(), h1 - h0, b - a, d, M[h0].data_ptr(), c, st.ctypes.data, len(st),
                              rank, group, out[h0, :, a].data_ptr(), n, n * d, rank * c, c * n)

    _run_parts([task(h0, h1, a, b) for h0, h1 in heads for a, b in rows if b > a])
    return out.transpose(-1, -2)
