"""Unit tests of dit_lib.patches (the reshape R) and dit_lib.diffusion (the OU process)."""
import numpy as np
import pytest
import torch

import dit_lib as dl


def test_patchify_layout_on_a_known_image():
    X = dl.patchify(np.arange(16.0), 2)
    assert X.shape == (4, 4)
    np.testing.assert_array_equal(X[:, 0], [0, 1, 4, 5])      # top-left patch, row-major
    np.testing.assert_array_equal(X[:, 1], [2, 3, 6, 7])      # patch to its right
    np.testing.assert_array_equal(X[:, 2], [8, 9, 12, 13])    # first patch of the second patch row


@pytest.mark.parametrize("d0,p", [(16, 1), (16, 2), (16, 4), (64, 2), (144, 3), (144, 4)])
def test_patchify_is_an_exact_permutation_numpy_and_torch(d0, p):
    h = np.random.default_rng(0).standard_normal((3, 2, d0))
    X = dl.patchify(h, p)
    g = dl.patch_geometry(d0, p)
    assert X.shape == (3, 2, g.d, g.L) and g.d * g.L == d0
    np.testing.assert_array_equal(dl.unpatchify(X), h)
    assert sorted(dl.patchify(np.arange(d0), p).ravel().tolist()) == list(range(d0))
    t = torch.from_numpy(h)
    assert torch.equal(dl.patchify(t, p), torch.from_numpy(X))
    assert torch.equal(dl.unpatchify(dl.patchify(t, p)), t)


def test_patch_choices_cover_all_divisors():
    assert [(g.d, g.L) for g in dl.patch_choices(36)] == [(1, 36), (4, 9), (9, 4), (36, 1)]


@pytest.mark.parametrize("d0,p,match", [(15, 1, "perfect square"), (16, 3, "divide"), (16, 0, "p must be")])
def test_patch_geometry_rejects(d0, p, match):
    with pytest.raises(ValueError, match=match):
        dl.patch_geometry(d0, p)


def test_unpatchify_rejects_bad_shapes():
    with pytest.raises(ValueError, match="d must be a perfect square"):
        dl.unpatchify(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="L must be a perfect square"):
        dl.unpatchify(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="p must equal"):
        dl.unpatchify(np.zeros((4, 4)), p=1)
    with pytest.raises(TypeError):
        dl.patchify([1.0, 2.0], 1)


def test_token_entry_bound_is_max_abs_entry():
    h = np.array([[0.5, -3.0, 1.0, 2.0]])
    assert dl.token_entry_bound(h, 1) == 3.0


def test_beta_sigma_closed_forms():
    t = np.array([1e-6, 0.1, 1.0, 10.0])
    np.testing.assert_allclose(dl.beta(t), np.exp(-t / 2))
    np.testing.assert_allclose(dl.sigma(t), 1 - np.exp(-t), rtol=1e-9)
    assert dl.sigma(1e-12) == pytest.approx(1e-12, rel=1e-9)  # expm1 keeps small times accurate
    np.testing.assert_allclose(dl.beta(t) ** 2 + dl.sigma(t), 1.0)  # OU keeps unit variance


def test_forward_sample_moments_and_seed():
    x0 = np.tile([[2.0, -1.0]], (100_000, 1))
    xt = dl.forward_sample(x0, 0.7, seed=1)
    np.testing.assert_allclose(xt.mean(0), dl.beta(0.7) * x0[0], atol=0.01)
    np.testing.assert_allclose(xt.var(0), dl.sigma(0.7), rtol=0.02)
    np.testing.assert_array_equal(xt, dl.forward_sample(x0, 0.7, seed=1))


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan")])
def test_times_must_be_positive(t):
    with pytest.raises(ValueError, match="t must"):
        dl.forward_sample(np.zeros((2, 2)), t)
    with pytest.raises(ValueError):
        dl.sigma(t)
