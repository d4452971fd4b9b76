"""Tests of dit_lib.instances (chapter 4): attention instances with a given entry bound."""
import math

import numpy as np
import pytest
import torch

from dit_lib import instances as I


def test_uniform_instance_bounds_shapes_and_seed():
    inst = I.uniform_instance(500, 6, 1.7, d_v=3, heads=2, seed=4, device="cpu")
    assert inst.Q.shape == (2, 500, 6) and inst.K.shape == (2, 500, 6) and inst.V.shape == (2, 500, 3)
    assert inst.Q.abs().max() <= 1.7 and inst.K.abs().max() <= 1.7 and inst.V.abs().max() <= 1
    assert inst.Q.abs().max() > 1.6  # the bound is (nearly) attained
    assert inst.Q.dtype == torch.float32
    again = I.uniform_instance(500, 6, 1.7, d_v=3, heads=2, seed=4, device="cpu")
    assert torch.equal(inst.Q, again.Q) and torch.equal(inst.V, again.V)
    assert not torch.equal(inst.Q, I.uniform_instance(500, 6, 1.7, d_v=3, heads=2, seed=5, device="cpu").Q)
    # uniform on [-B, B]: variance B^2/3
    assert float(inst.Q.double().var()) == pytest.approx(1.7**2 / 3, rel=0.05)


def test_planted_pair_structure():
    inst = I.planted_pair_instance(1000, 32, 2.0, distance=3, seed=1)
    assert inst.K.shape == (1000, 32) and inst.q.shape == (32,)
    assert set(np.unique(np.abs(inst.K.numpy()))) == {2.0}
    assert inst.distance == 3 and inst.distances[inst.planted] == 3
    # Hamming distance and inner product: <q,k>/d = B^2 (1 - 2h/d)
    logits = (inst.K @ inst.q / 32).numpy()
    np.testing.assert_allclose(logits, 4.0 * (1 - 2 * inst.distances / 32))
    # random keys sit near d/2
    assert abs(np.delete(inst.distances, inst.planted).mean() - 16) < 0.5


def test_planted_key_takes_over_as_B_grows():
    L, d = 4096, 32
    shares = [I.planted_weight_share(I.planted_pair_instance(L, d, B, distance=2, seed=0)) for B in (0.5, 2, 4, 6)]
    assert shares == sorted(shares)
    assert shares[0] < 10 / L and shares[-1] > 0.9
    # closed form: weight = e^{a_p} / sum_j e^{a_j}
    inst = I.planted_pair_instance(L, d, 3.0, distance=2, seed=0)
    a = 9.0 * (1 - 2 * inst.distances / d)
    assert I.planted_weight_share(inst) == pytest.approx(math.exp(a[inst.planted]) / np.exp(a).sum())


@pytest.mark.parametrize("kwargs,exc", [
    ({"L": 0, "d": 4, "B": 1.0}, ValueError),
    ({"L": 10, "d": 4, "B": 0.0}, ValueError),
    ({"L": 10, "d": 4, "B": -1.0}, ValueError),
    ({"L": 10, "d": 4, "B": float("inf")}, ValueError),
    ({"L": 10.5, "d": 4, "B": 1.0}, TypeError),
])
def test_bad_uniform_inputs(kwargs, exc):
    with pytest.raises(exc):
        I.uniform_instance(**kwargs)


def test_bad_planted_inputs():
    with pytest.raises(ValueError, match="distance"):
        I.planted_pair_instance(10, 8, 1.0, distance=8)
    with pytest.raises(ValueError, match="L"):
        I.planted_pair_instance(1, 8, 1.0)
    with pytest.raises(ValueError, match="B"):
        I.planted_pair_instance(10, 8, 0.0)
