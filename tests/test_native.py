"""The fused CPU kernels of fast attention (:mod:`dit_lib.native`, issue 10).

They must compute what the torch kernel computes (the same products, up to rounding that the certified bound covers),
on every shape the tiling has edges for, whatever the number of threads; ``kernel="fused"`` where they cannot run is
refused with the reason; without a compiler, fast attention falls back to the torch kernel and says so.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dit_lib import attention as A
from dit_lib import native as N
from dit_lib.polynomial import SUM_GROUP

needs_native = pytest.mark.skipif(not N.available(), reason=f"fused kernels unavailable: {N.unavailable_reason()}")


def _instance(lead, Lq, Lk, d, dv, B=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = (torch.rand(lead + (Lq, d), generator=g) * 2 - 1) * B
    K = (torch.rand(lead + (Lk, d), generator=g) * 2 - 1) * B
    V = torch.rand(lead + (Lk, dv), generator=g) * 2 - 1
    return Q, K, V


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lead,Lq,Lk,d,dv,g", [
    ((), 1, 1, 1, 1, 0),                 # one token; degree 0 has no recipe steps
    ((), 17, 300, 3, 2, 1),              # lengths off every tile (16 queries, 64 keys, 256-key groups)
    ((2,), 513, 257, 4, 15, 4),          # d_v + 1 = 16: one full column tile
    ((2, 3), 40, 1000, 2, 20, 6),        # d_v + 1 = 21: a full tile and a partial one
    ((64, 4), 9, 9, 3, 3, 4),            # many small heads (a sampler's batch): whole heads per thread
    ((), 700, 777, 8, 8, 5),             # the benchmark's shape, short
])
def test_fused_kernels_match_the_torch_kernel(lead, Lq, Lk, d, dv, g, dtype):
    Q, K, V = (t.to(dtype) for t in _instance(lead, Lq, Lk, d, dv))
    ref = A.reference_attention(Q, K, V)
    kw = dict(precision="working", on_cancel="warn", max_rel_error=1.0, return_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A.CancellationWarning)      # degree 0 certifies little; compared anyway
        out_f, info_f = A.fast_attention(Q, K, V, g, kernel="fused", **kw)
        out_t, info_t = A.fast_attention(Q, K, V, g, kernel="torch", **kw)
    assert (info_f["kernel"], info_t["kernel"]) == ("fused", "torch")
    assert out_f.shape == out_t.shape == ref.shape and out_f.dtype == dtype
    # both are within the bound they report, and differ from each other by rounding only
    for out, info in ((out_f, info_f), (out_t, info_t)):
        assert float((out.double() - ref).abs().max()) <= info["error_bound"]
    assert float((out_f - out_t).abs().max()) <= 2 * info_f["rounding_bound"]
    assert info_f["min_row_sum"] == pytest.approx(info_t["min_row_sum"], rel=1e-5 if dtype == torch.float32 else 1e-12)


@needs_native
def test_fused_key_and_query_products_against_float64_features():
    """The raw kernels: mono(X)^T V1 and mono(X) M against float64 products of explicit features."""
    gen = torch.Generator().manual_seed(3)
    d, g, n = 5, 4, 1111
    X = torch.rand(n, d, generator=gen) - 0.5
    V1 = torch.rand(n, 7, generator=gen) - 0.5
    steps, r = A._steps_array(d, g), A.feature_rank(d, g)
    phi = A.monomial_features(X.double(), g)                                   # (n, r), float64
    M = N._keys_times_values(X[None], V1[None], steps, r, SUM_GROUP)[0]
    torch.testing.assert_close(M, phi.T @ V1.double(), rtol=0, atol=SUM_GROUP * 2**-23 * 5)
    Mr = torch.rand(r, 7, generator=gen) - 0.5
    out = N._queries_times_matrix(X[None], Mr[None], steps, SUM_GROUP)[0]
    torch.testing.assert_close(out, phi @ Mr.double(), rtol=0, atol=SUM_GROUP * 2**-23 * 5)


@needs_native
def test_fused_result_does_not_depend_on_the_thread_count():
    """Threads split keys at group boundaries, so only the float64 sum of the groups' partial sums can differ."""
    Q, K, V = _instance((3,), 2000, 3000, 4, 3, seed=4)     # 3 heads: split by rows (2 threads), by heads (3, 4)
    old = torch.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3, 4):
            torch.set_num_threads(t)
            outs.append(A.fast_attention(Q, K, V, 4, kernel="fused", precision="working").double())
    finally:
        torch.set_num_threads(old)
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=0, atol=1e-6)   # the last rounding to float32, at most


