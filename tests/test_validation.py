"""Bad input never passes silently (issue 15): every public callable of ``dit_lib`` refuses it clearly and fast.

The suite is generated from one table, ``CASES``, keyed by every public callable of the library: every name in the
``__all__`` of every ``dit_lib`` module that is callable (functions, classes) and every public method of those classes
(methods defined by a ``dit_lib`` class, not inherited from torch).  ``test_every_public_callable_has_cases`` fails when a
public callable has neither cases in ``CASES`` nor an entry in ``NO_INPUT``, so a new public function must bring its
cases with it.

Case-table format (add yours next to the module's other entries)
-----------------------------------------------------------------
``CASES["module.name"]`` (or ``CASES["module.Class.method"]``, or ``CASES["module.Class"]`` for the constructor) is a
list of cases built with the helpers below.  Each helper takes the *name of the argument* under test and a one-argument
function ``call(value)`` that calls the target with that one argument set to ``value`` and every other argument valid
(fixtures come from ``F``, built lazily once per process: ``F.sd`` a small ``SubspaceData``, ``F.model`` a small
``LatentDiT``, ``F.prob`` a ``GradientProblem``, ``F.Q/F.K/F.V`` attention tensors, ...):

* ``bad(arg, call, v1, v2, ...)``       -- each value must be refused;
* ``ints(arg, call, low=1, high=None)`` -- str, bool, float, NaN, None and the values just outside ``[low, high]``;
* ``floats(arg, call, low=None, high=None, low_open=False, high_open=False)`` -- str, bool, None, NaN, +-inf and the
  values just outside the interval;
* ``seeds(call)``                       -- ``seed`` = -1, 2**64, 1.5, "0", True;
* ``arrays(arg, call, good)`` / ``tensors(arg, call, good)`` -- a string, None, ``good`` with NaN, with inf, with an
  extra leading axis (tensors also: an integer tensor);
* ``choices(arg, call)``                -- an unknown string, 3, None;
* ``callables(arg, call)``              -- 3, "f", None;
* ``devices(call)``                     -- ``device`` = "nonsense", 3;
* ``huge(arg, call, v1, ...)``          -- sizes whose memory or time would blow up: run in a forked child under an
  address-space limit (current size + ``HUGE_AS_BYTES``) and a ``HUGE_SECONDS`` timeout; must be refused up front.

"Refused" means: ``TypeError`` or ``ValueError`` (or a documented library exception in ``LIBRARY_EXCEPTIONS``) raised
from ``dit_lib`` code (not numpy/torch/Python internals), whose message contains the argument's name, within
``CASE_SECONDS`` (in-process, by ``SIGALRM``).

``NO_INPUT["module.name"] = "reason"`` lists callables that take no argument a user could get wrong.
``ACCEPTED`` lists inputs accepted on purpose (``(target, arg, call, value, reason)``); they must *not* raise.

Run ``python tests/test_validation.py`` to print the count of cases per outcome.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import pickle
import pkgutil
import resource
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch

import dit_lib
from dit_lib import attention, data, diffusion, patches

CASE_SECONDS = 5.0
HUGE_SECONDS = 20.0
HUGE_AS_BYTES = 2 * 1024**3
LIB_DIR = os.path.dirname(dit_lib.__file__)
LIBRARY_EXCEPTIONS = (TypeError, ValueError, attention.CancellationError)
NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    target: str
    arg: str
    call: Callable[[Any], Any]
    value: Any
    isolate: bool = False

    @property
    def id(self) -> str:
        text = repr(self.value) if not hasattr(self.value, "shape") else f"{type(self.value).__name__}{tuple(self.value.shape)}"
        return f"{self.target}:{self.arg}={text[:40]}"


@dataclass(frozen=True)
class _Spec:
    """Cases for one argument before the table attaches the target name."""
    arg: str
    call: Callable[[Any], Any]
    values: tuple
    isolate: bool = False


def bad(arg, call, *values):
    return _Spec(arg, call, values)


def huge(arg, call, *values):
    return _Spec(arg, call, values, isolate=True)


def ints(arg, call, low=1, high=None):
    values = ["2", True, 2.5, NAN, None]
    if low is not None:
        values.append(low - 1)
    if high is not None:
        values.append(high + 1)
    return _Spec(arg, call, tuple(values))


def floats(arg, call, low=None, high=None, low_open=False, high_open=False):
    values = ["1.0", True, None, NAN, INF, -INF]
    if low is not None:
        values.append(low if low_open else low - 1.0)
    if high is not None:
        values.append(high if high_open else high + 1.0)
    return _Spec(arg, call, tuple(values))


def seeds(call):
    return _Spec("seed", call, (-1, 2**64, 1.5, "0", True))


def _with(good, value):
    out = good.clone() if isinstance(good, torch.Tensor) else np.array(good, dtype=float, copy=True)
    out.reshape(-1)[0] = value
    return out


def arrays(arg, call, good):
    good = np.asarray(good, dtype=float)
    return _Spec(arg, call, ("abc", None, _with(good, NAN), _with(good, INF), good[None]))


def tensors(arg, call, good):
    return _Spec(arg, call, ("abc", None, _with(good, NAN), _with(good, INF), good[None], good.round().long()))


def choices(arg, call):
    return _Spec(arg, call, ("nonsense", 3, None))


def callables(arg, call):
    return _Spec(arg, call, (3, "f", None))


def devices(call):
    return _Spec("device", call, ("nonsense", 3))


# ------------------------------------------------------------------------------------------------------ fixtures
class _Fixtures:
    """Small valid objects, built once per process on first use."""

    @functools.cached_property
    def sd(self):
        return data.SubspaceData.random(8, 4, 2, seed=0)

    @functools.cached_property
    def mix(self):
        return self.sd.latent

    @functools.cached_property
    def x(self):
        return self.sd.sample(20, seed=1)

    @functools.cached_property
    def h(self):
        return np.arange(16.0).reshape(1, 16) / 16


F = _Fixtures()


# ------------------------------------------------------------------------------------------------------ the table
CASES: dict[str, list[_Spec]] = {
    # ---- data
    "data.random_orthonormal_basis": [
        ints("D", lambda v: data.random_orthonormal_basis(v, 2)),
        ints("d0", lambda v: data.random_orthonormal_basis(4, v), high=4),
        seeds(lambda v: data.random_orthonormal_basis(4, 2, seed=v)),
        huge("D", lambda v: data.random_orthonormal_basis(v, v), 10**5),
    ],
    # ---- diffusion
    "diffusion.beta": [floats("t", diffusion.beta, low=0.0, low_open=True)],
    "diffusion.sigma": [floats("t", diffusion.sigma, low=0.0, low_open=True)],
    # ---- patches
    "patches.patch_geometry": [
        ints("d0", lambda v: patches.patch_geometry(v, 1)),
        ints("p", lambda v: patches.patch_geometry(16, v)),
        huge("d0", lambda v: patches.patch_geometry(v, 3), 10**18),
    ],
    "patches.patch_choices": [
        ints("d0", patches.patch_choices),
        huge("d0", patches.patch_choices, 10**18),
    ],
}

NO_INPUT: dict[str, str] = {
    "attention.default_device": "takes no argument",
    "attention.CancellationError": "an exception class (any message is allowed)",
    "attention.CancellationWarning": "a warning class (any message is allowed)",
}

ACCEPTED: list[tuple[str, str, Callable[[Any], Any], Any, str]] = [
    ("data.random_orthonormal_basis", "D", lambda v: data.random_orthonormal_basis(v, 2), np.int64(4),
     "numpy integers are integers"),
]


# ------------------------------------------------------------------------------------------------ enumeration
def _modules():
    """Every public module of the ``dit_lib`` package (not sub-packages)."""
    return sorted(m.name for m in pkgutil.iter_modules(dit_lib.__path__) if not m.name.startswith("_") and not m.ispkg)


def public_callables() -> list[str]:
    """Every ``__all__`` callable of every module and every public method of its classes, as ``module.name[.method]``."""
    names = []
    for mod_name in _modules():
        mod = importlib.import_module(f"dit_lib.{mod_name}")
        for name in getattr(mod, "__all__", ["__all__ is missing"]):
            obj = getattr(mod, name, None)
            if not callable(obj):
                continue
            names.append(f"{mod_name}.{name}")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                seen = set()
                for klass in obj.__mro__:
                    if not klass.__module__.startswith("dit_lib"):
                        continue
                    for attr, member in vars(klass).items():
                        if attr.startswith("_") or attr in seen:
                            continue
                        if inspect.isfunction(member) or isinstance(member, (staticmethod, classmethod)):
                            seen.add(attr)
                            names.append(f"{mod_name}.{name}.{attr}")
    return names


def all_cases() -> list[Case]:
    return [Case(target, spec.arg, spec.call, value, spec.isolate)
            for target, specs in CASES.items() for spec in specs for value in spec.values]


# ------------------------------------------------------------------------------------------------------ running
class _CaseTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _CaseTimeout()


def _raised_in_lib(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and os.path.abspath(last).startswith(LIB_DIR + os.sep)


def classify(case: Case, exc: BaseException | None) -> tuple[str, str]:
    """Outcome of one case: ``named`` is the only passing one."""
    if exc is None:
        return "returned", "returned a result"
    if isinstance(exc, _CaseTimeout):
        return "hung", f"ran past {CASE_SECONDS:g} s"
    if isinstance(exc, MemoryError):
        return "hung", "MemoryError (tried to allocate too much)"
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, LIBRARY_EXCEPTIONS) and _raised_in_lib(exc):
        return ("named", text) if case.arg in str(exc) else ("unnamed", text)
    return "other", text


def _run_inline(case: Case) -> tuple[str, str]:
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        case.call(case.value)
        exc = None
    except BaseException as e:  # noqa: BLE001 - everything is an outcome here
        if isinstance(e, KeyboardInterrupt):
            raise
        exc = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return classify(case, exc)


def _vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_isolated(case: Case) -> tuple[str, str]:
    """Run one case in a forked child under an address-space limit and a timeout."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            limit = _vm_bytes() + HUGE_AS_BYTES
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            outcome = _run_inline(Case(case.target, case.arg, case.call, case.value))
        except BaseException as e:  # noqa: BLE001
            outcome = ("other", f"harness: {type(e).__name__}: {e}")
        os.write(w, pickle.dumps(outcome))
        os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], HUGE_SECONDS)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hung", f"ran past {HUGE_SECONDS:g} s"
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return "hung", f"child died (status {status}): killed for memory?"
    return pickle.loads(b"".join(chunks))


