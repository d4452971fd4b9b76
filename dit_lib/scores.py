"""Scores of subspace data: exact latent and ambient scores, Lemma 2.1, Tweedie, denoising score matching.

For data ``x = U h`` (``U`` of shape ``(D, d0)`` orthonormal, the paper's ``B``) pushed through the OU process
``x_t | x_0 ~ N(beta(t) x_0, sigma(t) I_D)``, Lemma 2.1 of Hu et al. (2024) (after Chen et al., 2023) splits the
score into a part on the subspace and a closed-form orthogonal part::

    grad log p_t(x) = U grad log p^h_t(U^T x)  -  (I - U U^T) x / sigma(t)            (Lemma 2.1)
                    = (U q(U^T x, t) - x) / sigma(t),   q(hbar, t) = beta(t) E[h | hbar_t = hbar]   (Tweedie)

With a Gaussian-mixture latent everything is in closed form: ``p^h_t = sum_k w_k N(beta mu_k, beta^2 Sigma_k + sigma I)``
and ``p_t = sum_k w_k N(beta U mu_k, beta^2 U Sigma_k U^T + sigma I_D)``. The second form is an *independent* route to
the ambient score (a full ``D x D`` mixture, differentiated by autograd), which is how chapter 2 checks the lemma.

Chapter 2 derives and checks everything here; chapter 3 uses :func:`ambient_score` and :func:`score_error`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._checks import check_array, check_bool, check_callable, check_choice, check_float, check_int, check_output, \
    check_seed, check_tensor, check_times, is_trusted
from .data import GaussianMixture, SubspaceData
from .diffusion import beta, sigma

__all__ = [
    "latent_diffused",
    "latent_score",
    "ambient_mixture",
    "ambient_log_density",
    "ambient_score_autograd",
    "score_decomposition",
    "ambient_score",
    "tweedie_q",
    "posterior_mean",
    "orthogonal_score_rms",
    "transition_log_density",
    "dsm_target",
    "dsm_loss",
    "dsm_binned_minimiser",
    "WEIGHTINGS",
    "sample_pt",
    "score_error",
    "trivial_score",
]

#: Loss weights ``lambda(t)`` accepted by :func:`dsm_loss`: ``"none"`` is the paper's population loss (2.1);
#: ``"sigma"`` and ``"sigma2"`` multiply by ``sigma(t)`` and ``sigma(t)^2`` (the latter is x0-prediction).
WEIGHTINGS = ("none", "sigma", "sigma2")


# --------------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------------
def _check_data(data: Any) -> SubspaceData:
    if not isinstance(data, SubspaceData):
        raise TypeError(f"data must be a dit_lib.SubspaceData, got {type(data).__name__}")
    return data


def _check_t(t: Any, T: float | None = None, name: str = "t") -> float:
    """A time in ``(0, T]`` (``(0, inf)`` when ``T`` is None)."""
    if T is None:
        return check_float(name, t, low=0.0, low_open=True)
    return check_float(name, t, low=0.0, high=float(T), low_open=True)


def _check_points(name: str, x: Any, dim: int) -> np.ndarray:
    return check_array(name, x, ndim=2, shape=(dim,))


# --------------------------------------------------------------------------------------------------------------
# the diffused latent and the ambient density
# --------------------------------------------------------------------------------------------------------------
def latent_diffused(data: SubspaceData, t: float) -> GaussianMixture:
    """``p^h_t``: the law of ``beta(t) h + sqrt(sigma(t)) z`` in ``R^{d0}`` (chapter 2, Lemma 2.1).

    Parameters
    ----------
    data : SubspaceData
        The model ``x = U h`` with a Gaussian-mixture latent.
    t : float
        Time, ``t > 0``.

    Returns
    -------
    GaussianMixture
        ``sum_k w_k N(beta mu_k, beta^2 Sigma_k + sigma I_{d0})``.
    """
    data = _check_data(data)
    t = _check_t(t)
    return data.latent.diffused(float(beta(t)), float(sigma(t)))


def latent_score(data: SubspaceData, hbar: np.ndarray, t: float) -> np.ndarray:
    """``grad log p^h_t(hbar)`` for rows ``hbar`` of shape ``(n, d0)`` (chapter 2).

    Raises
    ------
    ValueError
        If ``t <= 0`` or ``hbar`` does not have ``d0`` columns.
    """
    data = _check_data(data)
    hbar = _check_points("hbar", hbar, data.d0)
    return latent_diffused(data, t).score(hbar)


def ambient_mixture(data: SubspaceData, t: float) -> GaussianMixture:
    """``p_t`` as a Gaussian mixture in ``R^D``: ``sum_k w_k N(beta U mu_k, beta^2 U Sigma_k U^T + sigma I_D)``.

    Chapter 2. This never uses the split of Lemma 2.1, so it is an independent check of it. The covariances are
    positive definite for every ``t > 0`` because of the ``sigma I_D`` term, even though the data themselves are
    singular in ``R^D``.
    """
    data = _check_data(data)
    t = _check_t(t)
    b, s = float(beta(t)), float(sigma(t))
    U, lat = data.basis, data.latent
    means = b * lat.means @ U.T
    covs = b**2 * np.einsum("ia,kab,jb->kij", U, lat.covs, U) + s * np.eye(data.D)[None]
    covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))  # exact symmetry for the Cholesky check
    return GaussianMixture(lat.weights, means, covs)


def ambient_log_density(data: SubspaceData, x: np.ndarray, t: float) -> np.ndarray:
    """``log p_t(x)`` for rows of ``x`` (shape ``(n, D)``), from the ambient mixture; returns ``(n,)`` (chapter 2)."""
    data = _check_data(data)
    x = _check_points("x", x, data.D)
    return ambient_mixture(data, t).log_density(x)


def ambient_score_autograd(data: SubspaceData, x: np.ndarray, t: float) -> np.ndarray:
    """``grad log p_t(x)`` by torch autograd of the ambient mixture's log-density, in float64 (chapter 2).

    The direct route: no subspace, no Lemma 2.1, just ``log sum_k w_k N(x; m_k, C_k)`` in ``R^D``
    differentiated by autograd. Used to check :func:`ambient_score`.
    """
    data = _check_data(data)
    x = _check_points("x", x, data.D)
    mix = ambient_mixture(data, t)
    dist = torch.distributions.MultivariateNormal(torch.as_tensor(mix.means), covariance_matrix=torch.as_tensor(mix.covs))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    logp = torch.logsumexp(dist.log_prob(xt[:, None, :]) + torch.log(torch.as_tensor(mix.weights)), dim=1)
    (grad,) = torch.autograd.grad(logp.sum(), xt)
    return grad.numpy()


# --------------------------------------------------------------------------------------------------------------
# Lemma 2.1 and Tweedie
# --------------------------------------------------------------------------------------------------------------
def score_decomposition(data: SubspaceData, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of Lemma 2.1: ``s_+ = U grad log p^h_t(U^T x)`` and ``s_- = -(I - U U^T) x / sigma(t)``.

    Chapter 2.

    Parameters
    ----------
    data : SubspaceData
    x : array of shape (n, D)
    t : float
        ``t > 0``.

    Returns
    -------
    (s_plus, s_minus) : tuple of arrays of shape (n, D)
        Their sum is the ambient score :func:`ambient_score`.
    """
    data = _check_data(data)
    x = _check_points("x", x, data.D)
    t = _check_t(t)
    U = data.basis
    hbar = x @ U                                           # U^T x, row-wise
    s_plus = latent_score(data, hbar, t) @ U.T             # on the subspace
    s_minus = -(x - hbar @ U.T) / float(sigma(t))          # orthogonal, closed form
    return s_plus, s_minus


