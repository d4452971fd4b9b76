"""Tests of dit_lib.scores: Lemma 2.1, Tweedie, the DSM target, the score-error metric (chapter 2)."""
import numpy as np
import pytest
import torch

import dit_lib as dl
from dit_lib import scores as S
from dit_lib.data import GaussianMixture, SubspaceData


@pytest.mark.parametrize("D,d0,K,t", [(3, 2, 2, 0.05), (8, 4, 3, 0.4), (16, 16, 2, 1.3), (12, 1, 4, 3.0)])
def test_decomposition_matches_autograd_of_ambient_density(D, d0, K, t):
    data = SubspaceData.random(D, d0, K, seed=D + K)
    x = S.sample_pt(data, 40, t, seed=2)
    x[:5] += np.random.default_rng(0).standard_normal((5, D))  # also off the typical set
    direct = S.ambient_score_autograd(data, x, t)
    np.testing.assert_allclose(S.ambient_score(data, x, t), direct, atol=1e-10 * (1 + np.abs(direct).max()))
    # and against the closed-form score of the D-dimensional mixture
    np.testing.assert_allclose(S.ambient_mixture(data, t).score(x), direct, atol=1e-9 * (1 + np.abs(direct).max()))


def test_parts_of_the_decomposition_are_orthogonal_and_sum():
    data = SubspaceData.random(10, 3, seed=1)
    x = S.sample_pt(data, 30, 0.2, seed=3)
    s_plus, s_minus = S.score_decomposition(data, x, 0.2)
    U = data.basis
    np.testing.assert_allclose(s_plus - s_plus @ U @ U.T, 0, atol=1e-12)   # s_+ lies in span(U)
    np.testing.assert_allclose(s_minus @ U, 0, atol=1e-12)                 # s_- is orthogonal to it
    np.testing.assert_allclose(s_plus + s_minus, S.ambient_score(data, x, 0.2))


