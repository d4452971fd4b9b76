"""Attention, exact and fast: the polynomial method of [AS23] behind Prop 4.2 of the DiT paper.

The book's convention (chapter 4) is the one of Alman and Song: for ``Q, K`` of shape ``(..., L, d)``
with entries bounded by ``B``,

    Att(Q, K, V) = D^{-1} exp(scale * Q K^T) V,   D = diag(exp(scale * Q K^T) 1),   scale = 1/d,

so every logit lies in ``[-B^2, B^2]``. (DiT in practice uses ``scale = 1/sqrt(d)``; every function takes
``scale`` so the other convention is one argument away.)

The polynomial method: replace ``exp`` by a degree-``g`` polynomial ``P`` on ``[-R, R]``; by the
multinomial theorem ``P(scale <q, k>) = <phi(q), psi(k)>`` with ``r = binom(d+g, g)`` features, so

    Att ~ (U1 (U2^T V)) / (U1 (U2^T 1)),   U1 = phi(Q), U2 = psi(K)   (L x r),

in time ``O(L r d)``, never forming an ``L x L`` matrix. Contents:

* :func:`reference_attention` — float64 exact attention (on a subset of query rows if wanted);
* :func:`sdpa_attention` — torch's ``scaled_dot_product_attention``, the exact baseline that is timed;
* :func:`monomial_exponents`, :func:`feature_rank`, :func:`monomial_features`, :func:`exp_feature_maps` — the
  multinomial feature map (one builder, differentiable);
* :func:`fast_attention` — the polynomial method batched over heads (CPU or CUDA), with a bound certified in the
  arithmetic it runs in (:func:`choose_precision`) and the cancellation guard (:class:`CancellationError`,
  :class:`CancellationWarning`);
* :func:`adversarial_instance` — bounded inputs built to break the guarantee (the adversarial tests, chapter 4);
* :func:`performer_features`, :func:`performer_attention` — positive random features (Choromanski et al.).

Chapter 4 uses all of them; chapter 5 reuses :func:`exp_feature_maps`.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np
import torch

from ._checks import check_array, check_attention_inputs, check_bool, check_choice, check_float, check_int, \
    check_memory, check_scale, check_seed, check_work, is_trusted, trusted
from . import native
from .polynomial import (KINDS, MAX_DEGREE, SUM_GROUP, attention_error_bound, degree_for_error,
                         exp_poly_coefficients, exp_poly_error, rounding_rel_error, unit_roundoff)

__all__ = [
    "default_device",
    "CancellationError",
    "CancellationWarning",
    "MAX_FEATURE_BYTES",
    "feature_rank",
    "monomial_exponents",
    "feature_coefficients",
    "exp_feature_maps",
    "logit_bound",
    "reference_attention",
    "sdpa_attention",
    "fast_attention",
    "monomial_features",
    "PRECISIONS",
    "KERNELS",
    "choose_precision",
    "ADVERSARIAL_PATTERNS",
    "adversarial_instance",
    "performer_features",
    "performer_attention",
]

#: Largest feature block (bytes) that :func:`exp_feature_maps` and :func:`fast_attention` will allocate.
MAX_FEATURE_BYTES = 8 * 2**30


class CancellationError(ArithmeticError):
    """The approximate row sums of fast attention vanished or went negative: the polynomial is too poor."""


class CancellationWarning(RuntimeWarning):
    """Warning counterpart of :class:`CancellationError` (``on_cancel="warn"``)."""


def default_device() -> str:
    """``"cuda"`` if a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def feature_rank(d: int, degree: int) -> int:
    """Number of monomials of degree ``<= g`` in ``d`` variables, ``binom(d+g, g)``: the exact rank of the feature map.

    Chapter 4. ([AS23] state the looser ``binom(2(g+d), 2g)``.)
    """
    if not is_trusted():
        d = check_int("d", d)
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)  # also keeps the exact binomial cheap
    return math.comb(d + degree, degree)


@functools.lru_cache(maxsize=64)
def _layout(d: int, degree: int) -> tuple[np.ndarray, tuple[tuple[int, int, int, int, int], ...]]:
    """Exponents of all monomials (graded order) and the recipe that builds them by slices.

    Within degree ``j`` the monomials are grouped by their largest variable ``i``; the group for ``i`` is
    (every degree ``j-1`` monomial in variables ``0..i``) times ``x_i``. Those ``j-1`` monomials are a
    *prefix* of the previous block, of length ``binom(i+j-1, j-1)``, so each group is one contiguous
    slice times one coordinate: no gathers.
    """
    exps = [np.zeros((1, d), dtype=np.int64)]
    steps = []
    offset_prev, offset = 0, 1
    for j in range(1, degree + 1):
        prev = exps[-1]
        block = []
        pos = offset
        for i in range(d):
            n = math.comb(i + j - 1, j - 1)
            e = prev[:n].copy()
            e[:, i] += 1
            block.append(e)
            steps.append((i, offset_prev, pos, n, j))
            pos += n
        exps.append(np.concatenate(block))
        offset_prev, offset = offset, pos
    out = np.concatenate(exps)
    out.setflags(write=False)
    return out, tuple(steps)


def monomial_exponents(d: int, degree: int) -> np.ndarray:
    """Exponent vectors ``alpha`` (rows, shape ``(binom(d+g, g), d)``) in the order used by the feature map.

    Chapter 4. Rows are sorted by total degree ``|alpha|``; row 0 is the constant monomial.
    """
    if not is_trusted():
        d = check_int("d", d)
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
        check_memory("d, degree", 2 * math.comb(d + degree, degree) * d,
                     what=f"binom({d}+{degree}, {degree}) exponent vectors of length {d}")
    return _layout(d, degree)[0]


