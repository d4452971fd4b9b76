"""Distances between distributions, and the three measurements of Corollary 3.2.1 (distribution recovery).

Corollary 3.2.1 of Hu et al. (2024) says that samples ``y`` of a latent DiT's backward process, stopped at ``T0``,

1. come with an encoder ``W_B`` whose span is close to the data subspace: ``||W_B W_B^T - U U^T||_F`` small
   (:func:`dit_lib.data.projection_distance`);
2. have latents ``(W_B R)^T y`` close **in total variation** to the time-``T0`` latent marginal ``p^h_{T0}``
   (:func:`dit_lib.scores.latent_diffused`) for *some* orthogonal ``R`` — the learned basis is only defined up to a
   rotation inside the subspace; :func:`aligned_latents` picks ``R`` by orthogonal Procrustes;
3. leak only ``O(T0)`` variance off ``span(W_B)`` (:func:`orthogonal_leakage`).

Total variation can be estimated honestly only in low dimension: :func:`tv_histogram` bins ``d <= 2`` latents and
reports, next to the estimate, its bootstrap standard error and its *floor* (what it reads when the two laws are
equal — a histogram TV is biased upwards at finite ``n``). In higher dimension the book uses two stated substitutes,
the kernel MMD of Gretton et al. (2012) (:func:`mmd2`, unbiased, with a jackknife standard error) and the sliced
Wasserstein distance (:func:`sliced_wasserstein`, with a bootstrap standard error).

Chapter 3.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.stats import binom, norm

from ._checks import check_array, check_float, check_int, check_memory, check_orthonormal, check_seed, check_work
from .data import GaussianMixture

__all__ = ["Estimate", "TVEstimate", "Leakage", "aligned_latents", "bin_probabilities", "tv_histogram", "mmd2",
           "sliced_wasserstein", "orthogonal_leakage"]


class _Estimate(NamedTuple):
    value: float
    se: float


class Estimate(_Estimate):
    """A noisy number and its standard error (chapter 3). ``value`` is finite (an unbiased MMD^2 may be negative);
    ``se >= 0``."""

    __slots__ = ()

    def __new__(cls, value: float, se: float) -> "Estimate":
        return super().__new__(cls, check_float("value", value), check_float("se", se, low=0.0))


class _TVEstimate(NamedTuple):
    value: float
    se: float
    floor: float


class TVEstimate(_TVEstimate):
    """A histogram estimate of total variation (chapter 3).

    ``value`` is the plug-in TV between the binned laws, ``se`` its bootstrap standard error, and ``floor`` the
    expected value of the same estimator when the two laws are *equal* (exact for a known reference, by permutation
    for two samples). Read ``value`` against ``floor``, not against 0. ``value`` and ``floor`` lie in ``[0, 1]``.
    """

    __slots__ = ()

    def __new__(cls, value: float, se: float, floor: float) -> "TVEstimate":
        return super().__new__(cls, check_float("value", value, low=0.0, high=1.0), check_float("se", se, low=0.0),
                               check_float("floor", floor, low=0.0, high=1.0))


class _Leakage(NamedTuple):
    variance: float
    se: float
    max_eigenvalue: float


class Leakage(_Leakage):
    """Mass of samples off a subspace (chapter 3, Corollary 3.2.1 (iii)).

    ``variance``: mean over the ``D - d0`` orthogonal directions of the second moment, ``E||(I - W W^T) y||^2/(D-d0)``;
    ``se``: its standard error; ``max_eigenvalue``: the largest eigenvalue of ``E[(I-WW^T) y y^T (I-WW^T)]``, the
    ``Sigma`` that the corollary bounds by ``a T0 I``. All three are ``>= 0``.
    """

    __slots__ = ()

    def __new__(cls, variance: float, se: float, max_eigenvalue: float) -> "Leakage":
        return super().__new__(cls, check_float("variance", variance, low=0.0), check_float("se", se, low=0.0),
                               check_float("max_eigenvalue", max_eigenvalue, low=0.0))


def _samples(name: str, x, dim: int | None = None, min_n: int = 2) -> np.ndarray:
    x = check_array(name, x, ndim=2, shape=None if dim is None else (dim,))
    if x.shape[0] < min_n:
        raise ValueError(f"{name} must hold at least {min_n} samples for this metric, got {x.shape[0]}")
    return x


def _pair(a, b, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    a = _samples("a", a, min_n=min_n)
    b = _samples("b", b, min_n=min_n)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must live in the same dimension, got {a.shape[1]} and {b.shape[1]} columns")
    return a, b


def aligned_latents(samples: np.ndarray, encoder: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """Latent coordinates ``(W_B R)^T y`` of ambient samples, with the rotation ``R`` of Corollary 3.2.1 (ii).

    Chapter 3. The corollary compares ``(W_B R)^T_# hat P_{T0}`` with ``p^h_{T0}`` for *some* orthogonal
    ``R in R^{d0 x d0}``: a network can only learn the subspace, not a particular basis of it. Given the true basis
    ``U``, this takes the ``R`` that best aligns the two bases, ``argmin_R ||W_B R - U||_F`` (orthogonal Procrustes,
    :func:`scipy.linalg.orthogonal_procrustes`); since the corollary only claims that *some* ``R`` works, a distance
    measured after this choice is a fair test of it. Without ``basis``, ``R = I``.

    Parameters
    ----------
    samples : array of shape (n, D)
    encoder : array of shape (D, d0)
        ``W_B``, orthonormal columns.
    basis : array of shape (D, d0), optional
        The true basis ``U``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, d0)``.

    Raises
    ------
    ValueError
        On mismatched dimensions or a non-orthonormal ``encoder``/``basis``.
    """
    W = check_orthonormal("encoder", encoder, tol=1e-6)
    y = check_array("samples", samples, ndim=2, shape=(W.shape[0],))
    if basis is None:
        return y @ W
    U = check_orthonormal("basis", basis, tol=1e-6)
    if U.shape != W.shape:
        raise ValueError(f"basis must have the shape of encoder {W.shape}, got {U.shape}")
    R, _ = scipy.linalg.orthogonal_procrustes(W, U)
    return y @ (W @ R)


def _default_bounds(ref: GaussianMixture | np.ndarray, x: np.ndarray) -> np.ndarray:
    if isinstance(ref, GaussianMixture):
        sd = np.sqrt(np.einsum("kii->ki", ref.covs))
        return np.stack([(ref.means - 4.5 * sd).min(0), (ref.means + 4.5 * sd).max(0)], axis=1)
    both = np.concatenate([x, ref])
    return np.stack([both.min(0), both.max(0)], axis=1)


def bin_probabilities(mixture: GaussianMixture, edges: list[np.ndarray], *, nodes: int = 6) -> np.ndarray:
    """Probabilities of the cells of a 1-D or 2-D grid under a Gaussian mixture (chapter 3, for :func:`tv_histogram`).

    In 1-D they are exact differences of normal CDFs; in 2-D each cell is integrated by a ``nodes x nodes``
    Gauss–Legendre rule of the mixture density (smooth, so the rule is accurate to ~1e-6 for cells no wider than a
    component's standard deviation).

    Parameters
    ----------
    mixture : GaussianMixture
        Of dimension 1 or 2.
    edges : list of arrays
        One increasing array of bin edges per dimension.
    nodes : int
        Quadrature nodes per axis in 2-D.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(edges[0]) - 1,)`` or ``(len(edges[0]) - 1, len(edges[1]) - 1)``.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
    if mixture.dim not in (1, 2):
        raise ValueError(f"mixture must be 1-D or 2-D for bin probabilities, got dimension {mixture.dim}")
    if not isinstance(edges, (list, tuple)) or len(edges) != mixture.dim:
        got = f"{len(edges)} edge arrays" if isinstance(edges, (list, tuple)) else type(edges).__name__
        raise ValueError(f"edges must be a list of one edge array per dimension ({mixture.dim}), got {got}")
    edges = [check_array(f"edges[{i}]", e, ndim=1) for i, e in enumerate(edges)]
    for i, e in enumerate(edges):
        if e.size < 2 or np.any(np.diff(e) <= 0):
            raise ValueError(f"edges[{i}] must hold >= 2 strictly increasing values, got {e.size} values")
    nodes = check_int("nodes", nodes, high=1000)
    cells = np.prod([e.size for e in edges]) * (nodes**2 if mixture.dim == 2 else 1)
    check_memory("edges, nodes", 4 * cells * mixture.n_components, what=f"{cells:.3g} quadrature points")
    if mixture.dim == 1:
        sd = np.sqrt(mixture.covs[:, 0, 0])
        cdf = norm.cdf((edges[0][:, None] - mixture.means[None, :, 0]) / sd)   # (edges, K)
        return np.diff(cdf, axis=0) @ mixture.weights
    g, w = np.polynomial.legendre.leggauss(nodes)
    ex, ey = edges
    cx, hx = (ex[1:] + ex[:-1]) / 2, np.diff(ex) / 2
    cy, hy = (ey[1:] + ey[:-1]) / 2, np.diff(ey) / 2
    px = (cx[:, None] + hx[:, None] * g).ravel()                     # (bx * nodes,)
    py = (cy[:, None] + hy[:, None] * g).ravel()
    X, Y = np.meshgrid(px, py, indexing="ij")
    dens = np.exp(mixture.log_density(np.stack([X.ravel(), Y.ravel()], 1)))
    dens = dens.reshape(cx.size, nodes, cy.size, nodes)
    return np.einsum("aibj,i,j->ab", dens, w, w) * (hx[:, None] * hy[None, :])