def ambient_score(data: SubspaceData, x: np.ndarray, t: float) -> np.ndarray:
    """The exact score ``grad log p_t(x)`` of the diffused subspace data, by Lemma 2.1.

    Chapters 2 and 3 (the ground truth against which learned scores are measured, and the exact-score
    reverse SDE).

    Parameters
    ----------
    data : SubspaceData
        ``x = U h`` with a Gaussian-mixture latent.
    x : array of shape (n, D)
        Points at which to evaluate the score.
    t : float
        Time, ``t > 0``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, D)``.

    Raises
    ------
    ValueError
        If ``t <= 0`` or ``x`` does not have ``D`` columns.

    Examples
    --------
    >>> data = SubspaceData.random(6, 2, seed=0)
    >>> x = data.sample(5, seed=1)
    >>> bool(np.allclose(ambient_score(data, x, 0.3), ambient_score_autograd(data, x, 0.3)))
    True
    """
    s_plus, s_minus = score_decomposition(data, x, t)
    return s_plus + s_minus


def tweedie_q(data: SubspaceData, hbar: np.ndarray, t: float) -> np.ndarray:
    """``q(hbar, t) = sigma(t) grad log p^h_t(hbar) + hbar``, the latent map the network's ``f`` learns (chapter 2).

    With it the ambient score is ``(U q(U^T x, t) - x) / sigma(t)``; Tweedie's formula says
    ``q = beta(t) E[h | hbar_t = hbar]`` (see :func:`posterior_mean`).
    """
    data = _check_data(data)
    hbar = _check_points("hbar", hbar, data.d0)
    t = _check_t(t)
    return float(sigma(t)) * latent_score(data, hbar, t) + hbar


