"""Polynomial approximations of ``exp`` on ``[-R, R]``: step 1 of the polynomial method of [AS23].

Attention with entries bounded by ``B`` only ever evaluates ``exp`` at logits ``s = <q, k>/d`` in
``[-R, R]`` with ``R = B^2``. A degree-``g`` polynomial ``P(s) = sum_j a_j s^j`` that is close to ``e^s``
there turns the attention matrix into a matrix of rank ``binom(d+g, g)`` (see :mod:`dit_lib.attention`).
This module builds ``P`` (truncated Taylor series or Chebyshev interpolation, via
:mod:`numpy.polynomial.chebyshev`), measures its error, finds the degree needed for a target error and
states the optimal order of Aggarwal and Alman (2022). Chapter 4.

Errors are *relative* by default, ``max_s |P(s) - e^s| / e^s``, the quantity that controls attention
(a relative error ``eps`` on every weight moves a normalised output by at most ``2 eps ||V||_inf / (1 - eps)``).

That bound holds in exact arithmetic. The library evaluates ``P`` through monomial features in a floating-point
format with unit roundoff ``u``; a forward error analysis bounds the rounding error of every computed row sum by
``rho = gamma_T * sum_j |a_j| b^j * e^b`` relative to the exact row sum (:func:`rounding_rel_error`), where ``b``
bounds the logits and ``gamma_T = T u / (1 - T u)`` counts the roundings along the longest chain of operations. The
certified output bound (:func:`attention_error_bound`) adds ``2 rho / (1 - eps - rho)`` to ``2 eps / (1 - eps)``;
:func:`degree_for_error` with a ``dtype`` and :func:`dit_lib.complexity.degree_needed` choose degrees by it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev as C
from numpy.polynomial import polynomial as Pm

from ._checks import check_array, check_bool, check_choice, check_float, check_int, check_memory, is_trusted, \
    trusted

__all__ = [
    "KINDS",
    "exp_poly_coefficients",
    "exp_poly_eval",
    "exp_poly_error",
    "degree_for_error",
    "aggarwal_alman_degree",
    "SUM_GROUP",
    "unit_roundoff",
    "coefficient_growth",
    "accumulation_length",
    "rounding_rel_error",
    "attention_error_bound",
]

KINDS = ("chebyshev", "taylor")
#: Highest degree handled: the monomial form of a Chebyshev interpolant loses accuracy beyond this.
MAX_DEGREE = 60
#: Longest sum (number of terms) that :func:`dit_lib.attention.fast_attention` adds in the working precision; longer
#: sums are split into groups of this length whose partial sums are added in float64.
SUM_GROUP = 256
#: Sequence length assumed by the degree rules for the float64 part of the rounding analysis (the book's largest).
_L_RULE = 2**20


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
    if not is_trusted():  # inside a validated call (fast attention) the arguments are trusted
        radius = check_float("radius", radius, low=0.0, low_open=True)
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
        check_choice("kind", kind, KINDS)
    a = _coefficients(radius, degree, kind)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"radius = {radius:g} is too large for degree {degree}: the coefficients overflow float64 "
                         f"(exp(radius) and the interpolant's monomial coefficients); use a smaller radius or degree")
    return a


def _coefficients(radius: float, degree: int, kind: str) -> np.ndarray:
    """:func:`exp_poly_coefficients` on checked input; may hold inf where float64 overflows (huge radii)."""
    # Below this radius the interpolant equals the Taylor polynomial to float64 precision (the Taylor remainder
    # R^(g+1)/(g+1)! is under 2^-53), and the rescaling a_j = c_j / R^j below would underflow to 0/0.
    tiny = (degree + 1) * math.log(radius) - math.lgamma(degree + 2) < -53 * math.log(2)
    if kind == "taylor" or tiny:
        return np.array([1.0 / math.factorial(j) for j in range(degree + 1)])
    # Chebyshev interpolant of t -> exp(R t) on [-1, 1], then rescale t = s / R: a_j = c_j / R^j.
    with np.errstate(over="ignore", invalid="ignore"):  # huge radii overflow: the callers report it
        cheb = C.chebinterpolate(lambda t: np.exp(radius * t), degree)
        mono = C.cheb2poly(cheb)
        mono = np.pad(mono, (0, degree + 1 - mono.size))
        return mono / radius ** np.arange(degree + 1)


def exp_poly_eval(coefficients: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Evaluate ``P(s) = sum_j a_j s^j`` (Horner, float64) at every entry of ``s`` (any shape). Chapter 4."""
    a = check_array("coefficients", coefficients, ndim=1)
    if a.size == 0:
        raise ValueError("coefficients must hold at least one coefficient a_0")
    return Pm.polyval(check_array("s", s), a)


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
    if not is_trusted():
        radius = check_float("radius", radius, low=0.0, low_open=True)
        bound = None if bound is None else check_float("bound", bound, low=0.0, low_open=True)
        n_grid = check_int("n_grid", n_grid, low=101)
        check_memory("n_grid", 4 * n_grid, what="the error grid and its evaluations")
        relative = check_bool("relative", relative)
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
        check_choice("kind", kind, KINDS)
    bound = radius if bound is None else bound
    a = _coefficients(radius, degree, kind)
    if not np.all(np.isfinite(a)):
        return math.inf  # the polynomial itself overflows float64 at this radius
    s = np.concatenate([np.linspace(-bound, bound, n_grid),
                        bound * np.cos(np.pi * np.arange(degree + 2) / (degree + 1))])
    with np.errstate(over="ignore", invalid="ignore"):  # huge radii: report inf rather than warn
        err = np.abs(Pm.polyval(s, a) - np.exp(s))
        if relative:
            err = err * np.exp(-s)
        worst = float(np.max(err))
    return worst if np.isfinite(worst) else math.inf