def _tv_from_probs(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def tv_histogram(samples: np.ndarray, reference: GaussianMixture | np.ndarray, *, bins: int = 20,
                 bounds: np.ndarray | None = None, n_boot: int = 200, seed: int = 0) -> TVEstimate:
    """Total variation between ``samples`` and a reference law in ``d <= 2`` dimensions, by histograms.

    Chapter 3, Corollary 3.2.1 (ii). Both laws are binned on the same ``bins``-per-axis grid over ``bounds`` (plus one
    cell for everything outside) and the TV of the binned laws, ``1/2 sum_cells |p_hat - p|``, is returned. Binning
    never increases TV, so for exact cell probabilities this targets a lower bound of the true TV; at finite ``n`` the
    plug-in is biased *upwards*, which ``floor`` quantifies.

    Parameters
    ----------
    samples : array of shape (n, d), d in {1, 2}
    reference : GaussianMixture or array of shape (m, d)
        A known law (exact cell probabilities, :func:`bin_probabilities`; ``floor`` is then the exact expectation of
        the estimator under equality, from de Moivre's mean absolute deviation of the binomial) or a second sample
        (``floor`` by random re-splits of the pooled samples).
    bins : int
        Bins per axis, ``>= 2``.
    bounds : array of shape (d, 2), optional
        ``[low, high]`` per axis; by default ±4.5 standard deviations around the reference's components
        (or the range of both samples).
    n_boot : int
        Bootstrap (and permutation) replicates for ``se`` (and a two-sample ``floor``).
    seed : int

    Returns
    -------
    TVEstimate
        ``(value, se, floor)``.

    Raises
    ------
    ValueError
        If ``d > 2``, dimensions mismatch, or there are fewer samples than cells (``bins**d``).
    """
    x = check_array("samples", samples, ndim=2)
    d = x.shape[1]
    if d > 2:
        raise ValueError(f"samples must have d <= 2 columns for a histogram TV (use mmd2 or sliced_wasserstein "
                         f"above that), got d = {d}")
    bins = check_int("bins", bins, low=2)
    n_boot = check_int("n_boot", n_boot)
    seed = check_seed(seed)
    if x.shape[0] < bins**d:
        raise ValueError(f"samples must hold at least bins**d = {bins**d} points for a histogram TV, got {x.shape[0]}")
    known = isinstance(reference, GaussianMixture)
    if known:
        if reference.dim != d:
            raise ValueError(f"reference must have dimension {d} like samples, got {reference.dim}")
        ref = reference
    else:
        ref = _samples("reference", reference, dim=d, min_n=bins**d)
    bnd = _default_bounds(ref, x) if bounds is None else check_array("bounds", bounds, shape=(d, 2))
    if np.any(bnd[:, 1] <= bnd[:, 0]):
        raise ValueError(f"bounds must have low < high on every axis, got {bnd.tolist()}")
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in bnd]
    check_memory("n_boot", 2 * n_boot * (bins**d + 1), what=f"{n_boot} bootstrap histograms of {bins**d + 1} cells")

    def probs(pts: np.ndarray) -> np.ndarray:   # cell frequencies, with the outside cell last
        counts = np.histogramdd(pts, bins=edges)[0].ravel()
        return np.append(counts, pts.shape[0] - counts.sum()) / pts.shape[0]

    rng = np.random.default_rng(seed)
    n = x.shape[0]
    p_hat = probs(x)
    boot_p = rng.multinomial(n, p_hat, size=n_boot) / n
    if known:
        q = bin_probabilities(ref, edges).ravel()
        q = np.append(q, max(0.0, 1.0 - q.sum()))
        value = _tv_from_probs(p_hat, q)
        se = float(np.std([_tv_from_probs(b, q) for b in boot_p], ddof=1))
        # de Moivre: E|X - n q| = 2 nu (1 - q) Binom(nu; n, q) with nu = floor(n q) + 1.
        nu = np.floor(n * q) + 1
        floor = float(np.sum(nu * (1 - q) * binom.pmf(nu, n, q)) / n)
        return TVEstimate(value, se, floor)
    m = ref.shape[0]
    q_hat = probs(ref)
    value = _tv_from_probs(p_hat, q_hat)
    boot_q = rng.multinomial(m, q_hat, size=n_boot) / m
    se = float(np.std([_tv_from_probs(a, b) for a, b in zip(boot_p, boot_q)], ddof=1))
    pooled = np.concatenate([x, ref])
    null = []
    for _ in range(n_boot):
        perm = rng.permutation(n + m)
        null.append(_tv_from_probs(probs(pooled[perm[:n]]), probs(pooled[perm[n:]])))
    return TVEstimate(value, se, float(np.mean(null)))


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def mmd2(a: np.ndarray, b: np.ndarray, *, bandwidth: float | None = None) -> Estimate:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel, and its jackknife standard error.

    Chapter 3: the stated substitute for total variation when the latent dimension is above 2. With
    ``k(x, y) = exp(-||x - y||^2 / (2 l^2))`` the estimator is the U-statistic of Gretton et al. (2012, Lemma 6),
    ``MMD^2_u = mean_{i!=j} k(a_i,a_j) + mean_{i!=j} k(b_i,b_j) - 2 mean_{i,j} k(a_i,b_j)``: it is 0 *on average*
    for equal laws (so it can be slightly negative). ``se`` is the two-sample delete-one jackknife, computed in
    closed form from the kernel matrices' row sums.

    Parameters
    ----------
    a : array of shape (m, d)
    b : array of shape (n, d)
        ``m, n >= 4``.
    bandwidth : float, optional
        Kernel length scale ``l > 0``; by default the median pairwise distance of the pooled sample (up to 1000 points
        of each), a common heuristic.

    Returns
    -------
    Estimate
        ``(value, se)`` of ``MMD^2``.

    Raises
    ------
    ValueError
        On dimension mismatch, fewer than 4 samples, or a non-positive bandwidth.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> est = mmd2(rng.standard_normal((300, 2)), rng.standard_normal((300, 2)))
    >>> bool(abs(est.value) < 4 * est.se + 1e-3)
    True
    """
    a, b = _pair(a, b, min_n=4)
    m, n = a.shape[0], b.shape[0]
    check_memory("a, b", 2 * (m * m + n * n + m * n), what=f"the {m + n} x {m + n} kernel matrices")
    if bandwidth is None:
        pooled = np.concatenate([a[:1000], b[:1000]])
        dist = np.sqrt(_sqdist(pooled, pooled)[np.triu_indices(pooled.shape[0], 1)])
        bandwidth = float(np.median(dist)) or 1.0
    else:
        bandwidth = check_float("bandwidth", bandwidth, low=0.0, low_open=True)
    g = -0.5 / bandwidth**2
    Kaa, Kbb, Kab = np.exp(g * _sqdist(a, a)), np.exp(g * _sqdist(b, b)), np.exp(g * _sqdist(a, b))
    np.fill_diagonal(Kaa, 0.0)
    np.fill_diagonal(Kbb, 0.0)
    m, n = a.shape[0], b.shape[0]
    ra, rb, rab, cab = Kaa.sum(1), Kbb.sum(1), Kab.sum(1), Kab.sum(0)
    Saa, Sbb, Sab = ra.sum(), rb.sum(), rab.sum()
    A, B, C = Saa / (m * (m - 1)), Sbb / (n * (n - 1)), Sab / (m * n)
    value = A + B - 2 * C
    # Delete-one jackknife (two-sample, Arvesen 1969): the U-statistic without a_i, and without b_j.
    th_a = (Saa - 2 * ra) / ((m - 1) * (m - 2)) + B - 2 * (Sab - rab) / ((m - 1) * n)
    th_b = A + (Sbb - 2 * rb) / ((n - 1) * (n - 2)) - 2 * (Sab - cab) / (m * (n - 1))
    var = (m - 1) / m * ((th_a - th_a.mean()) ** 2).sum() + (n - 1) / n * ((th_b - th_b.mean()) ** 2).sum()
    return Estimate(float(value), float(np.sqrt(var)))


def _quantiles(s: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Row-wise empirical quantiles of sorted rows ``s`` by linear interpolation between order statistics."""
    pos = np.clip(levels * s.shape[1] - 0.5, 0, s.shape[1] - 1)
    lo = np.minimum(np.floor(pos).astype(int), s.shape[1] - 2) if s.shape[1] > 1 else np.zeros(pos.size, int)
    frac = pos - lo
    hi = np.minimum(lo + 1, s.shape[1] - 1)
    return s[:, lo] * (1 - frac) + s[:, hi] * frac


