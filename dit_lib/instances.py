"""Attention instances with a given entry bound ``B``: the inputs of problem ADiTI (chapter 4).

* :func:`uniform_instance` — ``Q, K`` uniform in ``[-B, B]``, ``V`` uniform in ``[-1, 1]`` (the benchmark's
  instances; the entry bound is the only structure they have);
* :func:`planted_pair_instance` — the hardness picture behind Prop 4.1: keys and one query are sign vectors
  ``B * {-1, +1}^d``; one *planted* key is Hamming-close to the query, every other key is random (Hamming
  distance about ``d/2``). Its attention weight against all the others grows like ``exp(B^2 (1 - 2h/d))``
  relative to theirs, so once ``B^2`` is of order ``log L`` the planted key dominates the output, and an
  accurate attention output reveals which key is close: an algorithm for attention solves nearest neighbour.
* :func:`planted_batch_instance` — the batch problem behind Prop 4.1: ``L`` sign-vector queries against ``L``
  sign-vector keys with one planted close pair (a bichromatic closest-pair instance in Hamming space); brute force
  compares all ``L^2`` pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np
import torch

from ._checks import check_array, check_attention_inputs, check_device, check_dtype, check_float, check_int, \
    check_memory, check_seed, check_tensor

__all__ = ["AttentionInstance", "uniform_instance", "PlantedPair", "planted_pair_instance", "planted_weight_share",
           "PlantedBatch", "planted_batch_instance"]


def _device(device: str | None) -> torch.device:
    return check_device(device)


def _check_bound(B: Any, **tensors: torch.Tensor) -> float:
    """``B > 0`` and every entry of the given tensors in ``[-B, B]`` (up to float rounding)."""
    B = check_float("B", B, low=0.0, low_open=True)
    for name, X in tensors.items():
        top = float(X.detach().abs().max()) if X.numel() else 0.0
        if top > B * (1 + 1e-6):
            raise ValueError(f"B must bound the entries of {name}: max |{name}| = {top:.6g} > B = {B:.6g}")
    return B


def _check_planted_args(L: Any, d: Any, B: Any, distance: Any, seed: Any, dtype: Any) -> tuple[int, int, float, int, int]:
    """Sizes, bound, Hamming distance (default ``d // 8``) and seed of the planted-pair generators."""
    L = check_int("L", L, low=2)
    d = check_int("d", d)
    B = check_float("B", B, low=0.0, low_open=True)
    distance = d // 8 if distance is None else check_int("distance", distance, low=0, high=d - 1)
    return L, d, B, distance, _check_generation(L, d, 0, 1, seed, dtype)


def _check_planted(name: str, value: Any, L: int) -> int:
    return check_int(name, value, low=0, high=L - 1)


def _check_generation(L: int, d: int, d_v: int, lead: int, seed: Any, dtype: Any) -> int:
    """Seed, dtype and the memory guard shared by the instance generators."""
    check_dtype("dtype", dtype)
    check_memory("L, d", 3 * lead * L * (2 * d + d_v), what=f"{lead} x {L} x {2 * d + d_v} entries, float64 then cast")
    return check_seed(seed)


@dataclass(frozen=True)
class AttentionInstance:
    """Queries, keys and values (shapes ``(..., L, d)``, ``(..., L, d)``, ``(..., L, d_v)``) and their bound ``B``."""

    Q: torch.Tensor
    K: torch.Tensor
    V: torch.Tensor
    B: float

    def __post_init__(self) -> None:
        check_attention_inputs(self.Q, self.K, check_tensor("V", self.V, min_ndim=2))
        object.__setattr__(self, "B", _check_bound(self.B, Q=self.Q, K=self.K))


def uniform_instance(L: int, d: int, B: float, *, d_v: int | None = None, heads: int | None = None, seed: int = 0,
                     dtype: torch.dtype = torch.float32, device: str | None = None) -> AttentionInstance:
    """Entries of ``Q, K`` i.i.d. uniform in ``[-B, B]``, of ``V`` uniform in ``[-1, 1]``. Chapter 4 and its benchmark.

    Parameters
    ----------
    L, d : int
        Sequence length and token dimension.
    B : float
        Entry bound, ``> 0``.
    d_v : int, optional
        Value dimension (default ``d``).
    heads : int, optional
        If given, a leading axis of that many heads.
    seed : int
        Seed of a private :class:`torch.Generator` (CPU; tensors are then moved to ``device``), so results do not
        depend on the device.
    dtype, device :
        Default float32 on ``"cuda"`` if available else ``"cpu"``.
    """
    L = check_int("L", L)
    d = check_int("d", d)
    B = check_float("B", B, low=0.0, low_open=True)
    d_v = d if d_v is None else check_int("d_v", d_v)
    lead = () if heads is None else (check_int("heads", heads),)
    seed = _check_generation(L, d, d_v, lead[0] if lead else 1, seed, dtype)
    g = torch.Generator().manual_seed(seed)

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1

    dev = _device(device)
    Q, K, V = (B * u(*lead, L, d), B * u(*lead, L, d), u(*lead, L, d_v))
    return AttentionInstance(*(X.to(device=dev, dtype=dtype) for X in (Q, K, V)), B)


@dataclass(frozen=True)
class PlantedPair:
    """A planted-pair instance: query ``q`` (shape ``(d,)``), keys ``K`` (``(L, d)``), the planted key's index and
    its Hamming distance to ``q``, and the distances of all keys."""

    q: torch.Tensor
    K: torch.Tensor
    planted: int
    distance: int
    distances: np.ndarray
    B: float

    def __post_init__(self) -> None:
        q = check_tensor("q", self.q, ndim=1)
        K = check_tensor("K", self.K, ndim=2, shape=(q.numel(),))
        L, d = K.shape
        object.__setattr__(self, "planted", _check_planted("planted", self.planted, L))
        object.__setattr__(self, "distance", check_int("distance", self.distance, low=0, high=d))
        dist = check_array("distances", self.distances, ndim=1)
        if dist.shape != (L,):
            raise ValueError(f"distances must have one entry per key ({L}), got shape {dist.shape}")
        object.__setattr__(self, "B", _check_bound(self.B, q=q, K=K))


def planted_pair_instance(L: int, d: int, B: float, *, distance: int | None = None, seed: int = 0,
                          dtype: torch.dtype = torch.float64, device: str | None = None) -> PlantedPair:
    """A query and ``L`` sign-vector keys, one of them planted at Hamming distance ``distance`` from the query.

    Chapter 4 (why it is hard beyond the threshold). All entries are ``+-B``, so the entry bound is exactly
    ``B`` and, with the ``1/d`` normalisation, the logit of a key at Hamming distance ``h`` is
    ``B^2 (1 - 2h/d)`` (eq. (eq-ch4-hamming-logit)).

    Parameters
    ----------
    L, d : int
        Number of keys (``>= 2``) and dimension.
    B : float
        Entry bound ``> 0``.
    distance : int, optional
        Hamming distance of the planted key, in ``[0, d)``; default ``d // 8`` (close, against ``d/2`` for a
        random key).
    seed : int
        Seed (keys, query and the planted position).
    """
    L, d, B, distance, seed = _check_planted_args(L, d, B, distance, seed, dtype)
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(L, d))
    q = rng.choice([-1.0, 1.0], size=d)
    planted = int(rng.integers(L))
    key = q.copy()
    flip = rng.choice(d, size=distance, replace=False)
    key[flip] *= -1
    signs[planted] = key
    distances = (signs != q).sum(axis=1)
    dev = _device(device)
    return PlantedPair(torch.as_tensor(B * q, dtype=dtype, device=dev), torch.as_tensor(B * signs, dtype=dtype, device=dev),
                       planted, int(distances[planted]), distances, B)


