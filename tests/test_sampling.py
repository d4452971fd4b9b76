"""Tests of dit_lib.sampling: the backward process of chapter 3."""
import numpy as np
import pytest

import dit_lib as dl
from dit_lib import metrics, sampling
from dit_lib.scores import ambient_score


def _dit_form_score(W, seed=0):
    """A score of latent-DiT form ``(W f(W^T x, t) - x) / sigma(t)`` with an arbitrary nonlinear ``f``."""
    A = np.random.default_rng(seed).standard_normal((W.shape[1], W.shape[1]))

    def score(x, t):
        f = np.tanh(x @ W @ A) + np.exp(-t) * (x @ W)
        return (f @ W.T - x) / float(dl.sigma(t))

    return score


def test_time_grid_geometric_and_uniform():
    g = sampling.time_grid(0.01, 5.0, 10)
    assert g[0] == 5.0 and g[-1] == 0.01 and g.shape == (11,)
    assert np.all(np.diff(g) < 0)
    np.testing.assert_allclose(g[1:] / g[:-1], (0.01 / 5.0) ** 0.1)     # constant ratio
    u = sampling.time_grid(0.5, 2.5, 4, "uniform")
    np.testing.assert_allclose(u, [2.5, 2.0, 1.5, 1.0, 0.5])


@pytest.mark.parametrize("kw, match", [
    (dict(T0=1.0, T=1.0, steps=5), "T0 must lie in"),
    (dict(T0=2.0, T=1.0, steps=5), "T0 must lie in"),
    (dict(T0=0.0, T=1.0, steps=5), "T0 must lie in"),
    (dict(T0=0.1, T=1.0, steps=0), "steps must be >= 1"),
])
def test_time_grid_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        sampling.time_grid(**kw)
    with pytest.raises(ValueError, match="kind must be one of"):
        sampling.time_grid(0.1, 1.0, 3, kind="cosine")


def test_standard_gaussian_is_preserved():
    # The OU process leaves N(0, I) invariant, whose score is -x: every sampler must return N(0, I).
    for method in sampling.METHODS:
        y = sampling.sample(lambda x, t: -x, 4000, 3, T0=0.05, T=3.0, steps=60, method=method, seed=1)
        np.testing.assert_allclose(np.cov(y.T), np.eye(3), atol=0.08)
        np.testing.assert_allclose(y.mean(0), 0.0, atol=0.06)


def test_exact_score_reproduces_mixture_latent():
    # Stated tolerance: at n = 2000, 1-D latent, 30 bins, the histogram TV to the closed-form time-T0 latent
    # marginal is within its null floor + 0.03 (the floor is what it reads for a perfect sampler).
    data = dl.SubspaceData.random(D=4, d0=1, n_components=3, seed=3)
    T0 = 0.05
    y = sampling.sample(lambda x, t: ambient_score(data, x, t), 2000, data.D, T0=T0, T=6.0, steps=80, seed=2)
    target = data.latent.diffused(float(dl.beta(T0)), float(dl.sigma(T0)))
    tv = metrics.tv_histogram(y @ data.basis, target, bins=30, n_boot=50)
    assert tv.value < tv.floor + 0.03, tv
    # and the starting law alone (no score) is far away: the test can fail
    tv0 = metrics.tv_histogram(np.random.default_rng(0).standard_normal((2000, 1)), target, bins=30, n_boot=10)
    assert tv0.value > tv.floor + 0.1


@pytest.mark.parametrize("method", sampling.METHODS)
def test_orthogonal_variance_matches_recursion(method):
    # Off span(W) any latent-DiT-form score is -y/sigma: the per-direction variance follows the scalar recursion.
    W = dl.random_orthonormal_basis(7, 2, seed=4)
    T0, T, steps = 0.02, 4.0, 40
    y = sampling.sample(_dit_form_score(W), 3000, 7, T0=T0, T=T, steps=steps, method=method, seed=5)
    leak = metrics.orthogonal_leakage(y, W)
    want = sampling.orthogonal_variance_recursion(T0, T, steps, method=method)
    assert abs(leak.variance - want) < 4 * leak.se, (leak, want)


def test_orthogonal_variance_recursion_tends_to_sigma_T0():
    T0 = 0.003
    r = [sampling.orthogonal_variance_recursion(T0, 8.0, s) / float(dl.sigma(T0)) for s in (50, 200, 800)]
    assert r[0] > r[1] > r[2] > 1.0
    assert r[2] < 1.01
    # leakage / T0 stays bounded as T0 shrinks (Corollary 3.2.1 (iii)) at a fixed number of steps
    ratios = [sampling.orthogonal_variance_recursion(t0, 5.0, 200) / t0 for t0 in (0.1, 0.01, 0.001)]
    assert max(ratios) < 1.1


def test_seed_reproducibility_and_path():
    score = _dit_form_score(dl.random_orthonormal_basis(5, 2, seed=0))
    a = sampling.sample(score, 50, 5, steps=20, seed=7)
    b = sampling.sample(score, 50, 5, steps=20, seed=7)
    c = sampling.sample(score, 50, 5, steps=20, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    y, times, path = sampling.sample(score, 50, 5, steps=20, seed=7, return_path=True, path_every=7)
    np.testing.assert_array_equal(y, a)
    assert path.shape == (len(times), 50, 5)
    np.testing.assert_allclose(times, sampling.time_grid(0.01, 5.0, 20)[[0, 7, 14, 20]])
    np.testing.assert_array_equal(path[-1], y)


def test_ode_is_deterministic_given_start():
    score = _dit_form_score(dl.random_orthonormal_basis(4, 1, seed=1))
    y_T = np.random.default_rng(3).standard_normal((20, 4))
    a = sampling.sample(score, 20, 4, method="ode", y_T=y_T, seed=0, steps=15)
    b = sampling.sample(score, 20, 4, method="ode", y_T=y_T, seed=99, steps=15)
    np.testing.assert_array_equal(a, b)


def test_sample_bad_input():
    ok = lambda x, t: -x  # noqa: E731
    with pytest.raises(ValueError, match="T0 must lie in"):
        sampling.sample(ok, 10, 2, T0=5.0, T=5.0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        sampling.sample(ok, 10, 2, steps=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        sampling.sample(ok, 10, 2, steps=-3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        sampling.sample(ok, 0, 2)
    with pytest.raises(ValueError, match="method must be one of"):
        sampling.sample(ok, 10, 2, method="rk4")
    with pytest.raises(TypeError, match="score_fn must be callable"):
        sampling.sample("score", 10, 2)
    with pytest.raises(ValueError, match="score_fn must return shape"):
        sampling.sample(lambda x, t: x[:, :1], 10, 2, steps=2)
    with pytest.raises(ValueError, match="non-finite"):
        sampling.sample(lambda x, t: x * np.nan, 10, 2, steps=2)
    with pytest.raises(ValueError, match="y_T must have shape"):
        sampling.sample(ok, 10, 2, y_T=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="start must lie in"):
        sampling.orthogonal_variance_recursion(0.01, start=-1.0)
