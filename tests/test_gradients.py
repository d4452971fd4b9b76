"""Tests of dit_lib.gradients: the training loss of Problem 1, its exact gradient and the chained low-rank gradient."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from dit_lib import attention, gradients as G
from dit_lib.patches import patchify


@pytest.fixture(scope="module")
def small():
    return G.random_problem(12, 3, 1.0, seed=0)


@pytest.fixture(scope="module")
def medium():
    return G.random_problem(96, 4, 1.0, seed=1)


# ------------------------------------------------------------------------------------------ exact gradient
def test_exact_gradient_matches_central_differences(small):
    g = G.exact_gradient(small)
    X = small.X
    fd = torch.zeros_like(X)
    eps = 1e-6
    for a in range(X.shape[0]):
        for b in range(X.shape[1]):
            Ep = X.clone(); Ep[a, b] += eps
            Em = X.clone(); Em[a, b] -= eps
            fd[a, b] = (G.training_loss(small.with_X(Ep)) - G.training_loss(small.with_X(Em))) / (2 * eps)
    assert G.relative_max_error(g, fd) < 1e-7


def test_exact_gradient_matches_autograd_both_backends(medium):
    g = G.exact_gradient(medium)
    assert G.relative_max_error(G.autograd_gradient(medium), g) < 1e-12
    assert G.relative_max_error(G.autograd_gradient(medium, backend="sdpa"), g) < 1e-12


def test_gradcheck_of_training_loss(small):
    X = small.X.clone().requires_grad_(True)
    A1, A2, A3, _, Y, E = small.args
    assert torch.autograd.gradcheck(lambda X: G.training_loss(A1, A2, A3, X, Y, E), (X,))


def test_loss_backends_agree_and_vanish_at_teacher(medium):
    assert math.isclose(float(G.training_loss(medium)), float(G.training_loss(medium, backend="sdpa")), rel_tol=1e-12)
    at_teacher = medium.with_X(medium.X_star)
    assert float(G.training_loss(at_teacher)) < 1e-25
    assert float(G.exact_gradient(at_teacher).abs().max()) < 1e-14


def test_blocked_exact_equals_single_block(medium):
    g = G.exact_gradient(medium)
    assert G.relative_max_error(G.exact_gradient(medium, block_size=7), g) < 1e-13


def test_intermediates_are_consistent(medium):
    grad, ex = G.exact_gradient(medium, return_intermediates=True)
    assert torch.allclose(ex["f"].sum(1), torch.ones(medium.L, dtype=torch.float64))
    assert torch.allclose(ex["r"], ex["p1"].sum(1))
    assert torch.allclose(ex["p2"], ex["r"][:, None] * ex["f"])
    assert torch.allclose(ex["p"], ex["p1"] - ex["p2"])
    assert torch.allclose(grad, medium.A1.T @ ex["p"] @ medium.A2 / medium.d)
    assert torch.allclose(ex["c"], ex["f"] @ ex["h"] - medium.E)


def test_cross_attention_shapes():
    p = G.random_problem(20, 3, 1.0, M=33, seed=2)
    assert p.A2.shape == (33, 3) and p.E.shape == (20, 3)
    g = G.exact_gradient(p)
    assert G.relative_max_error(G.autograd_gradient(p), g) < 1e-12
    assert G.relative_max_error(G.lowrank_gradient(p, degree=8).grad, g) < 1e-6
    with pytest.raises(ValueError, match="L == M"):
        G.lowrank_gradient(p, degree=3, wrong_scaling=True)


def test_general_value_dimension():
    p = G.random_problem(16, 3, 1.0, seed=3)
    Y = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    E = torch.zeros(16, 5, dtype=torch.float64)
    q = G.as_problem(p.A1, p.A2, p.A3, p.X, Y, E)
    assert G.relative_max_error(G.lowrank_gradient(q, degree=8).grad, G.autograd_gradient(q)) < 1e-6


# ------------------------------------------------------------------------------------------ low-rank gradient
def test_lowrank_step1_is_the_chapter4_feature_map(medium):
    lr = G.lowrank_gradient(medium, degree=3)
    Q, K = medium.A1 @ medium.X, medium.A2
    U1, U2 = attention.exp_feature_maps(Q, K, 3, lr.info["radius"], scale=1 / medium.d)
    assert torch.allclose(lr.U1 * lr.row_sums[:, None], U1, rtol=1e-13, atol=0)
    assert torch.equal(lr.V1, U2)
    assert lr.info["rank"] == math.comb(medium.d + 3, 3)


def test_lowrank_factors_realise_the_exact_identities(medium):
    lr = G.lowrank_gradient(medium, degree=4)
    f_t = lr.U1 @ lr.V1.T
    p1_t = lr.U3 @ lr.V3.T
    assert torch.allclose(p1_t, f_t * (lr.c @ lr.h.T), rtol=0, atol=1e-15)
    assert torch.allclose(lr.U3 @ lr.V3.sum(0), lr.r, rtol=0, atol=1e-15)
    assert torch.allclose(lr.U4 @ lr.V4.T, lr.r[:, None] * f_t, rtol=0, atol=1e-15)
    A1, A2 = medium.A1, medium.A2
    materialised = ((A1.T @ lr.U3) @ (lr.V3.T @ A2) - (A1.T @ lr.U4) @ (lr.V4.T @ A2)) / medium.d
    assert G.relative_max_error(lr.grad, materialised) < 1e-12


@pytest.mark.parametrize("B, degree, tol", [(0.5, 4, 1e-5), (1.0, 6, 1e-5), (1.0, 10, 1e-9)])
def test_lowrank_close_to_exact_for_small_B(medium, B, degree, tol):
    p = G.random_problem(64, 4, B, seed=4)
    err = G.relative_max_error(G.lowrank_gradient(p, degree=degree).grad, G.exact_gradient(p))
    assert err < tol


def test_lowrank_error_falls_with_degree():
    p = G.random_problem(128, 4, 1.0, seed=5)
    g = G.exact_gradient(p)
    errs = [G.relative_max_error(G.lowrank_gradient(p, degree=k).grad, g) for k in (2, 4, 6, 8)]
    assert all(b < a / 10 for a, b in zip(errs, errs[1:])), errs


def test_chain_errors_every_step_small_and_paths_agree(medium):
    a = G.chain_errors(medium, degree=6)
    b = G.chain_errors(medium, degree=6, form_products=False)
    assert set(G.STEPS) <= set(a)
    for k in G.STEPS:
        assert a[k] < 1e-4
        assert math.isclose(a[k], b[k], rel_tol=1e-6, abs_tol=1e-14)
    assert a["info"]["normaliser_ok"]


def test_wrong_scaling_is_detectably_wrong(small):
    right = G.lowrank_gradient(small, degree=10).grad
    wrong = G.lowrank_gradient(small, degree=10, wrong_scaling=True).grad
    exact = G.exact_gradient(small)
    assert G.relative_max_error(right, exact) < 1e-8
    assert G.relative_max_error(wrong, exact) > 1e-2
    steps = G.chain_errors(small, degree=10, wrong_scaling=True)
    assert steps["p2 (step 5)"] > 0.5          # order one on the object it approximates
    assert steps["p1 (step 3)"] < 1e-8         # the steps before it are untouched


def test_cancellation_past_the_threshold():
    p = G.random_problem(256, 4, 4.0, seed=6)
    with pytest.raises(attention.CancellationError, match="cancels"):
        G.lowrank_gradient(p, degree=2)
    with pytest.warns(attention.CancellationWarning):
        G.lowrank_gradient(p, degree=2, on_cancel="warn")
    res = G.lowrank_gradient(p, degree=2, on_cancel="ignore")
    assert not res.info["normaliser_ok"]
    assert G.relative_max_error(res.grad, G.exact_gradient(p)) > 1.0


def test_lowrank_float32_and_device_argument(medium):
    res = G.lowrank_gradient(medium, degree=6, dtype=torch.float32, device="cpu")
    assert res.grad.dtype == torch.float32 and res.grad.device.type == "cpu"
    assert G.relative_max_error(res.grad, G.exact_gradient(medium)) < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_lowrank_on_cuda(medium):
    res = G.lowrank_gradient(medium, degree=6, device="cuda")
    assert res.grad.device.type == "cuda"
    assert G.relative_max_error(res.grad, G.exact_gradient(medium)) < 1e-5


# ------------------------------------------------------------------------------------------ around it
def test_random_problem_bounds_and_determinism():
    p = G.random_problem(200, 5, 1.5, seed=7)
    S = p.A1 @ p.X @ p.A2.T / p.d
    assert float(S.abs().max()) <= 1.5**2
    for t in (p.A1, p.A2, p.A3):
        assert float(t.abs().max()) <= 1.5
    assert torch.allclose(p.X.T @ p.X, torch.eye(5, dtype=torch.float64))
    q = G.random_problem(200, 5, 1.5, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(p.args, q.args))
    assert not torch.equal(p.A1, G.random_problem(200, 5, 1.5, seed=8).A1)


def test_decoder_drops_out():
    p = G.random_problem(16, 4, 1.0, seed=9)       # d = 4 = 2^2, L = 16 = 4^2: a 8 x 8 latent image
    gen = torch.Generator().manual_seed(0)
    W_A, _ = torch.linalg.qr(torch.randn(100, 64, generator=gen, dtype=torch.float64))
    y = torch.randn(100, generator=gen, dtype=torch.float64)
    X = p.X.clone().requires_grad_(True)
    (g_dec,) = torch.autograd.grad(G.decoded_loss(p, X, W_A, y), X)
    E = patchify(W_A.T @ y, 2).T                     # the target seen in token space
    g_tok = G.exact_gradient(replace(p, E=E))
    assert G.relative_max_error(g_dec, g_tok) < 1e-12
    const = 0.5 * float(((y - W_A @ (W_A.T @ y)) ** 2).sum())
    assert math.isclose(float(G.decoded_loss(p, p.X, W_A, y)), float(G.training_loss(replace(p, E=E))) + const,
                        rel_tol=1e-12)


def test_gradient_descent_decreases_loss_with_both_gradients():
    p = G.random_problem(64, 4, 1.5, seed=10)
    ex = G.gradient_descent(p, steps=5, lr=1.0)
    lr = G.gradient_descent(p, steps=5, lr=1.0, method="lowrank", degree=6)
    assert ex["loss"][-1] < ex["loss"][0] and lr["loss"][-1] < lr["loss"][0]
    assert np.allclose(ex["loss"], lr["loss"], rtol=1e-3)
    assert ex["distance"].shape == (6,)


# ------------------------------------------------------------------------------------------ bad input
def _mutate(p, **kw):
    args = dict(zip(("A1", "A2", "A3", "X", "Y", "E"), p.args))
    args.update(kw)
    return tuple(args.values())


@pytest.mark.parametrize("name, shape", [("A2", (12, 4)), ("A3", (11, 3)), ("A3", (12, 2)), ("X", (3, 4)),
                                         ("X", (2, 2)), ("Y", (4, 3)), ("E", (11, 3)), ("E", (12, 4))])
def test_shape_mismatches_are_rejected(small, name, shape):
    bad = _mutate(small, **{name: torch.zeros(shape, dtype=torch.float64)})
    with pytest.raises(ValueError, match=name):
        G.exact_gradient(*bad)
    with pytest.raises(ValueError, match=name):
        G.lowrank_gradient(*bad, degree=2)


def test_bad_inputs(small):
    with pytest.raises(ValueError, match="A1 must be a matrix"):
        G.as_problem(torch.zeros(12), *small.args[1:])
    nan = small.E.clone(); nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="E must contain only finite"):
        G.training_loss(*_mutate(small, E=nan))
    with pytest.raises(TypeError, match="Y must be"):
        G.as_problem(*_mutate(small, Y="not a matrix"))
    with pytest.raises(TypeError, match="six matrices"):
        G.exact_gradient(small.A1, small.A2)
    with pytest.raises(TypeError, match="dtype"):
        G.as_problem(*small.args, dtype=torch.int64)
    with pytest.raises(ValueError, match="degree"):
        G.lowrank_gradient(small, degree=-1)
    with pytest.raises(TypeError, match="degree"):
        G.lowrank_gradient(small, degree=2.5)
    with pytest.raises(ValueError, match="radius"):
        G.lowrank_gradient(small, degree=2, radius=0.0)
    with pytest.raises(ValueError, match="on_cancel"):
        G.lowrank_gradient(small, degree=2, on_cancel="sometimes")
    with pytest.raises(ValueError, match="backend"):
        G.training_loss(small, backend="flash")
    with pytest.raises(ValueError, match="B must"):
        G.random_problem(8, 2, B=0.0)
    with pytest.raises(ValueError, match="L must"):
        G.random_problem(0, 2)
    with pytest.raises(ValueError, match="method"):
        G.gradient_descent(small, steps=1, lr=1.0, method="adam")
    with pytest.raises(ValueError, match="degree is required"):
        G.gradient_descent(small, steps=1, lr=1.0, method="lowrank")
    with pytest.raises(ValueError, match="same shape"):
        G.relative_max_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="return_intermediates"):
        z = torch.zeros(9000, 2, dtype=torch.float64)
        G.exact_gradient(z, z, z, torch.eye(2), torch.eye(2), z, return_intermediates=True)
