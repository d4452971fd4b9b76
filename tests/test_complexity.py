"""Tests of dit_lib.complexity (chapter 4): cost model and phase diagram."""
import math

import numpy as np
import pytest

from dit_lib import complexity as C
from dit_lib.polynomial import exp_poly_error


def test_rank_and_costs_closed_forms():
    assert C.rank(8, 5) == 1287 and C.rank(1, 7) == 8 and C.rank(4, 0) == 1
    assert C.exact_cost(100, 8) == 100**2 * (16 + 1 + 16)
    assert C.fast_cost(100, 8, 2) == 2 * 100 * 45 * (1 + 2 * 9)
    # linear in L for the fast method, quadratic for exact
    assert C.fast_cost(200, 8, 3) == 2 * C.fast_cost(100, 8, 3)
    assert C.exact_cost(200, 8) == 4 * C.exact_cost(100, 8)


def test_eps_for_output_error_inverts_bound():
    for delta in (1e-6, 1e-3, 0.5):
        eps = C.eps_for_output_error(delta)
        assert 2 * eps / (1 - eps) == pytest.approx(delta)


def test_degree_needed_guarantees_delta():
    for B in (0.5, 1.0, 1.5):
        g = C.degree_needed(B, 1e-3)
        eps = exp_poly_error(B * B, g)
        assert 2 * eps / (1 - eps) <= 1e-3
        assert 2 * exp_poly_error(B * B, g - 1) / (1 - exp_poly_error(B * B, g - 1)) > 1e-3
    assert C.degree_needed(20.0, 1e-3) is None  # no degree <= 60 suffices
    assert C.cost_ratio(1000, 8, 20.0) == math.inf


def test_crossover_grows_with_L_and_cost_ratio_monotone_in_B():
    Bs = [C.crossover_B(L, 8, 1e-3, tol=1e-2) for L in (2**10, 2**14, 2**18)]
    assert Bs == sorted(Bs) and Bs[0] > 0
    ratios = [C.cost_ratio(2**14, 8, B) for B in (0.5, 1, 1.5, 2, 3)]
    assert ratios == sorted(ratios)
    # at the crossover the ratio changes sides
    B = C.crossover_B(2**14, 8, 1e-3, tol=1e-3)
    assert C.cost_ratio(2**14, 8, B) < 1 <= C.cost_ratio(2**14, 8, B + 2e-3)


def test_phase_diagram_shape_and_sign():
    Ls, Bs = [2**8, 2**16], [0.5, 3.0]
    P = C.phase_diagram(Ls, Bs, 8)
    assert P.shape == (2, 2)
    assert P[0, 1] < 0 < P[1, 0]  # small B, long L: fast; large B, short L: exact
    Pd = C.phase_diagram(Ls, Bs, lambda L: max(2, round(math.log2(L) / 2)), lambda L: 1 / L)
    assert np.isfinite(Pd).all()


def test_fit_sqrt_log_recovers_constant():
    Ls = [2**k for k in range(4, 20)]
    assert C.fit_sqrt_log(Ls, [0.7 * math.sqrt(math.log(L)) for L in Ls]) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        C.fit_sqrt_log([10, 100], [1.0])


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-3, 5.0])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        C.degree_needed(1.0, delta)


def test_bad_inputs():
    with pytest.raises(ValueError, match="B"):
        C.degree_needed(0.0, 1e-3)
    with pytest.raises(ValueError, match="L"):
        C.exact_cost(0, 8)
    with pytest.raises(TypeError, match="d"):
        C.rank(2.5, 3)
    with pytest.raises(ValueError, match="L"):
        C.crossover_B(1, 8)
