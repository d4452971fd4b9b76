"""Tests of dit_lib.attention (chapter 4): feature maps, exact/fast/Performer attention, the cancellation guard."""
import math
import re
import warnings

import numpy as np
import pytest
import torch

from dit_lib import attention as A
from dit_lib import polynomial as P


def _qkv(*lead, Lq=40, Lk=50, d=3, dv=2, B=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64) * 2 - 1  # noqa: E731
    return B * u(*lead, Lq, d), B * u(*lead, Lk, d), u(*lead, Lk, dv)


@pytest.mark.parametrize("kind", ["chebyshev", "taylor"])
@pytest.mark.parametrize("degree", [0, 1, 4, 7])
def test_feature_inner_products_equal_the_polynomial(kind, degree):
    Q, K, _ = _qkv(2, d=3, B=1.5)
    U1, U2 = A.exp_feature_maps(Q, K, degree, kind=kind)
    radius = A.logit_bound(Q, K) * (1 + 1e-6)
    a = P.exp_poly_coefficients(radius, degree, kind)
    S = (Q @ K.transpose(-1, -2) / 3).numpy()
    np.testing.assert_allclose((U1 @ U2.transpose(-1, -2)).numpy(), P.exp_poly_eval(a, S), rtol=1e-12, atol=1e-12)


def test_feature_maps_with_explicit_radius_and_scale():
    Q, K, _ = _qkv(d=4)
    U1, U2 = A.exp_feature_maps(Q, K, 5, 3.0, scale=0.5)
    a = P.exp_poly_coefficients(3.0, 5)
    np.testing.assert_allclose((U1 @ U2.T).numpy(), P.exp_poly_eval(a, 0.5 * (Q @ K.T).numpy()), rtol=1e-12)


def test_default_radius_is_the_entry_bound_squared():
    Q = torch.full((3, 4), 0.5, dtype=torch.float64)
    K = -2 * torch.ones(5, 4, dtype=torch.float64)
    assert A.logit_bound(Q, K) == pytest.approx(1.0)  # (1/d) d max|Q| max|K| = B_Q B_K
    assert A.logit_bound(Q, K, tight=True) == pytest.approx(1.0)  # aligned rows: Cauchy-Schwarz is tight
    Q2, K2, _ = _qkv(d=6)
    assert A.logit_bound(Q2, K2, tight=True) <= A.logit_bound(Q2, K2)
    assert (Q2 @ K2.T / 6).abs().max() <= A.logit_bound(Q2, K2, tight=True)


@pytest.mark.parametrize("d,g", [(1, 5), (3, 4), (8, 3), (5, 0)])
def test_rank_formula(d, g):
    r = math.comb(d + g, g)
    assert A.feature_rank(d, g) == r
    e = A.monomial_exponents(d, g)
    assert e.shape == (r, d) and len({tuple(x) for x in e}) == r and e.sum(1).max() == g
    assert np.all(np.diff(e.sum(1)) >= 0)  # graded order


def test_rank_is_attained():
    # P(QK^T/d) = U1 U2^T has rank exactly binom(d+g, g) for generic points (L > r)
    Q, K, _ = _qkv(Lq=60, Lk=60, d=2, B=1.0, seed=3)
    U1, U2 = A.exp_feature_maps(Q, K, 3, kind="taylor")
    assert torch.linalg.matrix_rank(U1 @ U2.T).item() == 10


def test_feature_coefficients_multinomial():
    # (x+y)^2 = x^2 + 2xy + y^2: weights 1, 2, 1 on the degree-2 monomials
    c = A.feature_coefficients(2, 2, np.array([0.0, 0.0, 1.0]))
    e = A.monomial_exponents(2, 2)
    got = {tuple(x): v for x, v in zip(e, c) if x.sum() == 2}
    assert got == {(2, 0): 1.0, (1, 1): 2.0, (0, 2): 1.0}


def test_reference_matches_softmax_and_sdpa():
    Q, K, V = _qkv(2, 3, d=4, dv=5)
    ref = A.reference_attention(Q, K, V, chunk=7)
    naive = torch.softmax(Q @ K.transpose(-1, -2) / 4, -1) @ V
    torch.testing.assert_close(ref, naive)
    torch.testing.assert_close(A.sdpa_attention(Q, K, V), naive)
    rows = torch.tensor([0, 5, 39])
    torch.testing.assert_close(A.reference_attention(Q, K, V, rows=rows), naive[..., rows, :])
    torch.testing.assert_close(A.sdpa_attention(Q, K, V, scale=0.5),
                               torch.softmax(0.5 * Q @ K.transpose(-1, -2), -1) @ V)