def test_latent_score_matches_finite_differences():
    data = SubspaceData.random(6, 3, seed=4)
    t, eps = 0.3, 1e-6
    h = S.sample_pt(data, 5, t, seed=1) @ data.basis
    mix = S.latent_diffused(data, t)
    fd = np.stack([(mix.log_density(h + eps * e) - mix.log_density(h - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
    np.testing.assert_allclose(S.latent_score(data, h, t), fd, atol=1e-6)


@pytest.mark.parametrize("t", [0.02, 0.5, 4.0])
def test_tweedie_form(t):
    data = SubspaceData.random(9, 4, seed=5)
    x = S.sample_pt(data, 50, t, seed=6)
    h = x @ data.basis
    q = S.tweedie_q(data, h, t)
    np.testing.assert_allclose(q, dl.beta(t) * S.posterior_mean(data, h, t), atol=1e-10)
    # score = (U q(U^T x) - x) / sigma
    np.testing.assert_allclose((q @ data.basis.T - x) / dl.sigma(t), S.ambient_score(data, x, t), atol=1e-9)


def test_dsm_target_is_gradient_of_transition_log_density():
    rng = np.random.default_rng(0)
    x0, xt = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    t, eps = 0.7, 1e-6
    fd = np.stack([(S.transition_log_density(xt + eps * e, x0, t) - S.transition_log_density(xt - eps * e, x0, t))
                   / (2 * eps) for e in np.eye(5)], 1)
    np.testing.assert_allclose(S.dsm_target(x0, xt, t), fd, atol=1e-6)
    tt = torch.full((4,), t, dtype=torch.float64)
    np.testing.assert_allclose(S.dsm_target(torch.as_tensor(x0), torch.as_tensor(xt), tt).numpy(),
                               S.dsm_target(x0, xt, t), atol=1e-12)


def test_transition_log_density_normalised_in_1d():
    grid = np.linspace(-12, 12, 20001)[:, None]
    dens = np.exp(S.transition_log_density(grid, np.full_like(grid, 0.8), 0.9))
    assert abs(np.trapezoid(dens, grid[:, 0]) - 1) < 1e-8


def test_dsm_loss_by_hand_and_weightings():
    g = torch.Generator().manual_seed(0)
    x0, z = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    t = torch.rand(7, generator=g, dtype=torch.float64) + 0.1
    score = lambda x, tt: -x  # noqa: E731
    b, s = torch.exp(-t / 2)[:, None], -torch.expm1(-t)[:, None]
    xt = b * x0 + s.sqrt() * z
    per = ((-xt - (b * x0 - xt) / s) ** 2).sum(1)
    assert torch.allclose(S.dsm_loss(score, x0, t, z), per.mean())
    assert torch.allclose(S.dsm_loss(score, x0, t, z, "sigma"), (per * s[:, 0]).mean())
    assert torch.allclose(S.dsm_loss(score, x0, t, z, "sigma2"), (per * s[:, 0] ** 2).mean())


def test_dsm_minimiser_is_the_score():
    """E[DSM loss] - E||s - grad log p_t||^2 does not depend on s (Vincent 2011): compare two scores at one t."""
    data = SubspaceData.random(4, 2, seed=2)
    n, t = 200_000, 0.5
    x0 = torch.as_tensor(data.sample(n, seed=1))
    z = torch.randn(n, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tt = torch.full((n,), t, dtype=torch.float64)
    exact = lambda x, _t: torch.as_tensor(S.ambient_score(data, x.numpy(), t))  # noqa: E731
    trivial = lambda x, _t: torch.as_tensor(S.trivial_score(x.numpy(), t))  # noqa: E731
    gap = float(S.dsm_loss(trivial, x0, tt, z) - S.dsm_loss(exact, x0, tt, z))
    err2 = S.score_error(S.trivial_score, data, [t], n=n, seed=1)[0] ** 2
    assert gap == pytest.approx(err2, rel=0.03)


def test_orthogonal_score_rms_matches_monte_carlo():
    data = SubspaceData.random(20, 4, seed=3)
    for t in (0.01, 0.3, 2.0):
        _, s_minus = S.score_decomposition(data, S.sample_pt(data, 20_000, t, seed=4), t)
        rms = np.sqrt((s_minus**2).sum(1).mean())
        assert rms == pytest.approx(float(S.orthogonal_score_rms(20, 4, t)), rel=0.02)


def test_score_error_zero_for_exact_and_positive_otherwise():
    data = SubspaceData.random(8, 4, seed=0)
    grid = [0.05, 0.5, 2.0]
    exact = S.score_error(lambda x, t: S.ambient_score(data, x, t), data, grid, n=300)
    np.testing.assert_allclose(exact, 0, atol=1e-12)
    err = S.score_error(S.trivial_score, data, grid, n=300)
    rel = S.score_error(S.trivial_score, data, grid, n=300, relative=True)
    assert np.all(err > 0) and np.all(rel > 0) and np.all(rel < err)
    # the trivial score's error is U q / sigma: its size is beta ||h||-ish over sigma, decreasing in t
    assert np.all(np.diff(err) < 0)
    np.testing.assert_array_equal(err, S.score_error(S.trivial_score, data, grid, n=300))  # seeded


def test_bad_inputs():
    data = SubspaceData.random(5, 2, seed=0)
    x = data.sample(3)
    with pytest.raises(ValueError, match="t"):
        S.ambient_score(data, x, 0.0)
    with pytest.raises(ValueError, match="t"):
        S.ambient_score(data, x, -1.0)
    with pytest.raises(ValueError, match="x"):
        S.ambient_score(data, x[:, :4], 0.5)
    with pytest.raises(ValueError, match="hbar"):
        S.latent_score(data, x, 0.5)
    with pytest.raises(TypeError, match="data"):
        S.ambient_score(data.latent, x, 0.5)
    with pytest.raises(ValueError, match="t_grid"):
        S.score_error(S.trivial_score, data, [0.5, 6.0], T=5.0)
    with pytest.raises(ValueError, match="t_grid"):
        S.score_error(S.trivial_score, data, [0.0, 1.0])
    with pytest.raises(ValueError, match="score_fn must return"):
        S.score_error(lambda x, t: x[:, :2], data, [1.0])
    with pytest.raises(ValueError, match="weighting"):
        S.dsm_loss(lambda x, t: x, torch.zeros(2, 5), torch.ones(2), torch.zeros(2, 5), "bogus")
    with pytest.raises(ValueError, match="t must be > 0"):
        S.dsm_loss(lambda x, t: x, torch.zeros(2, 5), torch.zeros(2), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="same shape"):
        S.dsm_target(np.zeros((2, 3)), np.zeros((3, 3)), 0.5)
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(np.array([0.5, 0.6]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(np.array([1.0]), np.zeros((1, 2)), -np.eye(2)[None])
