"""The efficient criterion as a design rule: a latent DiT trained through polynomial attention (chapter 6).

Chapter 4 showed that attention whose keys and queries have entries bounded by ``B`` can be computed in
almost-linear time by the polynomial method, with a degree ``g`` that grows like ``B^2``; chapter 5 did the same for
the gradient of the restricted problem. This module puts the pieces into the chapter-2 network
(:class:`dit_lib.network.LatentDiT`):

* :func:`poly_features` — the multinomial feature maps ``U1 = phi(Q)``, ``U2 = psi(K)`` of
  :func:`dit_lib.attention.exp_feature_maps`, built by the same routine
  (:func:`dit_lib.attention.monomial_features`, whose custom autograd function carries gradients to ``Q`` and ``K``);
* :func:`factorised_attention` — ``(U1 (U2^T [V, 1]))`` normalised by its last column, differentiable, time
  ``O(L r m)`` forward *and* backward (autograd of a chain of ``L x r`` and ``r x m`` products is again such a
  chain; no ``L x L`` matrix appears in either pass);
* :func:`bound_entries` — the soft clip ``B tanh(x / B)`` that keeps every entry of the keys and queries in
  ``(-B, B)`` during training;
* :class:`PolynomialAttention` — the swappable attention module: optional entry bound, degree chosen from the
  *measured* logit bound for a target error (or fixed), the cancellation guard, the chapter-4
  :func:`~dit_lib.attention.fast_attention` in evaluation mode and :func:`factorised_attention` in training;
* :class:`BoundedExactAttention` — exact attention with the same optional entry bound (the fair baseline);
* :func:`time_training_step`, :func:`time_attention` — side-by-side wall-clock timings.

Chapter 6 uses all of them.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from . import attention as _att
from ._checks import check_attention_inputs, check_bool, check_callable, check_choice, check_device, check_float, \
    check_int, check_memory, check_scale, check_seed, check_tensor, is_trusted, trusted
from .polynomial import (MAX_DEGREE, SUM_GROUP, degree_for_error, exp_poly_coefficients, exp_poly_error,
                         rounding_rel_error)

__all__ = [
    "poly_features",
    "factorised_attention",
    "bound_entries",
    "degree_for_radius",
    "PolynomialAttention",
    "BoundedExactAttention",
    "entry_bound",
    "attention_gap",
    "time_training_step",
    "time_attention",
]


# --------------------------------------------------------------------------------------------------------------
# the factorised form, differentiable
# --------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _coefficients(m: int, degree: int, radius: float, kind: str) -> np.ndarray:
    return _att.feature_coefficients(m, degree, exp_poly_coefficients(radius, degree, kind))


def _check_poly_args(Q: Any, K: Any, V: Any, degree: Any, radius: Any, kind: Any) -> tuple[int, float]:
    """Inputs of :func:`poly_features`/:func:`factorised_attention`, with the features' memory guard."""
    check_attention_inputs(Q, K, *(() if V is None else (V,)))
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
    radius = check_float("radius", radius, low=0.0, low_open=True)
    check_choice("kind", kind, ("chebyshev", "taylor"))
    m = Q.shape[-1]
    r = _att.feature_rank(m, degree)
    rows = (Q.numel() + K.numel()) // m
    check_memory("degree", 3 * rows * r, Q.element_size(),
                 what=f"features of rank r = binom({m}+{degree}, {degree}) = {r} for {rows} rows")
    return degree, radius


