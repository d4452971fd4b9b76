"""Tests of dit_lib.metrics: distribution distances and the measurements of Corollary 3.2.1 (chapter 3)."""
import numpy as np
import pytest
from scipy.stats import norm

import dit_lib as dl
from dit_lib import metrics


def _gauss1(mu=0.0, var=1.0):
    return dl.GaussianMixture(np.array([1.0]), np.array([[mu]]), np.array([[[var]]]))


def test_bin_probabilities_2d_matches_product_of_cdfs():
    g = dl.GaussianMixture(np.array([1.0]), np.array([[0.3, -0.2]]), np.array([np.diag([0.5, 2.0])]))
    edges = [np.linspace(-3, 3, 11), np.linspace(-4, 4, 9)]
    P = metrics.bin_probabilities(g, edges)
    px = np.diff(norm.cdf((edges[0] - 0.3) / np.sqrt(0.5)))
    py = np.diff(norm.cdf((edges[1] + 0.2) / np.sqrt(2.0)))
    np.testing.assert_allclose(P, np.outer(px, py), atol=1e-9)
    # 1-D: exact CDF differences of a mixture sum to the mass inside the range
    mix = dl.default_mixture(1, seed=2)
    p1 = metrics.bin_probabilities(mix, [np.linspace(-20, 20, 41)])
    assert abs(p1.sum() - 1) < 1e-12


def test_tv_identical_law_reads_its_floor():
    mix = dl.default_mixture(2, seed=1)
    est = metrics.tv_histogram(mix.sample(2000, seed=3), mix, bins=15)
    assert abs(est.value - est.floor) < 4 * est.se
    two = metrics.tv_histogram(mix.sample(2000, seed=4), mix.sample(2000, seed=5), bins=15, n_boot=60)
    assert abs(two.value - two.floor) < 4 * two.se


def test_tv_shifted_gaussian_known_value():
    # TV(N(0,1), N(delta,1)) = 2 Phi(delta/2) - 1; fine bins lose little of it.
    delta = 0.8
    want = 2 * norm.cdf(delta / 2) - 1
    x = np.random.default_rng(0).normal(delta, 1.0, size=(20000, 1))
    est = metrics.tv_histogram(x, _gauss1(), bins=60, bounds=np.array([[-6.0, 7.0]]))
    assert abs(est.value - want) < est.floor + 4 * est.se, (est, want)


def test_mmd_zero_for_same_law_and_closed_form_for_shift():
    rng = np.random.default_rng(1)
    same = metrics.mmd2(rng.standard_normal((400, 2)), rng.standard_normal((400, 2)), bandwidth=1.0)
    assert abs(same.value) < 4 * same.se
    # Gaussian kernel, N(0, I_d) vs N(mu, I_d): MMD^2 = 2 (l^2/(l^2+2))^{d/2} (1 - exp(-|mu|^2 / (2 (l^2+2))))
    mu, ell, d = np.array([0.6, 0.0]), 1.0, 2
    want = 2 * (ell**2 / (ell**2 + 2)) ** (d / 2) * (1 - np.exp(-(mu @ mu) / (2 * (ell**2 + 2))))
    est = metrics.mmd2(rng.standard_normal((600, 2)), rng.standard_normal((500, 2)) + mu, bandwidth=ell)
    assert abs(est.value - want) < 4 * est.se, (est, want)
    assert est.value > 4 * est.se                         # the shift is detected


def test_mmd_default_bandwidth_and_symmetry():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((100, 3)), rng.standard_normal((120, 3)) + 0.3
    np.testing.assert_allclose(metrics.mmd2(a, b, bandwidth=1.3).value, metrics.mmd2(b, a, bandwidth=1.3).value)
    assert np.isfinite(metrics.mmd2(a, b).value)


