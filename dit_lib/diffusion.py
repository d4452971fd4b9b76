"""The forward Ornstein–Uhlenbeck process ``dx = -x/2 dt + dW`` and its closed-form transition.

``x_t | x_0 ~ N(beta(t) x_0, sigma(t) I)`` with ``beta(t) = exp(-t/2)`` and ``sigma(t) = 1 - exp(-t)``.
Note that ``sigma`` is a **variance**, not a standard deviation (PAPER §0).

Chapter 1 shows the process blurring the subspace; chapter 2 builds the scores on top of it.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_array, check_float, check_seed

__all__ = ["beta", "sigma", "forward_sample"]


def _times(t, name: str = "t") -> np.ndarray:
    arr = check_array(name, t)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 (time in (0, T]), got minimum {arr.min():.3g}")
    return arr


def beta(t):
    """Signal scale ``beta(t) = exp(-t/2)`` of the OU process (chapter 1). ``t > 0``; scalar or array."""
    return np.exp(-_times(t) / 2)


def sigma(t):
    """Noise **variance** ``sigma(t) = 1 - exp(-t)`` of the OU process (chapter 1). ``t > 0``; scalar or array."""
    return -np.expm1(-_times(t))


def forward_sample(x0: np.ndarray, t: float, seed: int = 0) -> np.ndarray:
    """Draw ``x_t ~ N(beta(t) x0, sigma(t) I)`` for each row of ``x0`` (shape ``(n, D)``), chapter 1.

    Raises
    ------
    ValueError
        If ``t <= 0`` or ``x0`` is not a finite 2-D array.
    """
    x0 = check_array("x0", x0, ndim=2)
    t = check_float("t", t, low=0.0, low_open=True)
    rng = np.random.default_rng(check_seed(seed))
    return beta(t) * x0 + np.sqrt(sigma(t)) * rng.standard_normal(x0.shape)
