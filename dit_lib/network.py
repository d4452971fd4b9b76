"""The latent DiT score network of Definitions 3.1–3.3 (Hu et al., 2024), in torch.

.. math::

    s_W(x, t) = \\frac{W_B\\, f(W_B^\\top x, t) - x}{\\sigma(t)}, \\qquad f = R^{-1}\\circ f_{\\mathcal T}\\circ R,

* ``W_B`` (``D x d0``, orthonormal columns) is kept on the Stiefel manifold by
  :func:`torch.nn.utils.parametrizations.orthogonal` — an exact parametrization, never re-orthogonalised by hand;
* ``R`` / ``R^{-1}`` are :func:`dit_lib.patches.patchify` / :func:`~dit_lib.patches.unpatchify`: a latent in
  ``R^{d0}`` becomes ``L`` tokens of dimension ``d = p^2``;
* ``f_T`` is a transformer of the class ``T^{r,m,l}_p``: on input ``X + E`` (``E`` a learned positional embedding),
  ``K`` blocks, each a residual multi-head attention (``r`` heads of size ``m``) followed by a residual ReLU
  feed-forward of width ``l``.

**Time conditioning** (the paper leaves it implicit). A small MLP of Fourier features of ``log sigma(t)`` outputs, per
block, a per-channel *scale* of the attention input, a *gate* on the attention output, a scale and a *shift* of the
feed-forward input and a gate on its output — DiT's adaLN modulation (Peebles & Xie, 2023) without the normalisation,
gates initialised at zero (adaLN-Zero). A final per-channel scale and shift, also functions of ``t`` only, lets ``f``
shrink towards ``beta E[h]`` at large ``t``; ``E`` is subtracted again after the last block, so the untrained ``f`` is
exactly the identity — the right denoiser as ``t -> 0``. For each fixed ``t`` the modulations are diagonal matrices
and biases that fold into ``W_K, W_Q, W_V, W_O, W_1, b_1, W_2``: ``f(., t)`` is, at every ``t``, a transformer of the
class ``T^{r,m,l}_p`` followed by a per-token affine read-out (:meth:`LatentDiT.folded_weights` returns the folded
attention matrices). We skip LayerNorm because normalising a ``d = 4``-dimensional token would erase its scale,
which the score needs.

**Attention** is a separate, swappable module (:class:`ExactAttention` by default; chapter 6 swaps in a fast
polynomial attention with :meth:`LatentDiT.set_attention`). The book's convention (notation page) is
``softmax(Q K^T / m)`` for heads of size ``m``, i.e. logits in ``[-B^2, B^2]`` when every entry of the keys and queries
is bounded by ``B``; :meth:`LatentDiT.keys_queries` returns the keys and queries so that ``B`` can be measured.

Chapter 2 defines and trains it; chapters 3 and 6 reuse it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from ._checks import check_attention_inputs, check_bool, check_float, check_int, check_memory, check_orthonormal, \
    check_tensor, check_times, is_trusted, trusted
from .patches import _patchify, _unpatchify, patch_geometry

__all__ = ["ExactAttention", "FunctionAttention", "MultiHeadAttention", "DiTBlock", "TimeEmbedding", "LatentDiT"]

#: Deepest network accepted (a guard against loops that would build millions of blocks).
MAX_BLOCKS = 1024


def _check_like(name: str, x: torch.Tensor, ref: torch.Tensor) -> None:
    """``x`` must have the dtype and device of the module's parameters ``ref``."""
    if x.dtype != ref.dtype or x.device != ref.device:
        raise TypeError(f"{name} must have the module's dtype and device ({ref.dtype} on {ref.device}), got "
                        f"{x.dtype} on {x.device}; convert the input, or the module with .to(...)")


def _check_record(record: Any) -> None:
    if record is not None and not isinstance(record, list):
        raise TypeError(f"record must be None or a list that receives each block's (q, k), got {type(record).__name__}")


