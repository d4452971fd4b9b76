"""Input validation shared by every public function of :mod:`dit_lib`.

Each helper raises a :class:`TypeError` or :class:`ValueError` whose message names the offending
argument and the range it must lie in, so that a reader who passes bad input learns what to fix.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

__all__ = [
    "check_int",
    "check_float",
    "check_array",
    "check_orthonormal",
    "check_probabilities",
    "check_choice",
]


def check_int(name: str, value: Any, *, low: int | None = 1, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}{_upper(high)}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high} (and >= {low}), got {value}")
    return value


def _upper(high: Any) -> str:
    return "" if high is None else f" and <= {high}"


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the stated interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Convert ``value`` to a numpy array and check its rank, shape and finiteness.

    ``shape`` may hold ``None`` for a free axis; it is matched against the trailing axes.
    """
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers, got {type(value).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}")
    if shape is not None:
        want = tuple(shape)
        got = arr.shape[-len(want):] if len(want) else ()
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            pretty = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
            raise ValueError(f"{name} must have trailing shape {pretty}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers (found NaN or inf)")
    return arr


def check_orthonormal(name: str, basis: Any, *, tol: float = 1e-8) -> np.ndarray:
    """Check that the columns of ``basis`` (shape ``(D, d0)``, ``d0 <= D``) are orthonormal."""
    arr = check_array(name, basis, ndim=2)
    D, d0 = arr.shape
    if d0 > D:
        raise ValueError(f"{name} must have at most as many columns as rows (d0 <= D), got shape {arr.shape}")
    err = float(np.max(np.abs(arr.T @ arr - np.eye(d0)))) if d0 else 0.0
    if err > tol:
        raise ValueError(f"{name} must have orthonormal columns (|B^T B - I| <= {tol:g}), got deviation {err:.3g}")
    return arr


def check_probabilities(name: str, weights: Any, *, tol: float = 1e-8) -> np.ndarray:
    """Check a vector of non-negative weights that sums to one."""
    w = check_array(name, weights, ndim=1)
    if w.size == 0:
        raise ValueError(f"{name} must hold at least one weight")
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {w.min():.3g}")
    if abs(w.sum() - 1.0) > tol:
        raise ValueError(f"{name} must sum to 1 (within {tol:g}), got sum {w.sum():.12g}")
    return w


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
