"""Data on a low-dimensional linear subspace: the statistical model of the book.

The model of Hu et al. (2024), Assumption on linear subspace data, after Chen et al. (2023):
``x = B h`` with an orthonormal basis ``B`` of shape ``(D, d0)`` and a latent ``h`` with a smooth density.
The book's workhorse latent is a Gaussian mixture, for which every density and score is in closed form.

Used in chapter 1 (the model, subspace recovery) and by every later chapter that needs data.
Notation: the paper calls the basis ``B``; the book writes it :math:`U` in prose, because ``B`` is the
entry bound of the computational chapters (see the notation page). In code it is ``basis``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.special import logsumexp

from ._checks import check_array, check_bool, check_float, check_int, check_memory, check_orthonormal, \
    check_probabilities, check_seed

__all__ = [
    "random_orthonormal_basis",
    "GaussianMixture",
    "default_mixture",
    "SubspaceData",
    "estimate_subspace",
    "subspace_angles",
    "projection_distance",
]


def random_orthonormal_basis(D: int, d0: int, seed: int = 0) -> np.ndarray:
    """A Haar-random orthonormal basis of a ``d0``-dimensional subspace of ``R^D``.

    Chapter 1. QR of a Gaussian matrix with the signs of ``R``'s diagonal fixed, which makes the
    distribution uniform (Haar) on the Stiefel manifold.

    Parameters
    ----------
    D : int
        Ambient dimension, ``>= 1``.
    d0 : int
        Subspace dimension, ``1 <= d0 <= D``.
    seed : int
        Seed of the random generator.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(D, d0)`` with orthonormal columns.

    Raises
    ------
    ValueError
        If ``d0 > D`` or a size is not positive.

    Examples
    --------
    >>> U = random_orthonormal_basis(5, 2, seed=1)
    >>> bool(np.allclose(U.T @ U, np.eye(2)))
    True
    """
    D = check_int("D", D)
    d0 = check_int("d0", d0, high=D)
    seed = check_seed(seed)
    check_memory("D, d0", 3 * D * d0, what=f"a {D} x {d0} Gaussian matrix and its QR factors")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((D, d0)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class GaussianMixture:
    """A Gaussian mixture ``sum_k w_k N(mu_k, Sigma_k)`` in ``R^dim``: the latent ``P_h``.

    Chapters 1–3. Every quantity the book needs (density, score, the OU-diffused mixture) is in
    closed form, which is why the book uses it as ground truth.

    Parameters
    ----------
    weights : array of shape (K,)
        Non-negative, summing to one.
    means : array of shape (K, dim)
    covs : array of shape (K, dim, dim)
        Symmetric positive definite.
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    _chol: np.ndarray = field(init=False, repr=False, compare=False)
    _chol_inv: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w = check_probabilities("weights", self.weights)
        mu = check_array("means", self.means, ndim=2)
        if mu.shape[0] != w.size:
            raise ValueError(f"means must have one row per weight ({w.size}), got shape {mu.shape}")
        dim = mu.shape[1]
        cov = check_array("covs", self.covs, ndim=3)
        if cov.shape != (w.size, dim, dim):
            raise ValueError(f"covs must have shape ({w.size}, {dim}, {dim}), got {cov.shape}")
        if not np.allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-10):
            raise ValueError("covs must be symmetric")
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            eig = np.linalg.eigvalsh(cov).min()
            raise ValueError(f"covs must be positive definite, smallest eigenvalue is {eig:.3g}") from None
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "covs", cov)
        object.__setattr__(self, "_chol", chol)
        # Inverse Cholesky factors, once: every density and score evaluation is then two batched products.
        eye = np.eye(dim)
        object.__setattr__(self, "_chol_inv",
                           np.stack([scipy.linalg.solve_triangular(c, eye, lower=True) for c in chol]))

    @property
    def dim(self) -> int:
        """Dimension of the space the mixture lives in."""
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        """Number of mixture components ``K``."""
        return int(self.weights.size)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Draw ``n`` samples, shape ``(n, dim)``."""
        n = check_int("n", n)
        seed = check_seed(seed)
        check_memory("n", 3 * n * self.dim, what=f"{n} samples of dimension {self.dim}")
        rng = np.random.default_rng(seed)
        comp = rng.choice(self.n_components, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim))
        out = self.means[comp].copy()
        for k in range(self.n_components):  # one matrix product per component, never an (n, dim, dim) array
            rows = comp == k
            out[rows] += z[rows] @ self._chol[k].T
        return out

    def second_moment(self) -> np.ndarray:
        """``E[h h^T]``; its smallest eigenvalue is the ``c_0`` of Corollary 3.2.1."""
        outer = self.covs + np.einsum("ki,kj->kij", self.means, self.means)
        return np.einsum("k,kij->ij", self.weights, outer)

    def _component_terms(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-component log densities ``(n, K)`` and whitened residual solves ``(n, K, dim)``."""
        h = check_array("h", h, ndim=2, shape=(self.dim,))
        diff = h[:, None, :] - self.means[None]  # (n, K, dim)
        # y = L^{-1} diff for each component, so Sigma^{-1} diff = L^{-T} y.
        y = np.einsum("kij,nkj->nki", self._chol_inv, diff)
        logdet = 2 * np.log(np.diagonal(self._chol, axis1=1, axis2=2)).sum(-1)
        logp = -0.5 * (y**2).sum(-1) - 0.5 * logdet - 0.5 * self.dim * np.log(2 * np.pi)
        return logp + np.log(self.weights)[None], y

    def log_density(self, h: np.ndarray) -> np.ndarray:
        """``log p(h)`` for rows of ``h`` (shape ``(n, dim)``), returns shape ``(n,)``."""
        logp, _ = self._component_terms(h)
        return logsumexp(logp, axis=1)

    def score(self, h: np.ndarray) -> np.ndarray:
        """``grad log p(h)``: responsibilities times ``-Sigma_k^{-1}(h - mu_k)``. Shape ``(n, dim)``."""
        logp, y = self._component_terms(h)
        resp = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))  # (n, K)
        grads = -np.einsum("kji,nkj->nki", self._chol_inv, y)  # -Sigma_k^{-1}(h - mu_k)
        return np.einsum("nk,nki->ni", resp, grads)

    def diffused(self, scale: float, variance: float) -> "GaussianMixture":
        """The law of ``scale * h + sqrt(variance) * z``: ``sum_k w_k N(scale mu_k, scale^2 Sigma_k + variance I)``.

        With ``scale = beta(t)``, ``variance = sigma(t)`` this is the OU-diffused latent ``p^h_t`` (PAPER §2).
        """
        scale = check_float("scale", scale, low=0.0)
        variance = check_float("variance", variance, low=0.0)
        covs = scale**2 * self.covs + variance * np.eye(self.dim)[None]
        return GaussianMixture(self.weights, scale * self.means, covs)


