"""Tests of dit_lib.efficient (chapter 6): the factorised attention, its gradient, the entry bound, the modules."""
import math

import numpy as np
import pytest
import torch

import dit_lib as dl
from dit_lib import attention as att
from dit_lib import efficient as ef
from dit_lib.network import ExactAttention, LatentDiT
from dit_lib.polynomial import exp_poly_error


def _qkv(L=40, m=3, B=1.2, seed=0, lead=(2, 2)):
    g = torch.Generator().manual_seed(seed)
    Q, K = ((2 * torch.rand(*lead, L, m, generator=g, dtype=torch.float64) - 1) * B for _ in range(2))
    V = torch.randn(*lead, L, m, generator=g, dtype=torch.float64)
    return Q, K, V


def test_features_match_library():
    Q, K, _ = _qkv()
    for g in (0, 1, 4, 7):
        U1, U2 = ef.poly_features(Q, K, g, 1.5)
        W1, W2 = att.exp_feature_maps(Q, K, g, 1.5)
        assert U1.shape[-1] == att.feature_rank(3, g)
        assert torch.allclose(U1, W1, atol=1e-12) and torch.allclose(U2, W2, atol=1e-12)


def test_factorised_matches_exact_and_chapter4():
    Q, K, V = _qkv()
    out, den = ef.factorised_attention(Q, K, V, 12, 1.45)
    assert float((out - att.reference_attention(Q, K, V)).abs().max()) < 1e-8
    assert float((out - att.fast_attention(Q, K, V, 12, 1.45)).abs().max()) < 1e-12
    assert float(den.min()) > 0


def test_factorised_gradcheck_and_gradient_close_to_exact():
    Q, K, V = (z[..., :12, :2].clone().requires_grad_(True) for z in _qkv(m=2))
    assert torch.autograd.gradcheck(lambda q, k, v: ef.factorised_attention(q, k, v, 5, 1.5)[0], (Q, K, V))
    w = torch.randn(Q.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((ef.factorised_attention(Q, K, V, 14, 1.5)[0] * w).sum(), (Q, K, V))
    exact = torch.autograd.grad((torch.softmax(Q @ K.transpose(-1, -2) / 2, -1) @ V * w).sum(), (Q, K, V))
    for a, b in zip(grads, exact):
        assert float((a - b).abs().max()) < 1e-7


def test_bound_entries():
    x = torch.linspace(-10, 10, 1001, dtype=torch.float64)
    y = ef.bound_entries(x, 1.5)
    assert float(y.abs().max()) < 1.5
    assert float(ef.bound_entries(1e6 * x, 1.5).abs().max()) <= 1.5
    assert torch.all(torch.diff(y) > 0)                          # monotone: order of logits kept
    small = torch.tensor([1e-4], dtype=torch.float64)
    assert abs(float(ef.bound_entries(small, 1.5)) - 1e-4) < 1e-11
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="bound"):
            ef.bound_entries(x, bad)


def test_degree_for_radius():
    degs = [ef.degree_for_radius(R, 1e-3) for R in (0.25, 1.0, 2.25, 4.0)]
    assert degs == sorted(degs) and degs[0] < degs[-1]
    for R, g in zip((0.25, 1.0, 2.25, 4.0), degs):
        assert exp_poly_error(R, g) <= 1e-3 * 1.01
        assert exp_poly_error(R, g - 1) > 1e-3
    assert ef.degree_for_radius(40.0, 1e-6, max_degree=8) is None
    with pytest.raises(ValueError, match="target"):
        ef.degree_for_radius(1.0, 2.0)
    with pytest.raises(ValueError, match="radius"):
        ef.degree_for_radius(0.0)


def test_polynomial_attention_bounded_train_and_eval_paths_agree():
    Q, K, V = (z.float() for z in _qkv(B=3.0))
    mod = ef.PolynomialAttention(bound=1.0)
    with torch.no_grad():
        ev = mod(Q, K, V)
    tr = mod(Q.requires_grad_(True), K, V)
    assert mod.calls == 2 and mod.fired == 0
    assert mod.degrees[0] == mod.degrees[1] == ef.degree_for_radius(1.0, 1e-3)
    assert float((ev - tr.detach()).abs().max()) < 1e-4
    ref = att.reference_attention(ef.bound_entries(Q.detach(), 1.0), ef.bound_entries(K, 1.0), V)
    assert float((ev.double() - ref).abs().max()) < 2 * 1e-3 / (1 - 1e-3) * float(V.abs().max())


