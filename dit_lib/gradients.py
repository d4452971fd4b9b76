"""Training gradients of DiT attention, exact and almost-linear: Theorem 4.1 of the DiT paper, after [AS24].

Chapter 5. The training problem keeps only ``W = W_K^T W_Q`` trainable. In the row convention of Alman and
Song (rows are tokens, ``A_1, A_2, A_3`` of shape ``(L, d)``, ``X`` and ``Y`` of shape ``(d, d)``) the loss is

    Loss(X) = 1/2 || D(X)^{-1} exp(A_1 X A_2^T / d) A_3 Y - E ||_F^2,   D(X) = diag(exp(A_1 X A_2^T / d) 1).

**Convention.** The book keeps the ``1/d`` inside ``exp`` ([AS23], chapter 4: ``scale = 1/d``), so with
``Q = A_1 X`` and ``K = A_2`` every logit is ``<q, k>/d``. Then the chain rule gives a factor ``1/d`` in front
of the gradient of [AS24] (who drop the ``1/d``):

    f = D^{-1} exp(A_1 X A_2^T / d),  h = A_3 Y,  c = f h - E,  q = c h^T,
    p_1 = f o q,  r = p_1 1,  p_2 = diag(r) f,  p = p_1 - p_2,  grad = (1/d) A_1^T p A_2.

The exact formula forms ``L x L`` matrices (time ``O(L^2 d)``). The **chained low-rank gradient** never does:

1. ``f ~ U_1 V_1^T``: the polynomial feature maps of chapter 4 (:func:`dit_lib.attention.exp_feature_maps`),
   rows of ``U_1`` divided by the approximate row sums ``U_1 (V_1^T 1)``; rank ``k_1 = binom(d+g, g)``;
2. ``c~ = U_1 (V_1^T h) - E``, an explicit ``L x d`` matrix;
3. ``p_1 ~ U_3 V_3^T`` with **row-wise** Kronecker products ``U_3 = U_1 (x) c~``, ``V_3 = V_1 (x) h``
   (``(U_3 V_3^T)_{ij} = <U_1[i], V_1[j]> <c~[i], h[j]>``), rank ``k_1 d``;
4. ``r~ = U_3 (V_3^T 1)``;
5. ``p_2 ~ U_4 V_4^T`` with ``U_4 = diag(r~) U_1``, ``V_4 = V_1``: the diagonal scales the **rows**;
6. ``grad ~ (1/d) [(A_1^T U_3)(V_3^T A_2) - (A_1^T U_4)(V_4^T A_2)]``, time ``O(L k_1 d^2)``.

``wrong_scaling=True`` puts the diagonal on the other factor (``V_4 = diag(r~) V_1``), which scales the
columns of ``f`` instead of its rows; chapter 5 shows that this makes ``p_2`` wrong by an order-one relative error
and leaves a gradient error that does not fall with the degree.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ._checks import MAX_STEPS, check_array, check_bool, check_choice, check_device, check_dtype, check_float, \
    check_int, check_memory, check_seed, check_tensor, check_work
from .attention import (PRECISIONS, CancellationError, CancellationWarning, choose_precision, exp_feature_maps,
                        logit_bound)
from .polynomial import KINDS, MAX_DEGREE, exp_poly_error, rounding_rel_error, unit_roundoff

__all__ = [
    "STEPS",
    "GradientProblem",
    "random_problem",
    "as_problem",
    "training_loss",
    "exact_gradient",
    "autograd_gradient",
    "LowRankGradient",
    "lowrank_gradient",
    "chain_errors",
    "relative_max_error",
    "decoded_loss",
    "gradient_descent",
]

#: Names of the six steps of the chained low-rank gradient, in order (keys of :func:`chain_errors`).
STEPS = ("f (step 1)", "c (step 2)", "p1 (step 3)", "r (step 4)", "p2 (step 5)", "gradient (step 6)")

#: Largest ``L * M`` for which functions that return ``L x M`` matrices will form them (about 0.5 GiB in float64).
MAX_DENSE = 2**26

_NAMES = ("A1", "A2", "A3", "X", "Y", "E")


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class GradientProblem:
    """One instance of the training problem (Problem 1 of the DiT paper, row convention of [AS24]). Chapter 5.

    Attributes
    ----------
    A1 : torch.Tensor
        ``(L, d)``: the tokens on the query side; ``Q = A1 X``.
    A2 : torch.Tensor
        ``(M, d)``: the tokens on the key side, ``K = A2`` (``M = L`` for self-attention).
    A3 : torch.Tensor
        ``(M, d)``: the tokens on the value side, ``h = A3 Y``.
    X : torch.Tensor
        ``(d, d)``: the trainable ``W_K^T W_Q``.
    Y : torch.Tensor
        ``(d, d_v)``: the fixed value-output matrix ``W_OV^T``.
    E : torch.Tensor
        ``(L, d_v)``: the target.
    X_star : torch.Tensor or None
        ``(d, d)``: the teacher that produced ``E``, when known (:func:`random_problem`).
    """

    A1: torch.Tensor
    A2: torch.Tensor
    A3: torch.Tensor
    X: torch.Tensor
    Y: torch.Tensor
    E: torch.Tensor
    X_star: torch.Tensor | None = None

    @property
    def args(self) -> tuple[torch.Tensor, ...]:
        """``(A1, A2, A3, X, Y, E)``, in the order every function of this module takes them."""
        return (self.A1, self.A2, self.A3, self.X, self.Y, self.E)

    @property
    def L(self) -> int:
        """Number of query tokens."""
        return int(self.A1.shape[0])

    @property
    def d(self) -> int:
        """Token dimension."""
        return int(self.A1.shape[1])

    def __post_init__(self) -> None:
        """Every matrix a finite floating tensor of one dtype and device, with shapes that fit together."""
        A1 = self.A1
        for name in _NAMES:
            t = check_tensor(name, getattr(self, name), ndim=2)
            if t.dtype != A1.dtype or t.device != A1.device:
                raise TypeError(f"{name} must have the dtype and device of A1 ({A1.dtype} on {A1.device}), got "
                                f"{t.dtype} on {t.device}")
        L, d = A1.shape
        M = self.A2.shape[0]
        if min(L, d, M) == 0:
            raise ValueError(f"A1 and A2 must be non-empty, got shapes {tuple(A1.shape)} and {tuple(self.A2.shape)}")
        if self.A2.shape[1] != d:
            raise ValueError(f"A2 must have d = {d} columns like A1 {tuple(A1.shape)}, got shape "
                             f"{tuple(self.A2.shape)}")
        d_v = self.Y.shape[1]
        want = {"A3": (M, d), "X": (d, d), "Y": (d, d_v), "E": (L, d_v)}
        for name, shape in want.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must have shape {shape} to match A1 {tuple(A1.shape)}, "
                                 f"A2 {tuple(self.A2.shape)} and Y {tuple(self.Y.shape)}; got "
                                 f"{tuple(getattr(self, name).shape)}")
        if self.X_star is not None:
            check_tensor("X_star", self.X_star, ndim=2)
            if tuple(self.X_star.shape) != (d, d):
                raise ValueError(f"X_star must have shape ({d}, {d}) like X, got {tuple(self.X_star.shape)}")

    def to(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> "GradientProblem":
        """The same problem in another dtype and/or on another device."""
        dtype = None if dtype is None else check_dtype("dtype", dtype)
        device = None if device is None else check_device(device)
        conv = [None if t is None else t.to(dtype=dtype or t.dtype, device=device or t.device)
                for t in self.args + (self.X_star,)]
        return GradientProblem(*conv)

    def with_X(self, X: torch.Tensor) -> "GradientProblem":
        """The same problem at another value of the trainable ``X``."""
        X = _tensor("X", X, self.X.dtype, self.X.device)
        if X.shape != self.X.shape:
            raise ValueError(f"X must have shape {tuple(self.X.shape)}, got {tuple(X.shape)}")
        return replace(self, X=X)


def _tensor(name: str, value: Any, dtype: torch.dtype, device: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a torch.Tensor or an array of numbers, got {type(value).__name__}") from exc
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must be a matrix (2 dimensions), got shape {tuple(t.shape)}")
    t = t.to(dtype=dtype, device=device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain only finite numbers (found NaN or inf)")
    return t


def as_problem(A1: Any, A2: Any, A3: Any, X: Any, Y: Any, E: Any, *, dtype: torch.dtype = torch.float64,
               device: str | torch.device | None = None) -> GradientProblem:
    """Validate the six inputs of the training problem and return them as a :class:`GradientProblem`. Chapter 5.

    Raises
    ------
    TypeError
        If an input is not a tensor or array of real numbers, or ``dtype`` is not a floating-point dtype.
    ValueError
        If an input is not a finite matrix, or the shapes do not fit together: ``A1 (L, d)``, ``A2 (M, d)``,
        ``A3 (M, d)``, ``X (d, d)``, ``Y (d, d_v)``, ``E (L, d_v)``.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    device = check_device(device)
    # Conversion here; the shapes and finiteness are checked by GradientProblem itself.
    return GradientProblem(*(_tensor(n, v, dtype, device) for n, v in zip(_NAMES, (A1, A2, A3, X, Y, E))))