def test_sliced_wasserstein_shift():
    rng = np.random.default_rng(3)
    mu = np.array([0.5, 0.0])
    a, b = rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2)) + mu
    # SW_2^2 = E (theta . mu)^2 = |mu|^2 / d;  SW_1 = E |theta . mu| = (2/pi) |mu| in d = 2
    sw2 = metrics.sliced_wasserstein(a, b, n_projections=200, p=2, n_boot=10)
    sw1 = metrics.sliced_wasserstein(a, b, n_projections=200, p=1, n_boot=10)
    assert abs(sw2.value - 0.5 / np.sqrt(2)) < 0.03 + 3 * sw2.se
    assert abs(sw1.value - 2 / np.pi * 0.5) < 0.03 + 3 * sw1.se
    same = metrics.sliced_wasserstein(a, rng.standard_normal((1500, 2)), n_projections=100, n_boot=10)
    assert same.value < 0.06
    np.testing.assert_allclose(metrics.sliced_wasserstein(a, a, n_boot=2).value, 0.0, atol=1e-12)


def test_aligned_latents_undo_rotation_and_subspace_error_invariance():
    U = dl.random_orthonormal_basis(6, 3, seed=0)
    R = dl.random_orthonormal_basis(3, 3, seed=1)              # an orthogonal 3 x 3 matrix
    y = np.random.default_rng(0).standard_normal((50, 6))
    np.testing.assert_allclose(metrics.aligned_latents(y, U @ R, U), y @ U, atol=1e-10)
    np.testing.assert_allclose(metrics.aligned_latents(y, U), y @ U)
    W = dl.random_orthonormal_basis(6, 3, seed=2)
    # Corollary 3.2.1 (i) measures subspaces, not bases: rotating either basis changes nothing
    np.testing.assert_allclose(dl.projection_distance(U @ R, W), dl.projection_distance(U, W), atol=1e-12)
    np.testing.assert_allclose(dl.projection_distance(U, W @ R), dl.projection_distance(U, W), atol=1e-12)


def test_orthogonal_leakage():
    data = dl.SubspaceData.random(D=8, d0=2, seed=1)
    x = data.sample(4000, seed=2)
    leak0 = metrics.orthogonal_leakage(x, data.basis)
    assert leak0.variance < 1e-20 and leak0.max_eigenvalue < 1e-20
    v = 0.03
    xt = x + np.sqrt(v) * np.random.default_rng(3).standard_normal(x.shape)
    leak = metrics.orthogonal_leakage(xt, data.basis)
    assert abs(leak.variance - v) < 4 * leak.se
    assert v <= leak.max_eigenvalue < 1.3 * v


def test_metrics_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="d <= 2"):
        metrics.tv_histogram(rng.standard_normal((500, 3)), rng.standard_normal((500, 3)))
    with pytest.raises(ValueError, match="at least bins"):
        metrics.tv_histogram(rng.standard_normal((50, 2)), dl.default_mixture(2), bins=10)
    with pytest.raises(ValueError, match="dimension 1 like samples"):
        metrics.tv_histogram(rng.standard_normal((500, 1)), dl.default_mixture(2))
    with pytest.raises(ValueError, match="low < high"):
        metrics.tv_histogram(rng.standard_normal((500, 1)), _gauss1(), bounds=np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="same dimension"):
        metrics.mmd2(rng.standard_normal((10, 2)), rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match="at least 4 samples"):
        metrics.mmd2(rng.standard_normal((3, 2)), rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="bandwidth must lie in"):
        metrics.mmd2(rng.standard_normal((10, 2)), rng.standard_normal((10, 2)), bandwidth=0.0)
    with pytest.raises(ValueError, match="p must be <= 2"):
        metrics.sliced_wasserstein(rng.standard_normal((10, 2)), rng.standard_normal((10, 2)), p=3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.sliced_wasserstein(rng.standard_normal((1, 2)), rng.standard_normal((10, 2)))
    with pytest.raises(ValueError, match="proper subspace"):
        metrics.orthogonal_leakage(rng.standard_normal((10, 3)), np.eye(3))
    with pytest.raises(ValueError, match="trailing shape"):
        metrics.orthogonal_leakage(rng.standard_normal((10, 4)), dl.random_orthonormal_basis(3, 1))
    with pytest.raises(ValueError, match="orthonormal"):
        metrics.aligned_latents(rng.standard_normal((10, 3)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="shape of encoder"):
        metrics.aligned_latents(rng.standard_normal((10, 3)), dl.random_orthonormal_basis(3, 1),
                                dl.random_orthonormal_basis(3, 2))