def degree_for_error(radius: float, target: float, kind: str = "chebyshev", *, relative: bool = True,
                     max_degree: int = MAX_DEGREE, dtype: Any = None, length: int = _L_RULE,
                     d: int | None = None) -> int:
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
    dtype : torch.dtype, numpy dtype or str, optional
        Working precision of the evaluation. ``None``: exact arithmetic (the theorem's setting). Otherwise the
        relative error counted is ``eps + rho`` with ``rho`` the rounding bound of :func:`rounding_rel_error`
        for the polynomial method in that precision (relative errors only).
    length, d : int, optional
        Number of keys and of variables, for the float64 part of that rounding bound (default: the rules' ``2^20``
        keys and :func:`accumulation_length`'s estimate without ``d``); :func:`~dit_lib.attention.fast_attention`'s
        advice passes the actual ones.

    Raises
    ------
    ValueError
        For a target outside ``(0, 1)`` or when no degree ``<= max_degree`` reaches it (the message says
        the error reached, and whether rounding in ``dtype`` is what stops it).
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    max_degree = check_int("max_degree", max_degree, low=0, high=MAX_DEGREE)
    relative = check_bool("relative", relative)
    check_choice("kind", kind, KINDS)
    length = check_int("length", length)
    d = None if d is None else check_int("d", d)
    u = None if dtype is None else unit_roundoff(dtype)
    if u is not None and not relative:
        raise ValueError("dtype needs relative=True: the rounding analysis bounds relative errors")
    err = rho = math.inf
    with trusted():  # every argument is checked above: the search does not re-check them per degree
        for g in range(max_degree + 1):
            err = exp_poly_error(radius, g, kind, relative=relative)
            rho = 0.0 if u is None else rounding_rel_error(radius, g, kind, bound=radius, dtype=dtype,
                                                           length=length, d=d)
            if err + rho <= target:
                return g
    why = "" if u is None else (f"; in {_dtype_name(dtype)} (unit roundoff {u:.2g}) rounding adds up to {rho:.3g}, "
                                + ("use a smaller radius" if u <= 2.0**-53 else "use float64 or a smaller radius"))
    raise ValueError(f"no {kind} polynomial of degree <= {max_degree} reaches error {target:g} on "
                     f"[-{radius:g}, {radius:g}] (degree {max_degree} gives {err:.3g}{why}); "
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


# --------------------------------------------------------------------------------------------------------------
# rounding: what the guarantee is worth in floating point
# --------------------------------------------------------------------------------------------------------------
_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def _dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "")
    if name not in _ROUNDOFF:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    return name


def unit_roundoff(dtype: Any) -> float:
    """Unit roundoff ``u`` of a floating-point format (``2^-24`` for float32, ``2^-53`` for float64). Chapter 4.

    Parameters
    ----------
    dtype : torch.dtype, numpy dtype or str
        One of float64, float32, float16, bfloat16.
    """
    name = None if dtype is None else _dtype_name(dtype)
    if name not in _ROUNDOFF:
        raise ValueError(f"dtype must be one of {list(_ROUNDOFF)} (a torch or numpy dtype or its name), got {dtype!r}")
    return _ROUNDOFF[name]


def coefficient_growth(radius: float, degree: int, kind: str = "chebyshev", *, bound: float | None = None) -> float:
    """``sum_j |a_j| b^j``: the size of the terms that the monomial evaluation of ``P`` adds up at ``|s| <= b``. Chapter 4.

    For features ``x^alpha, y^alpha`` with ``||x|| ||y|| <= b`` the multinomial theorem and Cauchy–Schwarz give
    ``sum_alpha |c_alpha| |x^alpha| |y^alpha| <= sum_j |a_j| b^j``, so rounding errors are at most ``gamma_T`` times this.
    For Taylor it is ``e^b``; for Chebyshev on a large interval it grows like ``e^{cR}`` with ``c > 1``.
    ``bound`` defaults to ``radius``.
    """
    if not is_trusted():
        radius = check_float("radius", radius, low=0.0, low_open=True)
        bound = None if bound is None else check_float("bound", bound, low=0.0, low_open=True)
    bound = radius if bound is None else bound
    a = np.abs(exp_poly_coefficients(radius, degree, kind))
    with np.errstate(over="ignore"):
        val = float(np.sum(a * bound ** np.arange(a.size)))
    return val if np.isfinite(val) else math.inf


def accumulation_length(degree: int, length: int = _L_RULE, d: int | None = None) -> tuple[int, int]:
    """Rounding-chain lengths ``(T, T64)`` of :func:`dit_lib.attention.fast_attention` at degree ``g``. Chapter 4.

    Every term ``c_alpha x^alpha y^alpha v`` passes through at most ``T = 6 g + 2 SUM_GROUP + 4`` roundings in the
    working precision: scaling ``q`` and ``k`` (2 each), ``g - 1`` products per monomial (twice), the value and
    its scaling (2), a sum of at most :data:`SUM_GROUP` terms on the key side and another on the query side, the cast
    of ``U2^T [V, 1]``. Partial sums are added in float64. With ``d`` (the number of variables) the count there is
    exact for both kernels of fast attention: ``T64 = 2 n_k + n_r + 2 d + 20`` with ``n_k = ceil(length / SUM_GROUP)``
    key groups (added per block, then over blocks or threads) and ``n_r = ceil(binom(d+g, g) / SUM_GROUP)`` feature
    groups (plus one group and one multiply-add per top-degree step of the torch kernel). Without ``d`` (the degree
    rules, which do not know it) ``T64 = 2 n_k + 4 (2 g + 8) + 16``, an estimate: it counts the key groups as the
    exact count does, but allows only ``8 g + 48`` for the rest, which the exact count exceeds when
    ``ceil(binom(d+g, g) / SUM_GROUP) + 2 d + 20`` is larger (``d = 8`` from ``g = 9`` on, ``d = 4`` from ``g = 35`` on;
    never for ``d <= 3`` up to ``MAX_DEGREE``). The
    certificate that :func:`~dit_lib.attention.fast_attention` returns always passes ``d``. The float64 part is small
    either way: ``T64 u_64`` against ``T u_32`` in float32.
    """
    if not is_trusted():
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
        length = check_int("length", length)
        d = None if d is None else check_int("d", d)
    n_k = -(-length // SUM_GROUP)
    if d is None:
        return 6 * degree + 2 * SUM_GROUP + 4, 2 * n_k + 4 * (2 * degree + 8) + 16
    n_r = -(-math.comb(d + degree, degree) // SUM_GROUP)
    return 6 * degree + 2 * SUM_GROUP + 4, 2 * n_k + n_r + 2 * d + 20


def _gamma(n: int, u: float) -> float:
    return n * u / (1.0 - n * u) if n * u < 1 else math.inf


def rounding_rel_error(radius: float, degree: int, kind: str = "chebyshev", *, bound: float | None = None,
                       dtype: Any = "float32", length: int = _L_RULE, terms: int | None = None,
                       d: int | None = None) -> float:
    """Bound ``rho`` on the rounding error of a computed row sum, relative to the exact row sum. Chapter 4.

    ``rho = [(1 + gamma_T(u)) (1 + gamma_T64(u64)) - 1] * coefficient_growth(b) * e^b``: each computed sum
    ``sum_k P(s_k) v_k`` is off by at most ``gamma * L * sum_j |a_j| b^j * ||v||`` (standard model of floating-point
    arithmetic, Higham's ``gamma_n``), while the exact row sum is at least ``L e^{-b}``.

    Parameters
    ----------
    radius, degree, kind :
        The polynomial (:func:`exp_poly_coefficients`).
    bound : float, optional
        Logit bound ``b`` (default ``radius``).
    dtype :
        Working precision (:func:`unit_roundoff`).
    length : int
        Number of keys (enters only the float64 part; the default is conservative).
    terms : int, optional
        ``T``, the longest chain of roundings in the working precision; default from :func:`accumulation_length`.
    d : int, optional
        Number of variables, for the exact float64 count of :func:`accumulation_length` (default: its estimate).
    """
    if not is_trusted():
        radius = check_float("radius", radius, low=0.0, low_open=True)
        bound = None if bound is None else check_float("bound", bound, low=0.0, low_open=True)
        terms = None if terms is None else check_int("terms", terms)
    b = radius if bound is None else bound
    u = unit_roundoff(dtype)
    T, T64 = accumulation_length(degree, length, d)
    if terms is not None:
        T = terms
    gamma = (1 + _gamma(T, u)) * (1 + _gamma(T64, 2.0**-53)) - 1
    with np.errstate(over="ignore"):
        rho = gamma * coefficient_growth(radius, degree, kind, bound=b) * math.exp(min(b, 700.0))
    return float(rho) if np.isfinite(rho) else math.inf


def attention_error_bound(eps: float, rho: float = 0.0, u_out: float = 0.0) -> float:
    """Certified output error of fast attention per unit of ``||V||_inf``. Chapter 4.

    ``2 eps / (1 - eps)`` (the polynomial, exact arithmetic) ``+ 2 rho / (1 - eps - rho)`` (rounding in the feature
    evaluation and the products, :func:`rounding_rel_error`) ``+ 2 u_out (1 + 2 rho / (1 - eps - rho))`` (the final
    division and the cast to the output dtype). ``inf`` when ``eps + rho >= 1`` (nothing is certified).
    """
    if not is_trusted():
        eps = check_float("eps", eps, low=0.0) if eps != math.inf else math.inf
        rho = check_float("rho", rho, low=0.0) if rho != math.inf else math.inf
        u_out = check_float("u_out", u_out, low=0.0, high=1.0)
    if eps + rho >= 1:
        return math.inf
    r = 2 * rho / (1 - eps - rho)
    return 2 * eps / (1 - eps) + r + 2 * u_out * (1 + r)
