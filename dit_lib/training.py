"""Training the latent DiT by denoising score matching (chapter 2; reused by chapters 3 and 6).

:func:`train_score_model` draws a minibatch of clean data, times uniformly on ``[T_0, T]`` and Gaussian noise, and
takes an Adam step on :func:`dit_lib.scores.dsm_loss`. It runs on CPU in seconds for the book's sizes and on a GPU
when one is present (``device`` defaults to CUDA when available). :func:`as_score_fn` turns a trained model into the
numpy ``score_fn(x, t)`` that :func:`dit_lib.scores.score_error` and the samplers of chapter 3 take.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import MAX_STEPS, check_array, check_bool, check_choice, check_device, check_float, check_int, \
    check_memory, check_orthonormal, check_seed, trusted
from .data import estimate_subspace
from .figures import is_static
from .network import LatentDiT
from .scores import WEIGHTINGS, dsm_loss

__all__ = ["default_device", "train_score_model", "as_score_fn", "TIME_SAMPLINGS"]

#: How training times are drawn on ``[T_0, T]``: ``"uniform"`` (the paper's loss) or ``"log"`` (log-uniform).
TIME_SAMPLINGS = ("uniform", "log")


def default_device(device: Any = None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` gives ``"cuda"`` when available, else ``"cpu"`` (chapters 2, 3, 6)."""
    return check_device(device)