@pytest.mark.parametrize("kind", ["chebyshev", "taylor"])
@pytest.mark.parametrize("B,degree", [(0.5, 2), (1.0, 4), (1.5, 7), (2.0, 10)])
def test_fast_attention_within_derived_bound(kind, B, degree):
    Q, K, V = _qkv(3, d=4, dv=3, B=B, Lq=64, Lk=80)
    out, info = A.fast_attention(Q, K, V, degree, kind=kind, return_info=True, max_rel_error=1.0, on_cancel="warn")
    err = (out - A.reference_attention(Q, K, V)).abs().max().item()
    assert info["rel_error"] < 1 and err <= info["error_bound"] + 1e-12
    assert info["rank"] == math.comb(4 + degree, degree)


def test_fast_attention_equals_explicit_features_and_is_chunk_invariant():
    Q, K, V = _qkv(2, 2, d=3, dv=4, Lq=33, Lk=47)
    U1, U2 = A.exp_feature_maps(Q, K, 6)
    W = U1 @ U2.transpose(-1, -2)
    explicit = (W @ V) / W.sum(-1, keepdim=True)
    for chunk in [5, 16, None]:
        torch.testing.assert_close(A.fast_attention(Q, K, V, 6, chunk=chunk), explicit)


def test_fast_attention_shapes_heads_and_float32():
    Q, K, V = (X.float() for X in _qkv(2, 4, d=8, dv=6, Lq=20, Lk=30))
    out = A.fast_attention(Q, K, V, 5)
    assert out.shape == (2, 4, 20, 6) and out.dtype == torch.float32
    assert (out.double() - A.reference_attention(Q, K, V)).abs().max() < 1e-4
    one_head = A.fast_attention(Q[1, 2], K[1, 2], V[1, 2], 5)
    torch.testing.assert_close(one_head, out[1, 2])


def test_cancellation_guard_fires():
    # entries B = 3 (logits up to 9) with a degree-3 polynomial: relative error far above 1
    Q, K, V = _qkv(d=2, B=3.0)
    with pytest.raises(A.CancellationError, match=r"degree \d+ in float\d+ would reach"):
        A.fast_attention(Q, K, V, 3)
    with pytest.warns(A.CancellationWarning, match="relative error"):
        out = A.fast_attention(Q, K, V, 3, on_cancel="warn")
    assert out.shape == (40, 2)


def test_cancellation_advice_aims_at_tol_and_following_it_works():
    # logits near -9: float32 certifies nothing; the hint must name a degree and precision that certify tol
    Q, K, V = A.adversarial_instance(512, 4, 3.0, "opposite", seed=0)
    for tol in (1e-3, 1e-4):     # 1e-4: certifiable for these 512 keys, though not at the rules' default 2^20 keys
        with pytest.raises(A.CancellationError, match=rf"within tol = {tol:g}") as err:
            A.fast_attention(Q, K, V, 12, precision="working", tol=tol)
        hint = re.search(r"degree (\d+) in (float\d+) would reach relative error", str(err.value))
        precision = "float64" if hint[2] == "float64" else "working"
        out, info = A.fast_attention(Q, K, V, int(hint[1]), precision=precision, tol=tol, return_info=True)
        assert info["error_bound"] <= tol
        assert (out.double() - A.reference_attention(Q, K, V)).abs().max() <= info["error_bound"]
    # without tol the hint says what it aims at
    with pytest.raises(A.CancellationError, match=r"a tenth of the guard max_rel_error = 0\.4"):
        A.fast_attention(Q, K, V, 12, precision="working", max_rel_error=0.4)