def _haar_orthogonal(d: int, g: torch.Generator) -> torch.Tensor:
    Z = torch.randn(d, d, generator=g, dtype=torch.float64)
    Qm, R = torch.linalg.qr(Z)
    return Qm * torch.sign(torch.diagonal(R))  # sign fix: Haar distributed


def _attention_rows(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, scale: float, block: int) -> torch.Tensor:
    return torch.cat([torch.softmax(scale * Q[i:i + block] @ K.T, dim=-1) @ V for i in range(0, Q.shape[0], block)])


def random_problem(L: int, d: int, B: float = 1.0, *, M: int | None = None, noise: float = 0.0, seed: int = 0,
                   dtype: torch.dtype = torch.float64, device: str | torch.device | None = None) -> GradientProblem:
    """A random training problem whose logits are bounded by ``B^2``. Chapter 5 (and its benchmark).

    ``A1, A2, A3`` have i.i.d. entries uniform in ``[-B, B]`` (the entry bound of Theorem 4.1 with identity
    projections); ``X`` and ``Y`` are Haar-random orthogonal ``d x d`` matrices, so that every logit
    ``<A1_i X, A2_j>/d`` lies in ``[-B^2, B^2]`` (Cauchy–Schwarz, ``||a|| <= B sqrt(d)``). The target is the
    output of a *teacher* ``X*`` (another Haar-random orthogonal matrix), ``E = softmax(A1 X* A2^T/d) A3 Y``,
    plus Gaussian noise of standard deviation ``noise``; so gradient descent from ``X`` has a known minimiser.

    Parameters
    ----------
    L, d : int
        Sequence length and token dimension.
    B : float
        Entry bound, ``> 0``.
    M : int, optional
        Number of key/value tokens (default ``L``: self-attention).
    noise : float
        Standard deviation of the noise added to the teacher's output, ``>= 0``.
    seed : int
        Seed of the CPU generator that draws everything (same numbers on every device).
    dtype, device :
        Of the returned tensors (default float64 on :func:`dit_lib.attention.default_device`).

    Returns
    -------
    GradientProblem
        With the teacher in ``X_star``.
    """
    L = check_int("L", L)
    d = check_int("d", d)
    B = check_float("B", B, low=0.0, low_open=True)
    M = L if M is None else check_int("M", M)
    noise = check_float("noise", noise, low=0.0)
    seed = check_seed(seed)
    check_dtype("dtype", dtype)
    device = check_device(device)
    check_memory("L, M, d", 2 * ((L + 2 * M + 1) * d + 4 * d * d), what="the problem's matrices in float64")
    check_work("L, M, d", L * M * d, limit=10**12, what="multiply-adds for the teacher's output E")
    g = torch.Generator().manual_seed(seed)
    A1, A2, A3 = (B * (2 * torch.rand(n, d, generator=g, dtype=torch.float64) - 1) for n in (L, M, M))
    X, Y, X_star = (_haar_orthogonal(d, g) for _ in range(3))
    E = _attention_rows(A1 @ X_star, A2, A3 @ Y, 1.0 / d, max(1, 2**22 // M))
    if noise > 0:
        E = E + noise * torch.randn(L, d, generator=g, dtype=torch.float64)
    problem = as_problem(A1, A2, A3, X, Y, E, dtype=dtype, device=device)
    return replace(problem, X_star=X_star.to(dtype=dtype, device=problem.X.device))


def _problem(args: tuple, dtype: torch.dtype | None, device: Any) -> GradientProblem:
    """Inputs given as one GradientProblem or as the six matrices."""
    if dtype is not None:
        check_dtype("dtype", dtype)
    if device is not None:
        device = check_device(device)
    if len(args) == 1 and isinstance(args[0], GradientProblem):
        p = args[0]
        if dtype is None and device is None:
            return p
        return p.to(dtype, device)
    if len(args) != 6:
        raise TypeError(f"expected a GradientProblem or the six matrices A1, A2, A3, X, Y, E; got {len(args)} arguments")
    return as_problem(*args, dtype=dtype or torch.float64, device=device)


def _as_float64(name: str, value: Any) -> torch.Tensor:
    """A tensor or array of real numbers, finite, as a float64 CPU tensor."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        value = value.detach().double().cpu()
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must contain only finite numbers (found NaN or inf)")
        return value
    return torch.as_tensor(check_array(name, value))


def relative_max_error(approx: Any, exact: Any) -> float:
    """``max |approx - exact| / max |exact|``: the error measure of every gradient comparison in chapter 5."""
    a, e = _as_float64("approx", approx), _as_float64("exact", exact)
    if a.shape != e.shape:
        raise ValueError(f"approx and exact must have the same shape, got {tuple(a.shape)} and {tuple(e.shape)}")
    scale = float(e.abs().max()) if e.numel() else 0.0
    err = float((a - e).abs().max()) if e.numel() else 0.0
    return err / scale if scale > 0 else err


# ---------------------------------------------------------------------------------------------- exact
def training_loss(*args: Any, backend: str = "explicit", dtype: torch.dtype | None = None,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """The training loss ``1/2 ||D^{-1} exp(A1 X A2^T / d) A3 Y - E||_F^2`` (Problem 1). Chapter 5.

    Parameters
    ----------
    *args
        A :class:`GradientProblem`, or the six matrices ``A1, A2, A3, X, Y, E`` (see :func:`as_problem`).
        A tensor ``X`` with ``requires_grad`` keeps its autograd graph if no conversion is needed.
    backend : {"explicit", "sdpa"}
        ``"explicit"``: row softmax of the ``L x M`` logits (``D^{-1} exp`` computed stably);
        ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` with ``scale = 1/d`` (fused kernel,
        never stores the attention matrix).
    dtype, device : optional
        Conversion of the inputs (default: float64 for matrices, unchanged for a problem).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    check_choice("backend", backend, ("explicit", "sdpa"))
    if len(args) == 6 and isinstance(args[3], torch.Tensor) and args[3].requires_grad:
        # keep the graph through X: validate the others, then splice X back in
        p = _problem(args[:3] + (args[3].detach(),) + args[4:], dtype or args[3].dtype, device or args[3].device)
        X = args[3]
    else:
        p = _problem(args, dtype, device)
        X = p.X
    d = p.d
    Q, h = p.A1 @ X, p.A3 @ p.Y
    if backend == "explicit":
        out = torch.softmax(Q @ p.A2.T / d, dim=-1) @ h  # f h, f = D^{-1} exp(A1 X A2^T / d)
    else:
        out = torch.nn.functional.scaled_dot_product_attention(Q[None, None], p.A2[None, None], h[None, None],
                                                               scale=1.0 / d)[0, 0]
    return 0.5 * ((out - p.E) ** 2).sum()


def exact_gradient(*args: Any, block_size: int | None = None, return_intermediates: bool = False,
                   dtype: torch.dtype | None = None, device: str | torch.device | None = None):
    """The exact gradient ``(1/d) A1^T (p_1 - p_2) A2`` in the ``f, h, c, q, p_1, p_2`` notation. Chapter 5.

    With ``S = A1 X A2^T / d``: ``f = D^{-1} exp(S)``, ``h = A3 Y``, ``c = f h - E``, ``q = c h^T``,
    ``p_1 = f o q``, ``r = p_1 1``, ``p_2 = diag(r) f``, ``p = p_1 - p_2`` and ``grad = (1/d) A1^T p A2``
    (eq. (eq-ch5-exact-gradient) of the chapter; [AS24] without the ``1/d`` convention). Why: ``dLoss/df = q``
    and the Jacobian of a row softmax maps ``q`` to ``f o q - diag(f o q 1) f``.

    Parameters
    ----------
    *args
        A :class:`GradientProblem` or the six matrices (see :func:`as_problem`).
    block_size : int, optional
        Query rows per block (memory ``O(block_size * M)``, time ``O(L M d)`` regardless). Default: about
        2^22 entries per block.
    return_intermediates : bool
        Also return the ``L x M`` objects ``f, q, p1, p2, p`` and ``h, c, r`` in a dict (single block; needs
        ``L * M <= MAX_DENSE``).
    dtype, device : optional
        Conversion of the inputs; use float64 for a reference.

    Returns
    -------
    torch.Tensor or (torch.Tensor, dict)
        The ``d x d`` gradient (and the intermediates).
    """
    p = _problem(args, dtype, device)
    return_intermediates = check_bool("return_intermediates", return_intermediates)
    L, M, d = p.L, p.A2.shape[0], p.d
    if return_intermediates and L * M > MAX_DENSE:
        raise ValueError(f"return_intermediates forms L x M = {L} x {M} matrices; allowed up to L*M <= {MAX_DENSE}")
    block = L if return_intermediates else (check_int("block_size", block_size) if block_size is not None
                                            else max(1, 2**22 // M))
    Q, h = p.A1 @ p.X, p.A3 @ p.Y
    grad = torch.zeros(d, d, dtype=Q.dtype, device=Q.device)
    for i in range(0, L, block):
        f = torch.softmax(Q[i:i + block] @ p.A2.T / d, dim=-1)   # f = D^{-1} exp(A1 X A2^T / d)
        c = f @ h - p.E[i:i + block]                              # c = f h - E
        q = c @ h.T                                               # q = c h^T
        p1 = f * q                                                # p1 = f o q
        r = p1.sum(dim=1)                                         # r = p1 1
        p2 = r[:, None] * f                                       # p2 = diag(r) f
        grad += p.A1[i:i + block].T @ (p1 - p2) @ p.A2
    grad /= d
    if return_intermediates:
        return grad, {"f": f, "h": h, "c": c, "q": q, "p1": p1, "r": r, "p2": p2, "p": p1 - p2}
    return grad


def autograd_gradient(*args: Any, backend: str = "explicit", dtype: torch.dtype | None = None,
                      device: str | torch.device | None = None, return_loss: bool = False):
    """``dLoss/dX`` by :func:`torch.autograd.grad` through :func:`training_loss`. Chapter 5 and its benchmark.

    ``backend="sdpa"`` differentiates through torch's fused attention (the timed baseline: time ``O(L^2 d)``,
    memory ``O(L d)``); ``"explicit"`` through the row softmax (forms ``L x M``, for float64 checks).
    """
    p = _problem(args, dtype, device)
    return_loss = check_bool("return_loss", return_loss)
    X = p.X.detach().clone().requires_grad_(True)
    loss = training_loss(p.A1, p.A2, p.A3, X, p.Y, p.E, backend=backend)
    (grad,) = torch.autograd.grad(loss, X)
    return (grad, loss.detach()) if return_loss else grad


# ---------------------------------------------------------------------------------------------- low rank
@dataclass
class LowRankGradient:
    """Every intermediate of the chained low-rank gradient (steps 1–6). Chapter 5.

    Attributes
    ----------
    U1, V1 : torch.Tensor
        Step 1, ``(L, k1)`` and ``(M, k1)``: ``f ~ U1 V1^T`` (rows of ``U1`` already divided by the row sums).
    row_sums : torch.Tensor
        Step 1, ``(L,)``: the approximate normaliser ``phi(Q) (psi(K)^T 1)`` before division.
    h : torch.Tensor
        ``(M, d_v)``: ``A3 Y``.
    c : torch.Tensor
        Step 2, ``(L, d_v)``: ``c~ = U1 (V1^T h) - E``.
    U3, V3 : torch.Tensor
        Step 3 (properties, formed on first access): ``(L, k1 d_v)`` and ``(M, k1 d_v)``, the row-wise Kronecker
        products ``U1 (x) c~`` and ``V1 (x) h`` with ``p1 ~ U3 V3^T``.
    r : torch.Tensor
        Step 4, ``(L,)``: ``r~ = U3 (V3^T 1)``.
    U4, V4 : torch.Tensor
        Step 5: ``p2 ~ U4 V4^T`` with ``U4 = diag(r~) U1``, ``V4 = V1`` (or the wrong variant).
    grad : torch.Tensor
        Step 6, ``(d, d)``.
    info : dict
        ``degree, rank (k1), radius, logit_bound, rel_error`` (of the polynomial on the logit bound),
        ``min_row_sum``, ``normaliser_ok``, ``wrong_scaling``, ``kind``.
    """

    U1: torch.Tensor
    V1: torch.Tensor
    row_sums: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    r: torch.Tensor
    U4: torch.Tensor
    V4: torch.Tensor
    grad: torch.Tensor
    info: dict

    def __post_init__(self) -> None:
        for name in ("U1", "V1", "row_sums", "h", "c", "r", "U4", "V4"):
            check_tensor(name, getattr(self, name), finite=False)  # a cancelled normaliser may leave inf here
        check_tensor("grad", self.grad, ndim=2)
        if not isinstance(self.info, dict):
            raise TypeError(f"info must be a dict, got {type(self.info).__name__}")

    @property
    def U3(self) -> torch.Tensor:
        """Step 3, ``U1 (x) c~`` (row-wise Kronecker product), ``(L, k1 d_v)``."""
        return _row_kron(self.U1, self.c)

    @property
    def V3(self) -> torch.Tensor:
        """Step 3, ``V1 (x) h`` (row-wise Kronecker product), ``(M, k1 d_v)``."""
        return _row_kron(self.V1, self.h)


def _row_kron(U: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Row-wise Kronecker (face-splitting) product: row ``i`` is ``kron(U_i, C_i)``."""
    return (U[:, :, None] * C[:, None, :]).reshape(U.shape[0], U.shape[1] * C.shape[1])


def _gradient_bound(p: GradientProblem, eps: float, rho: float, gamma: float, u_out: float) -> float:
    """Certified bound on ``max |grad~ - grad|`` of the chained low-rank gradient (entrywise). Chapter 5.

    Exact arithmetic: the normalised weights satisfy ``f~_ij = f_ij (1 + eta_ij)`` with ``|eta_ij| <= 2 eps / (1 - eps)``
    and ``sum_j f~_ij = 1``, so every weighted mean ``F_i(z) = sum_j f_ij z_j`` moves by at most ``eta max|z|``.
    Rounding (``rho`` of :func:`dit_lib.polynomial.rounding_rel_error`) moves it by ``2 rho / (1 - eps - rho)`` more,
    and the remaining sums of steps 2–6 by ``gamma`` (first order). With ``H_b = max_j |h_jb|``,
    ``C_b = H_b + max_i |E_ib|`` (a bound on ``|c_ib|``), ``R0 = sum_b C_b H_b``, ``R1 = sum_b H_b (H_b + C_b)``,
    ``R1' = sum_b H_b^2`` and ``a_y = max_j |A2_jy|``, the chain ``c, r, p1, p2`` gives
    ``|grad~_xy - grad_xy| <= (1/d) sum_i |A1_ix| a_y eta_tot (R1' + R1 + 2 R0)`` plus the cast to the output dtype.
    """
    if eps + rho >= 1:
        return math.inf
    eta = 2 * eps / (1 - eps) + 2 * rho / (1 - eps - rho) + 4 * gamma
    h = (p.A3 @ p.Y).double()
    H = h.abs().amax(dim=0)
    Cb = H + p.E.double().abs().amax(dim=0)
    R0, R1, R1p = float((Cb * H).sum()), float((H * (H + Cb)).sum()), float((H * H).sum())
    S1 = p.A1.double().abs().sum(dim=0)
    a = p.A2.double().abs().amax(dim=0)
    scale = float((S1[:, None] * a[None, :]).max()) / p.d
    return scale * (eta * (R1p + R1 + 2 * R0) + u_out * 2 * R0 * (1 + eta))


def lowrank_gradient(*args: Any, degree: int, radius: float | None = None, kind: str = "chebyshev",
                     wrong_scaling: bool = False, on_cancel: str = "raise", max_rel_error: float = 0.5,
                     tol: float | None = None, precision: str = "auto",
                     dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> LowRankGradient:
    """The chained low-rank gradient of Theorem 4.1 ([AS24]), never forming an ``L x M`` matrix. Chapter 5.

    Steps 1–6 of the module docstring, on the device and in the dtype of the inputs; step 1 is
    :func:`dit_lib.attention.exp_feature_maps` of chapter 4 with ``Q = A1 X``, ``K = A2``, ``scale = 1/d``.
    Time ``O(L k1 d^2)`` with ``k1 = binom(d+g, g)``. The ``L x k1 d`` factors ``U3, V3`` of step 3 are not stored:
    the products that use them are summed in another order (``A1^T U3 = (A1 (x) c~)^T U1`` rearranged, and
    ``U3 (V3^T 1) = rowsum(c~ o U1 (V1^T h))``), which is the same sum; ``.U3``/``.V3`` form them on request.
    Memory ``O(L (k1 + d^2))``.

    Parameters
    ----------
    *args
        A :class:`GradientProblem` or the six matrices (see :func:`as_problem`).
    degree : int
        Degree ``g`` of the polynomial approximation of ``exp``.
    radius : float, optional
        Interval ``[-radius, radius]`` of the polynomial. Default: the Cauchy–Schwarz bound
        ``max||q|| max||k|| / d`` on the logits (:func:`dit_lib.attention.logit_bound` with ``tight=True``), which is
        at most ``B^2`` for entries bounded by ``B``.
    kind : {"chebyshev", "taylor"}
    wrong_scaling : bool
        Put ``diag(r~)`` on the key factor (``U4 = U1``, ``V4 = diag(r~) V1``): the deliberately wrong variant
        (needs ``L = M`` to even be shape-compatible).
    on_cancel : {"raise", "warn", "ignore"}
        What to do when some approximate row sum is ``<= 0`` or the relative error of the polynomial on the
        logit bound is ``>= max_rel_error``: raise :class:`dit_lib.attention.CancellationError`, warn with a
        :class:`dit_lib.attention.CancellationWarning`, or only record it in ``info["normaliser_ok"]``.
        The gradient is returned in the last two cases, however large its error.
    max_rel_error : float
        Guard threshold in ``(0, 1]`` (as in :func:`dit_lib.attention.fast_attention`).
    tol : float, optional
        Requested accuracy: largest acceptable certified error ``info["error_bound"]`` per gradient entry. A larger
        certified error counts as cancellation (see ``on_cancel``).
    precision : {"auto", "working", "float64"}
        As in :func:`dit_lib.attention.fast_attention`: ``"auto"`` computes in float64 where the rounding of the
        working precision would dominate the bound (or would exceed ``tol``). ``info["compute_dtype"]`` says which.
        The gradient is returned in the working dtype.
    dtype, device : optional
        Conversion of the inputs (default: unchanged for a problem, float64 for matrices).

    Returns
    -------
    LowRankGradient
        The gradient in ``.grad`` and every intermediate factor.

    Raises
    ------
    ValueError
        Bad shapes or arguments; ``wrong_scaling`` with ``L != M``.
    dit_lib.attention.CancellationError
        With ``on_cancel="raise"`` when the approximate normaliser is not safely positive, or the certified error
        exceeds ``tol``.

    Notes
    -----
    ``info["error_bound"]`` certifies ``max |grad~ - grad|`` against the exact gradient, in the precision used: the
    polynomial's relative error ``eps``, the rounding bound of the feature evaluation and of the sums (a first-order
    forward error analysis; see ``_gradient_bound``). It is ``inf`` with ``wrong_scaling=True``.
    """
    p = _problem(args, dtype, device)
    check_choice("precision", precision, PRECISIONS)
    tol = None if tol is None else check_float("tol", tol, low=0.0, low_open=True)
    degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
    check_choice("kind", kind, KINDS)
    check_choice("on_cancel", on_cancel, ("raise", "warn", "ignore"))
    max_rel_error = check_float("max_rel_error", max_rel_error, low=0.0, high=1.0, low_open=True)
    if not isinstance(wrong_scaling, bool):
        raise TypeError(f"wrong_scaling must be True or False, got {wrong_scaling!r}")
    L, M, d = p.L, p.A2.shape[0], p.d
    if wrong_scaling and L != M:
        raise ValueError(f"wrong_scaling puts diag(r~) (length L = {L}) on V1 (M = {M} rows): needs L == M")
    Q, K = p.A1 @ p.X, p.A2
    bound = logit_bound(Q, K, 1.0 / d, tight=True) * (1 + 1e-12)
    radius = max(bound, 1e-12) if radius is None else check_float("radius", radius, low=0.0, low_open=True)
    eps = exp_poly_error(radius, degree, kind, bound=max(bound, 1e-12))
    k1 = math.comb(d + degree, degree)
    work = p.X.dtype

    def certify(dt: torch.dtype) -> tuple[float, float, float]:
        u = unit_roundoff(dt)
        terms = L + M + k1 + 6 * degree + d * p.Y.shape[1] + 16    # longest sums of steps 1-6, full length
        rho = rounding_rel_error(radius, degree, kind, bound=max(bound, 1e-12), dtype=dt, length=M, terms=terms)
        gamma = terms * u / (1 - terms * u) if terms * u < 1 else math.inf
        u_out = unit_roundoff(work)
        exact = _gradient_bound(p, eps, 0.0, 0.0, 0.0) if not wrong_scaling else math.inf
        total = _gradient_bound(p, eps, rho, gamma, u_out) if not wrong_scaling else math.inf
        return rho, exact, total

    working = certify(work)
    cdt = choose_precision(precision, work, working[1], working[2], tol)
    rho, approx_bound, err_bound = working if cdt == work else certify(cdt)
    if cdt != work:
        p = p.to(cdt)
        Q, K = p.A1 @ p.X, p.A2
    h = p.A3 @ p.Y

    # Step 1: f ~ U1 V1^T, the feature map of chapter 4, rows normalised by the approximate row sums.
    U1, V1 = exp_feature_maps(Q, K, degree, radius, scale=1.0 / d, kind=kind)
    row_sums = U1 @ V1.sum(dim=0)
    U1 = U1 / row_sums[:, None]
    # Step 2: c~ = U1 (V1^T h) - E, an explicit L x d_v matrix.
    fh = U1 @ (V1.T @ h)
    c = fh - p.E
    # Step 3: p1 = f o (c h^T) ~ U3 V3^T with U3 = U1 (x) c~, V3 = V1 (x) h (row-wise Kronecker; see .U3, .V3).
    # Step 4: r~ = U3 (V3^T 1); V3^T 1 = vec(V1^T h), so r~_i = <c~_i, (U1 V1^T h)_i>.
    r = (c * fh).sum(dim=1)
    # Step 5: p2 = diag(r) f ~ U4 V4^T; the diagonal scales the rows (U4), not V1.
    U4, V4 = (U1, r[:, None] * V1) if wrong_scaling else (r[:, None] * U1, V1)
    # Step 6: grad = (1/d) [(A1^T U3)(V3^T A2) - (A1^T U4)(V4^T A2)]. The first product, summed without forming
    # U3, V3: sum_{a,b} [sum_i A1_ix c_ib U1_ia] [sum_j V1_ja h_jb A2_jy], each bracket an (L x d d_v)^T (L x k1) product.
    k1, dv = U1.shape[1], h.shape[1]
    left = (_row_kron(p.A1, c).T @ U1).reshape(d, dv, k1)      # = A1^T U3, rearranged
    right = (V1.T @ _row_kron(h, p.A2)).reshape(k1, dv, d)     # = V3^T A2, rearranged
    first = torch.einsum("xba,aby->xy", left, right)
    grad = ((first - (p.A1.T @ U4) @ (V4.T @ p.A2)) / d).to(work)

    min_sum = float(row_sums.min())
    certified = eps + rho < 1 and (tol is None or err_bound <= tol)
    ok = bool(min_sum > 0 and eps < max_rel_error and certified and torch.isfinite(grad).all())
    info = {"degree": degree, "rank": int(U1.shape[1]), "radius": radius, "logit_bound": bound, "rel_error": eps,
            "rounding_rel_error": rho, "approx_bound": approx_bound, "error_bound": err_bound,
            "compute_dtype": str(cdt).replace("torch.", ""), "min_row_sum": min_sum, "normaliser_ok": ok,
            "wrong_scaling": wrong_scaling, "kind": kind}
    if not ok and on_cancel != "ignore":
        extra = "" if tol is None or err_bound <= tol else (
            f" The certified gradient error {err_bound:.3g} (in {info['compute_dtype']}) exceeds tol = {tol:g}.")
        msg = (f"low-rank gradient cancels: logits reach {bound:.3g}, where the degree-{degree} {kind} polynomial "
               f"(built on [-{radius:.3g}, {radius:.3g}]) has relative error {eps:.3g} (guard {max_rel_error:g}) and "
               f"rounding in {info['compute_dtype']} up to {rho:.3g}; smallest approximate row sum {min_sum:.3g}."
               f"{extra} Raise the degree, compute in float64, or lower the entry bound B.")
        if on_cancel == "raise":
            raise CancellationError(msg)
        warnings.warn(msg, CancellationWarning, stacklevel=2)
    return LowRankGradient(U1, V1, row_sums, h, c, r, U4, V4, grad, info)


def chain_errors(*args: Any, degree: int, radius: float | None = None, kind: str = "chebyshev",
                 wrong_scaling: bool = False, form_products: bool = True,
                 dtype: torch.dtype | None = torch.float64, device: str | torch.device | None = None) -> dict:
    """The error of every step of the chained low-rank gradient against the exact object. Chapter 5.

    Each entry is :func:`relative_max_error` of the step's approximation against the exact matrix of
    :func:`exact_gradient`: ``U1 V1^T`` vs ``f``, ``c~`` vs ``c``, ``U3 V3^T`` vs ``p1``, ``r~`` vs ``r``,
    ``U4 V4^T`` vs ``p2`` and the gradient. Forms ``L x M`` matrices: for small ``L`` only.

    Parameters
    ----------
    *args, degree, radius, kind, wrong_scaling :
        As in :func:`lowrank_gradient` (cancellation is recorded, never raised: ``on_cancel="ignore"``).
    form_products : bool
        ``True``: multiply the factors out (``U3 V3^T``, ``U4 V4^T``, cost ``O(L M k1 d)``). ``False``: use the
        identities ``U3 V3^T = (U1 V1^T) o (c~ h^T)`` and ``U4 V4^T = diag(r~) U1 V1^T`` (equal up to rounding,
        ``d`` times cheaper); for explorers.
    dtype, device :
        Default float64 on the default device.

    Returns
    -------
    dict
        Keys :data:`STEPS` (relative max errors, floats) plus ``"info"`` (the ``info`` of the low-rank run).
    """
    if not isinstance(form_products, bool):
        raise TypeError(f"form_products must be True or False, got {form_products!r}")
    p = _problem(args, dtype, device)
    if p.L * p.A2.shape[0] > MAX_DENSE:
        raise ValueError(f"chain_errors forms L x M = {p.L} x {p.A2.shape[0]} matrices; allowed up to L*M <= {MAX_DENSE}")
    grad, ex = exact_gradient(p, return_intermediates=True)
    lr = lowrank_gradient(p, degree=degree, radius=radius, kind=kind, wrong_scaling=wrong_scaling, on_cancel="ignore")
    f_t = lr.U1 @ lr.V1.T
    h = ex["h"]
    if form_products:
        p1_t, p2_t = lr.U3 @ lr.V3.T, lr.U4 @ lr.V4.T
    else:
        p1_t = f_t * (lr.c @ h.T)
        p2_t = f_t * lr.r[None, :] if wrong_scaling else lr.r[:, None] * f_t
    pairs = [(f_t, ex["f"]), (lr.c, ex["c"]), (p1_t, ex["p1"]), (lr.r, ex["r"]), (p2_t, ex["p2"]), (lr.grad, grad)]
    out = {name: relative_max_error(a, e) for name, (a, e) in zip(STEPS, pairs)}
    out["info"] = lr.info
    return out


# ---------------------------------------------------------------------------------------------- the DiT around it
def decoded_loss(problem: GradientProblem, X: torch.Tensor, W_A: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss measured after the DiT decoder: ``1/2 ||W_A R^{-1}(Z^T) - target||^2`` with ``Z`` the attention output.

    Chapter 5 (the decoder drops out). ``R^{-1}`` is :func:`dit_lib.patches.unpatchify` (a permutation) and
    ``W_A`` has orthonormal columns, so ``||W_A R^{-1}(Z^T) - y||^2 = ||Z - R(W_A^T y)^T||_F^2 +
    ||(I - W_A W_A^T) y||^2``: the same loss as :func:`training_loss` with ``E = R(W_A^T y)^T``, plus a constant
    in ``X``. Differentiable in ``X``.

    Parameters
    ----------
    problem : GradientProblem
        Supplies ``A1, A2, A3, Y`` (its ``E`` is ignored); ``d`` must be a square ``p^2`` and ``L`` a square.
    X : torch.Tensor
        ``(d, d)``.
    W_A : torch.Tensor
        ``(D, d L)`` with orthonormal columns.
    target : torch.Tensor
        ``(D,)``.
    """
    from .patches import unpatchify

    if not isinstance(problem, GradientProblem):
        raise TypeError(f"problem must be a GradientProblem, got {type(problem).__name__}")
    d, L = problem.d, problem.L
    if math.isqrt(d) ** 2 != d or math.isqrt(L) ** 2 != L:
        raise ValueError(f"problem must have a square token dimension d = p^2 and a square length L, got d = {d}, "
                         f"L = {L}")
    like = problem.A1
    for name, t, shape in (("X", X, (d, d)), ("W_A", W_A, (None, d * L)), ("target", target, None)):
        check_tensor(name, t, ndim=1 if name == "target" else 2)
        if shape is not None and any(w is not None and w != g for w, g in zip(shape, t.shape)):
            raise ValueError(f"{name} must have shape {tuple('D' if w is None else w for w in shape)}, "
                             f"got {tuple(t.shape)}")
        if t.dtype != like.dtype or t.device != like.device:
            raise TypeError(f"{name} must have the problem's dtype and device ({like.dtype} on {like.device}), got "
                            f"{t.dtype} on {t.device}")
    if target.shape != (W_A.shape[0],):
        raise ValueError(f"target must have shape (D,) = ({W_A.shape[0]},), got {tuple(target.shape)}")
    gram_err = float((W_A.T @ W_A - torch.eye(d * L, dtype=W_A.dtype, device=W_A.device)).abs().max())
    if gram_err > 1e-6:
        raise ValueError(f"W_A must have orthonormal columns (|W_A^T W_A - I| <= 1e-6), got deviation {gram_err:.3g}")
    Z = torch.softmax(problem.A1 @ X @ problem.A2.T / d, dim=-1) @ (problem.A3 @ problem.Y)
    return 0.5 * ((W_A @ unpatchify(Z.T) - target) ** 2).sum()


def gradient_descent(problem: GradientProblem, *, steps: int, lr: float, method: str = "exact",
                     degree: int | None = None, kind: str = "chebyshev") -> dict:
    """Plain gradient descent on ``X`` with the exact or the low-rank gradient. Chapter 5.

    The loss is always evaluated exactly (float64, blocked), so the two runs are compared on the same ruler.

    Parameters
    ----------
    problem : GradientProblem
        Start at ``problem.X``.
    steps : int
        Number of steps, ``>= 1``.
    lr : float
        Step size, ``> 0``.
    method : {"exact", "lowrank"}
    degree : int, optional
        Required for ``"lowrank"``.

    Returns
    -------
    dict
        ``loss`` (numpy array, ``steps + 1`` values), ``X`` (final, tensor), ``seconds`` (time spent in gradients),
        ``distance`` (``||X_t - X*||_F`` per step if the problem has a teacher ``X_star``, else ``None``).
    """
    if not isinstance(problem, GradientProblem):
        raise TypeError(f"problem must be a GradientProblem, got {type(problem).__name__}")
    steps = check_int("steps", steps, high=MAX_STEPS)
    lr = check_float("lr", lr, low=0.0, low_open=True)
    check_choice("method", method, ("exact", "lowrank"))
    if method == "lowrank":
        if degree is None:
            raise ValueError("degree is required for method='lowrank'")
        degree = check_int("degree", degree, low=0, high=MAX_DEGREE)
        check_choice("kind", kind, KINDS)
    X_star = problem.X_star
    X = problem.X.clone()
    losses, dist, spent = [], [], 0.0
    for t in range(steps + 1):
        cur = replace(problem, X=X)
        losses.append(float(_blocked_loss(cur)))
        if X_star is not None:
            dist.append(float((X - X_star).norm()))
        if t == steps:
            break
        t0 = time.perf_counter()
        g = exact_gradient(cur) if method == "exact" else lowrank_gradient(cur, degree=degree, kind=kind).grad
        spent += time.perf_counter() - t0
        X = X - lr * g
    return {"loss": np.array(losses), "X": X, "seconds": spent, "distance": np.array(dist) if dist else None}


def _blocked_loss(p: GradientProblem) -> torch.Tensor:
    d = p.d
    out = _attention_rows((p.A1 @ p.X).double(), p.A2.double(), (p.A3 @ p.Y).double(), 1.0 / d,
                          max(1, 2**22 // p.A2.shape[0]))
    return 0.5 * ((out - p.E.double()) ** 2).sum()
