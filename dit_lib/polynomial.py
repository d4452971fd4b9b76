"""Polynomial approximations of ``exp`` on ``[-R, R]``: step 1 of the polynomial method of [AS23].

Attention with entries bounded by ``B`` only ever evaluates ``exp`` at logits ``s = <q, k>/d`` in
``[-R, R]`` with ``R = B^2``. A degree-``g`` polynomial ``P(s) = sum_j a_j s^j`` that is close to ``e^s``
there turns the attention matrix into a matrix of rank ``binom(d+g, g)`` (see :mod:`dit_lib.attention`).
This module builds ``P`` (truncated Taylor series or Chebyshev interpolation, via
:mod:`numpy.polynomial.chebyshev`), measures its error, finds the degree needed for a target error and
states the optimal order of Aggarwal and Alman (2022). Chapter 4.

Errors are *relative* by default, ``max_s |P(s) - e^s| / e^s``, the quantity that controls attention
(a relative error ``eps`` on every weight moves a normalised output by at most ``2 eps ||V||_inf / (1 - eps)``).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import chebyshev as C
from numpy.polynomial import polynomial as Pm

from ._checks import check_choice, check_float, check_int

__all__ = [
    "KINDS",
    "exp_poly_coefficients",
    "exp_poly_eval",
    "exp_poly_error",
    "degree_for_error",
    "aggarwal_alman_degree",
]

KINDS = ("chebyshev", "taylor")
#: Highest degree handled: the monomial form of a Chebyshev interpolant loses accuracy beyond this.
MAX_DEGREE = 60


def exp_poly_coefficients(radius: float, degree: int, kind: str = "chebyshev") -> np.ndarray:
    """Monomial coefficients ``a_0..a_g`` of a degree-``g`` approximation of ``exp`` on ``[-radius, radius]``.

    Chapter 4 (and the low-rank gradients of chapter 5).

    Parameters
    ----------
    radius : float
        Half-width ``R > 0`` of the interval; for attention with entries bounded by ``B`` and the
        ``1/d`` normalisation, ``R = B^2``.
    degree : int
        Polynomial degree ``g`` in ``[0, 60]``.
    kind : {"chebyshev", "taylor"}
        ``"taylor"``: the truncated series ``a_j = 1/j!`` (independent of ``radius``);
        ``"chebyshev"``: interpolation at the ``g+1`` Chebyshev points of ``[-R, R]``, near-minimax.

    Returns
    -------
    numpy.ndarray
        Shape ``(g+1,)``, float64, ``P(s) = sum_j a[j] s**j``.

    Raises
    ------
    ValueError
        If ``radius <= 0``, the degree is out of range, or ``kind`` is unknown.

    Examples
    --------
    >>> a = exp_poly_coefficients(1.0, 6)
    >>> abs(np.polynomial.polynomial.polyval(0.5, a) - np.exp(0.5)) < 1e-5
    True
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
    check_choice("kind", kind, KINDS)
    if kind == "taylor":
        return np.array([1.0 / math.factorial(j) for j in range(degree + 1)])
    # Chebyshev interpolant of t -> exp(R t) on [-1, 1], then rescale t = s / R: a_j = c_j / R^j.
    cheb = C.chebinterpolate(lambda t: np.exp(radius * t), degree)
    mono = C.cheb2poly(cheb)
    mono = np.pad(mono, (0, degree + 1 - mono.size))
    return mono / radius ** np.arange(degree + 1)