def feature_coefficients(d: int, degree: int, coefficients: np.ndarray) -> np.ndarray:
    """Weights ``c_alpha = a_{|alpha|} * binom(|alpha|; alpha)`` of the multinomial expansion.

    Chapter 4. With them ``P(<x, y>) = sum_alpha c_alpha x^alpha y^alpha`` (multinomial theorem applied to
    ``<x, y>^j``), eq. (eq-ch4-multinomial) of the chapter.
    """
    exps = monomial_exponents(d, degree)
    a = coefficients if is_trusted() else check_array("coefficients", coefficients, ndim=1)
    if a.shape != (degree + 1,):
        raise ValueError(f"coefficients must have shape ({degree + 1},), got {a.shape}")
    j = exps.sum(axis=1)
    # multinomial j! / prod(alpha_i!) via log-gamma: exact enough (relative 1e-15) for degree <= 60
    from scipy.special import gammaln
    multinom = np.exp(gammaln(j + 1) - gammaln(exps + 1).sum(axis=1))
    return a[j] * np.round(multinom)


def logit_bound(Q: torch.Tensor, K: torch.Tensor, scale: float | None = None, *, tight: bool = False) -> float:
    """A bound on ``|scale * <q, k>|`` over all query-key pairs. Chapter 4.

    ``tight=False``: ``scale * d * max|Q| * max|K|`` (the entry bound; ``B^2`` for entries in ``[-B, B]`` and
    ``scale = 1/d``). ``tight=True``: ``scale * max ||q|| * max ||k||`` (Cauchy–Schwarz, never larger).
    """
    check_attention_inputs(Q, K)
    return _logit_bound(Q, K, check_scale(scale, Q.shape[-1]), check_bool("tight", tight))


def _logit_bound(Q: torch.Tensor, K: torch.Tensor, s: float, tight: bool) -> float:
    """:func:`logit_bound` without the input checks (callers have checked)."""
    if tight:  # norms in float64, so that the bound is not itself rounded down
        return (s * float(torch.linalg.vector_norm(Q, dim=-1, dtype=torch.float64).max())
                * float(torch.linalg.vector_norm(K, dim=-1, dtype=torch.float64).max()))
    return s * Q.shape[-1] * float(Q.abs().max()) * float(K.abs().max())


