"""Small experiment runners for the statistical results: sample complexity and distribution recovery.

* :func:`train_across_n` trains a latent DiT (:func:`dit_lib.training.train_score_model`) for each training-set size
  ``n`` (and seed) and measures what Theorem 3.2 and Corollary 3.2.1 (i) bound: the time-averaged squared score error
  :func:`mean_squared_score_error` and the subspace error ``||W_B W_B^T - U U^T||_F``. Results live in the returned
  list only: nothing is cached on disk, so a rerun after a library change recomputes everything.
* :func:`loglog_fit` fits the slope of a log-log curve (with its standard error), to be read next to the paper's
  exponent :data:`PAPER_EXPONENT` ``= -1/3`` and the ``d0``-dependent exponent :func:`chzw_exponent` of Chen et al.
  (2023).
* :func:`distribution_recovery` runs the sampler and returns the three measurements of Corollary 3.2.1.
* :func:`attention_weights`, :func:`uniform_attention`, :func:`swapped_attention` — is attention used? Its weights,
  and the network with every softmax replaced by the plain mean of the values (chapters 3 and 7).
* :func:`sample_quality` — generated samples against held-out real data with yardsticks the model never saw: a
  classifier's confidence and class coverage, sliced Wasserstein and MMD (chapter 7).

Chapters 3 and 7.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ._checks import check_array, check_bool, check_callable, check_choice, check_device, check_float, check_int, \
    check_memory, check_orthonormal, check_seed
from .data import SubspaceData, projection_distance
from .metrics import Estimate, Leakage, TVEstimate, aligned_latents, mmd2, orthogonal_leakage, sliced_wasserstein, \
    tv_histogram
from .sampling import sample
from .scores import latent_diffused, score_error

__all__ = ["PAPER_EXPONENT", "chzw_exponent", "mean_squared_score_error", "Run", "train_across_n", "by_n",
           "LogLogFit", "loglog_fit", "Recovery", "distribution_recovery", "uniform_attention", "attention_weights",
           "swapped_attention", "Quality", "sample_quality"]

#: The exponent of ``n`` in Theorem 3.2's rate ``xi ~ n^{-1/3}`` (an upper bound, up to logs and constants).
PAPER_EXPONENT = -1.0 / 3.0


def chzw_exponent(d0: int, delta: float = 0.0) -> float:
    """Exponent ``-(2 - 2 delta)/(d0 + 5)`` of ``n`` in the score-estimation rate of Chen et al. (2023) (chapter 3).

    Their ReLU-network bound is ``O~(T0^{-1} n^{-(2 - 2 delta(n))/(d0 + 5)})`` with ``delta(n) -> 0``; the rate depends
    on ``d0``, not on ``D``.

    Raises
    ------
    ValueError
        If ``d0 < 1`` or ``delta`` is outside ``[0, 1)``.
    """
    d0 = check_int("d0", d0)
    delta = check_float("delta", delta, low=0.0, high=1.0, high_open=True)
    return -(2 - 2 * delta) / (d0 + 5)


def mean_squared_score_error(errors: Sequence[float], t_grid: Sequence[float]) -> float:
    """``1/(T - T0) int_{T0}^{T} err(t)^2 dt`` by the trapezoid rule: the left side of Theorem 3.2 (chapter 3).

    Parameters
    ----------
    errors : sequence of float
        The ``L^2(P_t)`` score error at each time (:func:`dit_lib.scores.score_error`).
    t_grid : sequence of float
        Increasing times, ``T0`` first and ``T`` last, at least 2.

    Raises
    ------
    ValueError
        If the lengths differ, there are fewer than 2 times, or the times do not increase.
    """
    e = check_array("errors", errors, ndim=1)
    t = check_array("t_grid", t_grid, ndim=1)
    if t.size < 2 or e.shape != t.shape:
        raise ValueError(f"errors and t_grid must have one common length >= 2, got {e.size} and {t.size}")
    if np.any(e < 0):
        raise ValueError(f"errors must be >= 0 (score errors are norms), got minimum {e.min():.3g}")
    if t[0] <= 0:
        raise ValueError(f"t_grid must hold times > 0, got minimum {t[0]:.3g}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_grid must be strictly increasing")
    return float(np.trapezoid(e**2, t) / (t[-1] - t[0]))


@dataclass
class Run:
    """One training run of :func:`train_across_n` (chapter 3)."""

    n: int
    D: int
    seed: int
    t_grid: np.ndarray
    errors: np.ndarray          #: ``L^2(P_t)`` score error at each time of ``t_grid``
    mean_sq_error: float        #: Theorem 3.2's time-averaged squared error
    subspace_error: float       #: Corollary 3.2.1 (i): ``||W_B W_B^T - U U^T||_F``
    seconds: float              #: wall time of the training
    model: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.n = check_int("n", self.n)
        self.D = check_int("D", self.D)
        self.seed = check_seed(self.seed)
        self.t_grid = check_array("t_grid", self.t_grid, ndim=1)
        self.errors = check_array("errors", self.errors, ndim=1)
        if self.errors.shape != self.t_grid.shape or np.any(self.errors < 0):
            raise ValueError(f"errors must be >= 0, one per time of t_grid ({self.t_grid.size}), got shape "
                             f"{self.errors.shape}")
        self.mean_sq_error = check_float("mean_sq_error", self.mean_sq_error, low=0.0)
        self.subspace_error = check_float("subspace_error", self.subspace_error, low=0.0)
        self.seconds = check_float("seconds", self.seconds, low=0.0)


def _check_sizes(name: str, values: Any, check: Callable[[str, Any], int]) -> list[int]:
    """A non-empty list of integers (``ns``, ``seeds``), each checked by ``check(name, value)``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of integers, got {type(values).__name__} {values!r}")
    out = [check(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not out:
        raise ValueError(f"{name} must hold at least one value")
    return out


def train_across_n(data: SubspaceData, ns: Sequence[int], *, patch: int, seeds: Sequence[int] = (0,),
                   T0: float = 0.01, T: float = 5.0, t_grid: Sequence[float] | None = None, n_eval: int = 2000,
                   eval_seed: int = 12345, keep_models: bool = True, device: Any = None,
                   train: Callable[..., Any] | None = None, **train_kw) -> list[Run]:
    """Train one latent DiT per training-set size ``n`` and seed, and measure its score and subspace errors.

    Chapter 3 (Theorem 3.2, Corollary 3.2.1 (i)). For each ``n`` in ``ns`` and each ``seed``: take the first ``n`` of
    ``data.sample(max(ns), seed=1000 + seed)`` (nested training sets, so a run depends on ``max(ns)`` too), train with
    :func:`dit_lib.training.train_score_model` (``T0``, ``T``, ``seed``, ``device`` and ``**train_kw`` passed on),
    then evaluate the score error on ``t_grid`` by :func:`dit_lib.scores.score_error` with fresh draws (``n_eval``,
    ``eval_seed``, common to all runs). Nothing is cached outside the returned list.

    Parameters
    ----------
    data : SubspaceData
    ns : sequence of int
        Training-set sizes, each ``>= 1``.
    patch : int
        Patch side of the network.
    seeds : sequence of int
        One run per seed (training data and initialisation both change).
    T0, T : float
        Time window of training and evaluation, ``0 < T0 < T``.
    t_grid : sequence of float, optional
        Evaluation times, increasing from ``T0`` to ``T``; default 12 log-spaced times.
    n_eval, eval_seed : int
        Monte-Carlo size and seed of the score error.
    keep_models : bool
        Keep each trained model in :attr:`Run.model`.
    device : str or torch.device, optional
        Passed to the training; default CUDA when available.
    train : callable, optional
        The training function, default :func:`dit_lib.training.train_score_model`; a replacement must take the same
        arguments and return ``(model, history)`` with a torch ``model`` that has a ``W_B`` attribute.
    **train_kw
        Further keyword arguments of the training function (``steps``, ``blocks``, ``lr``, ...).

    Returns
    -------
    list of Run
        In the order ``for n in ns: for seed in seeds``.

    Raises
    ------
    ValueError
        For an empty ``ns``/``seeds``, a non-positive ``n``, ``T0 >= T`` or a bad ``t_grid``.
    """
    if not isinstance(data, SubspaceData):
        raise TypeError(f"data must be a dit_lib.SubspaceData, got {type(data).__name__}")
    ns = _check_sizes("ns", ns, check_int)
    seeds = _check_sizes("seeds", seeds, lambda name, s: check_seed(s, name))
    check_memory("ns", 2 * max(ns) * data.D * len(seeds), what=f"training sets of up to {max(ns)} points")
    patch = check_int("patch", patch)
    n_eval = check_int("n_eval", n_eval)
    eval_seed = check_seed(eval_seed, "eval_seed")
    keep_models = check_bool("keep_models", keep_models)
    device = check_device(device)
    if train is not None:
        check_callable("train", train)
    T = check_float("T", T, low=0.0, low_open=True)
    T0 = check_float("T0", T0, low=0.0, high=T, low_open=True, high_open=True)
    tg = np.geomspace(T0, T, 12) if t_grid is None else check_array("t_grid", t_grid, ndim=1)
    if tg.size < 2 or np.any(np.diff(tg) <= 0) or tg[0] < T0 or tg[-1] > T:
        raise ValueError(f"t_grid must increase within [T0, T] = [{T0:g}, {T:g}] and hold >= 2 times")
    if train is None:
        from .training import train_score_model as train
    from .training import as_score_fn

    # Nested training sets: for each seed, the first n of one draw of max(ns) points, so that runs at different n
    # share data and initialisation and differ only in n (a paired design: less noise in the slope).
    pools = {seed: data.sample(max(ns), seed=1000 + seed) for seed in seeds}
    runs = []
    for n in ns:
        for seed in seeds:
            x0 = pools[seed][:n]
            start = time.perf_counter()
            model, _ = train(x0, d0=data.d0, patch=patch, T0=T0, T=T, seed=seed, device=device, **train_kw)
            seconds = time.perf_counter() - start
            errors = score_error(as_score_fn(model), data, tg, n=n_eval, seed=eval_seed)
            W = model.W_B.detach().cpu().double().numpy()
            runs.append(Run(n=n, D=data.D, seed=seed, t_grid=tg, errors=errors,
                            mean_sq_error=mean_squared_score_error(errors, tg),
                            subspace_error=projection_distance(W, data.basis), seconds=seconds,
                            model=model if keep_models else None))
    return runs


def by_n(runs: Sequence[Run], attribute: str = "mean_sq_error") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct ``n`` of ``runs``: the mean over seeds of ``attribute`` and its standard error (chapter 3).

    Returns
    -------
    (ns, mean, se) : three arrays
        ``se`` is ``std / sqrt(#seeds)`` (``nan`` with a single seed).
    """
    if isinstance(runs, (str, bytes)) or not hasattr(runs, "__iter__") or not runs:
        raise ValueError(f"runs must be a non-empty list of Run, got {runs!r:.80}")
    if not all(isinstance(r, Run) for r in runs):
        raise TypeError(f"runs must hold only Run records, got {sorted({type(r).__name__ for r in runs})}")
    if attribute not in ("mean_sq_error", "subspace_error", "seconds"):
        raise ValueError(f"attribute must be one of ['mean_sq_error', 'subspace_error', 'seconds'], got {attribute!r}")
    ns = np.array(sorted({r.n for r in runs}))
    vals = [np.array([getattr(r, attribute) for r in runs if r.n == n]) for n in ns]
    mean = np.array([v.mean() for v in vals])
    se = np.array([v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else np.nan for v in vals])
    return ns, mean, se


@dataclass(frozen=True)
class LogLogFit:
    """``log y = intercept + slope log x`` by least squares (chapter 3)."""

    slope: float
    se: float           #: standard error of the slope (``nan`` with 2 points)
    intercept: float
    dof: int = 0        #: residual degrees of freedom, ``#points - 2``

    def __post_init__(self) -> None:
        object.__setattr__(self, "slope", check_float("slope", self.slope))
        se = self.se
        if not (isinstance(se, float) and np.isnan(se)):  # nan on purpose: no standard error from 2 points
            se = check_float("se", se, low=0.0)
        object.__setattr__(self, "se", se)
        object.__setattr__(self, "intercept", check_float("intercept", self.intercept))
        object.__setattr__(self, "dof", check_int("dof", self.dof, low=0))

    def __call__(self, x):
        """The fitted power law ``exp(intercept) x^slope``."""
        return np.exp(self.intercept) * np.asarray(x, dtype=float) ** self.slope

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Confidence interval of the slope: ``slope -/+ t_{dof} se`` (Student t, chapter 3).

        Exact for independent Gaussian residuals of ``log y``; runs that share training data (the nested sets of
        :func:`train_across_n`) are positively correlated, which makes the interval somewhat too narrow.

        Raises
        ------
        ValueError
            If ``level`` is outside ``(0, 1)`` or the fit has no residual degrees of freedom.
        """
        level = check_float("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.dof < 1:
            raise ValueError("the fit has no residual degrees of freedom (needs >= 3 points) for an interval")
        from scipy.stats import t as student_t

        half = float(student_t.ppf(0.5 + level / 2, self.dof)) * self.se
        return self.slope - half, self.slope + half


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> LogLogFit:
    """Least-squares slope of ``log y`` against ``log x``, with its standard error (chapter 3).

    A fitted slope over a finite range of ``n`` is a *local* exponent: it can be compared with a rate, but it cannot
    confirm or refute an asymptotic ``O~`` bound, which allows constants and logarithms.

    Raises
    ------
    ValueError
        For fewer than 2 points, different lengths, or non-positive values.

    Examples
    --------
    >>> round(loglog_fit([1, 10, 100], [1.0, 0.1, 0.01]).slope, 6)
    -1.0
    """
    x = check_array("x", x, ndim=1)
    y = check_array("y", y, ndim=1)
    if x.size < 2 or x.shape != y.shape:
        raise ValueError(f"x and y must have one common length >= 2, got {x.size} and {y.size}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive for a log-log fit")
    if np.ptp(np.log(x)) == 0:
        raise ValueError(f"x must hold at least two distinct values for a slope, got all equal to {x[0]:g}")
    lx, ly = np.log(x), np.log(y)
    A = np.stack([np.ones_like(lx), lx], 1)
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    if x.size > 2:
        resid = ly - A @ coef
        cov = resid @ resid / (x.size - 2) * np.linalg.inv(A.T @ A)
        se = float(np.sqrt(cov[1, 1]))
    else:
        se = float("nan")
    return LogLogFit(slope=float(coef[1]), se=se, intercept=float(coef[0]), dof=int(x.size - 2))


@dataclass
class Recovery:
    """The three measurements of Corollary 3.2.1 for one sampler run (chapter 3)."""

    subspace_error: float                   #: (i) ``||W_B W_B^T - U U^T||_F``
    latent: Estimate | TVEstimate           #: (ii) distance of the aligned latents to ``p^h_{T0}``
    latent_metric: str                      #: ``"tv"`` (``d0 <= 2``) or ``"mmd2"``
    leakage: Leakage                        #: (iii) variance off ``span(W_B)``
    samples: np.ndarray = field(repr=False)  #: the generated samples, ``(n, D)``

    def __post_init__(self) -> None:
        self.subspace_error = check_float("subspace_error", self.subspace_error, low=0.0)
        if not isinstance(self.latent, (Estimate, TVEstimate)):
            raise TypeError(f"latent must be an Estimate or TVEstimate, got {type(self.latent).__name__}")
        check_choice("latent_metric", self.latent_metric, ("tv", "mmd2"))
        if not isinstance(self.leakage, Leakage):
            raise TypeError(f"leakage must be a Leakage, got {type(self.leakage).__name__}")
        self.samples = check_array("samples", self.samples, ndim=2)


def distribution_recovery(score_fn: Callable[[np.ndarray, float], np.ndarray], encoder: np.ndarray,
                          data: SubspaceData, *, T0: float = 0.01, T: float = 5.0, steps: int = 200,
                          n: int = 2000, method: str = "ei", seed: int = 0, bins: int = 20) -> Recovery:
    """Sample with ``score_fn`` and measure Corollary 3.2.1 (i)–(iii) against the ground truth ``data`` (chapter 3).

    (i) the subspace error of ``encoder`` (``W_B``; the true basis for the exact score); (ii) the distance between the
    aligned latents ``(W_B R)^T y`` (:func:`dit_lib.metrics.aligned_latents`) and the closed-form time-``T0`` latent
    marginal ``p^h_{T0}`` (:func:`dit_lib.scores.latent_diffused`) — histogram total variation when ``d0 <= 2``
    (:func:`~dit_lib.metrics.tv_histogram`, ``bins`` per axis), otherwise the unbiased MMD^2 against ``n`` fresh draws
    of ``p^h_{T0}`` (:func:`~dit_lib.metrics.mmd2`); (iii) the orthogonal leakage off ``span(W_B)``.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, t)``, see :func:`dit_lib.sampling.sample`.
    encoder : array of shape (D, d0)
        ``W_B``.
    data : SubspaceData
        Ground truth.
    T0, T, steps, n, method, seed
        Passed to :func:`dit_lib.sampling.sample`.
    bins : int
        Histogram bins per axis when ``d0 <= 2``.

    Returns
    -------
    Recovery

    Raises
    ------
    ValueError
        For mismatched shapes, ``T0 >= T``, or too few samples for the metric.
    """
    if not isinstance(data, SubspaceData):
        raise TypeError(f"data must be a dit_lib.SubspaceData, got {type(data).__name__}")
    check_callable("score_fn", score_fn)
    bins = check_int("bins", bins, low=2)
    W = check_orthonormal("encoder", encoder, tol=1e-5)
    if W.shape != data.basis.shape:
        raise ValueError(f"encoder must have the shape of data.basis {data.basis.shape}, got {W.shape}")
    y = sample(score_fn, n, data.D, T0=T0, T=T, steps=steps, method=method, seed=seed)
    h = aligned_latents(y, W, data.basis)
    target = latent_diffused(data, T0)
    if data.d0 <= 2:
        latent, metric = tv_histogram(h, target, bins=bins, seed=seed), "tv"
    else:
        latent, metric = mmd2(h, target.sample(n, seed=seed + 1)), "mmd2"
    return Recovery(subspace_error=projection_distance(W, data.basis), latent=latent, latent_metric=metric,
                    leakage=orthogonal_leakage(y, W), samples=y)


# --------------------------------------------------------------------------------------------------------------
# is attention used? (chapters 3 and 7)
# --------------------------------------------------------------------------------------------------------------
def uniform_attention(q, k, v):
    """Attention with every weight ``1/L``: each output token is the plain mean of the values (chapters 3, 7).

    A drop-in replacement for :class:`dit_lib.network.ExactAttention` (same ``(q, k, v) -> out`` signature on
    ``(n, r, L, m)`` tensors) that ignores queries and keys. A network that loses nothing when its attention is
    swapped for this one does not use attention.

    Raises
    ------
    TypeError, ValueError
        If ``v`` is not a torch tensor of at least 2 dimensions ``(..., L, m)``.
    """
    import torch

    if not isinstance(v, torch.Tensor):
        raise TypeError(f"v must be a torch.Tensor of shape (..., L, m), got {type(v).__name__}")
    if v.ndim < 2:
        raise ValueError(f"v must have at least 2 dimensions (..., L, m), got shape {tuple(v.shape)}")
    return v.mean(dim=-2, keepdim=True).expand_as(v)


@contextmanager
def swapped_attention(model, attention):
    """Context manager: ``model`` (a :class:`~dit_lib.network.LatentDiT`) with every block's attention replaced.

    Chapters 3 and 7. The original attention modules are restored on exit, also after an error.

    Raises
    ------
    TypeError
        If ``model`` has no ``blocks`` with attention, or ``attention`` is not callable.
    """
    if not hasattr(model, "blocks") or not hasattr(model, "set_attention"):
        raise TypeError(f"model must be a dit_lib LatentDiT, got {type(model).__name__}")
    if not callable(attention):
        raise TypeError(f"attention must be a module or a callable (q, k, v) -> out, got {type(attention).__name__}")
    saved = [block.attn.attention for block in model.blocks]
    try:
        model.set_attention(attention)
        yield model
    finally:
        for block, att in zip(model.blocks, saved):
            block.attn.attention = att


def attention_weights(model, x: np.ndarray, t: float) -> np.ndarray:
    """The softmax weights ``softmax(Q K^T / m)`` of every block and head at ``(x, t)`` (chapters 3 and 7).

    Computed from :meth:`dit_lib.network.LatentDiT.keys_queries` with the book's ``1/m`` scale (that of
    :class:`~dit_lib.network.ExactAttention`).

    Parameters
    ----------
    model : LatentDiT
    x : array of shape (n, D)
    t : float
        ``t > 0``.

    Returns
    -------
    numpy.ndarray
        Shape ``(blocks, n, heads, L, L)``; each row sums to 1. Uniform attention has every entry ``1/L``.
    """
    import torch

    if not hasattr(model, "keys_queries"):
        raise TypeError(f"model must be a dit_lib LatentDiT, got {type(model).__name__}")
    x = check_array("x", x, ndim=2, shape=(model.D,))
    t = check_float("t", t, low=0.0, low_open=True)
    dtype = next(model.parameters()).dtype
    xt = torch.as_tensor(x, dtype=dtype, device=next(model.parameters()).device)
    out = [torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1], dim=-1) for q, k in model.keys_queries(xt, t)]
    return torch.stack(out).double().cpu().numpy()


# --------------------------------------------------------------------------------------------------------------
# generated samples against real data (chapter 7)
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Quality:
    """Yardsticks of a set of generated samples against held-out real data (chapter 7)."""

    confidence: float       #: mean largest class probability of the real-data classifier
    confidence_se: float
    coverage: float         #: effective number of predicted classes, ``exp(entropy)``
    counts: np.ndarray      #: samples per predicted class
    sliced_w: Estimate      #: sliced Wasserstein-2 distance to the held-out data
    mmd2: Estimate          #: unbiased MMD^2 to the held-out data (Gaussian kernel, median bandwidth)


def sample_quality(samples: np.ndarray, reference: np.ndarray, classifier, *, seed: int = 0) -> Quality:
    """Score generated ``samples`` with yardsticks the generator never saw (chapter 7).

    A classifier trained on real data (:func:`dit_lib.realdata.fit_digit_classifier`) gives the confidence and class
    coverage of :class:`dit_lib.realdata.ClassifierScore`; :func:`dit_lib.metrics.sliced_wasserstein` and
    :func:`dit_lib.metrics.mmd2` compare with held-out ``reference`` data. Read each number next to the same number
    for real held-out data against ``reference`` (its finite-sample floor) and for a baseline generator.

    Parameters
    ----------
    samples : array of shape (n, D)
    reference : array of shape (m, D)
        Held-out real data, never used in training.
    classifier : DigitClassifier
        Anything with ``score(x)`` returning a :class:`~dit_lib.realdata.ClassifierScore`.
    seed : int
        Seeds the projections and bootstrap of the sliced Wasserstein distance.

    Raises
    ------
    ValueError, TypeError
        For mismatched dimensions, fewer than 4 samples, or a classifier without ``score``.
    """
    samples = check_array("samples", samples, ndim=2)
    reference = check_array("reference", reference, ndim=2, shape=(samples.shape[1],))
    if not callable(getattr(classifier, "score", None)):
        raise TypeError(f"classifier must have a score(x) method (a DigitClassifier), got {type(classifier).__name__}")
    seed = check_seed(seed)
    c = classifier.score(samples)
    return Quality(confidence=c.confidence, confidence_se=c.se, coverage=c.coverage, counts=c.counts,
                   sliced_w=sliced_wasserstein(samples, reference, seed=seed), mmd2=mmd2(samples, reference))
