"""Cost model of exact vs polynomial-method attention, and the phase diagram in the ``(L, B)`` plane (chapter 4).

Counts are floating-point operations of the dominant terms (an exponential counted as one operation):

* exact attention: ``L^2 (2d + 1 + 2 d_v)`` (``Q K^T``, ``exp``, times ``V``);
* polynomial method with degree ``g`` and rank ``r = binom(d+g, g)``: ``2 L r (1 + 2 (d_v + 1))`` (building
  ``U1`` and ``U2`` one multiplication per entry, then ``U2^T [V, 1]`` and ``U1 (.)``).

The degree comes from the accuracy asked for: the smallest ``g`` whose *guaranteed* output error
``2 eps / (1 - eps)`` (``eps`` the relative error of ``P`` on ``[-B^2, B^2]``) is at most ``delta`` — in exact
arithmetic, or, given a ``dtype``, with the rounding term of that precision added
(:func:`dit_lib.polynomial.attention_error_bound`), the rule :func:`dit_lib.attention.fast_attention` certifies.
With ``d`` fixed, ``r`` grows like ``B^{2d}`` and the fast side is ``B <~ L^{1/(2d)}``. In the regime of
Props 4.1–4.2 (``d ~ log L``, ``delta = 1/poly(L)``) the theorems put the threshold at the scale ``sqrt(log L)``
only asymptotically: over the lengths this model can be evaluated at, its boundary grows more slowly, like a power
of ``log L`` well below 1/2 (chapter 4 fits about 0.3), because the accuracy term ``log(1/delta)`` of the degree
still dominates there.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

from ._checks import check_array, check_choice, check_float, check_int, check_work
from .polynomial import (KINDS, MAX_DEGREE, attention_error_bound, exp_poly_error, rounding_rel_error,
                         unit_roundoff)

__all__ = [
    "rank",
    "eps_for_output_error",
    "degree_needed",
    "exact_cost",
    "fast_cost",
    "cost_ratio",
    "crossover_B",
    "phase_diagram",
    "fit_sqrt_log",
]


def rank(d: int, degree: int) -> int:
    """Exact rank of the multinomial feature map, ``binom(d+g, g)``. Chapter 4."""
    d = check_int("d", d)
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)  # also keeps the exact binomial cheap
    return math.comb(d + degree, degree)


def eps_for_output_error(delta: float) -> float:
    """Relative error ``eps`` of ``P`` with ``2 eps / (1 - eps) = delta``: ``eps = delta / (2 + delta)``. Chapter 4."""
    delta = check_float("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    return delta / (2.0 + delta)


@functools.lru_cache(maxsize=4096)
def _degree(radius: float, delta: float, kind: str, dtype: str | None) -> int | None:
    u_out = 0.0 if dtype is None else unit_roundoff(dtype) + 2.0**-53
    for g in range(MAX_DEGREE + 1):
        eps = exp_poly_error(radius, g, kind)
        rho = 0.0 if dtype is None else rounding_rel_error(radius, g, kind, dtype=dtype)
        if attention_error_bound(eps, rho, u_out) <= delta:
            return g
    return None


def degree_needed(B: float, delta: float, kind: str = "chebyshev", *, scale_times_d: float = 1.0,
                  dtype: Any = None) -> int | None:
    """Degree that guarantees output error ``<= delta`` (``||V||_inf <= 1``) for entries bounded by ``B``. Chapter 4.

    The interval is ``[-R, R]`` with ``R = scale * d * B^2`` (``= B^2`` with the book's ``scale = 1/d``; pass
    ``scale_times_d = sqrt(d)`` for the ``1/sqrt(d)`` convention). ``dtype=None`` asks for the guarantee in exact
    arithmetic (``2 eps / (1 - eps) <= delta``); a dtype (``torch.float32``, ``"float64"``, ...) adds the rounding term
    of that working precision, exactly as :func:`dit_lib.attention.fast_attention` certifies it. Returns ``None`` when
    no degree ``<= 60`` suffices (the polynomial method is hopeless there, or needs a wider format).
    """
    B = check_float("B", B, low=0.0, low_open=True)
    delta = check_float("delta", delta, low=0.0, high=1.0, low_open=True, high_open=True)
    check_choice("kind", kind, KINDS)
    scale_times_d = check_float("scale_times_d", scale_times_d, low=0.0, low_open=True)
    name = None if dtype is None else str(dtype).replace("torch.", "")
    if name is not None:
        unit_roundoff(dtype)  # validates
    radius = float(np.float64(scale_times_d * B * B))
    return _degree(radius, delta, kind, name)


def exact_cost(L: int, d: int, d_v: int | None = None) -> float:
    """Operations of exact attention, ``L^2 (2d + 1 + 2 d_v)``. Chapter 4."""
    L = check_int("L", L)
    d = check_int("d", d)
    d_v = d if d_v is None else check_int("d_v", d_v)
    return float(L) ** 2 * (2 * d + 1 + 2 * d_v)


def fast_cost(L: int, d: int, degree: int, d_v: int | None = None) -> float:
    """Operations of the polynomial method, ``2 L r (1 + 2 (d_v + 1))`` with ``r = binom(d+g, g)``. Chapter 4."""
    L = check_int("L", L)
    d_v = d if d_v is None else check_int("d_v", d_v)
    return 2.0 * L * rank(d, degree) * (1 + 2 * (d_v + 1))


def cost_ratio(L: int, d: int, B: float, delta: float = 1e-3, kind: str = "chebyshev") -> float:
    """``fast_cost / exact_cost`` at the degree :func:`degree_needed` (``inf`` if no degree suffices). Chapter 4.

    Below 1: the polynomial method wins (in this model).
    """
    g = degree_needed(B, delta, kind)
    if g is None:
        return math.inf
    return fast_cost(L, d, g) / exact_cost(L, d)


def _resolve(value: int | float | Callable[[int], float], L: int) -> float:
    return value(L) if callable(value) else value


def crossover_B(L: int, d: int | Callable[[int], int], delta: float | Callable[[int], float] = 1e-3, *,
                kind: str = "chebyshev", B_max: float = 10.0, tol: float = 1e-3) -> float:
    """Largest ``B`` at which the polynomial method still costs less than exact attention (bisection). Chapter 4.

    ``d`` and ``delta`` may be functions of ``L`` (for the regime ``d = C log L``, ``delta = L^{-c}`` of
    Props 4.1–4.2). The cost ratio is non-decreasing in ``B`` because the degree is. Returns 0 if even tiny
    ``B`` loses, ``B_max`` if the method wins up to ``B_max``.
    """
    L = check_int("L", L, low=2)
    dd = check_int("d", _resolve(d, L))
    de = check_float("delta", _resolve(delta, L), low=0.0, high=1.0, low_open=True, high_open=True)
    check_choice("kind", kind, KINDS)
    B_max = check_float("B_max", B_max, low=0.0, low_open=True)
    tol = check_float("tol", tol, low=0.0, low_open=True)
    if tol < 1e-12 * B_max:  # below this, float64 bisection on [1e-3, B_max] can stall before hi - lo <= tol
        raise ValueError(f"tol must be >= 1e-12 * B_max = {1e-12 * B_max:.3g} for the bisection to end "
                         f"(about {math.log2(B_max / tol):.0f} halvings asked; at most 40 are useful), got {tol:g}")

    def wins(B: float) -> bool:
        return cost_ratio(L, dd, B, de, kind) < 1.0

    lo, hi = 1e-3, B_max
    if not wins(lo):
        return 0.0
    if wins(hi):
        return hi
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if wins(mid) else (lo, mid)
    return lo


def phase_diagram(Ls: Sequence[int], Bs: Sequence[float], d: int | Callable[[int], int],
                  delta: float | Callable[[int], float] = 1e-3, kind: str = "chebyshev") -> np.ndarray:
    """``log10(fast_cost / exact_cost)`` on the grid ``Bs x Ls`` (rows: ``B``; ``inf`` where no degree suffices). Chapter 4."""
    for name, seq in (("Ls", Ls), ("Bs", Bs)):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise TypeError(f"{name} must be a sequence of numbers, got {type(seq).__name__}")
        if len(seq) == 0:
            raise ValueError(f"{name} must hold at least one value")
    check_work("Ls, Bs", len(Ls) * len(Bs), limit=10**6, what=f"a {len(Bs)} x {len(Ls)} grid of cost ratios")
    Ls = [check_int(f"Ls[{j}]", L, low=2) for j, L in enumerate(Ls)]
    Bs = [check_float(f"Bs[{i}]", B, low=0.0, low_open=True) for i, B in enumerate(Bs)]
    check_choice("kind", kind, KINDS)
    out = np.empty((len(Bs), len(Ls)))
    for j, L in enumerate(Ls):
        dd = check_int("d", _resolve(d, L))
        de = check_float("delta", _resolve(delta, L), low=0.0, high=1.0, low_open=True, high_open=True)
        for i, B in enumerate(Bs):
            out[i, j] = math.log10(cost_ratio(L, dd, B, de, kind))
    return out


def fit_sqrt_log(Ls: Sequence[int], Bstar: Sequence[float]) -> float:
    """Least-squares constant ``c`` in ``B* = c sqrt(log L)`` (natural log). Chapter 4."""
    L = check_array("Ls", Ls, ndim=1)
    y = check_array("Bstar", Bstar, ndim=1)
    if np.any(L < 2):
        raise ValueError(f"Ls must be sequence lengths >= 2 (so that log L > 0), got minimum {L.min():g}")
    if np.any(y < 0):
        raise ValueError(f"Bstar must be >= 0 (crossover entry bounds), got minimum {y.min():g}")
    x = np.sqrt(np.log(L))
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"Ls and Bstar must be non-empty and of equal length, got {x.shape} and {y.shape}")
    return float(x @ y / (x @ x))