def exp_poly_eval(coefficients: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Evaluate ``P(s) = sum_j a_j s^j`` (Horner, float64). Chapter 4."""
    return Pm.polyval(np.asarray(s, dtype=np.float64), np.asarray(coefficients, dtype=np.float64))


def exp_poly_error(radius: float, degree: int, kind: str = "chebyshev", *, relative: bool = True,
                   bound: float | None = None, n_grid: int = 4001) -> float:
    """Maximum error of the degree-``g`` approximation built on ``[-radius, radius]``, measured on ``[-bound, bound]``.

    Chapter 4. The maximum is taken over a dense grid (uniform points plus the Chebyshev extrema), which
    resolves the smooth error curve of a polynomial of degree ``<= 60`` to a few digits.

    Parameters
    ----------
    radius : float
        Interval on which the polynomial was built.
    degree, kind :
        As in :func:`exp_poly_coefficients`.
    relative : bool
        ``True``: ``max |P(s) - e^s| / e^s``; ``False``: ``max |P(s) - e^s|``.
    bound : float, optional
        Where to measure (default ``radius``); a larger ``bound`` shows what happens when the entries
        exceed the interval the polynomial was built for.
    n_grid : int
        Number of uniform grid points (``>= 101``).
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    bound = radius if bound is None else check_float("bound", bound, low=0.0, low_open=True)
    n_grid = check_int("n_grid", n_grid, low=101)
    a = exp_poly_coefficients(radius, degree, kind)
    s = np.concatenate([np.linspace(-bound, bound, n_grid),
                        bound * np.cos(np.pi * np.arange(degree + 2) / (degree + 1))])
    with np.errstate(over="ignore", invalid="ignore"):  # huge radii: report inf rather than warn
        err = np.abs(exp_poly_eval(a, s) - np.exp(s))
        if relative:
            err = err * np.exp(-s)
        worst = float(np.max(err))
    return worst if np.isfinite(worst) else math.inf


def degree_for_error(radius: float, target: float, kind: str = "chebyshev", *, relative: bool = True,
                     max_degree: int = MAX_DEGREE) -> int:
    """Smallest degree ``g`` whose approximation of ``exp`` on ``[-radius, radius]`` has error ``<= target``.

    Chapter 4 (degree against ``B``, the explorers, the cost model).

    Parameters
    ----------
    radius : float
        ``R > 0`` (``R = B^2`` for attention).
    target : float
        Target error in ``(0, 1)``.
    kind : {"chebyshev", "taylor"}
    relative : bool
        Relative (default) or absolute error, see :func:`exp_poly_error`.
    max_degree : int
        Search limit.

    Raises
    ------
    ValueError
        For a target outside ``(0, 1)`` or when no degree ``<= max_degree`` reaches it (the message says
        the error reached).
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    max_degree = check_int("max_degree", max_degree, low=0, high=MAX_DEGREE)
    err = math.inf
    for g in range(max_degree + 1):
        err = exp_poly_error(radius, g, kind, relative=relative)
        if err <= target:
            return g
    raise ValueError(f"no {kind} polynomial of degree <= {max_degree} reaches error {target:g} on "
                     f"[-{radius:g}, {radius:g}] (degree {max_degree} gives {err:.3g}); "
                     "reduce the radius (entry bound) or the accuracy")


def aggarwal_alman_degree(radius: float, target: float) -> float:
    """The optimal order ``max{ell, log(1/eps) / log(log(1/eps) / ell)}`` for relative error ``eps`` on an interval of length ``ell``.

    Chapter 4. Aggarwal and Alman (2022), as used in [AS23, Lemma 3.1]: a polynomial of this degree (up to a
    constant factor) approximates ``e^x`` with relative error ``eps`` on ``[0, ell]``, and no polynomial of
    smaller order does. Relative error is shift-invariant (``e^s = e^{-R} e^{s+R}``), so ``[-R, R]`` is an
    interval of length ``ell = 2R``. Returned without the unknown constant: compare *growth*, not values.
    The denominator is floored at 1 (``log(1/eps) <= e * ell`` is the regime where ``ell`` dominates), which
    keeps the formula finite where the Theta-statement is silent.
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    ell = 2.0 * radius
    lg = math.log(1.0 / target)
    return max(ell, lg / max(math.log(lg / ell), 1.0))