def posterior_mean(data: SubspaceData, hbar: np.ndarray, t: float) -> np.ndarray:
    """``E[h | beta(t) h + sqrt(sigma(t)) z = hbar]`` in closed form for a Gaussian-mixture latent (chapter 2).

    Per component ``k``: ``mu_k + beta Sigma_k (beta^2 Sigma_k + sigma I)^{-1} (hbar - beta mu_k)``, averaged with the
    posterior responsibilities of the components under ``p^h_t``. Computed without any score, so
    ``beta(t) * posterior_mean`` against :func:`tweedie_q` is a check of Tweedie's formula.
    """
    data = _check_data(data)
    hbar = _check_points("hbar", hbar, data.d0)
    t = _check_t(t)
    b, s = float(beta(t)), float(sigma(t))
    lat = data.latent
    diffused = lat.diffused(b, s)
    logp, _ = diffused._component_terms(hbar)          # (n, K) log w_k N(hbar; .)
    resp = np.exp(logp - logp.max(1, keepdims=True))
    resp /= resp.sum(1, keepdims=True)
    means = []
    for k in range(lat.n_components):
        gain = b * lat.covs[k] @ np.linalg.inv(diffused.covs[k])       # beta Sigma_k C_k^{-1}
        means.append(lat.means[k] + (hbar - b * lat.means[k]) @ gain.T)
    return np.einsum("nk,kni->ni", resp, np.stack(means))


def orthogonal_score_rms(D: int, d0: int, t: Any) -> np.ndarray:
    """``sqrt(E ||s_-(x_t)||^2) = sqrt((D - d0) / sigma(t))`` exactly, for ``x_t ~ P_t`` (chapter 2).

    The orthogonal part of ``x_t`` is pure noise ``N(0, sigma (I - U U^T))``, so ``E||s_-||^2 = (D-d0) sigma / sigma^2``.
    It blows up as ``t -> 0``: the reason sampling stops at ``T_0 > 0``.
    """
    D = check_int("D", D)
    d0 = check_int("d0", d0, high=D)
    return np.sqrt((D - d0) / sigma(t))


# --------------------------------------------------------------------------------------------------------------
# denoising score matching
# --------------------------------------------------------------------------------------------------------------
def transition_log_density(xt: np.ndarray, x0: np.ndarray, t: float) -> np.ndarray:
    """``log N(x_t; beta(t) x_0, sigma(t) I_D)`` row-wise, shape ``(n,)`` (chapter 2; the DSM target is its gradient)."""
    x0 = check_array("x0", x0, ndim=2)
    xt = check_array("xt", xt, ndim=2, shape=(x0.shape[1],))
    if xt.shape != x0.shape:
        raise ValueError(f"xt and x0 must have the same shape, got {xt.shape} and {x0.shape}")
    t = _check_t(t)
    b, s = float(beta(t)), float(sigma(t))
    D = x0.shape[1]
    return -((xt - b * x0) ** 2).sum(1) / (2 * s) - 0.5 * D * np.log(2 * np.pi * s)