def default_mixture(d0: int, n_components: int = 3, *, separation: float = 2.0, spread: float = 0.5,
                    seed: int = 0) -> GaussianMixture:
    """A ``d0``-dimensional Gaussian mixture with well separated, anisotropic components.

    Chapters 1–3. Means are drawn on a sphere of radius ``separation``; covariances are random
    with eigenvalues in ``[spread^2/4, spread^2]``; weights are equal.

    Raises
    ------
    ValueError
        If a size is not positive or ``separation``/``spread`` are not positive.
    """
    d0 = check_int("d0", d0)
    K = check_int("n_components", n_components)
    separation = check_float("separation", separation, low=0.0)
    spread = check_float("spread", spread, low=0.0, low_open=True)
    seed = check_seed(seed)
    check_memory("d0, n_components", 3 * K * d0 * d0, what=f"{K} covariance matrices of size {d0} x {d0}")
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((K, d0))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    covs = np.empty((K, d0, d0))
    for k in range(K):
        q, _ = np.linalg.qr(rng.standard_normal((d0, d0)))
        eig = spread**2 * rng.uniform(0.25, 1.0, size=d0)
        covs[k] = (q * eig) @ q.T
    return GaussianMixture(np.full(K, 1.0 / K), means, covs)


@dataclass(frozen=True)
class SubspaceData:
    """The data model ``x = U h``: a latent law on ``R^{d0}`` carried into ``R^D`` by an orthonormal basis.

    Chapter 1 introduces it; chapters 2, 3 and 6 train and sample on it.

    Parameters
    ----------
    basis : array of shape (D, d0)
        Orthonormal columns (the paper's ``B``).
    latent : GaussianMixture
        The latent law ``P_h`` on ``R^{d0}``.
    """

    basis: np.ndarray
    latent: GaussianMixture

    def __post_init__(self) -> None:
        basis = check_orthonormal("basis", self.basis)
        if not isinstance(self.latent, GaussianMixture):
            raise TypeError(f"latent must be a GaussianMixture, got {type(self.latent).__name__}")
        if self.latent.dim != basis.shape[1]:
            raise ValueError(f"latent must have dimension d0 = basis.shape[1] = {basis.shape[1]}, got {self.latent.dim}")
        object.__setattr__(self, "basis", basis)

    @classmethod
    def random(cls, D: int, d0: int, n_components: int = 3, *, seed: int = 0, **mixture_kw) -> "SubspaceData":
        """A random subspace of ``R^D`` with a :func:`default_mixture` latent (chapter 1)."""
        basis = random_orthonormal_basis(D, d0, seed=seed)
        return cls(basis, default_mixture(d0, n_components, seed=check_seed(seed + 1), **mixture_kw))

    @property
    def D(self) -> int:
        """Ambient dimension."""
        return int(self.basis.shape[0])

    @property
    def d0(self) -> int:
        """Latent (subspace) dimension."""
        return int(self.basis.shape[1])

    def sample(self, n: int, seed: int = 0, *, noise: float = 0.0, return_latent: bool = False):
        """Draw ``n`` points ``x = U h (+ noise * z)`` of shape ``(n, D)``.

        ``noise`` is the standard deviation of isotropic ambient noise (0 gives exact subspace data).
        With ``return_latent=True`` returns ``(x, h)``.
        """
        noise = check_float("noise", noise, low=0.0)
        return_latent = check_bool("return_latent", return_latent)
        n = check_int("n", n)
        check_memory("n", 2 * n * (self.D + self.d0), what=f"{n} samples in R^{self.D}")
        h = self.latent.sample(n, seed=seed)
        x = h @ self.basis.T
        if noise > 0:
            x = x + noise * np.random.default_rng([seed, 1]).standard_normal(x.shape)
        return (x, h) if return_latent else x


