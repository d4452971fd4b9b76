"""Unit tests of dit_lib.data: the subspace model, Gaussian mixtures and subspace recovery."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import dit_lib as dl
from dit_lib.data import GaussianMixture


def test_random_basis_is_orthonormal_and_seeded():
    U = dl.random_orthonormal_basis(7, 3, seed=4)
    assert U.shape == (7, 3)
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(U, dl.random_orthonormal_basis(7, 3, seed=4))
    assert not np.allclose(U, dl.random_orthonormal_basis(7, 3, seed=5))


@pytest.mark.parametrize("D,d0", [(3, 4), (0, 1), (3, 0)])
def test_random_basis_rejects_bad_sizes(D, d0):
    with pytest.raises(ValueError, match="D|d0"):
        dl.random_orthonormal_basis(D, d0)


def test_mixture_log_density_matches_scipy():
    gm = dl.default_mixture(3, 4, seed=2)
    h = gm.sample(50, seed=1)
    dens = sum(w * multivariate_normal(m, c).pdf(h) for w, m, c in zip(gm.weights, gm.means, gm.covs))
    np.testing.assert_allclose(gm.log_density(h), np.log(dens), rtol=1e-10)


def test_mixture_score_matches_finite_differences():
    gm = dl.default_mixture(3, 3, seed=0)
    h = gm.sample(5, seed=3)
    eps = 1e-6
    fd = np.stack([(gm.log_density(h + eps * e) - gm.log_density(h - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
    np.testing.assert_allclose(gm.score(h), fd, atol=1e-6)


def test_mixture_sample_moments():
    gm = dl.default_mixture(2, 2, seed=1)
    h = gm.sample(200_000, seed=0)
    np.testing.assert_allclose(h.mean(0), gm.weights @ gm.means, atol=0.02)
    np.testing.assert_allclose(h.T @ h / len(h), gm.second_moment(), atol=0.03)


def test_diffused_mixture_is_law_of_scaled_plus_noise():
    gm = dl.default_mixture(2, 2, seed=1)
    dm = gm.diffused(0.5, 0.3)
    h = 0.5 * gm.sample(200_000, seed=0) + np.sqrt(0.3) * np.random.default_rng(1).standard_normal((200_000, 2))
    np.testing.assert_allclose(h.T @ h / len(h), dm.second_moment(), atol=0.02)


@pytest.mark.parametrize("kw,match", [
    (dict(weights=[0.5, 0.6], means=np.zeros((2, 2)), covs=np.stack([np.eye(2)] * 2)), "sum to 1"),
    (dict(weights=[1.0], means=np.zeros((1, 2)), covs=np.array([[[1.0, 0], [0, -1.0]]])), "positive definite"),
    (dict(weights=[1.0], means=np.zeros((2, 2)), covs=np.stack([np.eye(2)])), "one row per weight"),
    (dict(weights=[1.0], means=np.zeros((1, 2)), covs=np.stack([np.eye(3)])), "covs must have shape"),
    (dict(weights=[1.0], means=np.full((1, 2), np.nan), covs=np.stack([np.eye(2)])), "finite"),
])
def test_mixture_rejects_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**kw)


def test_subspace_data_lies_on_subspace_and_noise_leaves_it():
    data = dl.SubspaceData.random(10, 3, seed=0)
    x, h = data.sample(100, seed=1, return_latent=True)
    np.testing.assert_allclose(x, h @ data.basis.T)
    P = np.eye(10) - data.basis @ data.basis.T
    assert np.abs(x @ P).max() < 1e-12
    noisy = data.sample(20_000, seed=1, noise=0.5)
    assert abs((noisy @ P).var() * 10 / 7 - 0.25) < 0.02  # noise variance in the 7 orthogonal directions


def test_subspace_data_validates():
    with pytest.raises(ValueError, match="orthonormal"):
        dl.SubspaceData(np.ones((4, 2)), dl.default_mixture(2))
    with pytest.raises(ValueError, match="d0"):
        dl.SubspaceData(dl.random_orthonormal_basis(4, 2), dl.default_mixture(3))
    with pytest.raises(TypeError, match="latent"):
        dl.SubspaceData(dl.random_orthonormal_basis(4, 2), "gaussian")
    with pytest.raises(ValueError, match="noise"):
        dl.SubspaceData.random(4, 2).sample(3, noise=-1.0)


def test_pca_recovers_clean_subspace_exactly_and_metrics_agree():
    data = dl.SubspaceData.random(30, 5, seed=2)
    U_hat = dl.estimate_subspace(data.sample(5, seed=0), 5)
    assert dl.subspace_angles(U_hat, data.basis).max() < 1e-6
    noisy = dl.estimate_subspace(data.sample(300, seed=0, noise=0.3), 5)
    ang = dl.subspace_angles(noisy, data.basis)
    np.testing.assert_allclose(dl.projection_distance(noisy, data.basis), np.sqrt(2 * np.sum(np.sin(ang) ** 2)))


def test_projection_distance_is_rotation_invariant():
    data = dl.SubspaceData.random(12, 4, seed=3)
    other = dl.random_orthonormal_basis(12, 4, seed=9)
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    assert dl.projection_distance(other @ Q, data.basis) == pytest.approx(dl.projection_distance(other, data.basis))


def test_recovery_functions_reject_bad_input():
    with pytest.raises(ValueError, match="d0"):
        dl.estimate_subspace(np.ones((3, 5)), 4)
    with pytest.raises(ValueError, match="finite"):
        dl.estimate_subspace(np.full((3, 5), np.nan), 1)
    with pytest.raises(ValueError, match="same R"):
        dl.subspace_angles(np.eye(3)[:, :1], np.eye(4)[:, :1])
    with pytest.raises(ValueError, match="orthonormal"):
        dl.projection_distance(np.ones((3, 1)), np.eye(3)[:, :1])