def _beta_sigma_torch(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.exp(-t / 2), -torch.expm1(-t)


def dsm_target(x0, xt, t):
    """The DSM target ``grad_{x_t} log p(x_t | x_0) = (beta(t) x_0 - x_t) / sigma(t)`` (chapter 2, PAPER §1).

    Works on numpy arrays (``t`` a float) and on torch tensors (``t`` of shape ``(n,)`` or a float).

    Raises
    ------
    ValueError
        If a time is not positive or the shapes of ``x0`` and ``xt`` differ.
    """
    if isinstance(x0, torch.Tensor):
        check_tensor("x0", x0, ndim=2)
        if not isinstance(xt, torch.Tensor):
            raise TypeError(f"xt must be a tensor like x0, got {type(xt).__name__}")
        check_tensor("xt", xt, ndim=2)
        if xt.shape != x0.shape or xt.dtype != x0.dtype or xt.device != x0.device:
            raise ValueError(f"xt must be a tensor of the shape, dtype and device of x0 {tuple(x0.shape)}, got "
                             f"{tuple(xt.shape)}")
        t = check_times(t, x0.shape[0], x0)
        b, s = _beta_sigma_torch(t[:, None])
        return (b * x0 - xt) / s
    x0 = check_array("x0", x0, ndim=2)
    xt = check_array("xt", xt, ndim=2)
    if xt.shape != x0.shape:
        raise ValueError(f"xt and x0 must have the same shape, got {xt.shape} and {x0.shape}")
    t = _check_t(t)
    return (float(beta(t)) * x0 - xt) / float(sigma(t))


def dsm_loss(score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor, weighting: str = "none") -> torch.Tensor:
    """Monte-Carlo denoising score-matching loss ``mean_i lambda(t_i) ||s(x_t^i, t_i) - (beta x_0^i - x_t^i)/sigma||^2``.

    Chapter 2. ``x_t = beta(t) x_0 + sqrt(sigma(t)) noise``; the times ``t`` are drawn by the caller (uniformly on
    ``[T_0, T]`` in the paper's loss (2.1)). ``weighting`` picks ``lambda``: ``"none"`` (the paper's), ``"sigma"``,
    or ``"sigma2"``. With a score of the form ``(W_B f - x)/sigma``, ``sigma^2`` times the residual is
    ``||W_B f - beta x_0||^2``, so ``"sigma2"`` is plain x0-prediction and ``"none"`` weighs small ``t`` by
    ``1/sigma^2``.

    Parameters
    ----------
    score : callable
        ``score(x_t, t) -> tensor (n, D)``, e.g. a :class:`dit_lib.network.LatentDiT`.
    x0, noise : tensors of shape (n, D)
    t : tensor of shape (n,)
        Times, all ``> 0``.
    weighting : {"none", "sigma", "sigma2"}

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    check = not is_trusted()  # the training loop validates once, then calls this every step
    if check:
        check_callable("score", score)
        check_choice("weighting", weighting, WEIGHTINGS)
        check_tensor("x0", x0, ndim=2)
        check_tensor("noise", noise, ndim=2)
        if noise.shape != x0.shape or noise.dtype != x0.dtype or noise.device != x0.device:
            raise ValueError(f"noise must have the shape, dtype and device of x0 {tuple(x0.shape)}, got "
                             f"{tuple(noise.shape)} {noise.dtype}")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be a tensor of shape ({x0.shape[0]},), got {type(t).__name__}")
        t = check_times(t, x0.shape[0], x0)
    b, s = _beta_sigma_torch(t[:, None])
    xt = b * x0 + torch.sqrt(s) * noise
    out = score(xt, t)
    if check and (not isinstance(out, torch.Tensor) or out.shape != x0.shape or not bool(torch.isfinite(out).all())):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"score must return a finite tensor of shape {tuple(x0.shape)}, got {got}")
    resid = out - (b * x0 - xt) / s
    per = (resid**2).sum(1)
    if weighting == "sigma":
        per = per * s[:, 0]
    elif weighting == "sigma2":
        per = per * s[:, 0] ** 2
    return per.mean()


def dsm_binned_minimiser(x0: np.ndarray, xt: np.ndarray, t: float, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimiser of the DSM loss among functions that are constant on the bins of ``edges`` (one dimension).

    Chapter 0 (why denoising score matching learns the score). The loss ``E (s(x_t) - target)^2`` with the target
    ``(beta x_0 - x_t)/sigma`` of :func:`dsm_target` separates over bins; on each bin the best constant is the mean
    of the target over the pairs ``(x_0, x_t)`` whose ``x_t`` falls in it. As the bins shrink and the sample grows this
    tends to ``E[target | x_t] = grad log p_t(x_t)``: the minimiser is the score.

    Parameters
    ----------
    x0, xt : arrays of shape (n, 1)
        Clean points and their noised versions at time ``t``.
    t : float
        Time, ``> 0``.
    edges : array of shape (m + 1,)
        Increasing bin edges.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The bin centres and the best constant on each bin, both shape ``(m,)``; NaN on a bin no ``x_t`` falls in.

    Raises
    ------
    ValueError
        If the arrays are not ``(n, 1)`` of one shape, ``t <= 0``, or ``edges`` are not increasing.
    """
    x0 = check_array("x0", x0, ndim=2, shape=(1,))
    xt = check_array("xt", xt, ndim=2, shape=(1,))
    edges = check_array("edges", edges, ndim=1)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must hold at least two strictly increasing values, got {edges.size} values")
    target = dsm_target(x0, xt, t)[:, 0]
    idx = np.digitize(xt[:, 0], edges) - 1
    inside = (idx >= 0) & (idx < edges.size - 1)
    sums = np.bincount(idx[inside], weights=target[inside], minlength=edges.size - 1)
    counts = np.bincount(idx[inside], minlength=edges.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return (edges[:-1] + edges[1:]) / 2, means


# --------------------------------------------------------------------------------------------------------------
# the score-error metric
# --------------------------------------------------------------------------------------------------------------
def sample_pt(data: SubspaceData, n: int, t: float, seed: int = 0) -> np.ndarray:
    """``n`` draws of ``x_t ~ P_t`` (clean data pushed through the forward process), shape ``(n, D)`` (chapters 2–3)."""
    data = _check_data(data)
    t = _check_t(t)
    x0 = data.sample(n, seed=check_seed(seed))
    z = np.random.default_rng([seed, 7]).standard_normal(x0.shape)
    return float(beta(t)) * x0 + np.sqrt(float(sigma(t))) * z


def trivial_score(x: np.ndarray, t: float) -> np.ndarray:
    """The baseline ``-x / sigma(t)``: a latent DiT whose ``f`` is zero (chapter 2)."""
    x = check_array("x", x, ndim=2)
    return -x / float(sigma(_check_t(t)))


def score_error(score_fn: Callable[[np.ndarray, float], np.ndarray], data: SubspaceData, t_grid: Sequence[float],
                n: int = 2000, seed: int = 0, *, relative: bool = False, T: float | None = None) -> np.ndarray:
    """The ``L^2(P_t)`` score error ``sqrt(E_{x ~ P_t} ||score_fn(x, t) - grad log p_t(x)||^2)`` for each ``t``.

    Chapters 2 and 3: the quantity bounded by Theorem 3.1 (``<= eps sqrt(d0) / sigma(t)``) and, squared and averaged
    over ``t``, by Theorem 3.2. By default the error is **absolute** (the theorems' quantity); with
    ``relative=True`` it is divided by ``sqrt(E ||grad log p_t||^2)``. The expectation is a Monte-Carlo average over
    ``n`` fresh draws of ``x_t``, the same draws of ``x_0`` and noise for every ``t`` (common random numbers, so
    curves over ``t`` are smooth) and for every ``score_fn`` given the same ``seed``.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x: ndarray (n, D), t: float) -> ndarray (n, D)``, e.g. :func:`dit_lib.training.as_score_fn`.
    data : SubspaceData
        Ground truth; the exact score is :func:`ambient_score`.
    t_grid : sequence of float
        Times in ``(0, T]``.
    n : int
        Monte-Carlo sample size.
    seed : int
    relative : bool
        Divide by the RMS norm of the exact score.
    T : float, optional
        Horizon; when given, every time must be ``<= T``.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(t_grid),)``.

    Raises
    ------
    ValueError
        For a time outside ``(0, T]``, an empty grid, or a ``score_fn`` that returns the wrong shape.
    """
    data = _check_data(data)
    check_callable("score_fn", score_fn)
    relative = check_bool("relative", relative)
    seed = check_seed(seed)
    ts = check_array("t_grid", t_grid, ndim=1)
    if ts.size == 0:
        raise ValueError("t_grid must hold at least one time")
    if T is not None:
        T = check_float("T", T, low=0.0, low_open=True)
    for t in ts:
        _check_t(float(t), T, name="t_grid")
    n = check_int("n", n)
    x0 = data.sample(n, seed=seed)
    z = np.random.default_rng([seed, 7]).standard_normal(x0.shape)
    out = np.empty(ts.size)
    for j, t in enumerate(ts):
        t = float(t)
        x = float(beta(t)) * x0 + np.sqrt(float(sigma(t))) * z
        exact = ambient_score(data, x, t)
        got = check_output("score_fn", score_fn(x, t), x.shape)
        err = np.sqrt(np.mean(((got - exact) ** 2).sum(1)))
        out[j] = err / np.sqrt(np.mean((exact**2).sum(1))) if relative else err
    return out
