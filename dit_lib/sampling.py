"""The backward process: generate samples by running the OU process in reverse with a score.

The forward process ``dx_t = -x_t/2 dt + dW_t`` is reversed (Song et al., 2021) by::

    dy_s = [ y_s / 2 + grad log p_{T-s}(y_s) ] ds + dW_s,        y_0 ~ N(0, I_D),  s in [0, T - T_0]   (eq-ch3-backward)

with the score replaced by any ``score_fn(x, t)`` (the exact score of chapter 2, or a trained latent DiT), discretised
on a decreasing grid of forward times ``T = t_0 > t_1 > ... > t_N = T_0`` and **stopped at** ``T_0 > 0``: the
orthogonal part of the score grows like ``1/sigma(t)`` (chapter 2), so the process is never run to ``t = 0``.
Three update rules, each freezing the score at the left end ``t_k`` of a step of length ``h = t_k - t_{k+1}``:

* ``"ei"`` — exponential integrator: the linear drift ``y/2`` is integrated exactly,
  ``y' = e^{h/2} y + 2 (e^{h/2} - 1) s(y, t_k) + sqrt(e^h - 1) z``;
* ``"em"`` — Euler–Maruyama: ``y' = y + h (y/2 + s(y, t_k)) + sqrt(h) z``;
* ``"ode"`` — the probability-flow ODE ``dy = [y/2 + s/2] ds`` with the same exponential integrator,
  ``y' = e^{h/2} y + (e^{h/2} - 1) s(y, t_k)`` (deterministic given the start).

Because any latent-DiT score ``(W f(W^T x, t) - x)/sigma(t)`` is *exactly linear* off the span of ``W``, the variance of
the generated samples off that span obeys a scalar recursion, :func:`orthogonal_variance_recursion`: the closed form of
Corollary 3.2.1 (iii) for the discretised sampler.

Chapter 3 (sampling, distribution recovery).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._checks import MAX_STEPS, check_array, check_bool, check_callable, check_choice, check_float, check_int, \
    check_memory, check_output, check_seed
from .diffusion import sigma

__all__ = ["METHODS", "GRIDS", "time_grid", "sample", "orthogonal_variance_recursion", "langevin"]

#: Update rules of :func:`sample`.
METHODS = ("ei", "em", "ode")
#: Time grids of :func:`time_grid`.
GRIDS = ("geometric", "uniform")

ScoreFn = Callable[[np.ndarray, float], np.ndarray]


def _check_times(T0: float, T: float) -> tuple[float, float]:
    T = check_float("T", T, low=0.0, low_open=True)
    T0 = check_float("T0", T0, low=0.0, low_open=True)
    if T0 >= T:
        raise ValueError(f"T0 must lie in (0, T) = (0, {T:g}) (the early-stopping time comes before the horizon), "
                         f"got T0 = {T0:g}")
    return T0, T


def time_grid(T0: float, T: float, steps: int, kind: str = "geometric") -> np.ndarray:
    """The decreasing forward times ``T = t_0 > t_1 > ... > t_steps = T0`` at which the backward process is evaluated.

    Chapter 3. ``"geometric"`` spaces the times evenly in ``log t``, so each step is a fixed fraction of ``t``: the
    step then stays below ``sigma(t) ~ t`` where the score is stiff, which keeps the explicit updates stable as
    ``T0 -> 0``. ``"uniform"`` spaces them evenly in ``t`` (stable only when ``(T - T0)/steps`` is well below ``T0``).

    Parameters
    ----------
    T0 : float
        Early-stopping time, ``0 < T0 < T``.
    T : float
        Horizon, ``> 0``.
    steps : int
        Number of steps, ``>= 1``.
    kind : {"geometric", "uniform"}

    Returns
    -------
    numpy.ndarray
        Shape ``(steps + 1,)``, decreasing, first ``T``, last ``T0``.

    Raises
    ------
    ValueError
        If ``T0 >= T``, a time is not positive, ``steps < 1`` or ``kind`` is unknown.

    Examples
    --------
    >>> time_grid(0.01, 1.0, 2)
    array([1.  , 0.1 , 0.01])
    """
    T0, T = _check_times(T0, T)
    steps = check_int("steps", steps, high=MAX_STEPS)
    check_choice("kind", kind, GRIDS)
    if kind == "geometric":
        ts = np.geomspace(T, T0, steps + 1)
    else:
        ts = np.linspace(T, T0, steps + 1)
    ts[0], ts[-1] = T, T0  # exact end points despite rounding
    return ts


def sample(score_fn: ScoreFn, n: int, D: int, *, T0: float = 0.01, T: float = 5.0, steps: int = 200,
           method: str = "ei", grid: str = "geometric", seed: int = 0, y_T: np.ndarray | None = None,
           return_path: bool = False, path_every: int = 1):
    """Generate ``n`` samples in ``R^D`` by the discretised backward process (eq-ch3-backward), stopped at ``T0``.

    Chapter 3. Started from ``N(0, I_D)`` (the stationary law that ``p_T`` approaches as ``T`` grows), driven by
    ``score_fn`` on the grid :func:`time_grid`; the output approximates ``p_{T0}``, the law of the *slightly noised*
    data at time ``T0`` (Corollary 3.2.1 compares against exactly this marginal).

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x: ndarray (m, D), t: float) -> ndarray (m, D)``: the exact score
        (:func:`dit_lib.scores.ambient_score` with the data bound in) or a trained network
        (:func:`dit_lib.training.as_score_fn`).
    n : int
        Number of samples, ``>= 1``.
    D : int
        Ambient dimension, ``>= 1``.
    T0, T : float
        Early-stopping time and horizon, ``0 < T0 < T``.
    steps : int
        Number of steps, ``>= 1``.
    method : {"ei", "em", "ode"}
        Exponential integrator, Euler–Maruyama, or the probability-flow ODE (see the module docstring).
    grid : {"geometric", "uniform"}
        The time grid, see :func:`time_grid`.
    seed : int
        Seed of the start ``N(0, I_D)`` and of the Brownian increments.
    y_T : array of shape (n, D), optional
        A given start instead of a draw from ``N(0, I_D)``.
    return_path : bool
        Also return the times and the states along the way.
    path_every : int
        With ``return_path``, keep every ``path_every``-th state (the first and the last are always kept).

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The samples, shape ``(n, D)``; with ``return_path`` also ``times`` of shape ``(k,)`` (decreasing, forward
        time) and ``path`` of shape ``(k, n, D)``.

    Raises
    ------
    ValueError
        If ``T0 >= T``, ``steps``/``n``/``D`` are not positive, ``method``/``grid`` are unknown, or ``score_fn``
        returns the wrong shape or non-finite values.

    Examples
    --------
    >>> y = sample(lambda x, t: -x, 4, 3, T0=0.1, T=2.0, steps=20, seed=0)   # score of N(0, I): y ~ N(0, I)
    >>> y.shape
    (4, 3)
    """
    check_callable("score_fn", score_fn)
    n = check_int("n", n)
    D = check_int("D", D)
    check_choice("method", method, METHODS)
    check_choice("grid", grid, GRIDS)
    steps = check_int("steps", steps, high=MAX_STEPS)
    ts = time_grid(T0, T, steps, grid)
    path_every = check_int("path_every", path_every)
    return_path = check_bool("return_path", return_path)
    seed = check_seed(seed)
    kept = steps // path_every + 2 if return_path else 0
    check_memory("n, D, steps", (4 + kept) * n * D, what=f"{n} x {D} samples" + (f", {kept} of them kept on the path"
                                                                               if return_path else ""))
    rng = np.random.default_rng(seed)
    if y_T is None:
        y = rng.standard_normal((n, D))
    else:
        y = check_array("y_T", y_T, ndim=2).copy()
        if y.shape != (n, D):
            raise ValueError(f"y_T must have shape (n, D) = ({n}, {D}), got {y.shape}")
    times, path = [float(ts[0])], [y.copy()] if return_path else []
    for k in range(steps):
        t, h = float(ts[k]), float(ts[k] - ts[k + 1])
        s = check_output("score_fn", score_fn(y, t), y.shape)
        eh = np.exp(h / 2)
        if method == "ei":      # linear part exact, score frozen at t_k
            y = eh * y + 2 * (eh - 1) * s + np.sqrt(np.expm1(h)) * rng.standard_normal(y.shape)
        elif method == "em":
            y = y + h * (0.5 * y + s) + np.sqrt(h) * rng.standard_normal(y.shape)
        else:                   # probability-flow ODE: drift y/2 + s/2, no noise
            y = eh * y + (eh - 1) * s
        if return_path and ((k + 1) % path_every == 0 or k + 1 == steps):
            times.append(float(ts[k + 1]))
            path.append(y.copy())
    if return_path:
        return y, np.array(times), np.stack(path)
    return y


def orthogonal_variance_recursion(T0: float, T: float = 5.0, steps: int = 200, *, method: str = "ei",
                                  grid: str = "geometric", start: float = 1.0) -> float:
    """Per-direction variance off ``span(W)`` of samples from :func:`sample` driven by a latent-DiT-form score.

    Chapter 3, Corollary 3.2.1 (iii) in closed form for the *discretised* sampler. Off ``span(W)`` a score
    ``(W f(W^T x, t) - x)/sigma(t)`` is exactly ``-y_perp / sigma(t)`` (the exact score has this form with ``W = U``),
    so each orthogonal coordinate evolves by a scalar linear recursion ``v' = a_k^2 v + c_k`` started at ``start``:

    * ``"ei"``: ``a = e^{h/2} - 2 (e^{h/2} - 1)/sigma(t_k)``, ``c = e^h - 1``;
    * ``"em"``: ``a = 1 + h/2 - h/sigma(t_k)``, ``c = h``;
    * ``"ode"``: ``a = e^{h/2} - (e^{h/2} - 1)/sigma(t_k)``, ``c = 0``.

    For the exact (continuous) backward process started from ``p_T`` the answer is ``sigma(T0) = 1 - e^{-T0} <= T0``;
    the recursion tends to it as the steps shrink and ``T`` grows (the error is first order in the step, about
    ``log(T/T0) / (2 steps)`` relative on the geometric grid).

    Parameters
    ----------
    T0, T, steps, method, grid
        As in :func:`sample`.
    start : float
        Variance of the start, ``>= 0`` (``1`` for ``N(0, I_D)``).

    Returns
    -------
    float
        The per-direction orthogonal variance at ``T0``.

    Raises
    ------
    ValueError
        As :func:`sample`, or if ``start < 0``.

    Examples
    --------
    >>> v = orthogonal_variance_recursion(0.01, 8.0, 400)
    >>> bool(abs(v / float(sigma(0.01)) - 1) < 0.02)
    True
    """
    check_choice("method", method, METHODS)
    check_choice("grid", grid, GRIDS)
    start = check_float("start", start, low=0.0)
    ts = time_grid(T0, T, steps, grid)
    v = start
    for k in range(steps):
        t, h = float(ts[k]), float(ts[k] - ts[k + 1])
        eh, sg = np.exp(h / 2), float(sigma(t))
        if method == "ei":
            a, c = eh - 2 * (eh - 1) / sg, np.expm1(h)
        elif method == "em":
            a, c = 1 + h / 2 - h / sg, h
        else:
            a, c = eh - (eh - 1) / sg, 0.0
        v = a * a * v + c
    return float(v)


def langevin(score_fn: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, *, step: float, steps: int,
             seed: int = 0) -> np.ndarray:
    """Unadjusted Langevin dynamics ``x' = x + step * score(x) + sqrt(2 step) z``, run ``steps`` times from ``x0``.

    Chapter 0 (why the score is the object to learn). For a small ``step`` and many steps the iterates approach the
    law whose score is ``score_fn`` (up to an ``O(step)`` bias) -- but only as fast as the dynamics can cross between
    modes: with well separated modes the mass stays in the basin where it started, which is what the noise levels of a
    diffusion model fix.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x: ndarray (n, D)) -> ndarray (n, D)``, the score of a fixed law (no time argument).
    x0 : array of shape (n, D)
        The start.
    step : float
        Step size, ``> 0``.
    steps : int
        Number of steps, ``>= 1``.
    seed : int
        Seed of the Gaussian increments.

    Returns
    -------
    numpy.ndarray
        The state after ``steps`` steps, shape ``(n, D)``.

    Raises
    ------
    TypeError, ValueError
        If ``score_fn`` is not callable or returns the wrong shape or non-finite values, ``x0`` is not a finite 2-D
        array, ``step <= 0`` or ``steps < 1``.

    Examples
    --------
    >>> x = langevin(lambda x: -x, np.zeros((2000, 1)), step=0.05, steps=400, seed=0)   # N(0, 1)
    >>> bool(abs(x.var() - 1) < 0.1)
    True
    """
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable score_fn(x), got {type(score_fn).__name__}")
    x = check_array("x0", x0, ndim=2).copy()
    step = check_float("step", step, low=0.0, low_open=True)
    steps = check_int("steps", steps)
    rng = np.random.default_rng(check_int("seed", seed, low=0, high=2**63 - 1))
    for _ in range(steps):
        s = np.asarray(score_fn(x), dtype=np.float64)
        if s.shape != x.shape:
            raise ValueError(f"score_fn must return shape {x.shape}, got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("score_fn returned non-finite values")
        x = x + step * s + np.sqrt(2 * step) * rng.standard_normal(x.shape)
    return x