def planted_weight_share(instance: PlantedPair, *, scale: float | None = None) -> float:
    """Attention weight of the planted key, ``softmax(scale K q)[planted]``, computed exactly (float64). Chapter 4.

    Near 0 when ``B^2`` is small against ``log L`` (the far keys outnumber it); near 1 once
    ``B^2 (1 - 2h/d) - B^2 (1 - 2 h_far/d) >> log L``.
    """
    if not isinstance(instance, PlantedPair):
        raise TypeError(f"instance must be a PlantedPair (from planted_pair_instance), got {type(instance).__name__}")
    d = instance.q.numel()
    s = 1.0 / d if scale is None else check_float("scale", scale, low=0.0, low_open=True)
    logits = s * (instance.K.double() @ instance.q.double())
    return float(torch.softmax(logits, dim=0)[instance.planted])


@dataclass(frozen=True)
class PlantedBatch:
    """A batch closest-pair instance: queries ``Q`` and keys ``K`` (both ``(L, d)``, entries ``+-B``), the planted
    pair ``(query, key)`` and its Hamming distance."""

    Q: torch.Tensor
    K: torch.Tensor
    query: int
    key: int
    distance: int
    B: float

    def __post_init__(self) -> None:
        check_attention_inputs(self.Q, self.K)
        L, d = self.K.shape[-2:]
        object.__setattr__(self, "query", _check_planted("query", self.query, self.Q.shape[-2]))
        object.__setattr__(self, "key", _check_planted("key", self.key, L))
        object.__setattr__(self, "distance", check_int("distance", self.distance, low=0, high=d))
        object.__setattr__(self, "B", _check_bound(self.B, Q=self.Q, K=self.K))


