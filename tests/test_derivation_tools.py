"""Unit tests of the library pieces added for the primer (chapter 0) and the chapter-4 batch hardness instance."""
import numpy as np
import pytest
import torch

from dit_lib import instances, sampling, scores
from dit_lib.diffusion import beta, sigma


def test_langevin_reaches_standard_normal_from_far_start():
    x = sampling.langevin(lambda x: -x, np.full((4000, 1), 5.0), step=0.02, steps=600, seed=0)
    assert abs(x.mean()) < 0.1
    assert abs(x.var() - 1) < 0.1


def test_langevin_is_seeded_and_keeps_shape():
    a = sampling.langevin(lambda x: -x, np.zeros((5, 2)), step=0.1, steps=3, seed=4)
    b = sampling.langevin(lambda x: -x, np.zeros((5, 2)), step=0.1, steps=3, seed=4)
    c = sampling.langevin(lambda x: -x, np.zeros((5, 2)), step=0.1, steps=3, seed=5)
    assert a.shape == (5, 2) and np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("kw, match", [({"step": 0.0}, "step"), ({"steps": 0}, "steps")])
def test_langevin_rejects_bad_numbers(kw, match):
    args = dict(step=0.1, steps=2) | kw
    with pytest.raises(ValueError, match=match):
        sampling.langevin(lambda x: -x, np.zeros((3, 1)), **args)


def test_langevin_rejects_bad_score():
    with pytest.raises(ValueError, match="score_fn"):
        sampling.langevin(lambda x: x[:, :1], np.zeros((3, 2)), step=0.1, steps=2)
    with pytest.raises(TypeError, match="score_fn"):
        sampling.langevin(3, np.zeros((3, 2)), step=0.1, steps=2)


def test_dsm_binned_minimiser_is_the_binned_true_score():
    # x0 ~ N(0, 1) stays N(0, 1) under the OU process, so the score of p_t is -x for every t.
    t, n = 0.4, 200_000
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((n, 1))
    xt = float(beta(t)) * x0 + np.sqrt(float(sigma(t))) * rng.standard_normal((n, 1))
    edges = np.linspace(-2, 2, 9)
    centres, best = scores.dsm_binned_minimiser(x0, xt, t, edges)
    which = np.digitize(xt[:, 0], edges) - 1
    for k in range(centres.size):
        inside = which == k
        target = scores.dsm_target(x0[inside], xt[inside], t)[:, 0]
        se = target.std() / np.sqrt(inside.sum())
        assert abs(best[k] - (-xt[inside, 0]).mean()) < 5 * se
    assert np.allclose(centres, (edges[:-1] + edges[1:]) / 2)


def test_dsm_binned_minimiser_empty_bin_is_nan_and_bad_edges_raise():
    x0 = np.zeros((4, 1))
    xt = np.array([[0.1], [0.2], [0.3], [0.4]])
    _, best = scores.dsm_binned_minimiser(x0, xt, 1.0, np.array([0.0, 0.5, 1.0]))
    assert np.isfinite(best[0]) and np.isnan(best[1])
    with pytest.raises(ValueError, match="edges"):
        scores.dsm_binned_minimiser(x0, xt, 1.0, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="xt"):
        scores.dsm_binned_minimiser(x0, np.zeros((4, 2)), 1.0, np.array([0.0, 1.0]))


def test_planted_batch_pair_is_the_unique_closest_pair():
    L, d = 256, 64        # a random pair is within d/8 = 8 with probability ~5e-10: the planted pair is the closest
    inst = instances.planted_batch_instance(L, d, 1.5, seed=3)
    assert inst.Q.shape == inst.K.shape == (L, d)
    assert torch.all(inst.Q.abs() == 1.5) and torch.all(inst.K.abs() == 1.5)
    hamming = ((inst.Q[:, None, :] != inst.K[None, :, :]).sum(-1))
    assert int(hamming[inst.query, inst.key]) == inst.distance == d // 8
    flat = int(torch.argmin(hamming))
    assert (flat // L, flat % L) == (inst.query, inst.key)
    assert int((hamming == hamming.min()).sum()) == 1


def test_planted_batch_seeded_and_validated():
    a = instances.planted_batch_instance(16, 8, 1.0, distance=2, seed=1)
    b = instances.planted_batch_instance(16, 8, 1.0, distance=2, seed=1)
    assert torch.equal(a.Q, b.Q) and torch.equal(a.K, b.K) and (a.query, a.key) == (b.query, b.key)
    with pytest.raises(ValueError, match="distance"):
        instances.planted_batch_instance(16, 8, 1.0, distance=8)
    with pytest.raises(ValueError, match="L"):
        instances.planted_batch_instance(1, 8, 1.0)
    with pytest.raises(ValueError, match="B"):
        instances.planted_batch_instance(16, 8, 0.0)