def test_polynomial_attention_guard_fires_and_falls_back():
    Q, K, V = _qkv(m=2, B=4.0)
    mod = ef.PolynomialAttention(degree=3)                    # far too low for logits up to 16
    out = mod(Q, K, V)
    assert mod.fired == 1 and mod.degrees == [-1]
    assert float((out - att.reference_attention(Q, K, V)).abs().max()) < 1e-10
    auto = ef.PolynomialAttention(max_degree=6)               # no degree <= 6 reaches 1e-3 on [-16, 16]
    auto(Q, K, V)
    assert auto.fired == 1
    auto.reset_stats()
    assert auto.calls == 0 and auto.degrees == []


def test_polynomial_attention_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        ef.PolynomialAttention(target=0.0)
    with pytest.raises(ValueError, match="guard"):
        ef.PolynomialAttention(guard=1.5)
    with pytest.raises(ValueError, match="bound"):
        ef.PolynomialAttention(bound=-1.0)
    with pytest.raises(ValueError, match="kind"):
        ef.PolynomialAttention(kind="fourier")
    with pytest.raises(ValueError, match="degree"):
        ef.factorised_attention(*_qkv(), -1, 1.0)


def test_bounded_exact_is_sdpa_without_bound():
    Q, K, V = _qkv()
    assert torch.allclose(ef.BoundedExactAttention()(Q, K, V), ExactAttention()(Q, K, V))
    clipped = ef.BoundedExactAttention(0.5)(Q, K, V)
    ref = att.reference_attention(ef.bound_entries(Q, 0.5), ef.bound_entries(K, 0.5), V)
    assert float((clipped - ref).abs().max()) < 1e-12


def _tiny(attention=None):
    data = dl.SubspaceData.random(8, 4, n_components=2, seed=0)
    torch.manual_seed(0)
    model = LatentDiT(8, 4, 1, heads=1, head_dim=2, ff_width=8, blocks=1, basis=data.basis, train_basis=False,
                      attention=attention)
    return data, model


def test_attention_gap_and_entry_bound():
    data, model = _tiny()
    x = torch.as_tensor(data.sample(50, seed=2), dtype=torch.float32)
    assert ef.attention_gap(model, x, 0.5, ExactAttention()) < 1e-5
    poly = ef.PolynomialAttention(degree=1, bound=0.5)          # logits in [-1/4, 1/4]: eps about 3e-2
    gap = ef.attention_gap(model, x, 0.5, poly, bound=0.5)
    assert poly.calls == 1 and poly.fired == 0 and gap > 1e-6                      # a degree-2 polynomial is visibly inexact
    assert isinstance(model.blocks[0].attn.attention, ExactAttention)     # restored
    B = ef.entry_bound(model, x, 0.5)
    assert B == max(float(z.abs().max()) for pair in model.keys_queries(x, 0.5) for z in pair)
    assert ef.entry_bound(model, x, 0.5, bound=0.3) < 0.3
    with pytest.raises(TypeError, match="attention"):
        ef.attention_gap(model, x, 0.5, lambda q, k, v: v)


def test_train_model_learns_and_is_deterministic():
    data, model = _tiny(ef.PolynomialAttention(bound=1.0))
    x0 = data.sample(500, seed=1)
    hist = dl.training.fit_score_model(model, x0, steps=60, batch_size=64, log_every=20, monitor=lambda m: 1.0)
    assert hist["loss"][-1] < hist["loss"][0]
    assert list(hist["step"]) == [20, 40, 60] and list(hist["monitor"]) == [1.0, 1.0, 1.0]
    _, again = _tiny(ef.PolynomialAttention(bound=1.0))
    assert np.allclose(dl.training.fit_score_model(again, x0, steps=60, batch_size=64, log_every=20)["loss"], hist["loss"])
    with pytest.raises(ValueError, match="T0"):
        dl.training.fit_score_model(model, x0, steps=5, T0=6.0)
    with pytest.raises(ValueError, match="x0"):
        dl.training.fit_score_model(model, x0[0], steps=5)


def test_timing_helpers_leave_model_unchanged():
    data, model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.as_tensor(data.sample(16, seed=3), dtype=torch.float32)
    assert ef.time_training_step(model, x, repeats=1) > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert ef.time_attention(ef.PolynomialAttention(bound=1.0), n=2, heads=1, L=32, m=2, repeats=1) > 0
    with pytest.raises(ValueError, match="L"):
        ef.time_attention(ExactAttention(), n=2, heads=1, L=0, m=2)
    assert math.isfinite(ef.time_attention(ExactAttention(), n=1, heads=1, L=8, m=2, repeats=1, backward=False))