# --------------------------------------------------------------------------------------------------------------
# attention: the swappable part
# --------------------------------------------------------------------------------------------------------------
class ExactAttention(nn.Module):
    """Exact softmax attention ``softmax(Q K^T * scale) V`` on ``(n, r, L, m)`` tensors (chapters 2 and 6).

    A thin wrapper around :func:`torch.nn.functional.scaled_dot_product_attention`. ``scale`` defaults to ``1/m``,
    the book's convention (that of Alman & Song, 2023); DiT in practice uses ``1/sqrt(m)``.

    Any module or function with the same call signature ``(q, k, v) -> out`` can replace it
    (:meth:`LatentDiT.set_attention`).
    """

    def __init__(self, scale: float | None = None):
        super().__init__()
        self.scale = None if scale is None else check_float("scale", scale, low=0.0, low_open=True)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if not is_trusted():
            check_attention_inputs(q, k, check_tensor("v", v, min_ndim=2), names=("q", "k", "v"))
        scale = self.scale if self.scale is not None else 1.0 / q.shape[-1]
        return F.scaled_dot_product_attention(q, k, v, scale=scale)

    def extra_repr(self) -> str:
        return f"scale={'1/m' if self.scale is None else self.scale}"


class FunctionAttention(nn.Module):
    """Wrap a plain function ``fn(q, k, v) -> out`` as an attention module (chapter 6)."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable (q, k, v) -> out, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if not is_trusted():
            check_attention_inputs(q, k, v, names=("q", "k", "v"))
        out = self.fn(q, k, v)
        want = tuple(q.shape[:-1]) + (v.shape[-1],)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"fn must return a tensor of shape (..., L_q, d_v) = {want}, got {got}")
        return out


def _as_attention(attention: Any) -> nn.Module:
    if attention is None:
        return ExactAttention()
    if isinstance(attention, nn.Module):
        return attention
    if not callable(attention):
        raise TypeError(f"attention must be None, a torch module or a callable (q, k, v) -> out, "
                        f"got {type(attention).__name__} {attention!r}")
    return FunctionAttention(attention)


def _check_parameters(names: str, count: float) -> None:
    """Size guard for a network: its float32 parameters with gradients and Adam state (about 16 bytes each)."""
    check_memory(names, count, 16, what=f"{float(count):.3g} parameters with gradients and optimiser state")


class MultiHeadAttention(nn.Module):
    """``sum_i W_O^i W_V^i Y softmax((W_K^i Y)^T W_Q^i Y / m)`` with ``r`` heads of size ``m`` (Def. 3.2; chapter 2).

    Tokens are rows here (``Y`` has shape ``(n, L, d)``), the transpose of the paper's columns. The projection weights
    are stored as the paper writes them: ``key.weight`` stacks ``W_K^1, ..., W_K^r`` (each ``m x d``), likewise
    ``query``, ``value``; ``out.weight`` is ``[W_O^1 ... W_O^r]`` (``d x r m``). No biases, as in the class.
    """

    def __init__(self, d: int, heads: int, head_dim: int, attention: Any = None):
        super().__init__()
        self.d = check_int("d", d)
        self.heads = check_int("heads", heads)
        self.head_dim = check_int("head_dim", head_dim)
        rm = self.heads * self.head_dim
        _check_parameters("d, heads, head_dim", 4 * self.d * rm)
        self.key = nn.Linear(d, rm, bias=False)
        self.query = nn.Linear(d, rm, bias=False)
        self.value = nn.Linear(d, rm, bias=False)
        self.out = nn.Linear(rm, d, bias=False)
        self.attention = _as_attention(attention)

    def _split(self, z: torch.Tensor) -> torch.Tensor:  # (n, L, r m) -> (n, r, L, m)
        n, L, _ = z.shape
        return z.view(n, L, self.heads, self.head_dim).transpose(1, 2)

    def _check_Y(self, Y: Any) -> None:
        if not is_trusted():
            check_tensor("Y", Y, ndim=3, shape=(None, self.d))
            _check_like("Y", Y, self.key.weight)

    def project(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys, values ``(n, r, L, m)``: rows of ``W_Q^i Y``, ``W_K^i Y``, ``W_V^i Y`` per head."""
        self._check_Y(Y)
        return self._split(self.query(Y)), self._split(self.key(Y)), self._split(self.value(Y))

    def forward(self, Y: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of tokens ``Y`` (shape ``(n, L, d)``), same shape out."""
        q, k, v = self.project(Y)
        o = self.attention(q, k, v)                       # (n, r, L, m): the swappable part
        n, r, L, m = o.shape
        return self.out(o.transpose(1, 2).reshape(n, L, r * m))

    def head_weights(self) -> dict[str, torch.Tensor]:
        """``W_K, W_Q, W_V`` of shape ``(r, m, d)`` and ``W_O`` of shape ``(r, d, m)``, head by head."""
        r, m, d = self.heads, self.head_dim, self.d
        return {"W_K": self.key.weight.view(r, m, d), "W_Q": self.query.weight.view(r, m, d),
                "W_V": self.value.weight.view(r, m, d),
                "W_O": self.out.weight.view(d, r, m).permute(1, 0, 2)}


class DiTBlock(nn.Module):
    """One block of ``f_T``: residual attention, then residual ReLU feed-forward of width ``l`` (Def. 3.2; chapter 2).

    With the time modulation ``(a1, g1, a2, c2, g2)`` (each of size ``d``) of :class:`LatentDiT`::

        X <- X + g1 * Attn((1 + a1) * X)
        X <- X + g2 * W_2 ReLU(W_1 ((1 + a2) * X + c2) + b_1) + b_2
    """

    def __init__(self, d: int, heads: int, head_dim: int, ff_width: int, attention: Any = None):
        super().__init__()
        self.attn = MultiHeadAttention(d, heads, head_dim, attention)
        ff_width = check_int("ff_width", ff_width)
        _check_parameters("d, ff_width", 2 * d * ff_width)
        self.ff_in = nn.Linear(d, ff_width)
        self.ff_out = nn.Linear(ff_width, d)

    def forward(self, X: torch.Tensor, mod: torch.Tensor, record: list | None = None) -> torch.Tensor:
        """One block on tokens ``X`` ``(n, L, d)`` with modulations ``mod`` ``(n, 5 d)``; appends ``(q, k)`` to
        ``record`` (a list) when given."""
        if not is_trusted():
            d = self.attn.d
            check_tensor("X", X, ndim=3, shape=(None, d))
            _check_like("X", X, self.ff_in.weight)
            check_tensor("mod", mod, ndim=2, shape=(5 * d,))
            if mod.shape[0] != X.shape[0]:
                raise ValueError(f"mod must have one row per item of X ({X.shape[0]}), got shape {tuple(mod.shape)}")
            _check_like("mod", mod, self.ff_in.weight)
            _check_record(record)
            with trusted():
                return self.forward(X, mod, record)
        a1, g1, a2, c2, g2 = mod.unsqueeze(1).chunk(5, dim=-1)    # each (n, 1, d): same for every token
        Y = X * (1 + a1)
        if record is not None:
            q, k, _ = self.attn.project(Y)
            record.append((q, k))
        X = X + g1 * self.attn(Y)
        X = X + g2 * self.ff_out(F.relu(self.ff_in(X * (1 + a2) + c2)))
        return X


class TimeEmbedding(nn.Module):
    """``t -> `` per-block modulations: Fourier features of ``log sigma(t)``, then a SiLU MLP (chapter 2).

    ``log sigma(t)`` spreads the times where the score changes fastest (small ``t``). The last layer starts at zero, so
    the untrained blocks are the identity (adaLN-Zero, as in DiT).
    """

    def __init__(self, n_out: int, features: int = 16, hidden: int = 32):
        super().__init__()
        n_out = check_int("n_out", n_out)
        features = check_int("time_features", features, low=2)
        hidden = check_int("time_hidden", hidden)
        _check_parameters("time_features, time_hidden, n_out", (features + 1) * hidden + (hidden + 1) * n_out)
        self.register_buffer("freqs", 2.0 ** torch.linspace(-3, 1, features // 2))
        self.mlp = nn.Sequential(nn.Linear(2 * (features // 2) + 1, hidden), nn.SiLU(), nn.Linear(hidden, n_out))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Modulations ``(n, n_out)`` for times ``t`` of shape ``(n,)``, all ``> 0``."""
        if not is_trusted():
            check_tensor("t", t, ndim=1)
            _check_like("t", t, self.freqs)
            if bool((t <= 0).any()):
                raise ValueError(f"t must be > 0 (times in (0, T]), got minimum {float(t.min()):.3g}")
        u = torch.log(-torch.expm1(-t))[:, None]              # log sigma(t)
        ang = u * self.freqs
        return self.mlp(torch.cat([u, torch.sin(ang), torch.cos(ang)], dim=1))


# --------------------------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------------------------
class LatentDiT(nn.Module):
    """The latent DiT score network ``s_W(x, t) = (W_B f(W_B^T x, t) - x) / sigma(t)`` (Defs 3.1–3.3; chapter 2).

    Parameters
    ----------
    D : int
        Ambient dimension.
    d0 : int
        Latent dimension, a perfect square ``i^2`` with ``i`` divisible by ``patch``.
    patch : int
        Patch side ``p``: tokens have dimension ``d = p^2``, there are ``L = d0 / d`` of them.
    heads, head_dim, ff_width, blocks : int
        ``r``, ``m``, ``l``, ``K`` of the class ``T^{r,m,l}_p`` (the theorem's thin network is ``r=2, m=1, l=4``).
    time_features, time_hidden : int
        Size of the time embedding.
    attention : module or callable, optional
        ``(q, k, v) -> out`` on ``(n, r, L, m)`` tensors; default :class:`ExactAttention` (``softmax(QK^T/m)V``).
    basis : array of shape (D, d0), optional
        Initial ``W_B`` (orthonormal columns); default a random orthonormal basis from torch's generator.
    train_basis : bool
        If False, ``W_B`` stays at its initial value (as in Theorem 3.1, where ``W_B = U``).

    Notes
    -----
    ``forward(x, t)`` takes ``x`` of shape ``(n, D)`` and ``t`` of shape ``(n,)`` (or a scalar) with ``t > 0``, and
    returns the score, shape ``(n, D)``. :meth:`f` is the latent map alone.
    """

    def __init__(self, D: int, d0: int, patch: int, *, heads: int = 2, head_dim: int = 2, ff_width: int = 16,
                 blocks: int = 2, time_features: int = 16, time_hidden: int = 32, attention: Any = None,
                 basis: np.ndarray | None = None, train_basis: bool = True):
        super().__init__()
        self.D = check_int("D", D)
        self.d0 = check_int("d0", d0, high=self.D)
        self.patch = check_int("patch", patch)
        self.geometry = patch_geometry(self.d0, self.patch)
        d, L = self.geometry.d, self.geometry.L
        self.hparams = dict(D=self.D, d0=self.d0, patch=self.patch, heads=check_int("heads", heads),
                            head_dim=check_int("head_dim", head_dim), ff_width=check_int("ff_width", ff_width),
                            blocks=check_int("blocks", blocks, high=MAX_BLOCKS),
                            time_features=check_int("time_features", time_features, low=2),
                            time_hidden=check_int("time_hidden", time_hidden))
        train_basis = check_bool("train_basis", train_basis)
        if attention is not None:
            _as_attention(attention)  # refuse a bad attention before anything is built
        rm = heads * head_dim
        n_params = (self.D * self.d0 + L * d + blocks * (4 * d * rm + 2 * d * ff_width + ff_width + d)
                    + (time_features + 1) * time_hidden + (time_hidden + 1) * (5 * blocks + 2) * d)
        _check_parameters("D, d0, heads, head_dim, ff_width, blocks, time_features, time_hidden", n_params)
        # W_B: an nn.Linear(d0 -> D) whose (D, d0) weight the parametrization keeps orthonormal.
        # Cayley map: the cheapest of torch's maps for a tall D x d0 weight (measured), exact to float precision.
        self.encoder = parametrizations.orthogonal(nn.Linear(self.d0, self.D, bias=False), orthogonal_map="cayley")
        if basis is not None:
            self.set_basis(basis)
        self.encoder.parametrizations.weight.original.requires_grad_(bool(train_basis))
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(L, d))          # E, one row per token
        self.blocks = nn.ModuleList(DiTBlock(d, heads, head_dim, ff_width, attention) for _ in range(blocks))
        # 5 d modulations per block, then 2 d for the final layer's scale and shift
        self.time_embedding = TimeEmbedding((5 * blocks + 2) * d, time_features, time_hidden)

    # -- pieces of the definition ----------------------------------------------------------------------------
    @property
    def W_B(self) -> torch.Tensor:
        """The ``(D, d0)`` orthonormal encoder/decoder."""
        return self.encoder.weight

    @property
    def d(self) -> int:
        """Token dimension ``p^2``."""
        return self.geometry.d

    @property
    def L(self) -> int:
        """Sequence length (number of patches)."""
        return self.geometry.L

    def _times(self, t: Any, n: int, like: torch.Tensor) -> torch.Tensor:
        """Times as a ``(n,)`` tensor of ``like``'s dtype and device; checked unless the caller is trusted."""
        if is_trusted():
            t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
            return t.expand(n) if t.ndim == 0 else t
        return check_times(t, n, like)

    def _check_input(self, name: str, x: Any, width: int) -> None:
        check_tensor(name, x, ndim=2)
        if x.shape[1] != width:
            raise ValueError(f"{name} must have shape (n, {width}), got {tuple(x.shape)}")
        _check_like(name, x, self.pos_embedding)

    def _modulations(self, t: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        emb = self.time_embedding(t)
        K = len(self.blocks)
        return list(emb[:, :5 * self.d * K].chunk(K, dim=1)), emb[:, 5 * self.d * K:]

    def transformer(self, X: torch.Tensor, t: torch.Tensor, record: list | None = None) -> torch.Tensor:
        """``f_T``: token matrices ``(n, d, L)`` (the paper's columns) to ``(n, d, L)``.

        The blocks run on ``X + E``; ``E`` is subtracted from their output and a final per-channel scale and shift
        (functions of ``t``) is applied. ``t`` has shape ``(n,)``; ``record``, a list, receives each block's
        ``(q, k)``.
        """
        if not is_trusted():
            check_tensor("X", X, ndim=3, shape=(self.d, self.L))
            _check_like("X", X, self.pos_embedding)
            t = self._times(t, X.shape[0], X)
            _check_record(record)
            with trusted():
                return self.transformer(X, t, record)
        Z = X.transpose(1, 2) + self.pos_embedding                    # rows are tokens: (n, L, d)
        mods, final = self._modulations(t)
        for block, mod in zip(self.blocks, mods):
            Z = block(Z, mod, record)
        Z = Z - self.pos_embedding  # remove E again, so that an untrained f is exactly the identity (q ~ hbar at small t)
        # Final layer (DiT's, without its linear map): a per-channel scale and shift that depend on t only. It lets f
        # go from ~identity at small t (q ~ hbar) to ~beta E[h] at large t without fighting the residual stream.
        a, c = final.unsqueeze(1).chunk(2, dim=-1)
        return ((1 + a) * Z + c).transpose(1, 2)

    def f(self, hbar: torch.Tensor, t: Any) -> torch.Tensor:
        """The latent map ``f = R^{-1} o f_T o R`` of Def. 3.1: ``(n, d0)`` to ``(n, d0)``."""
        if not is_trusted():
            self._check_input("hbar", hbar, self.d0)
        t = self._times(t, hbar.shape[0], hbar)
        g = self.geometry
        with trusted():
            return _unpatchify(self.transformer(_patchify(hbar, g), t), g.p, g.i // g.p)

    def forward(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        """The score ``s_W(x, t) = (W_B f(W_B^T x, t) - x) / sigma(t)`` (Def. 3.3), shape ``(n, D)``."""
        if not is_trusted():
            self._check_input("x", x, self.D)
        t = self._times(t, x.shape[0], x)
        W = self.W_B
        hbar = x @ W                                                   # W_B^T x, row-wise
        with trusted():
            return (self.f(hbar, t) @ W.T - x) / -torch.expm1(-t)[:, None]

    def set_basis(self, basis: np.ndarray) -> "LatentDiT":
        """Set ``W_B`` to an orthonormal ``(D, d0)`` basis, in the model's current dtype; returns self."""
        b = check_orthonormal("basis", basis, tol=1e-6)
        if b.shape != (self.D, self.d0):
            raise ValueError(f"basis must have shape (D, d0) = ({self.D}, {self.d0}), got {b.shape}")
        w = self.encoder.parametrizations.weight.original
        with torch.no_grad():  # the parametrization's right inverse finds the unconstrained value
            self.encoder.weight = torch.as_tensor(b, dtype=w.dtype, device=w.device)
        return self

    # -- swapping attention and measuring the class's norms -------------------------------------------------------
    def set_attention(self, attention: Any) -> "LatentDiT":
        """Replace the attention of every block by ``attention`` (module or ``(q, k, v) -> out``); returns self."""
        for block in self.blocks:
            block.attn.attention = _as_attention(attention)
        return self

    @torch.no_grad()
    def keys_queries(self, x: torch.Tensor, t: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per block, the queries and keys ``(n, r, L, m)`` that the attention sees at ``(x, t)`` (chapters 2, 4–6).

        Their largest absolute entry is the entry bound ``B`` of the computational chapters.
        """
        self._check_input("x", x, self.D)
        t = self._times(t, x.shape[0], x)
        record: list = []
        with trusted():
            self.transformer(_patchify(x @ self.W_B, self.geometry), t, record)
        return record

    @torch.no_grad()
    def folded_weights(self, t: float) -> list[dict[str, torch.Tensor]]:
        """Per block, the head weights with the time modulation at ``t`` folded in (chapter 2).

        ``W_K diag(1+a1)``, ``W_Q diag(1+a1)``, ``W_V diag(1+a1)``, ``diag(g1) W_O``: the plain ``T^{r,m,l}_p`` weights
        that the network uses at time ``t``. Also ``W_KQ = W_K^T W_Q`` and ``W_OV = W_O W_V`` per head, ``(r, d, d)``.
        """
        t = check_float("t", t, low=0.0, low_open=True)
        tt = torch.tensor([t], dtype=self.pos_embedding.dtype, device=self.pos_embedding.device)
        out = []
        for block, mod in zip(self.blocks, self._modulations(tt)[0]):
            a1, g1, *_ = mod[0].chunk(5)
            w = block.attn.head_weights()
            s = 1 + a1
            W_K, W_Q, W_V = w["W_K"] * s, w["W_Q"] * s, w["W_V"] * s
            W_O = g1[:, None] * w["W_O"]
            out.append({"W_K": W_K, "W_Q": W_Q, "W_V": W_V, "W_O": W_O,
                        "W_KQ": W_K.transpose(1, 2) @ W_Q, "W_OV": W_O @ W_V})
        return out

    @torch.no_grad()
    def class_norms(self, t: float) -> dict[str, float]:
        """Largest spectral norms over blocks and heads of ``W_OV`` and ``W_KQ`` at time ``t`` (chapter 2)."""
        fw = self.folded_weights(t)
        return {"W_OV": max(float(torch.linalg.matrix_norm(w["W_OV"], ord=2).max()) for w in fw),
                "W_KQ": max(float(torch.linalg.matrix_norm(w["W_KQ"], ord=2).max()) for w in fw)}

    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
