"""The reshape ``R: R^{d0} -> R^{d x L}`` of Definition 3.1: a latent vector seen as an image cut into patches.

A latent ``h in R^{d0}`` is read row-major as an ``i x i`` image (``d0 = i^2``) and cut into ``p x p``
patches; each patch, flattened row-major, is one token (a column of length ``d = p^2``), and the
``L = (i/p)^2`` patches are ordered row-major. ``R^{-1}`` undoes this exactly: it is a permutation of
coordinates, so ``d0 = d L``.

Chapter 1 draws it; chapters 2 and 6 use it inside the latent DiT. Works on numpy arrays and torch
tensors alike, with any number of leading batch axes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._checks import check_array, check_int, check_tensor, check_work

__all__ = ["PatchGeometry", "patch_geometry", "patch_choices", "patchify", "unpatchify", "token_entry_bound"]


@dataclass(frozen=True)
class PatchGeometry:
    """Sizes of the reshape: image side ``i``, patch side ``p``, token dimension ``d = p^2``, length ``L = (i/p)^2``."""

    i: int
    p: int

    def __post_init__(self) -> None:
        i = check_int("i", self.i)
        p = check_int("p", self.p)
        if i % p:
            raise ValueError(f"p must divide the image side i = {i}{_allowed_sides(i)}, got p = {p}")
        object.__setattr__(self, "i", i)
        object.__setattr__(self, "p", p)

    @property
    def d0(self) -> int:
        """Latent dimension ``i^2 = d L``."""
        return self.i * self.i

    @property
    def d(self) -> int:
        """Token dimension ``p^2``."""
        return self.p * self.p

    @property
    def L(self) -> int:
        """Sequence length ``(i/p)^2``."""
        return (self.i // self.p) ** 2


def _divisors(i: int) -> list[int]:
    """Divisors of ``i`` in increasing order, by trial division up to ``sqrt(i)`` (the caller bounds ``i``)."""
    small = [q for q in range(1, math.isqrt(i) + 1) if i % q == 0]
    return small + [i // q for q in reversed(small) if q * q != i]


def _allowed_sides(i: int) -> str:
    """The allowed patch sides for an error message, when listing them is cheap (``sqrt(i) <= 10^6`` divisions)."""
    return f"; allowed patch sides are {_divisors(i)}" if math.isqrt(i) <= 10**6 else ""


def patch_geometry(d0: int, p: int) -> PatchGeometry:
    """Check that a latent of dimension ``d0`` is a square image whose side the patch side ``p`` divides.

    Chapter 1.

    Raises
    ------
    ValueError
        If ``d0`` is not a perfect square or ``p`` does not divide ``sqrt(d0)``.
    """
    d0 = check_int("d0", d0)
    p = check_int("p", p)
    i = math.isqrt(d0)
    if i * i != d0:
        raise ValueError(f"d0 must be a perfect square (the latent is an i x i image), got d0 = {d0}")
    return PatchGeometry(i=i, p=p)


def patch_choices(d0: int) -> list[PatchGeometry]:
    """All patch geometries of a square latent of dimension ``d0``: the (d, L) trade-offs with ``d L = d0`` (chapter 1)."""
    i = patch_geometry(d0, 1).i
    check_work("d0", math.isqrt(i), what=f"listing the divisors of the image side i = {i} by trial division")
    return [PatchGeometry(i=i, p=p) for p in _divisors(i)]


def _checked_batch(name: str, x: Any, min_ndim: int) -> Any:
    """A numpy array or torch tensor of real numbers with at least ``min_ndim`` axes, all finite.

    Integer arrays and tensors are kept as they are on purpose: the reshape is a permutation of entries.
    """
    if isinstance(x, torch.Tensor):
        if x.is_floating_point():
            return check_tensor(name, x, min_ndim=min_ndim)
        if x.dtype == torch.bool or x.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
        if x.dim() < min_ndim:
            raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
        return x
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.dtype.kind in "iu":
        arr = x
    else:
        arr = check_array(name, x)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    return arr


def _permute(x: Any, axes: tuple[int, ...]) -> Any:
    return x.permute(*axes) if hasattr(x, "permute") else np.transpose(x, axes)


def patchify(h: Any, p: int) -> Any:
    """``R(h)``: latent vectors of shape ``(..., d0)`` to token matrices of shape ``(..., d, L)``.

    Chapter 1, Definition 3.1. Column ``l = a (i/p) + b`` of the result is patch ``(a, b)`` of the
    image, flattened row-major.

    Examples
    --------
    >>> X = patchify(np.arange(16.0), 2)   # a 4 x 4 image, 2 x 2 patches
    >>> X[:, 0]                             # the top-left patch
    array([0., 1., 4., 5.])
    """
    h = _checked_batch("h", h, 1)
    try:
        g = patch_geometry(int(h.shape[-1]), p)
    except ValueError as exc:
        if "d0" not in str(exc):
            raise
        raise ValueError(f"h must have a last axis of size d0 = i^2 (a square image), got shape {tuple(h.shape)}") from None
    return _patchify(h, g)


def _patchify(h: Any, g: PatchGeometry) -> Any:
    """:func:`patchify` on checked input."""
    lead = tuple(h.shape[:-1])
    n = g.i // g.p
    x = h.reshape(*lead, n, g.p, n, g.p)              # (..., a, u, b, v)
    k = len(lead)
    x = _permute(x, tuple(range(k)) + (k + 1, k + 3, k, k + 2))  # (..., u, v, a, b)
    return x.reshape(*lead, g.d, g.L)


def unpatchify(X: Any, p: int | None = None) -> Any:
    """``R^{-1}``: token matrices ``(..., d, L)`` back to latent vectors ``(..., d0)``; exact inverse of :func:`patchify`.

    ``p`` defaults to ``sqrt(d)``; if given it must match.
    """
    X = _checked_batch("X", X, 2)
    d, L = int(X.shape[-2]), int(X.shape[-1])
    p_from_d = math.isqrt(d)
    n = math.isqrt(L)
    if p_from_d * p_from_d != d:
        raise ValueError(f"X.shape[-2] = d must be a perfect square p^2, got d = {d}")
    if n * n != L:
        raise ValueError(f"X.shape[-1] = L must be a perfect square (i/p)^2, got L = {L}")
    if p is not None and check_int("p", p) != p_from_d:
        raise ValueError(f"p must equal sqrt(d) = {p_from_d}, got p = {p}")
    return _unpatchify(X, p_from_d, n)


def _unpatchify(X: Any, p: int, n: int) -> Any:
    """:func:`unpatchify` on checked input (``d = p^2`` rows, ``L = n^2`` columns)."""
    d, L = p * p, n * n
    lead = tuple(X.shape[:-2])
    k = len(lead)
    x = X.reshape(*lead, p, p, n, n)                  # (..., u, v, a, b)
    x = _permute(x, tuple(range(k)) + (k + 2, k, k + 3, k + 1))  # (..., a, u, b, v)
    return x.reshape(*lead, d * L)


def token_entry_bound(h: Any, p: int) -> float:
    """``max |R(h)_{jl}|`` over a batch: the entry bound ``B`` of the raw token matrices (chapter 1).

    The computational chapters need the entries of ``W_K A``, ``W_Q A`` bounded by ``B``; for the identity
    projection this is the largest absolute coordinate of the latent, which reshaping does not change.
    """
    X = patchify(h, p)
    return float(abs(X).max())