def poly_features(Q: torch.Tensor, K: torch.Tensor, degree: int, radius: float, *, scale: float | None = None,
                  kind: str = "chebyshev") -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps ``U1 = phi(Q)``, ``U2 = psi(K)`` with ``U1 U2^T = P(scale Q K^T)``, differentiable (chapter 6).

    The same maps as :func:`dit_lib.attention.exp_feature_maps` (chapter 4, eq. ``eq-ch4-multinomial``):
    ``phi(q)_alpha = sqrt|c_alpha| x^alpha``, ``psi(k)_alpha = sign(c_alpha) sqrt|c_alpha| y^alpha`` with
    ``x = sqrt(scale) q``, ``y = sqrt(scale) k``; built out of place so gradients flow to ``Q`` and ``K``.

    Parameters
    ----------
    Q, K : torch.Tensor
        ``(..., L_q, m)`` and ``(..., L_k, m)``.
    degree : int
        ``g`` in ``[0, 60]``.
    radius : float
        Half-width ``R > 0`` of the interval on which ``P`` approximates ``exp``.
    scale : float, optional
        Logit scale, default ``1/m`` (the book's convention).
    kind : {"chebyshev", "taylor"}

    Returns
    -------
    (U1, U2) : shapes ``(..., L_q, r)``, ``(..., L_k, r)``, ``r = binom(m+g, g)``.
    """
    if not is_trusted():  # PolynomialAttention's forward pass has checked its inputs once
        degree, radius = _check_poly_args(Q, K, None, degree, radius, kind)
    m = Q.shape[-1]
    s = check_scale(scale, m)
    c = _coefficients(m, degree, float(radius), kind)
    w = torch.as_tensor(np.sqrt(np.abs(c)), dtype=Q.dtype, device=Q.device)
    sign = torch.as_tensor(np.sign(c), dtype=Q.dtype, device=Q.device)
    root = math.sqrt(s)
    return (_att.monomial_features(Q * root, degree) * w,
            _att.monomial_features(K * root, degree) * (w * sign))


def factorised_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, degree: int, radius: float, *,
                         scale: float | None = None, kind: str = "chebyshev") -> tuple[torch.Tensor, torch.Tensor]:
    """``(U1 (U2^T V)) / (U1 (U2^T 1))``, eq. (eq-ch4-fast), differentiable by autograd (chapter 6).

    Forward: two products through the ``r``-dimensional feature space, ``O(L r (m + 1))``. Backward: autograd
    differentiates the same chain — ``dU1 = dOut' M^T``, ``dM = U1^T dOut'``, ``dU2 = [V, 1] dM^T`` — all of
    size ``L x r`` or ``r x (m + 1)``, so the gradient also costs ``O(L r m)`` and never forms ``L x L``.

    Returns
    -------
    (out, row_sums) : the attention output ``(..., L_q, m_v)`` and the approximate row sums ``(..., L_q, 1)``
        (their minimum is what the cancellation guard watches).
    """
    if not is_trusted():
        degree, radius = _check_poly_args(Q, K, check_tensor("V", V, min_ndim=2), degree, radius, kind)
    with trusted():
        U1, U2 = poly_features(Q, K, degree, radius, scale=scale, kind=kind)
    V1 = torch.cat([V, torch.ones_like(V[..., :1])], dim=-1)
    out = U1 @ (U2.transpose(-1, -2) @ V1)          # r x (m_v + 1) in the middle: never L x L
    den = out[..., -1:]
    return out[..., :-1] / den, den


def bound_entries(X: torch.Tensor, bound: float) -> torch.Tensor:
    """Soft clip ``B tanh(X / B)``: every entry in ``(-B, B)``, identity near 0, smooth (chapter 6).

    Applied to the token projections (keys and queries) it enforces the entry bound of Props 4.1–4.2 and
    Theorem 4.1 *by construction*, whatever the weights become during training.
    """
    if not is_trusted():  # inside a validated forward pass the projections are trusted
        check_tensor("X", X)
        bound = check_float("bound", bound, low=0.0, low_open=True)
    return bound * torch.tanh(X / bound)


def _round_up(radius: float) -> float:
    """``radius`` rounded *up* to two significant digits (a larger interval never hurts the guarantee)."""
    e = math.floor(math.log10(radius)) - 1
    return float(math.ceil(radius / 10.0**e - 1e-9) * 10.0**e)


@functools.lru_cache(maxsize=4096)
def _rounding_cached(R: float, degree: int, kind: str, dtype: str, length: int, terms: int | None) -> float:
    return rounding_rel_error(R, degree, kind, dtype=dtype.replace("torch.", ""), length=length, terms=terms)


@functools.lru_cache(maxsize=4096)
def _error_cached(radius: float, degree: int, kind: str) -> float:
    return exp_poly_error(radius, degree, kind, n_grid=401)


@functools.lru_cache(maxsize=4096)
def _degree_cached(R: float, target: float, kind: str, max_degree: int, dtype: str | None) -> int | None:
    try:
        return degree_for_error(R, target, kind, max_degree=max_degree, dtype=dtype)
    except ValueError:
        return None


def degree_for_radius(radius: float, target: float = 1e-3, *, kind: str = "chebyshev",
                      max_degree: int = 16, dtype: Any = None) -> int | None:
    """Smallest degree with relative error ``<= target`` on ``[-R, R]``, ``R`` rounded up to 2 significant digits.

    Chapter 6: called at every forward pass with the measured logit bound, so the answers are cached; rounding ``R``
    *up* keeps the guarantee. With a ``dtype`` the rounding bound of that working precision is counted too (the rule
    of :func:`dit_lib.polynomial.degree_for_error`). ``None`` when no degree ``<= max_degree`` reaches the target.
    """
    radius = check_float("radius", radius, low=0.0, low_open=True)
    target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    max_degree = check_int("max_degree", max_degree, low=0, high=MAX_DEGREE)
    check_choice("kind", kind, ("chebyshev", "taylor"))
    name = None if dtype is None else str(dtype).replace("torch.", "")
    return _degree_cached(_round_up(radius), target, kind, max_degree, name)


# --------------------------------------------------------------------------------------------------------------
# attention modules for LatentDiT.set_attention
# --------------------------------------------------------------------------------------------------------------
class BoundedExactAttention(nn.Module):
    """Exact ``softmax(scale Q K^T) V`` (torch SDPA) with keys and queries optionally soft-clipped to ``(-B, B)``.

    Chapter 6: the baseline that differs from :class:`PolynomialAttention` only in how ``exp`` is evaluated.
    """

    def __init__(self, bound: float | None = None, scale: float | None = None):
        super().__init__()
        self.bound = None if bound is None else check_float("bound", bound, low=0.0, low_open=True)
        self.scale = None if scale is None else check_float("scale", scale, low=0.0, low_open=True)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Exact attention of ``(..., L, m)`` queries, keys and values after clipping ``q`` and ``k``."""
        if not is_trusted():
            check_attention_inputs(q, k, check_tensor("v", v, min_ndim=2), names=("q", "k", "v"))
        if self.bound is not None:
            q, k = bound_entries(q, self.bound), bound_entries(k, self.bound)
        s = self.scale if self.scale is not None else 1.0 / q.shape[-1]
        return F.scaled_dot_product_attention(q, k, v, scale=s)

    def extra_repr(self) -> str:
        return f"bound={self.bound}"


class PolynomialAttention(nn.Module):
    """Polynomial-method attention for :meth:`dit_lib.network.LatentDiT.set_attention` (chapter 6).

    At each call: (1) optionally soft-clip keys and queries to ``(-B, B)`` (:func:`bound_entries`); (2) measure the
    logit bound ``R = scale * m * max|q| * max|k|`` (``B^2`` with the ``1/m`` convention); (3) take the degree that
    reaches relative error ``target`` on ``[-R, R]`` *in the working precision* (polynomial error plus the rounding
    bound of the dtype of ``q``, :func:`degree_for_radius`), or the fixed ``degree``;
    (4) compute attention by the polynomial method — the chapter-4 :func:`dit_lib.attention.fast_attention` when
    no gradient is needed (it certifies its output and promotes to float64 where rounding would dominate),
    :func:`factorised_attention` (same formula, autograd-safe) when training;
    (5) the **cancellation guard**: if the polynomial's relative error on the measured logits plus the rounding bound
    of the working precision (:func:`dit_lib.polynomial.rounding_rel_error`, with the sum lengths of the path taken)
    reaches ``guard``, or an approximate row sum is ``<= 0``, the output cannot be trusted, and the call falls back to
    exact attention and is counted in :attr:`fired`. What it certifies: ``eps + rho < guard``, hence every output
    entry of the fast path is within ``2 guard ||v||_inf / (1 - guard)`` of exact attention (plus the final rounding
    of the output), in the precision it runs.

    Parameters
    ----------
    degree : int, optional
        Fixed degree; default: chosen per call from the measured bound.
    target : float
        Relative error of ``P`` aimed for when the degree is chosen (``2 target / (1 - target)`` bounds the output
        error for ``||V||_inf <= 1``).
    bound : float, optional
        Entry bound ``B`` enforced on keys and queries; ``None`` leaves them as they come.
    max_degree : int
        Largest degree tried; beyond it the guard fires (fall back to exact).
    guard : float
        Threshold on the relative error, in ``(0, 1]``.
    scale : float, optional
        Logit scale, default ``1/m``.

    Attributes
    ----------
    calls, fired : int
        Number of calls, and of calls where the guard fired.
    degrees : list of int
        Degree used at each call (``-1`` where the guard fired).
    radii : list of float
        Measured logit bound ``R`` at each call.
    """

    def __init__(self, degree: int | None = None, *, target: float = 1e-3, bound: float | None = None,
                 max_degree: int = 16, guard: float = 0.5, scale: float | None = None, kind: str = "chebyshev"):
        super().__init__()
        self.degree = None if degree is None else check_int("degree", degree, low=0, high=MAX_DEGREE)
        self.target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
        self.bound = None if bound is None else check_float("bound", bound, low=0.0, low_open=True)
        self.max_degree = check_int("max_degree", max_degree, low=0, high=MAX_DEGREE)
        self.guard = check_float("guard", guard, low=0.0, high=1.0, low_open=True)
        self.scale = None if scale is None else check_float("scale", scale, low=0.0, low_open=True)
        self.kind = check_choice("kind", kind, ("chebyshev", "taylor"))
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self.calls, self.fired, self.degrees, self.radii = 0, 0, [], []

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Polynomial-method attention of ``(..., L, m)`` queries, keys and values, exact where the guard fires."""
        if not is_trusted():
            check_attention_inputs(q, k, check_tensor("v", v, min_ndim=2), names=("q", "k", "v"))
        if self.bound is not None:
            q, k = bound_entries(q, self.bound), bound_entries(k, self.bound)
        m = q.shape[-1]
        s = self.scale if self.scale is not None else 1.0 / m
        with torch.no_grad():  # entry-bound radius R = scale * m * max|q| * max|k| (B^2), rounded up
            R = _round_up(max(s * m * float(q.abs().max()) * float(k.abs().max()), 1e-6))
        g = self.degree if self.degree is not None else degree_for_radius(R, self.target, kind=self.kind,
                                                                           max_degree=self.max_degree, dtype=q.dtype)
        self.calls += 1
        self.radii.append(R)
        out = None
        if g is not None:
            training = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
            # rounding of the working precision: factorised_attention sums over all L keys and all r features at once
            L, r = k.shape[-2], _att.feature_rank(m, g)
            terms = L + r + 6 * g + 4 if training else None
            rho = _rounding_cached(R, g, self.kind, str(q.dtype), L if terms is None else SUM_GROUP, terms)
            if _error_cached(R, g, self.kind) + rho < self.guard:
                if training:
                    out, den = factorised_attention(q, k, v, g, R, scale=s, kind=self.kind)
                    if float(den.detach().min()) <= 0:
                        out = None
                else:
                    try:  # chapter 4's routine, with its own guard (it promotes to float64 where rounding dominates)
                        out = _att.fast_attention(q, k, v, g, R, scale=s, kind=self.kind, max_rel_error=self.guard)
                    except _att.CancellationError:
                        out = None
        if out is None:  # guard fired (or no degree <= max_degree reaches the target): exact attention, counted
            self.fired += 1
            self.degrees.append(-1)
            return F.scaled_dot_product_attention(q, k, v, scale=s)
        self.degrees.append(int(g))
        return out

    def extra_repr(self) -> str:
        g = self.degree if self.degree is not None else f"auto(target={self.target:g})"
        return f"degree={g}, bound={self.bound}, max_degree={self.max_degree}"


# --------------------------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------------------------
def entry_bound(model: nn.Module, x: torch.Tensor, t: Any, *, bound: float | None = None) -> float:
    """Largest absolute entry of the keys and queries the attention of ``model`` sees at ``(x, t)`` (chapter 6).

    Uses :meth:`dit_lib.network.LatentDiT.keys_queries`, i.e. the raw token projections; pass the enforced
    ``bound`` to measure them after :func:`bound_entries`.
    """
    _check_model(model)
    if bound is not None:
        bound = check_float("bound", bound, low=0.0, low_open=True)
    with torch.no_grad():
        pairs = model.keys_queries(x, t)
        worst = 0.0
        for q, k in pairs:
            if bound is not None:
                q, k = bound_entries(q, bound), bound_entries(k, bound)
            worst = max(worst, float(q.abs().max()), float(k.abs().max()))
    return worst


def _check_model(model: Any) -> None:
    from .network import LatentDiT

    if not isinstance(model, LatentDiT):
        raise TypeError(f"model must be a dit_lib LatentDiT, got {type(model).__name__}")


class _Compare(nn.Module):
    """Runs ``attention`` and records its max deviation from float64 exact attention on the same inputs."""

    def __init__(self, attention: nn.Module, bound: float | None):
        super().__init__()
        self.attention, self.bound, self.worst = attention, bound, 0.0

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        qb, kb = (q, k) if self.bound is None else (bound_entries(q, self.bound), bound_entries(k, self.bound))
        out = self.attention(q, k, v)
        self.worst = max(self.worst, float((out.double() - _att.reference_attention(qb, kb, v)).abs().max()))
        return out


def attention_gap(model: nn.Module, x: torch.Tensor, t: Any, attention: nn.Module, *,
                  bound: float | None = None) -> float:
    """Max over blocks of ``|attention(q, k, v) - exact(q, k, v)|`` on the inputs the trained ``model`` produces.

    Chapter 6: the fast-vs-exact attention output error, measured inside the network at ``(x, t)``. ``bound`` is the
    entry bound that ``attention`` enforces (the float64 reference clips keys and queries the same way). The model's
    own attention modules are restored afterwards.
    """
    _check_model(model)
    if not isinstance(attention, nn.Module):
        raise TypeError(f"attention must be a torch.nn.Module, got {type(attention).__name__}")
    if bound is not None:
        bound = check_float("bound", bound, low=0.0, low_open=True)
    saved = [block.attn.attention for block in model.blocks]
    cmp = _Compare(attention, bound)
    try:
        model.set_attention(cmp)
        with torch.no_grad():
            model(x, t)
    finally:
        for block, att in zip(model.blocks, saved):
            block.attn.attention = att
    return cmp.worst


#: Most timing repeats accepted (a median over more is no better, only slower).
MAX_REPEATS = 10_000


def _median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_training_step(model: nn.Module, x0: torch.Tensor, *, repeats: int = 3, T0: float = 1e-2, T: float = 5.0,
                       seed: int = 0) -> float:
    """Median wall time (s) of one DSM training step (forward, backward, Adam) of ``model`` on the batch ``x0``.

    Chapter 6 (exact vs fast attention side by side). The encoder's orthogonal parametrization is cached for the
    duration (it is recomputed once per step in training proper; the timing isolates the rest when ``W_B`` is
    frozen), times are log-uniform on ``[T0, T]`` and the noise is drawn once from ``seed``.
    """
    from .scores import dsm_loss

    _check_model(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters to time a training step")
    check_tensor("x0", x0, ndim=2)
    if x0.shape[1] != model.D or x0.dtype != params[0].dtype or x0.device != params[0].device:
        raise ValueError(f"x0 must have shape (n, D) = (n, {model.D}) and the model's dtype and device "
                         f"({params[0].dtype} on {params[0].device}), got {tuple(x0.shape)} {x0.dtype} on {x0.device}")
    repeats = check_int("repeats", repeats, high=MAX_REPEATS)
    T = check_float("T", T, low=0.0, low_open=True)
    T0 = check_float("T0", T0, low=0.0, high=T, low_open=True, high_open=True)
    g = torch.Generator(device=x0.device).manual_seed(check_seed(seed))
    n = x0.shape[0]
    t = torch.exp(math.log(T0) + (math.log(T) - math.log(T0)) * torch.rand(n, generator=g, device=x0.device))
    z = torch.randn(x0.shape, generator=g, device=x0.device)
    opt = torch.optim.Adam(params, lr=1e-4, foreach=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def step() -> None:
        loss = dsm_loss(model, x0, t, z, "sigma2")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if model.encoder.parametrizations.weight.original.requires_grad:
        # A trainable basis: the cached W_B's graph serves one backward only, so cache it per step (as training does).
        def cached_step() -> None:
            with parametrize.cached():
                step()

        out = _median_time(cached_step, repeats)
    else:
        with parametrize.cached():
            out = _median_time(step, repeats)
    model.load_state_dict(state)      # timing must not change the model
    return out


def time_attention(attention: nn.Module, *, n: int, heads: int, L: int, m: int, backward: bool = True,
                   repeats: int = 3, seed: int = 0, bound: float = 1.0, device: Any = "cpu") -> float:
    """Median wall time (s) of ``attention(q, k, v)`` (and its backward) on ``(n, heads, L, m)`` inputs (chapter 6).

    Entries uniform in ``[-bound, bound]``, float32, from ``seed``: the attention-heavy part of a training step in
    isolation.
    """
    check_callable("attention", attention)
    for name, val in (("n", n), ("heads", heads), ("L", L), ("m", m)):
        check_int(name, val)
    check_memory("n, heads, L, m", 6 * n * heads * L * m, 4, what="queries, keys, values and their gradients")
    backward = check_bool("backward", backward)
    bound = check_float("bound", bound, low=0.0, low_open=True)
    repeats = check_int("repeats", repeats, high=MAX_REPEATS)
    device = check_device(device)
    g = torch.Generator().manual_seed(check_seed(seed))
    q, k, v = ((2 * torch.rand(n, heads, L, m, generator=g) - 1) * bound for _ in range(3))
    q, k, v = (z.to(device).requires_grad_(backward) for z in (q, k, v))

    def call() -> None:
        out = attention(q, k, v)
        if backward:
            out.sum().backward()

    return _median_time(call, repeats)