def run_case(case: Case) -> tuple[str, str]:
    return _run_isolated(case) if case.isolate else _run_inline(case)


# --------------------------------------------------------------------------------------------------------- tests
def test_every_public_callable_has_cases():
    public = public_callables()
    missing = [name for name in public if name not in CASES and name not in NO_INPUT]
    assert not missing, f"public callables without validation cases (add them to CASES in {__file__}): {missing}"
    stale = sorted(set(CASES) | set(NO_INPUT) - set(public))
    assert not stale, f"CASES/NO_INPUT name callables that are not public: {stale}"
    assert all(CASES[name] for name in CASES), "every CASES entry needs at least one case"


def test_every_module_declares_all():
    for mod_name in _modules():
        assert hasattr(importlib.import_module(f"dit_lib.{mod_name}"), "__all__"), f"dit_lib.{mod_name} lacks __all__"


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
def test_bad_input_is_refused(case):
    outcome, detail = run_case(case)
    assert outcome == "named", f"{case.target}({case.arg}={case.value!r}): {outcome}: {detail}"


@pytest.mark.parametrize("target,arg,call,value,reason", ACCEPTED, ids=lambda x: x if isinstance(x, str) else "")
def test_accepted_on_purpose(target, arg, call, value, reason):
    call(value)


def main() -> None:
    """Print the count of cases per outcome (``python tests/test_validation.py``)."""
    counts: dict[str, int] = {}
    failures = []
    t0 = time.perf_counter()
    for case in all_cases():
        outcome, detail = run_case(case)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome != "named":
            failures.append(f"{outcome:9s} {case.id}: {detail[:160]}")
    print("\n".join(failures))
    print(f"{len(public_callables())} public callables, {sum(counts.values())} cases, {time.perf_counter() - t0:.1f} s")
    for outcome in ("named", "unnamed", "other", "returned", "hung"):
        print(f"  {outcome:9s} {counts.get(outcome, 0)}")
    print(f"  accepted on purpose: {len(ACCEPTED)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
