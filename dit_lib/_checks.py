"""Input validation shared by every public function of :mod:`dit_lib`.

Each helper raises a :class:`TypeError` or :class:`ValueError` whose message names the offending
argument and the range it must lie in, so that a reader who passes bad input learns what to fix.
"""
from __future__ import annotations

import contextlib
import contextvars
import numbers
from typing import Any, Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "MAX_BYTES",
    "MAX_WORK",
    "MAX_SEED",
    "check_int",
    "check_float",
    "check_bool",
    "check_seed",
    "check_array",
    "check_tensor",
    "check_orthonormal",
    "check_probabilities",
    "check_choice",
    "check_scale",
    "check_callable",
    "check_device",
    "check_dtype",
    "check_memory",
    "check_work",
    "check_attention_inputs",
    "check_output",
    "check_times",
    "MAX_STEPS",
    "trusted",
    "is_trusted",
]

#: Size guard for one allocation: a call that would need more memory than this is refused up front.
MAX_BYTES = 8 * 2**30
#: Size guard for work done in Python loops or exact integer arithmetic (divisor searches, binomials, blocks).
MAX_WORK = 10**8
#: Most steps of a Python-level loop whose body calls a network or a score (training, sampling).
MAX_STEPS = 10**7
#: Largest seed accepted (numpy and torch generators both take any integer in ``[0, 2**63 - 1]``).
MAX_SEED = 2**63 - 1


def check_int(name: str, value: Any, *, low: int | None = 1, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}{_upper(high)}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high} (and >= {low}), got {value}")
    return value


def _upper(high: Any) -> str:
    return "" if high is None else f" and <= {high}"


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the stated interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a ``bool``; only ``True``/``False`` (or numpy booleans) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_seed(value: Any, name: str = "seed") -> int:
    """Return a seed as an ``int`` in ``[0, MAX_SEED]`` (what numpy and torch generators both accept)."""
    return check_int(name, value, low=0, high=MAX_SEED)


def _shape_and_rank(name: str, shape_of: tuple, ndim: Any, shape: Sequence[int | None] | None) -> None:
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape_of) not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {shape_of}")
    if shape is not None:
        want = tuple(shape)
        got = shape_of[-len(want):] if len(want) else ()
        if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
            pretty = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
            raise ValueError(f"{name} must have trailing shape {pretty}, got {shape_of}")


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Convert ``value`` to a numpy array and check its rank, shape and finiteness.

    Integer input is converted on purpose; strings, booleans and complex numbers are refused.
    ``shape`` may hold ``None`` for a free axis; it is matched against the trailing axes.
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "bUSVcmM" or (raw.dtype.kind == "O" and any(
                isinstance(v, (str, bytes, bool, complex)) for v in raw.reshape(-1)[:1000])):
            raise TypeError
        arr = np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of real numbers, got {type(value).__name__}") from exc
    _shape_and_rank(name, arr.shape, ndim, shape)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers (found NaN or inf)")
    return arr


def check_tensor(
    name: str,
    value: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int = 0,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """Check that ``value`` is a floating-point :class:`torch.Tensor` of the given rank/trailing shape, all finite.

    Integer and boolean tensors are refused (a silent cast would hide a mistake, e.g. rounded data).
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {value.dtype}")
    if value.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(value.shape)}")
    _shape_and_rank(name, tuple(value.shape), ndim, shape)
    if finite and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must contain only finite numbers (found NaN or inf)")
    return value


def check_orthonormal(name: str, basis: Any, *, tol: float = 1e-8) -> np.ndarray:
    """Check that the columns of ``basis`` (shape ``(D, d0)``, ``d0 <= D``) are orthonormal."""
    arr = check_array(name, basis, ndim=2)
    D, d0 = arr.shape
    if d0 > D:
        raise ValueError(f"{name} must have at most as many columns as rows (d0 <= D), got shape {arr.shape}")
    err = float(np.max(np.abs(arr.T @ arr - np.eye(d0)))) if d0 else 0.0
    if err > tol:
        raise ValueError(f"{name} must have orthonormal columns (|B^T B - I| <= {tol:g}), got deviation {err:.3g}")
    return arr


def check_probabilities(name: str, weights: Any, *, tol: float = 1e-8) -> np.ndarray:
    """Check a vector of non-negative weights that sums to one."""
    w = check_array(name, weights, ndim=1)
    if w.size == 0:
        raise ValueError(f"{name} must hold at least one weight")
    if np.any(w < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {w.min():.3g}")
    if abs(w.sum() - 1.0) > tol:
        raise ValueError(f"{name} must sum to 1 (within {tol:g}), got sum {w.sum():.12g}")
    return w


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Check that ``value`` is one of ``choices``."""
    try:
        ok = any(isinstance(value, type(c)) and value == c for c in choices)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_output(name: str, out: Any, shape: tuple) -> np.ndarray:
    """Check what the user's callable ``name`` returned: real numbers of ``shape``, all finite; as float64."""
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    raw = np.asarray(out)
    if raw.dtype.kind not in "fiu":
        raise TypeError(f"{name} must return an array of real numbers of shape {shape}, got {type(out).__name__} "
                        f"of dtype {raw.dtype}")
    if raw.shape != tuple(shape):
        raise ValueError(f"{name} must return shape {tuple(shape)}, got {raw.shape}")
    arr = raw.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} returned non-finite values (NaN or inf)")
    return arr