def _monomials_t(X: torch.Tensor, degree: int, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """All monomials of degree ``<= g`` of the rows of ``X`` (``(..., n, d)``), *transposed*: ``(..., r, n)``.

    The transposed layout makes every step of :func:`_layout` one contiguous block of rows. ``buffer``
    (``(..., r, n_max)``, ``n_max >= n``) is reused across blocks: fresh large allocations cost page faults.
    """
    d = X.shape[-1]
    _, steps = _layout(d, degree)
    r = math.comb(d + degree, degree)
    Xt = X.transpose(-1, -2).contiguous()  # (..., d, n): contiguous rows make the products below vectorise
    shape = X.shape[:-2] + (r, X.shape[-2])
    if buffer is not None and buffer.shape[:-1] == shape[:-1] and buffer.shape[-1] >= shape[-1]:
        out = buffer[..., :X.shape[-2]]
    else:
        out = torch.empty(shape, dtype=X.dtype, device=X.device)
    out[..., 0, :] = 1.0
    for i, src, dst, n, _j in steps:
        torch.mul(out[..., src:src + n, :], Xt[..., i:i + 1, :], out=out[..., dst:dst + n, :])
    return out


def _top_steps(d: int, degree: int) -> tuple[int, tuple[tuple[int, int, int, int, int], ...]]:
    """Rank of the degree ``g-1`` features and the recipe steps that build the degree-``g`` block."""
    _, steps = _layout(d, degree)
    return math.comb(d + degree - 1, degree - 1), tuple(st for st in steps if st[4] == degree)


class _MonomialFeatures(torch.autograd.Function):
    """:func:`_monomials_t` with a backward pass: the one feature-map builder, also under autograd (chapter 6).

    Backward walks the recipe of :func:`_layout` in reverse: a monomial built as ``prefix * x_i`` sends
    ``grad * x_i`` to its prefix and ``grad * prefix`` to ``x_i``.
    """

    @staticmethod
    def forward(ctx, X: torch.Tensor, degree: int) -> torch.Tensor:  # noqa: D102
        out = _monomials_t(X, degree)
        ctx.save_for_backward(X, out)
        ctx.degree = degree
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        X, out = ctx.saved_tensors
        _, steps = _layout(X.shape[-1], ctx.degree)
        G = grad.clone()
        Xt = X.transpose(-1, -2)
        gX = torch.zeros_like(Xt)
        for i, src, dst, n, _j in reversed(steps):
            gd = G[..., dst:dst + n, :]
            gX[..., i, :] += (gd * out[..., src:src + n, :]).sum(-2)
            G[..., src:src + n, :] += gd * Xt[..., i:i + 1, :]
        return gX.transpose(-1, -2), None


def monomial_features(X: torch.Tensor, degree: int) -> torch.Tensor:
    """All monomials of degree ``<= g`` of the rows of ``X``: ``(..., n, d) -> (..., n, binom(d+g, g))``. Chapter 4.

    Order of :func:`monomial_exponents`. The one builder of the multinomial features: :func:`exp_feature_maps`,
    :func:`fast_attention` and the differentiable :func:`dit_lib.efficient.poly_features` (chapter 6) all use it;
    gradients flow to ``X`` through a custom :class:`torch.autograd.Function`.
    """
    check_attention_inputs(X, X, names=("X", "X", "X"))
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
    if torch.is_grad_enabled() and X.requires_grad:
        return _MonomialFeatures.apply(X, degree).transpose(-1, -2)
    return _monomials_t(X, degree).transpose(-1, -2)


def _grouped_mm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A @ B`` in float64, the inner sum split into groups of at most ``SUM_GROUP`` terms added in the working dtype.

    The rounding analysis of :func:`fast_attention` (:func:`dit_lib.polynomial.accumulation_length`) counts on it.
    """
    n = A.shape[-1]
    out = None
    for a in range(0, n, SUM_GROUP):
        part = (A[..., a:a + SUM_GROUP] @ B[..., a:a + SUM_GROUP, :]).double()
        out = part if out is None else out.add_(part)
    return out


def _keys_times_values(X: torch.Tensor, V1: torch.Tensor, degree: int,
                       buffer: torch.Tensor | None = None) -> torch.Tensor:
    """``mono(X)^T V1`` (``(..., r, c)``, float64) without materialising the top-degree monomials.

    ``X`` (``(..., n, d)``) is split into groups of ``SUM_GROUP`` keys (the last padded with zero keys and zero values),
    each group's product is taken in the working dtype and the groups are added in float64. The degree-``g``
    monomials with largest variable ``i`` are a prefix of the degree-``(g-1)`` block times ``x_i``, so their rows of
    ``mono(X)^T V1`` equal ``prefix^T (x_i * V1)``: ``d`` small products replace writing the largest block of features.
    """
    n = X.shape[-2]
    pad = -n % SUM_GROUP
    if pad:
        X = torch.nn.functional.pad(X, (0, 0, 0, pad))
        V1 = torch.nn.functional.pad(V1, (0, 0, 0, pad))
    X = X.unflatten(-2, (-1, SUM_GROUP))
    V1 = V1.unflatten(-2, (-1, SUM_GROUP))
    if degree == 0:
        return V1.sum(-2, dtype=torch.float64)[..., None, :].sum(-3)
    r_low, top = _top_steps(X.shape[-1], degree)
    P = _monomials_t(X, degree - 1, buffer if pad == 0 else None)
    # Transposed products V1^T P^T (c x r per group): the same sums, and a faster shape for BLAS than P V1 (r x c).
    V1t, Xt = V1.transpose(-1, -2), X.transpose(-1, -2)
    parts = [V1t @ P.transpose(-1, -2)] + [(V1t * Xt[..., i:i + 1, :]) @ P[..., src:src + n_, :].transpose(-1, -2)
                                           for i, src, _dst, n_, _j in top]
    # Each group's partial sums are converted exactly to float64 and added there (no float64 copy of the parts).
    return torch.cat([p.sum(-3, dtype=torch.float64) for p in parts], dim=-1).transpose(-1, -2)


def _queries_times_matrix(X: torch.Tensor, Mt: torch.Tensor, degree: int,
                          buffer: torch.Tensor | None = None) -> torch.Tensor:
    """``mono(X) M`` for ``Mt = M^T`` (``(..., c, r)``), float64 ``(..., n, c)``, again without the top-degree monomials.

    Sums over features are split into groups of at most ``SUM_GROUP`` terms added in float64 (:func:`_grouped_mm`).
    """
    if degree == 0:
        return _grouped_mm(Mt, _monomials_t(X, 0)).transpose(-1, -2)
    r_low, top = _top_steps(X.shape[-1], degree)
    P = _monomials_t(X, degree - 1, buffer)
    out = _grouped_mm(Mt[..., :r_low], P)
    Xt = X.transpose(-1, -2).double()
    for i, src, dst, n, _j in top:
        out.addcmul_(_grouped_mm(Mt[..., dst:dst + n], P[..., src:src + n, :]), Xt[..., i:i + 1, :])
    return out.transpose(-1, -2)


def _poly_setup(Q: torch.Tensor, K: torch.Tensor, degree: int, radius: float | None, scale: float | None,
                kind: str) -> tuple[int, float, int, float, int]:
    """Validated ``(d, scale, degree, radius, rank)`` shared by the feature maps and fast attention."""
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
    check_choice("kind", kind, KINDS)
    d = Q.shape[-1]
    s = check_scale(scale, d)
    if radius is None:
        # Round up conservatively so that the largest logit lies inside the interval despite rounding.
        radius = max(_logit_bound(Q, K, s, False) * (1 + 1e-6), 1e-12)
    radius = check_float("radius", radius, low=0.0, low_open=True)
    return d, s, degree, radius, math.comb(d + degree, degree)


def exp_feature_maps(Q: torch.Tensor, K: torch.Tensor, degree: int, radius: float | None = None, *,
                     scale: float | None = None, kind: str = "chebyshev") -> tuple[torch.Tensor, torch.Tensor]:
    """The multinomial feature maps ``U1 = phi(Q)``, ``U2 = psi(K)`` with ``U1 U2^T = P(scale Q K^T)`` exactly.

    Chapter 4 (the polynomial method), reused by chapter 5 (low-rank gradients).

    ``P(s) = sum_j a_j s^j`` is the degree-``g`` approximation of ``exp`` on ``[-radius, radius]``
    (:func:`dit_lib.polynomial.exp_poly_coefficients`). With ``x = sqrt(scale) q``, ``y = sqrt(scale) k`` and
    ``c_alpha = a_{|alpha|} binom(|alpha|; alpha)``::

        phi(q)_alpha = sqrt(|c_alpha|) x^alpha,   psi(k)_alpha = sign(c_alpha) sqrt(|c_alpha|) y^alpha,

    so ``<phi(q), psi(k)> = sum_j a_j (scale <q, k>)^j`` (multinomial theorem, eq. (eq-ch4-multinomial)).

    Parameters
    ----------
    Q, K : torch.Tensor
        Shapes ``(..., L_q, d)`` and ``(..., L_k, d)`` with the same leading (batch, head) axes.
    degree : int
        Polynomial degree ``g`` in ``[0, 60]``.
    radius : float, optional
        Interval half-width ``R`` of the approximation. Default: ``scale * d * max|Q| * max|K|`` rounded up
        (a bound on ``|scale <q, k>|``; ``B^2`` for entries bounded by ``B`` and ``scale = 1/d``).
    scale : float, optional
        Logit scale, default ``1/d`` (the book's convention, [AS23]).
    kind : {"chebyshev", "taylor"}

    Returns
    -------
    (U1, U2) : tuple of torch.Tensor
        Shapes ``(..., L_q, r)`` and ``(..., L_k, r)``, ``r = binom(d+g, g)``, dtype and device of ``Q``.

    Raises
    ------
    ValueError
        Mismatched shapes, non-finite entries, ``radius <= 0``, a bad degree, or features that would not fit
        in memory (the message says how much they would need).
    """
    check_attention_inputs(Q, K)
    d, s, degree, radius, r = _poly_setup(Q, K, degree, radius, scale, kind)
    check_memory("degree, d, L", r * (Q.numel() + K.numel()) // d, Q.element_size(), limit=MAX_FEATURE_BYTES,
                 what=f"features of rank r = binom({d}+{degree}, {degree}) = {r} for "
                      f"L = {max(Q.shape[-2], K.shape[-2])}; limit MAX_FEATURE_BYTES")
    c = feature_coefficients(d, degree, exp_poly_coefficients(radius, degree, kind))
    w = torch.as_tensor(np.sqrt(np.abs(c)), dtype=Q.dtype, device=Q.device)
    sign = torch.as_tensor(np.sign(c), dtype=Q.dtype, device=Q.device)
    root = math.sqrt(s)
    U1 = (_monomials_t(Q * root, degree) * w[:, None]).transpose(-1, -2).contiguous()
    U2 = (_monomials_t(K.to(Q.dtype) * root, degree) * (w * sign)[:, None]).transpose(-1, -2).contiguous()
    return U1, U2


def reference_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, *, scale: float | None = None,
                        rows: torch.Tensor | None = None, chunk: int = 256) -> torch.Tensor:
    """Exact attention ``softmax(scale Q K^T) V`` in float64 (the yardstick for every error in chapter 4).

    Parameters
    ----------
    Q, K, V : torch.Tensor
        ``(..., L_q, d)``, ``(..., L_k, d)``, ``(..., L_k, d_v)``.
    scale : float, optional
        Default ``1/d``.
    rows : torch.Tensor, optional
        Indices of the query rows to compute (all by default).
    chunk : int
        Query rows per block; memory is ``O(chunk * L_k)``.

    Returns
    -------
    torch.Tensor
        float64, shape ``(..., len(rows), d_v)``.
    """
    check_attention_inputs(Q, K, V)
    s = check_scale(scale, Q.shape[-1])
    chunk = check_int("chunk", chunk)
    if rows is not None:
        if not isinstance(rows, torch.Tensor) or rows.dtype not in (torch.int32, torch.int64) or rows.ndim != 1:
            raise TypeError(f"rows must be a 1-D integer tensor of query indices, got "
                            f"{rows.dtype if isinstance(rows, torch.Tensor) else type(rows).__name__}")
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= Q.shape[-2]):
            raise ValueError(f"rows must index the L_q = {Q.shape[-2]} queries (0 <= rows < {Q.shape[-2]}), got "
                             f"range [{int(rows.min())}, {int(rows.max())}]")
    Qd = Q.double() if rows is None else Q.double().index_select(-2, rows.to(Q.device))
    Kd, Vd = K.double(), V.double()
    outs = [torch.softmax(s * Qd[..., i:i + chunk, :] @ Kd.transpose(-1, -2), dim=-1) @ Vd
            for i in range(0, Qd.shape[-2], chunk)]
    return torch.cat(outs, dim=-2) if outs else Qd.new_zeros(Qd.shape[:-1] + (V.shape[-1],))


def sdpa_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, *, scale: float | None = None) -> torch.Tensor:
    """Exact attention by :func:`torch.nn.functional.scaled_dot_product_attention` (the timed baseline). Chapter 4.

    Leading axes are flattened into heads so that on CPU torch dispatches to its fused flash-attention kernel
    (memory ``O(L)``, time ``O(L^2 d)``).
    """
    check_attention_inputs(Q, K, V)
    s = check_scale(scale, Q.shape[-1])
    lead = Q.shape[:-2]
    # torch's CPU flash kernel needs 4-D (batch, heads, L, d) inputs; 2-D/3-D ones fall back to the math path,
    # which forms the L x L matrix (4 GiB at L = 32768): flatten the leading axes into heads.
    q, k, v = (X.reshape((1, -1) + X.shape[-2:]) for X in (Q, K, V))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=s)
    return out.reshape(lead + out.shape[-2:])


#: Default size of one block of features in :func:`fast_attention` (bytes).
_BLOCK_BYTES = 8 * 2**20


def _chunk_rows(chunk: int | None, r: int, itemsize: int) -> int:
    """Rows per block, a multiple of ``SUM_GROUP``: by default about :data:`_BLOCK_BYTES` of degree-``(g-1)`` features.

    Block size changes neither the sums nor their grouping (blocks hold whole groups of ``SUM_GROUP`` keys), only
    speed: on the 2-core benchmark machine 8 MiB blocks (4096 rows at d = 8, g = 5) beat 16 MiB ones, which spill out
    of the last-level cache shared by both cores together with the products' operands."""
    if chunk is None:
        chunk = _BLOCK_BYTES // max(1, r * itemsize)
    return max(SUM_GROUP, chunk // SUM_GROUP * SUM_GROUP)


PRECISIONS = ("auto", "working", "float64")
#: Kernels of :func:`fast_attention`: ``"fused"`` (:mod:`dit_lib.native`, CPU) or ``"torch"`` (blocked products).
KERNELS = ("auto", "fused", "torch")


def _use_fused(kernel: str, device: torch.device) -> bool:
    """Whether :func:`fast_attention` runs the fused kernels; ``kernel="fused"`` where they do not apply raises."""
    if kernel == "torch":
        return False
    why = None
    if device.type != "cpu":
        why = f"they run on the CPU, and Q is on {device}"
    elif not native.available():
        why = f"they could not be built here ({native.unavailable_reason()})"
    if why and kernel == "fused":
        raise ValueError(f"kernel='fused' cannot be used: {why}; use kernel='torch' or 'auto'")
    return why is None


def _steps_array(d: int, degree: int) -> np.ndarray:
    """The recipe of :func:`_layout` as rows ``(i, src, dst, count, degree)`` (empty for degree 0)."""
    return np.array(_layout(d, degree)[1], dtype=np.int64).reshape(-1, 5)


def _fused_attention(Qs: torch.Tensor, Ks: torch.Tensor, V1: torch.Tensor, c: torch.Tensor,
                     degree: int) -> torch.Tensor:
    """``mono(Qs) diag(c) mono(Ks)^T V1`` in float64 by the fused kernels, every head in one call per thread (scaled
    inputs in the working precision)."""
    steps, r = _steps_array(Qs.shape[-1], degree), c.shape[0]
    lead = Qs.shape[:-2]
    Qf, Kf, Vf = (t.reshape((-1,) + t.shape[-2:]) for t in (Qs, Ks, V1.expand(lead + V1.shape[-2:])))
    M = native._keys_times_values(Kf, Vf, steps, r, SUM_GROUP)
    out = native._queries_times_matrix(Qf, (M * c[:, None]).to(Qs.dtype), steps, SUM_GROUP)
    return out.reshape(lead + out.shape[-2:])


def _block_rows(chunk: int | None, d: int, degree: int, lead: tuple[int, ...], dt: torch.dtype) -> int:
    """Rows per block of :func:`_blocked_attention`, refused up front when a block would not fit in memory."""
    batch = int(np.prod(lead, dtype=np.int64))
    itemsize = torch.finfo(dt).bits // 8
    r_low = math.comb(d + degree - 1, degree - 1) if degree else 1
    r = math.comb(d + degree, degree)
    rows = _chunk_rows(chunk, r_low * batch, itemsize)
    check_memory("chunk, degree", rows * r * batch, itemsize, limit=MAX_FEATURE_BYTES,
                 what=f"a block of {rows} rows x rank {r} x {batch} heads; limit MAX_FEATURE_BYTES")
    return rows


def _blocked_attention(Qs: torch.Tensor, Ks: torch.Tensor, V1: torch.Tensor, c: torch.Tensor, degree: int,
                       rows: int) -> torch.Tensor:
    """The same product by torch, on blocks of ``rows`` rows (any device and dtype)."""
    dt, r = Qs.dtype, c.shape[0]
    r_low = math.comb(Qs.shape[-1] + degree - 1, degree - 1) if degree else 1
    # M = U2^T [V, 1], accumulated over key groups in float64 (it is only r x (d_v + 1)).
    M = torch.zeros(Qs.shape[:-2] + (r, V1.shape[-1]), dtype=torch.float64, device=Qs.device)
    kbuf = torch.empty(Qs.shape[:-2] + (rows // SUM_GROUP, r_low, SUM_GROUP), dtype=dt, device=Qs.device)
    for i in range(0, Ks.shape[-2], rows):
        Kb = Ks[..., i:i + rows, :]
        M += _keys_times_values(Kb, V1[..., i:i + rows, :], degree, kbuf if Kb.shape[-2] == rows else None)
    Mt = (M * c[:, None]).to(dt).transpose(-1, -2).contiguous()
    qbuf = torch.empty(Qs.shape[:-2] + (r_low, min(rows, Qs.shape[-2])), dtype=dt, device=Qs.device)
    return torch.cat([_queries_times_matrix(Qs[..., i:i + rows, :], Mt, degree, qbuf)
                      for i in range(0, Qs.shape[-2], rows)], dim=-2)


def choose_precision(precision: str, dtype: torch.dtype, exact_bound: float, working_bound: float,
                     tol: float | None = None) -> torch.dtype:
    """The dtype to compute in: the rule shared by :func:`fast_attention` and the low-rank gradient (chapters 4–5).

    ``"float64"`` (or float64 inputs) -> float64; ``"working"`` -> ``dtype``; ``"auto"`` -> ``dtype`` unless rounding
    would dominate: with ``tol``, when the certified bound in ``dtype`` (``working_bound``) exceeds it; without, when
    its rounding part (``working_bound - exact_bound``) exceeds the exact-arithmetic part ``exact_bound``.
    """
    if not is_trusted():
        check_choice("precision", precision, PRECISIONS)
    if precision == "float64" or dtype == torch.float64:
        return torch.float64
    if precision == "working":
        return dtype
    if tol is not None:
        return dtype if working_bound <= tol else torch.float64
    return dtype if working_bound - exact_bound <= exact_bound else torch.float64


def _certify(eps: float, radius: float, degree: int, kind: str, bound: float, length: int, dtype: torch.dtype,
             out_dtype: torch.dtype, vmax: float, d: int) -> tuple[float, float, float]:
    """``(rho, approx_bound, rounding_bound)`` of fast attention computed in ``dtype`` and returned in ``out_dtype``."""
    rho = rounding_rel_error(radius, degree, kind, bound=max(bound, 1e-12), dtype=dtype, length=max(length, 1), d=d)
    u_out = unit_roundoff(out_dtype) + 2.0**-53
    total = vmax * attention_error_bound(eps, rho, u_out)
    approx = vmax * attention_error_bound(eps)
    return rho, approx, total - approx


def fast_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, degree: int, radius: float | None = None, *,
                   scale: float | None = None, kind: str = "chebyshev", chunk: int | None = None,
                   max_rel_error: float = 0.5, on_cancel: str = "raise", tol: float | None = None,
                   precision: str = "auto", kernel: str = "auto",
                   return_info: bool = False) -> torch.Tensor | tuple[torch.Tensor, dict]:
    """Almost-linear attention by the polynomial method (Prop 4.2, algorithm of [AS23]). Chapter 4.

    Computes ``(U1 (U2^T [V, 1]))`` and divides by the last column, with ``U1, U2`` the features of
    :func:`exp_feature_maps`, batched over all leading axes (heads), on the device of ``Q``, never storing the
    ``L x r`` feature matrices (see **Kernel**). The coefficients ``c_alpha`` are folded into the small
    ``r x (d_v+1)`` matrix ``U2^T [V, 1]``, so the features are plain monomials; time ``O(L r (d + d_v))``. The result
    has the dtype of ``Q``.

    **The certified bound** (``info["error_bound"]``) bounds the error of what is returned, in its dtype:

    * exact arithmetic: the relative error ``eps`` of ``P`` on ``[-b, b]``, ``b`` the Cauchy–Schwarz bound on the
      logits (:func:`logit_bound`), moves every output entry by at most ``2 eps ||V||_inf / (1 - eps)``
      (``info["approx_bound"]``);
    * rounding (a forward error analysis of the feature evaluation, of ``U2^T [V, 1]`` and of the final products):
      every computed row sum is within ``rho = gamma_T sum_j |a_j| b^j e^b`` of the exact one, relative
      (:func:`dit_lib.polynomial.rounding_rel_error`); sums in the working precision are kept to at most
      :data:`dit_lib.polynomial.SUM_GROUP` terms and their partial sums are added in float64. This adds
      ``2 rho ||V||_inf / (1 - eps - rho)`` and the last roundings (``info["rounding_bound"]``).

    **Precision.** ``precision="working"`` computes in the dtype of ``Q``; ``"float64"`` promotes; ``"auto"`` (default)
    promotes to float64 where rounding would dominate: when ``tol`` is given, if the working-precision bound exceeds
    ``tol``; otherwise if its rounding term exceeds the exact-arithmetic term. ``info["compute_dtype"]`` says which.

    **Kernel.** ``kernel="fused"`` runs the fused CPU kernels of :mod:`dit_lib.native`: features of a few keys (or 16
    queries) are generated in cache and multiplied at once, so the ``L x r`` blocks are never written to memory (the
    plain products are memory-bound: each feature is used only ``d_v + 1`` times). They apply on the CPU, in float32
    or float64, where a C compiler could build them; otherwise ``"fused"`` raises ``ValueError``.
    ``"torch"`` runs torch products on blocks of ``chunk`` rows (any device). Neither has a backward pass: inputs that
    require grad are refused (``ValueError``); :class:`dit_lib.efficient.PolynomialAttention` is the differentiable
    version. ``"auto"`` (default) takes ``"fused"``
    where it applies. Both follow the arithmetic the rounding analysis describes (same recipe for the monomials, sums
    of at most ``SUM_GROUP`` terms in the working precision, float64 partial sums), so the bound covers either;
    ``info["kernel"]`` says which ran.

    **Guard.** If ``eps >= max_rel_error``, ``eps + rho >= 1`` (nothing certified), some computed row sum is
    ``<= 0``, or the certified bound exceeds ``tol``, the output cannot be trusted: ``on_cancel="raise"`` raises
    :class:`CancellationError`, ``"warn"`` issues a :class:`CancellationWarning` (rows whose sum is ``<= 0`` become
    NaN). The message says which condition failed and what would work (degree, precision, or a smaller ``B``).

    Parameters
    ----------
    Q, K, V : torch.Tensor
        ``(..., L_q, d)``, ``(..., L_k, d)``, ``(..., L_k, d_v)``.
    degree : int
        Polynomial degree ``g``.
    radius : float, optional
        Approximation interval; default as in :func:`exp_feature_maps`.
    scale : float, optional
        Logit scale, default ``1/d``.
    kind : {"chebyshev", "taylor"}
    chunk : int, optional
        Rows per block of the torch kernel, rounded to a multiple of ``SUM_GROUP`` (default: about 8 MiB of features
        per block). The fused kernels use their own cache tiles.
    max_rel_error : float
        Guard threshold on ``eps``, in ``(0, 1]``.
    on_cancel : {"raise", "warn"}
    tol : float, optional
        Requested accuracy: largest acceptable certified error per output entry, ``> 0``.
    precision : {"auto", "working", "float64"}
    kernel : {"auto", "fused", "torch"}
    return_info : bool
        Also return a dict with ``degree, rank, radius, logit_bound, rel_error, rounding_rel_error, approx_bound,
        rounding_bound, error_bound, compute_dtype, min_row_sum, kind, kernel``.

    Returns
    -------
    torch.Tensor or (torch.Tensor, dict)
        Shape ``(..., L_q, d_v)``.
    """
    check_attention_inputs(Q, K, V)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (Q, K, V)):
        raise ValueError("Q, K, V: fast_attention has no backward pass, and an input requires grad; call it under "
                         "torch.no_grad() or use dit_lib.efficient.PolynomialAttention (differentiable, chapter 6)")
    return_info = check_bool("return_info", return_info)
    check_choice("on_cancel", on_cancel, ("raise", "warn"))
    check_choice("precision", precision, PRECISIONS)
    check_choice("kernel", kernel, KERNELS)
    max_rel_error = check_float("max_rel_error", max_rel_error, low=0.0, high=1.0, low_open=True)
    tol = None if tol is None else check_float("tol", tol, low=0.0, low_open=True)
    chunk = None if chunk is None else check_int("chunk", chunk)
    d, s, degree, radius, r = _poly_setup(Q, K, degree, radius, scale, kind)
    if Q.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"Q must be float32 or float64 for fast_attention, got {Q.dtype}")

    with trusted():  # everything is validated above: the helpers below do not check again
        # A priori: the logit bound b, the polynomial's error eps on [-b, b], the rounding bound in each precision.
        bound = _logit_bound(Q, K, s, True) * (1 + 1e-12)
        eps = exp_poly_error(radius, degree, kind, bound=max(bound, 1e-12))
        vmax = float(V.abs().max()) if V.numel() else 0.0
        Lk = K.shape[-2]
        working = _certify(eps, radius, degree, kind, bound, Lk, Q.dtype, Q.dtype, vmax, d)
        dt = choose_precision(precision, Q.dtype, working[1], working[1] + working[2], tol)
        rho, approx, rounding = working if dt == Q.dtype else _certify(eps, radius, degree, kind, bound, Lk,
                                                                       dt, Q.dtype, vmax, d)
        total = approx + rounding

        rows = _block_rows(chunk, d, degree, Q.shape[:-2], dt)   # checked whichever kernel runs
        c = torch.as_tensor(feature_coefficients(d, degree, exp_poly_coefficients(radius, degree, kind)),
                            dtype=torch.float64, device=Q.device)
        root = math.sqrt(s)
        V1 = torch.cat([V.to(dt), V.new_ones(V.shape[:-1] + (1,), dtype=dt)], dim=-1)
        fused = _use_fused(kernel, Q.device)
        if fused:
            out = _fused_attention(Q.to(dt) * root, K.to(dt) * root, V1, c, degree)
        else:
            out = _blocked_attention(Q.to(dt) * root, K.to(dt) * root, V1, c, degree, rows)
        num, den = out[..., :-1], out[..., -1:]

        min_den = float(den.min()) if den.numel() else math.inf
        info = {"degree": degree, "rank": r, "radius": radius, "logit_bound": bound, "rel_error": eps,
                "rounding_rel_error": rho, "approx_bound": approx, "rounding_bound": rounding, "error_bound": total,
                "compute_dtype": str(dt).replace("torch.", ""), "min_row_sum": min_den, "kind": kind,
                "kernel": "fused" if fused else "torch"}
        why = []
        if eps >= max_rel_error:
            why.append(f"the degree-{degree} {kind} polynomial (built on [-{radius:.3g}, {radius:.3g}]) has relative "
                       f"error {eps:.3g} on the logits |scale <q,k>| <= {bound:.3g} (guard {max_rel_error:g})")
        if eps < 1 <= eps + rho:
            why.append(f"rounding in {info['compute_dtype']} can move the row sums by {rho:.3g} (relative): "
                       "nothing is certified")
        if min_den <= 0:
            why.append(f"the smallest computed row sum is {min_den:.3g}")
        if tol is not None and total > tol:
            why.append(f"the certified error {total:.3g} (polynomial {approx:.3g}, rounding in {info['compute_dtype']} "
                       f"{rounding:.3g}) exceeds tol = {tol:g}")
        if why:
            raise_or_warn = _advice(bound, degree, kind, tol, vmax, max_rel_error, Q.dtype, Lk, d)
            msg = "fast attention cannot certify its output: " + "; ".join(why) + ". " + raise_or_warn
            if on_cancel == "raise":
                raise CancellationError(msg)
            warnings.warn(msg, CancellationWarning, stacklevel=2)
            den = torch.where(den > 0, den, torch.full_like(den, math.nan))
        result = (num / den).to(Q.dtype)
        return (result, info) if return_info else result


def _advice(bound: float, degree: int, kind: str, tol: float | None, vmax: float, max_rel_error: float,
            dtype: torch.dtype, length: int, d: int) -> str:
    """What would work: the degree (and precision) that certifies the request, or that none does.

    The target is a relative error of the row sums (polynomial plus rounding, for this call's ``length`` keys and
    ``d`` variables):
    with ``tol``, small enough that the certified output error stays within ``tol`` (the two take at most half of it);
    without, a tenth of the guard ``max_rel_error``.
    """
    if tol is not None and vmax > 0:
        target = min(0.5 * (tol / vmax) / (2 + tol / vmax), 0.1 * max_rel_error)
        why = f"so that the certified error stays within tol = {tol:g}"
    else:
        target = 0.1 * max_rel_error
        why = f"a tenth of the guard max_rel_error = {max_rel_error:g}; pass tol= to aim at an output accuracy"
    tips = []
    for dt in dict.fromkeys((dtype, torch.float64)):
        try:
            g = degree_for_error(max(bound, 1e-12), target, kind, dtype=dt, length=max(length, 1), d=d)
            tips.append(f"degree {g} in {str(dt).replace('torch.', '')} would reach relative error {target:.2g}")
        except ValueError:
            pass
    if tips:
        return "What would work: " + " or ".join(tips) + f" on logits up to {bound:.3g} ({why})."
    return (f"No {kind} degree <= {MAX_DEGREE} certifies relative error {target:.2g} ({why}) at logit bound "
            f"{bound:.3g} even in float64: lower the entry bound B (or use exact attention).")


ADVERSARIAL_PATTERNS = ("clusters", "opposite", "vertices", "aligned")


def adversarial_instance(L: int, d: int, B: float, pattern: str = "opposite", *, degree: int | None = None,
                         scale: float | None = None, kind: str = "chebyshev", jitter: float = 1e-3, seed: int = 0,
                         dtype: torch.dtype = torch.float32,
                         device: Any = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bounded attention inputs (entries in ``[-B, B]``) built to break the polynomial method's guarantee. Chapter 4.

    Keys and queries sit at or near vertices of ``[-B, B]^d`` (moved inwards by at most ``jitter * B``), so that
    logits reach ``+-scale * d * B^2``, where the monomial evaluation of ``P`` cancels most:

    * ``"clusters"``: every query at the vertex ``+B 1``; half the keys near ``-B 1`` (values ``+1``), half near the
      vertex with the first coordinate flipped (values ``-1``): two clusters of near-identical keys;
    * ``"opposite"``: queries near ``+B 1``, keys near ``-B 1`` (every logit near the minimum), values ``+-1`` at random;
    * ``"vertices"``: queries and keys at random vertices, values ``+-1`` at random;
    * ``"aligned"``: as ``"vertices"``, with values equal to the sign of ``P(s) - e^s`` at the first query's logits
      (``P`` of degree ``degree`` on the logit bound), so the polynomial's errors add up.

    Returns ``(Q, K, V)`` of shapes ``(L, d)``, ``(L, d)``, ``(L, d)`` in ``dtype`` on ``device``; seeded.
    """
    L = check_int("L", L)
    d = check_int("d", d)
    B = check_float("B", B, low=0.0, low_open=True)
    check_choice("pattern", pattern, ADVERSARIAL_PATTERNS)
    jitter = check_float("jitter", jitter, low=0.0, high=1.0)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    if pattern == "aligned" and degree is None:
        raise ValueError("degree is required for pattern='aligned' (the values follow the sign of P's error)")
    g = torch.Generator().manual_seed(seed)

    def near(vertex: torch.Tensor) -> torch.Tensor:   # vertex entries +-1; moved inwards by up to jitter * B
        return B * vertex * (1 - jitter * torch.rand(vertex.shape, generator=g, dtype=torch.float64))

    signs = lambda n, m: torch.randint(0, 2, (n, m), generator=g).double() * 2 - 1  # noqa: E731
    ones = torch.ones(L, d, dtype=torch.float64)
    if pattern == "clusters":
        Q = near(ones)
        flip = -ones.clone()
        flip[:, 0] = 1.0
        half = L // 2
        K = torch.cat([near(-ones[:half]), near(flip[half:])])
        V = torch.cat([torch.ones(half, d), -torch.ones(L - half, d)]).double()
    elif pattern == "opposite":
        Q, K, V = near(ones), near(-ones), signs(L, d)
    else:
        Q, K, V = near(signs(L, d)), near(signs(L, d)), signs(L, d)
        if pattern == "aligned":
            s = check_scale(scale, d)
            logits = s * (K @ Q[0])
            b = s * float(Q.norm(dim=-1).max() * K.norm(dim=-1).max())
            a = exp_poly_coefficients(max(b, 1e-12), check_int("degree", degree, low=0, high=MAX_DEGREE), kind)
            err = torch.as_tensor(np.polynomial.polynomial.polyval(logits.numpy(), a)) - torch.exp(logits)
            V = torch.where(err >= 0, 1.0, -1.0).double()[:, None].expand(L, d).clone()
    return tuple(X.to(dtype=dtype, device=device) for X in (Q, K, V))


def _random_projection(d: int, m: int, orthogonal: bool, generator: torch.Generator) -> torch.Tensor:
    """``m x d`` Gaussian rows; with ``orthogonal=True`` blocks of ``d`` orthogonal rows with chi(d) norms."""
    if not orthogonal:
        return torch.randn(m, d, generator=generator, dtype=torch.float64)
    blocks = []
    for _ in range(-(-m // d)):
        G = torch.randn(d, d, generator=generator, dtype=torch.float64)
        Qm, R = torch.linalg.qr(G)
        # sign fix: without it the QR factor of a Gaussian matrix is not Haar-distributed (biased kernel)
        blocks.append((Qm * torch.sign(torch.diagonal(R))).T)
    W = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1)
    return W * norms[:, None]


def performer_features(Q: torch.Tensor, K: torch.Tensor, num_features: int, *, scale: float | None = None,
                       orthogonal: bool = True, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive random features (FAVOR+, Choromanski et al. 2021): ``E[phi(q)^T phi(k)] ∝ exp(scale <q, k>)``.

    Chapter 4 (the comparison at equal feature count). ``phi(x) = exp(w_i^T x - |x|^2 / 2) / sqrt(m)``
    with ``x = sqrt(scale) q`` and ``w_i ~ N(0, I)`` (orthogonal blocks by default). Query features are
    divided by a per-row constant and key features by one global constant (both cancel after
    normalisation) to avoid overflow.

    Returns
    -------
    (Phi_Q, Phi_K) : shapes ``(..., L_q, m)``, ``(..., L_k, m)``, positive, dtype/device of ``Q``.
    """
    check_attention_inputs(Q, K)
    m = check_int("num_features", num_features)
    seed = check_seed(seed)
    orthogonal = check_bool("orthogonal", orthogonal)
    d = Q.shape[-1]
    s = check_scale(scale, d)
    check_memory("num_features", m * (Q.numel() + K.numel()) // d, Q.element_size(), limit=MAX_FEATURE_BYTES,
                 what=f"{m} random features per row; limit MAX_FEATURE_BYTES")
    check_memory("num_features", 3 * m * d, what=f"the {m} x {d} random projection (float64)")
    if orthogonal:  # one QR of a d x d block per d features, in a Python loop
        check_work("num_features", -(-m // d), limit=10**6, what=f"orthogonal {d} x {d} blocks drawn one by one")
    g = torch.Generator().manual_seed(seed)
    W = _random_projection(d, m, orthogonal, g).to(device=Q.device, dtype=Q.dtype)
    root = math.sqrt(s)

    def logits(X: torch.Tensor) -> torch.Tensor:
        X = X.to(Q.dtype) * root
        return X @ W.T - 0.5 * (X * X).sum(-1, keepdim=True)

    lq, lk = logits(Q), logits(K)
    phi_q = torch.exp(lq - lq.amax(dim=-1, keepdim=True))
    phi_k = torch.exp(lk - lk.amax(dim=(-1, -2), keepdim=True))
    return phi_q / math.sqrt(m), phi_k / math.sqrt(m)


def performer_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, num_features: int, *,
                        scale: float | None = None, orthogonal: bool = True, seed: int = 0) -> torch.Tensor:
    """Attention with Performer's positive random features, ``(Phi_Q (Phi_K^T V)) / (Phi_Q (Phi_K^T 1))``. Chapter 4."""
    check_attention_inputs(Q, K, V)
    pq, pk = performer_features(Q, K, num_features, scale=scale, orthogonal=orthogonal, seed=seed)
    V1 = torch.cat([V.to(Q.dtype), V.new_ones(V.shape[:-1] + (1,), dtype=Q.dtype)], dim=-1)
    out = pq @ (pk.transpose(-1, -2) @ V1)
    return out[..., :-1] / out[..., -1:]