def test_cancellation_guard_negative_row_sums():
    # a radius far too small: the polynomial is evaluated outside its interval and row sums go negative
    Q = torch.tensor([[3.0, 3.0]], dtype=torch.float64)
    K = torch.tensor([[-3.0, -3.0], [-3.0, -2.9]], dtype=torch.float64)
    V = torch.ones(2, 1, dtype=torch.float64)
    with pytest.raises(A.CancellationError, match="row sum"):
        A.fast_attention(Q, K, V, 1, radius=0.1, kind="taylor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A.CancellationWarning)
        out = A.fast_attention(Q, K, V, 1, radius=0.1, kind="taylor", on_cancel="warn")
    assert torch.isnan(out).all()  # garbage is marked, never returned silently


def test_guard_quiet_when_accurate():
    Q, K, V = _qkv(d=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.fast_attention(Q, K, V, 6, on_cancel="warn")


def test_performer_converges_and_is_seeded():
    Q, K, V = _qkv(d=4, dv=3, Lq=30, Lk=200, B=1.0)
    ref = A.reference_attention(Q, K, V)
    errs = [(A.performer_attention(Q, K, V, m, seed=1) - ref).abs().max().item() for m in (16, 4096)]
    assert errs[1] < errs[0] / 4
    torch.testing.assert_close(A.performer_attention(Q, K, V, 64, seed=5), A.performer_attention(Q, K, V, 64, seed=5))
    pq, pk = A.performer_features(Q, K, 64, orthogonal=False)
    assert pq.shape == (30, 64) and pk.shape == (200, 64) and (pq > 0).all() and (pk > 0).all()


def test_performer_kernel_is_unbiased():
    # mean of phi(q).phi(k) over many features -> exp(<q,k>/d) (features unnormalised: no max-shift, one pair)
    q = torch.tensor([[0.5, -0.3, 0.8, 0.1]], dtype=torch.float64)
    k = torch.tensor([[0.2, 0.4, -0.6, 0.9]], dtype=torch.float64)
    pq, pk = A.performer_features(q, k, 200_000, seed=0, orthogonal=False)
    # undo the (constant) stabilisation by comparing the ratio for two keys
    k2 = torch.cat([k, -k])
    pq, pk = A.performer_features(q, k2, 200_000, seed=0, orthogonal=False)
    est = (pq @ pk.T)[0]
    exact = torch.exp(q @ k2.T / 4)[0]
    assert est[0] / est[1] == pytest.approx((exact[0] / exact[1]).item(), rel=0.02)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here; the CPU path is the same code")
def test_cuda_matches_cpu():
    Q, K, V = (X.float() for X in _qkv(2, d=4))
    out = A.fast_attention(Q.cuda(), K.cuda(), V.cuda(), 5)
    torch.testing.assert_close(out.cpu(), A.fast_attention(Q, K, V, 5), rtol=1e-4, atol=1e-5)


def test_default_device():
    assert A.default_device() in ("cpu", "cuda")


def test_bad_inputs():
    Q, K, V = _qkv(d=3)
    with pytest.raises(ValueError, match="feature dimension"):
        A.exp_feature_maps(Q, K[:, :2], 2)
    with pytest.raises(ValueError, match="batch/head"):
        A.fast_attention(Q[None].expand(2, -1, -1), K, V, 2)
    with pytest.raises(ValueError, match="V must"):
        A.fast_attention(Q, K, V[:-1], 2)
    bad = Q.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        A.fast_attention(bad, K, V, 2)
    with pytest.raises(ValueError, match="radius"):
        A.exp_feature_maps(Q, K, 2, 0.0)
    with pytest.raises(ValueError, match="radius"):
        A.exp_feature_maps(Q, K, 2, -1.0)
    with pytest.raises(ValueError, match="scale"):
        A.exp_feature_maps(Q, K, 2, scale=0.0)
    with pytest.raises(ValueError, match="degree"):
        A.exp_feature_maps(Q, K, 61)
    with pytest.raises(ValueError, match="kind"):
        A.exp_feature_maps(Q, K, 2, kind="pade")
    with pytest.raises(TypeError, match="Q must be a torch.Tensor"):
        A.exp_feature_maps(Q.numpy(), K, 2)
    with pytest.raises(TypeError, match="floating"):
        A.exp_feature_maps(Q.long(), K.long(), 2)
    with pytest.raises(ValueError, match="on_cancel"):
        A.fast_attention(Q, K, V, 2, on_cancel="ignore")
    with pytest.raises(ValueError, match=r"Q must have at least 2 dimensions"):
        A.sdpa_attention(Q[0], K, V)


def test_memory_limit_says_how_much():
    Q, K, _ = _qkv(Lq=1000, Lk=1000, d=16)
    with pytest.raises(ValueError, match=r"degree, d, L too large: .*would need about [\d.]+ GiB.*MAX_FEATURE_BYTES"):
        A.exp_feature_maps(Q, K, 12)  # r = binom(28, 12) = 30421755 features per row


def test_fast_attention_checks_each_argument_once(monkeypatch):
    """Issue 15: inner helpers trust validated values; one call validates degree and radius once each."""
    import collections

    from dit_lib import _checks, polynomial
    counts = collections.Counter()

    def counting(check):
        def wrapped(name, *args, **kwargs):
            counts[name] += 1
            return check(name, *args, **kwargs)
        return wrapped

    for module in (A, polynomial):
        for fn in ("check_int", "check_float", "check_memory", "check_choice"):
            if hasattr(module, fn):
                monkeypatch.setattr(module, fn, counting(getattr(_checks, fn)))
    Q, K, V = _qkv(Lq=300, Lk=300, d=4)
    A.fast_attention(Q, K, V, 4, tol=1e-2, return_info=True)
    assert counts["degree"] == 1 and counts["radius"] == 1, counts
    assert max(counts.values()) == 1, counts          # nothing is checked twice on the way down
    assert counts["kind"] == 1 and counts["tol"] == 1
    counts.clear()
    A.fast_attention(Q, K, V, 4, radius=2.0)           # a user radius is checked too, once
    assert counts["radius"] == 1 and counts["degree"] == 1, counts
    counts.clear()
    polynomial.degree_for_error(1.0, 1e-3, dtype="float32")   # the degree search checks its arguments once
    assert counts["radius"] == 1 and max(counts.values()) == 1, counts