def _w_pp(a_sorted: np.ndarray, b_sorted: np.ndarray, p: int) -> np.ndarray:
    """``W_p^p`` between 1-D empirical laws per row, from their sorted samples (quantile coupling)."""
    if a_sorted.shape[1] != b_sorted.shape[1]:
        k = max(a_sorted.shape[1], b_sorted.shape[1])
        levels = (np.arange(k) + 0.5) / k
        a_sorted, b_sorted = _quantiles(a_sorted, levels), _quantiles(b_sorted, levels)
    return (np.abs(a_sorted - b_sorted) ** p).mean(1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, n_projections: int = 100, p: int = 2, n_boot: int = 50,
                       seed: int = 0) -> Estimate:
    """Sliced Wasserstein distance ``SW_p = (E_theta W_p^p(theta^T a, theta^T b))^{1/p}`` and a bootstrap std. error.

    Chapter 3: the second stated substitute for total variation in ``d > 2``. Directions ``theta`` are uniform on the
    sphere (``n_projections`` of them, fixed by ``seed``); each 1-D distance comes from sorted samples. The plug-in is
    biased upwards at finite ``n`` (it is not 0 for two samples of one law): compare it with the same estimator between
    two samples of the reference. ``se`` resamples both samples with replacement (``n_boot`` times).

    Parameters
    ----------
    a, b : arrays of shape (m, d) and (n, d)
        ``m, n >= 2``.
    n_projections : int
    p : {1, 2}
    n_boot : int
    seed : int

    Returns
    -------
    Estimate

    Raises
    ------
    ValueError
        On dimension mismatch, fewer than 2 samples, or ``p`` not in {1, 2}.
    """
    a, b = _pair(a, b, min_n=2)
    n_projections = check_int("n_projections", n_projections)
    p = check_int("p", p, low=1, high=2)
    n_boot = check_int("n_boot", n_boot)
    seed = check_seed(seed)
    n_ab = a.shape[0] + b.shape[0]
    check_memory("n_projections", 3 * n_projections * (n_ab + a.shape[1]), what="the projected samples")
    check_work("n_boot, n_projections", (n_boot + 1) * n_projections * n_ab, limit=10**10,
               what="entries sorted over the bootstrap")
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((a.shape[1], n_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = np.ascontiguousarray((a @ theta).T), np.ascontiguousarray((b @ theta).T)   # (projections, samples)

    def sw(xa: np.ndarray, xb: np.ndarray) -> float:
        return float(_w_pp(np.sort(xa, 1), np.sort(xb, 1), p).mean() ** (1 / p))

    boot = [sw(pa[:, rng.integers(0, pa.shape[1], pa.shape[1])], pb[:, rng.integers(0, pb.shape[1], pb.shape[1])])
            for _ in range(n_boot)]
    return Estimate(sw(pa, pb), float(np.std(boot, ddof=1)) if n_boot > 1 else float("nan"))


def orthogonal_leakage(samples: np.ndarray, encoder: np.ndarray) -> Leakage:
    """How much of the samples lies off ``span(W)``: Corollary 3.2.1 (iii) measured (chapter 3).

    The corollary states ``(I - W_B W_B^T)_# hat P_{T0} = N(0, Sigma)`` with ``Sigma <= a T0 I``: the generated data
    leave the learned subspace only by noise of variance ``O(T0)``. Divide the result by ``T0`` to see the ``a``.

    Parameters
    ----------
    samples : array of shape (n, D)
        ``n >= 2``.
    encoder : array of shape (D, d0)
        Orthonormal, ``d0 < D`` (the true ``U`` or a network's ``W_B``).

    Returns
    -------
    Leakage
        ``(variance, se, max_eigenvalue)``.

    Raises
    ------
    ValueError
        If ``d0 == D`` (nothing is orthogonal), shapes mismatch, or fewer than 2 samples.
    """
    W = check_orthonormal("encoder", encoder, tol=1e-6)
    D, d0 = W.shape
    if d0 == D:
        raise ValueError("encoder must span a proper subspace (d0 < D) for an orthogonal leakage, got d0 = D = "
                         f"{D}")
    y = _samples("samples", samples, dim=D)
    r = y - (y @ W) @ W.T                              # (I - W W^T) y
    sq = (r * r).sum(1) / (D - d0)
    top = max(float(np.linalg.eigvalsh(r.T @ r / y.shape[0])[-1]), 0.0)  # PSD: round-off can make it -1e-17
    return Leakage(float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(y.shape[0])), top)
