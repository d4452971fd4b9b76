"""Tests of dit_lib.polynomial (chapter 4): exp approximations on [-R, R]."""
import math

import numpy as np
import pytest

from dit_lib import polynomial as P


@pytest.mark.parametrize("radius", [0.25, 1.0, 4.0])
def test_taylor_coefficients_are_inverse_factorials(radius):
    a = P.exp_poly_coefficients(radius, 7, "taylor")
    np.testing.assert_allclose(a, [1 / math.factorial(j) for j in range(8)])


@pytest.mark.parametrize("radius,degree", [(0.5, 3), (1.0, 6), (4.0, 12), (9.0, 25)])
def test_chebyshev_interpolates_at_chebyshev_points(radius, degree):
    a = P.exp_poly_coefficients(radius, degree)
    k = np.arange(degree + 1)
    s = radius * np.cos(np.pi * (k + 0.5) / (degree + 1))  # Chebyshev points of the first kind
    # the monomial form loses a few digits to cancellation, in proportion to e^R
    np.testing.assert_allclose(P.exp_poly_eval(a, s), np.exp(s), rtol=1e-9, atol=1e-13 * math.exp(radius))


@pytest.mark.parametrize("radius,degree", [(0.5, 2), (1.0, 5), (2.0, 8), (4.0, 12)])
def test_chebyshev_error_meets_interpolation_bound(radius, degree):
    # Interpolation at Chebyshev points: |f - p| <= 2 (R/2)^(g+1) max|f^(g+1)| / (g+1)!  on [-R, R]
    bound = 2 * (radius / 2) ** (degree + 1) * math.exp(radius) / math.factorial(degree + 1)
    assert P.exp_poly_error(radius, degree, relative=False) <= bound


@pytest.mark.parametrize("radius,degree", [(0.5, 3), (1.0, 6), (2.0, 9)])
def test_taylor_error_meets_lagrange_remainder(radius, degree):
    # |e^s - T_g(s)| <= e^R R^(g+1) / (g+1)!, and relative error <= e^(2R) R^(g+1)/(g+1)!
    lagrange = math.exp(radius) * radius ** (degree + 1) / math.factorial(degree + 1)
    assert P.exp_poly_error(radius, degree, "taylor", relative=False) <= lagrange
    assert P.exp_poly_error(radius, degree, "taylor") <= lagrange * math.exp(radius)


def test_chebyshev_beats_taylor_and_errors_decrease():
    cheb = [P.exp_poly_error(2.0, g) for g in range(2, 12)]
    tay = [P.exp_poly_error(2.0, g, "taylor") for g in range(2, 12)]
    assert all(c < t for c, t in zip(cheb, tay))
    assert all(b < a for a, b in zip(cheb, cheb[1:]))


def test_degree_for_error_is_minimal_and_grows_with_radius():
    for radius in [0.25, 1.0, 2.25, 4.0]:
        g = P.degree_for_error(radius, 1e-3)
        assert P.exp_poly_error(radius, g) <= 1e-3
        assert g == 0 or P.exp_poly_error(radius, g - 1) > 1e-3
    gs = [P.degree_for_error(B * B, 1e-3) for B in [0.5, 1, 1.5, 2, 3]]
    assert gs == sorted(gs) and gs[-1] > 3 * gs[1]


def test_measuring_outside_the_interval_is_worse():
    assert P.exp_poly_error(1.0, 5, bound=2.0) > 10 * P.exp_poly_error(1.0, 5)


def test_aggarwal_alman_order():
    # ell-dominated for large intervals; log(1/eps)/log(log(1/eps)/ell) for small ones
    assert P.aggarwal_alman_degree(50.0, 1e-3) == 100.0
    lg = math.log(1e12)
    assert P.aggarwal_alman_degree(0.01, 1e-12) == pytest.approx(lg / math.log(lg / 0.02))


@pytest.mark.parametrize("kwargs,exc", [
    ({"radius": 0.0, "degree": 3}, ValueError),
    ({"radius": -1.0, "degree": 3}, ValueError),
    ({"radius": float("nan"), "degree": 3}, ValueError),
    ({"radius": 1.0, "degree": -1}, ValueError),
    ({"radius": 1.0, "degree": 61}, ValueError),
    ({"radius": 1.0, "degree": 2.5}, TypeError),
    ({"radius": 1.0, "degree": 3, "kind": "pade"}, ValueError),
])
def test_bad_coefficient_inputs(kwargs, exc):
    with pytest.raises(exc):
        P.exp_poly_coefficients(**kwargs)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 2.0])
def test_bad_targets(target):
    with pytest.raises(ValueError, match="target"):
        P.degree_for_error(1.0, target)
    with pytest.raises(ValueError, match="target"):
        P.aggarwal_alman_degree(1.0, target)


def test_unreachable_target_says_so():
    with pytest.raises(ValueError, match="degree <= 4"):
        P.degree_for_error(9.0, 1e-6, max_degree=4)


def test_float64_count_estimate_falls_short_exactly_where_documented():
    """accumulation_length's d-free T64 (the degree rules') against the exact count with d (fast_attention's)."""
    from dit_lib.polynomial import MAX_DEGREE, accumulation_length

    def short(d):
        return [g for g in range(MAX_DEGREE + 1)
                if accumulation_length(g, 2**20, d)[1] > accumulation_length(g, 2**20)[1]]
    assert short(8)[0] == 9 and short(4)[0] == 35
    assert short(1) == short(2) == short(3) == []
    # both count the key groups the same way: the difference does not depend on the number of keys
    assert all(accumulation_length(5, L, 8)[1] - accumulation_length(5, L)[1]
               == accumulation_length(5, 256, 8)[1] - accumulation_length(5, 256)[1] for L in (1, 10**4, 2**20))