def check_callable(name: str, value: Any) -> Any:
    """Check that ``value`` can be called."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {value!r}")
    return value


def check_device(value: Any, name: str = "device") -> torch.device:
    """``value`` as a :class:`torch.device` that exists here; ``None`` gives CUDA when available, else CPU."""
    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a name such as 'cpu' or 'cuda', got {type(value).__name__}")
    try:
        dev = torch.device(value)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"{name} must be a torch device name such as 'cpu' or 'cuda', got {value!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} {value!r} is not available here (no CUDA device); use 'cpu' or None")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be a 'cpu' or 'cuda' device, got {value!r}")
    return dev


def check_dtype(name: str, value: Any, allowed: Sequence[Any] = (torch.float32, torch.float64)) -> Any:
    """Check that ``value`` is one of the ``allowed`` torch dtypes."""
    if value not in allowed or not isinstance(value, torch.dtype):
        raise TypeError(f"{name} must be one of {[str(a) for a in allowed]}, got {value!r}")
    return value


def _pretty_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def check_memory(name: str, n_elements: float, itemsize: int = 8, *, what: str = "", limit: int | None = None) -> None:
    """Refuse up front a call that would allocate ``n_elements * itemsize`` bytes, more than ``limit`` (``MAX_BYTES``).

    The message names the argument(s) responsible, the estimate and the limit.
    """
    limit = MAX_BYTES if limit is None else limit
    need = float(n_elements) * itemsize
    if need > limit:
        detail = f" ({what})" if what else ""
        raise ValueError(f"{name} too large: the call would need about {_pretty_bytes(need)}{detail}, "
                         f"above the limit of {_pretty_bytes(limit)}")


def check_work(name: str, work: float, *, what: str = "", limit: int | None = None) -> None:
    """Refuse up front a call whose Python-level work (loop iterations, digits of exact integers) exceeds ``limit``."""
    limit = MAX_WORK if limit is None else limit
    if work > limit:
        detail = f" ({what})" if what else ""
        raise ValueError(f"{name} too large: the call would take about {float(work):.3g} steps{detail}, "
                         f"above the limit of {float(limit):.3g}")


_NO_VALUES = object()


def check_attention_inputs(Q: Any, K: Any, V: Any = _NO_VALUES, names: Sequence[str] = ("Q", "K", "V")) -> None:
    """Check queries ``(..., L_q, d)``, keys ``(..., L_k, d)`` and values ``(..., L_k, d_v)``: floating, finite,
    non-empty, of one dtype and device, with matching leading axes. Leave ``V`` out to check queries and keys only
    (passing ``V=None`` is refused: the caller needs values)."""
    nq, nk, nv = names
    if V is _NO_VALUES:
        V = None
    elif V is None:
        raise TypeError(f"{nv} must be a torch.Tensor of values (..., L_k, d_v), got None")
    for name, X in ((nq, Q), (nk, K)) + (() if V is None else ((nv, V),)):
        check_tensor(name, X, min_ndim=2)
        if X.shape[-2] < 1 or X.shape[-1] < 1:
            raise ValueError(f"{name} must have at least one token and one feature, got shape {tuple(X.shape)}")
    if K.shape[-1] != Q.shape[-1]:
        raise ValueError(f"{nq} and {nk} must share the feature dimension d, got {tuple(Q.shape)} and {tuple(K.shape)}")
    if K.shape[:-2] != Q.shape[:-2]:
        raise ValueError(f"{nq} and {nk} must share the batch/head axes, got {tuple(Q.shape)} and {tuple(K.shape)}")
    if K.dtype != Q.dtype or K.device != Q.device:
        raise TypeError(f"{nq} and {nk} must share dtype and device, got {Q.dtype}/{Q.device} and {K.dtype}/{K.device}")
    if V is not None:
        if V.shape[:-1] != K.shape[:-1]:
            raise ValueError(f"{nv} must have shape (..., L_k, d_v) matching {nk} {tuple(K.shape)}, got {tuple(V.shape)}")
        if V.dtype != Q.dtype or V.device != Q.device:
            raise TypeError(f"{nv} must have the dtype and device of {nq} ({Q.dtype}/{Q.device}), "
                            f"got {V.dtype}/{V.device}")


def check_times(t: Any, n: int, like: torch.Tensor, name: str = "t") -> torch.Tensor:
    """Diffusion times for ``n`` rows: a number, or a numpy array / floating tensor of shape ``()`` or ``(n,)``, all
    ``> 0`` and finite; returned as a ``(n,)`` tensor of ``like``'s dtype and device (chapters 2, 3, 6)."""
    if isinstance(t, torch.Tensor):
        t = check_tensor(name, t, ndim=(0, 1)).to(dtype=like.dtype, device=like.device)
    elif isinstance(t, np.ndarray):
        t = torch.as_tensor(check_array(name, t, ndim=(0, 1)), dtype=like.dtype, device=like.device)
    else:
        t = torch.tensor(check_float(name, t, low=0.0, low_open=True), dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    if bool((t <= 0).any()):
        raise ValueError(f"{name} must be > 0 (times in (0, T]), got minimum {float(t.min()):.3g}")
    return t


_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("dit_lib_trusted", default=False)


@contextlib.contextmanager
def trusted() -> Iterator[None]:
    """Inside this block the library's own calls skip re-validating values that a public entry point has checked."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted() -> bool:
    """True inside :func:`trusted`: the caller is the library itself, with validated values."""
    return _TRUSTED.get()


def check_scale(scale: Any, d: int) -> float:
    """The logit scale: ``1/d`` when ``scale`` is ``None`` (the book's convention), else a float in ``(0, inf)``."""
    return 1.0 / d if scale is None else check_float("scale", scale, low=0.0, low_open=True)