def _first_parameter(model: Any) -> torch.nn.Parameter:
    """The first parameter of a score network (its dtype and device are the network's)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    param = next(iter(model.parameters()), None)
    if param is None:
        raise TypeError(f"model must be a score network with parameters (e.g. a LatentDiT), got "
                        f"{type(model).__name__} without any")
    return param


def _check_training_options(steps: Any, batch_size: Any, progress: Any) -> tuple[int, int]:
    """``steps`` and ``batch_size`` (with their size guards) and ``progress`` (None or a bool)."""
    if progress is not None:
        check_bool("progress", progress)
    return check_int("steps", steps, high=MAX_STEPS), check_int("batch_size", batch_size, high=2**31 - 1)


def train_score_model(
    x0: np.ndarray,
    *,
    d0: int,
    patch: int,
    heads: int = 2,
    head_dim: int = 2,
    ff_width: int = 16,
    blocks: int = 2,
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-2,
    T0: float = 1e-2,
    T: float = 5.0,
    weighting: str = "sigma2",
    time_sampling: str = "log",
    basis_init: str | np.ndarray = "random",
    train_basis: bool = True,
    time_features: int = 16,
    time_hidden: int = 32,
    seed: int = 0,
    device: Any = None,
    progress: bool | None = None,
    log_every: int = 25,
) -> tuple[LatentDiT, dict[str, Any]]:
    """Train a :class:`~dit_lib.network.LatentDiT` on samples ``x0`` by denoising score matching.

    Chapter 2 (and chapters 3, 6). Each step: a minibatch of ``x0``, times on ``[T0, T]``, ``x_t = beta x_0 +
    sqrt(sigma) z``, Adam on the loss ``mean lambda(t) ||s_W(x_t, t) - (beta x_0 - x_t)/sigma||^2``
    (:func:`dit_lib.scores.dsm_loss`), with a cosine learning-rate decay.

    Parameters
    ----------
    x0 : array of shape (n, D)
        Training data.
    d0, patch : int
        Latent dimension (a perfect square) and patch side ``p`` (must divide ``sqrt(d0)``).
    heads, head_dim, ff_width, blocks : int
        ``r, m, l, K`` of the transformer class.
    steps, batch_size : int
        Number of Adam steps and minibatch size.
    lr : float
        Peak learning rate.
    T0, T : float
        ``0 < T0 < T``: the time window of the loss.
    weighting : {"sigma2", "sigma", "none"}
        ``lambda(t)``; ``"none"`` is the paper's unweighted loss. The default ``"sigma2"`` (x0-prediction) keeps the
        gradient's variance bounded as ``t -> T0``; all three share the same minimiser, the true score.
    time_sampling : {"log", "uniform"}
        How times are drawn on ``[T0, T]``.
    basis_init : {"random", "pca"} or array of shape (D, d0)
        Initial ``W_B``: random orthonormal, the top-``d0`` PCA subspace of ``x0``, or a given basis.
    train_basis : bool
        If False, ``W_B`` stays at ``basis_init``.
    seed : int
        Seeds the initialisation, the minibatches, the times and the noise.
    device : str or torch.device, optional
        Default ``"cuda"`` if available, else ``"cpu"``.
    progress : bool, optional
        Show a tqdm bar; default: on, except in the book build (``DIT_BOOK_BUILD=1``).
    log_every : int
        Steps between two entries of the history.

    Returns
    -------
    model : LatentDiT
        In eval mode, float32, on ``device``.
    history : dict
        ``"step"``, ``"loss"`` (mean training loss over each logging window), ``"seconds"`` (wall time),
        ``"device"``, ``"config"``.

    Raises
    ------
    ValueError
        For a bad shape, ``d0`` or ``patch``, non-positive sizes, ``T0`` outside ``(0, T)`` or an unknown option.
    """
    # Training options are validated by fit_score_model; here only what building the network needs.
    x0 = check_array("x0", x0, ndim=2)
    n, D = x0.shape
    d0 = check_int("d0", d0, high=D)
    seed = check_seed(seed)
    if isinstance(basis_init, str):
        check_choice("basis_init", basis_init, ("random", "pca"))
        basis = estimate_subspace(x0, d0) if basis_init == "pca" else None
    elif isinstance(basis_init, np.ndarray):
        basis = check_orthonormal("basis_init", basis_init, tol=1e-6)
        if basis.shape != (D, d0):
            raise ValueError(f"basis_init must have shape (D, d0) = ({D}, {d0}), got {basis.shape}")
    else:
        raise TypeError(f"basis_init must be 'random', 'pca' or a (D, d0) array, got {type(basis_init).__name__}")
    dev = default_device(device)
    _check_training_options(steps, batch_size, progress)

    # Initialise from a private generator so the caller's global torch RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentDiT(D, d0, patch, heads=heads, head_dim=head_dim, ff_width=ff_width, blocks=blocks,
                          time_features=time_features, time_hidden=time_hidden, basis=basis,
                          train_basis=train_basis)
    model = model.to(dev)
    history = fit_score_model(model, x0, steps=steps, batch_size=batch_size, lr=lr, T0=T0, T=T,
                              weighting=weighting, time_sampling=time_sampling, seed=seed, progress=progress,
                              log_every=log_every)
    history["config"] = dict(model.hparams, steps=steps, batch_size=batch_size, lr=lr, T0=T0, T=T,
                             weighting=weighting, time_sampling=time_sampling, seed=seed, n=n)
    return model, history


def fit_score_model(
    model: torch.nn.Module,
    x0: np.ndarray,
    *,
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-2,
    T0: float = 1e-2,
    T: float = 5.0,
    weighting: str = "sigma2",
    time_sampling: str = "log",
    seed: int = 0,
    progress: bool | None = None,
    log_every: int = 25,
    monitor: Callable[[torch.nn.Module], float] | None = None,
) -> dict[str, Any]:
    """The DSM training loop, in place, for a score network the caller built (chapters 2 and 6).

    :func:`train_score_model` builds a :class:`~dit_lib.network.LatentDiT` and calls this; chapter 6 calls it
    directly on a network whose attention was swapped *before* training. Each step draws a minibatch of ``x0``,
    times on ``[T0, T]`` and noise, and takes an Adam step (cosine learning-rate decay) on
    :func:`dit_lib.scores.dsm_loss`.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(x, t)`` returns the score; trained on its own device and dtype, left in eval mode.
    x0 : array of shape (n, D)
    steps, batch_size, lr, T0, T, weighting, time_sampling, seed, progress, log_every
        As in :func:`train_score_model`.
    monitor : callable, optional
        ``monitor(model) -> float`` evaluated every ``log_every`` steps (e.g. an entry bound); returned under
        ``"monitor"``.

    Returns
    -------
    dict
        ``"step"``, ``"loss"`` (mean training loss over each logging window), ``"monitor"``, ``"seconds"``,
        ``"device"``.

    Raises
    ------
    ValueError
        For a bad shape, non-positive sizes, ``T0`` outside ``(0, T)`` or an unknown option.
    """
    param = _first_parameter(model)
    x0 = check_array("x0", x0, ndim=2)
    n, D = x0.shape
    steps, batch_size = _check_training_options(steps, batch_size, progress)
    check_memory("batch_size", batch_size * (sum(p.numel() for p in model.parameters()) + 16 * D), 4,
                 what="activations of one batch, a rough estimate")
    lr = check_float("lr", lr, low=0.0, low_open=True)
    T = check_float("T", T, low=0.0, low_open=True)
    T0 = check_float("T0", T0, low=0.0, high=T, low_open=True, high_open=True)
    check_choice("weighting", weighting, WEIGHTINGS)
    check_choice("time_sampling", time_sampling, TIME_SAMPLINGS)
    log_every = check_int("log_every", log_every)
    seed = check_seed(seed)
    show = (not is_static()) if progress is None else progress
    dev, dt = param.device, param.dtype
    model.train()
    data = torch.as_tensor(x0, dtype=dt, device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed + 1)
    # foreach: one batched update for all parameters; the per-tensor loop costs more than the maths at these sizes
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr / 20)
    log_lo, log_hi = np.log(T0), np.log(T)

    hist_step, hist_loss, hist_mon, window = [], [], [], []
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc="DSM training", disable=not show, leave=False)
    for step in bar:
        idx = torch.randint(0, n, (batch_size,), generator=gen, device=dev)
        u = torch.rand(batch_size, generator=gen, device=dev, dtype=dt)
        t = torch.exp(log_lo + (log_hi - log_lo) * u) if time_sampling == "log" else T0 + (T - T0) * u
        z = torch.randn(batch_size, D, generator=gen, device=dev, dtype=dt)
        with trusted():  # everything was validated above; the model and the loss trust it
            loss = dsm_loss(model, data[idx], t, z, weighting)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        window.append(loss.detach())
        if step % log_every == 0 or step == steps:
            hist_step.append(step)
            hist_loss.append(float(torch.stack(window).mean()))
            window = []
            if monitor is not None:
                hist_mon.append(float(monitor(model)))
            bar.set_postfix(loss=f"{hist_loss[-1]:.4g}")
    bar.close()
    model.eval()
    return {"step": np.array(hist_step), "loss": np.array(hist_loss), "monitor": np.array(hist_mon),
            "seconds": time.perf_counter() - start, "device": str(dev)}


def as_score_fn(model: torch.nn.Module, *, batch_size: int = 8192) -> Callable[[np.ndarray, float], np.ndarray]:
    """A trained score model as ``score_fn(x: ndarray (n, D), t: float) -> ndarray (n, D)`` (chapters 2 and 3).

    Runs under :func:`torch.no_grad` in the model's dtype, on the model's device, in chunks of
    ``batch_size`` rows, and returns float64. This is the signature :func:`dit_lib.scores.score_error` and the
    samplers of chapter 3 take.
    """
    param = _first_parameter(model)
    batch_size = check_int("batch_size", batch_size)
    dev = param.device
    dtype = param.dtype

    def score_fn(x: np.ndarray, t: float) -> np.ndarray:
        x = check_array("x", x, ndim=2)
        t = check_float("t", t, low=0.0, low_open=True)
        out = []
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                xb = torch.as_tensor(x[lo:lo + batch_size], dtype=dtype, device=dev)
                tb = torch.full((xb.shape[0],), t, dtype=dtype, device=dev)
                out.append(model(xb, tb).double().cpu().numpy())
        return np.concatenate(out, axis=0) if out else np.zeros_like(x)

    return score_fn