def test_inputs_that_require_grad_are_refused_by_both_kernels():
    """Neither kernel has a backward pass: no output that silently drops the gradient."""
    Q, K, V = _instance((), 32, 32, 2, 2)
    Q.requires_grad_(True)
    for kernel in A.KERNELS:
        with pytest.raises(ValueError, match="no backward pass"):
            A.fast_attention(Q, K, V, 3, kernel=kernel)
    with torch.no_grad():
        assert A.fast_attention(Q, K, V, 3).shape == (32, 2)


def test_without_a_compiler_fast_attention_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("DIT_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(N, "_state", {})
    assert not N.available()
    assert "no-such-compiler" in N.unavailable_reason()
    Q, K, V = _instance((), 100, 100, 3, 2)
    out, info = A.fast_attention(Q, K, V, 4, return_info=True)
    assert info["kernel"] == "torch"
    assert float((out.double() - A.reference_attention(Q, K, V)).abs().max()) <= info["error_bound"]
    with pytest.raises(ValueError, match="no-such-compiler"):
        A.fast_attention(Q, K, V, 4, kernel="fused")


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("DIT_NATIVE", "0")
    assert not N.available() and N.unavailable_reason() == "switched off by DIT_NATIVE=0"
    Q, K, V = _instance((), 50, 50, 2, 2)
    assert A.fast_attention(Q, K, V, 3, return_info=True)[1]["kernel"] == "torch"


@pytest.mark.skipif(not any(os.access(os.path.join(p, c), os.X_OK) for p in os.environ.get("PATH", "").split(":")
                            for c in ("cc", "gcc", "clang")), reason="no C compiler here")
def test_build_goes_to_the_cache_folder_named_by_source_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("DIT_NATIVE_CACHE", str(tmp_path))
    monkeypatch.delenv("DIT_NATIVE", raising=False)
    monkeypatch.setattr(N, "_state", {})
    assert N.available()
    built = list(Path(tmp_path).glob("polyattn-*.so"))
    assert len(built) == 1 and not list(Path(tmp_path).glob("*.tmp*"))
    # the repository gets nothing: the default folder is outside it
    monkeypatch.delenv("DIT_NATIVE_CACHE")
    assert Path(A.__file__).resolve().parents[1] not in N.cache_dir().resolve().parents


@needs_native
def test_fused_sums_are_grouped_like_the_analysis_says():
    """Keys whose float32 running sum would lose the small terms if more than SUM_GROUP were added in float32.

    One key with value 2^24 followed by many keys with value 1 (all features 1 at x = 0): a float32 running sum stays
    at 2^24 (each +1 is rounded away); sums of SUM_GROUP terms added in float64 lose at most the ones in the first group.
    """
    n = 64 * SUM_GROUP
    X = torch.zeros(n, 2)
    V1 = torch.ones(n, 1)
    V1[0, 0] = 2.0**24
    M = N._keys_times_values(X[None], V1[None], A._steps_array(2, 1), 3, SUM_GROUP)[0]
    exact = 2.0**24 + n - 1
    assert exact - float(M[0, 0]) <= SUM_GROUP            # a plain float32 sum would miss by n - 1
    assert math.isclose(float(M[1, 0]), 0.0)
    assert np.isfinite(M.numpy()).all()


@needs_native
def test_a_forked_child_can_use_the_fused_kernels():
    """The thread pool does not survive fork; the child must start its own instead of waiting on dead threads."""
    import multiprocessing as mp
    Q, K, V = _instance((4,), 300, 300, 3, 2)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        parent = A.fast_attention(Q, K, V, 4, kernel="fused")        # the pool exists now
        with mp.get_context("fork").Pool(1) as pool:
            child = pool.apply_async(_fused_in_child, (Q, K, V)).get(timeout=60)
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(child, parent, rtol=0, atol=0)


def _fused_in_child(Q, K, V):
    torch.set_num_threads(2)
    return A.fast_attention(Q, K, V, 4, kernel="fused")