def planted_batch_instance(L: int, d: int, B: float, *, distance: int | None = None, seed: int = 0,
                           dtype: torch.dtype = torch.float64, device: str | None = None) -> PlantedBatch:
    """``L`` queries and ``L`` keys, all sign vectors ``B * {-1, +1}^d``, with one query-key pair planted close.

    Chapter 4 (the hardness made concrete). Every other pair is independent and random, at Hamming distance about
    ``d/2``; for ``d`` a large enough multiple of ``log L`` none comes as close as the planted pair, so finding the pair
    is the bichromatic closest-pair problem in Hamming space that underlies Prop 4.1. Brute force compares all
    ``L^2`` pairs in ``O(L^2 d)`` time; with the ``1/d`` normalisation the logit of a pair at distance ``h`` is
    ``B^2 (1 - 2h/d)``, so attention sees the same distances.

    Parameters
    ----------
    L, d : int
        Number of queries (= number of keys), ``>= 2``, and dimension, ``>= 1``.
    B : float
        Entry bound ``> 0``.
    distance : int, optional
        Hamming distance of the planted pair, in ``[0, d)``; default ``d // 8``.
    seed : int
        Seed (signs and the planted positions), ``>= 0``.
    dtype : torch.dtype
    device : str, optional

    Returns
    -------
    PlantedBatch

    Raises
    ------
    TypeError, ValueError
        If a size, ``B``, ``distance`` or ``seed`` is out of range.

    Examples
    --------
    >>> inst = planted_batch_instance(64, 32, 1.0, seed=0)
    >>> hamming = (inst.Q[inst.query] != inst.K[inst.key]).sum().item()
    >>> hamming == inst.distance == 4
    True
    """
    L, d, B, distance, seed = _check_planted_args(L, d, B, distance, seed, dtype)
    rng = np.random.default_rng(seed)
    Q = rng.choice([-1.0, 1.0], size=(L, d))
    K = rng.choice([-1.0, 1.0], size=(L, d))
    i, j = (int(v) for v in rng.integers(L, size=2))
    K[j] = Q[i]
    K[j, rng.choice(d, size=distance, replace=False)] *= -1
    dev = _device(device)
    as_t = lambda a: torch.as_tensor(B * a, dtype=dtype, device=dev)  # noqa: E731
    return PlantedBatch(as_t(Q), as_t(K), i, j, distance, B)