def estimate_subspace(x: np.ndarray, d0: int) -> np.ndarray:
    """Estimate the data subspace by PCA: the top ``d0`` right singular vectors of the data matrix.

    Chapters 1 and 3. Uses the uncentred second moment, because the data's mean also lies in the
    subspace and should count as signal.

    Parameters
    ----------
    x : array of shape (n, D)
    d0 : int
        ``1 <= d0 <= min(n, D)``.

    Returns
    -------
    numpy.ndarray
        Orthonormal basis of shape ``(D, d0)``.
    """
    x = check_array("x", x, ndim=2)
    d0 = check_int("d0", d0, high=min(x.shape))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return vt[:d0].T


def subspace_angles(basis_a: np.ndarray, basis_b: np.ndarray) -> np.ndarray:
    """Principal angles (radians, largest first) between the column spans of two bases.

    Chapters 1 and 3; a thin wrapper around :func:`scipy.linalg.subspace_angles` that checks shapes.
    """
    a = check_array("basis_a", basis_a, ndim=2)
    b = check_array("basis_b", basis_b, ndim=2)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"basis_a and basis_b must live in the same R^D, got {a.shape[0]} and {b.shape[0]} rows")
    return scipy.linalg.subspace_angles(a, b)


def projection_distance(basis_a: np.ndarray, basis_b: np.ndarray) -> float:
    """``||U_a U_a^T - U_b U_b^T||_F``: the subspace error of Corollary 3.2.1 (i).

    Chapters 1 and 3. Equals ``sqrt(2 * sum sin^2(theta_i))`` over the principal angles when the
    two subspaces have the same dimension; invariant to a rotation of either basis.
    """
    a = check_orthonormal("basis_a", basis_a, tol=1e-6)
    b = check_orthonormal("basis_b", basis_b, tol=1e-6)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"basis_a and basis_b must live in the same R^D, got {a.shape[0]} and {b.shape[0]} rows")
    return float(np.linalg.norm(a @ a.T - b @ b.T))
