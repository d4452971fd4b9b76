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
* ``ints(arg, call, low=1, high=None, none_ok=False)`` -- str, bool, float, NaN, None (unless ``none_ok``) and the
  values just outside ``[low, high]``;
* ``floats(arg, call, low=None, high=None, low_open=False, high_open=False, none_ok=False)`` -- str, bool, NaN, +-inf,
  None (unless ``none_ok``) and the values just outside the interval;
* ``seeds(call)``                       -- ``seed`` = -1, 2**64, 1.5, "0", True;
* ``arrays(arg, call, good)`` / ``tensors(arg, call, good)`` -- a string, None, ``good`` with NaN, with inf, with an
  extra leading axis (left out with ``batch_ok=True``); tensors also an integer tensor (left out with ``int_ok=True``);
  None is left out with ``none_ok=True``;
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
import re
import resource
import select
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch

import dit_lib
from dit_lib import attention, benchreport, complexity, data, diffusion, efficient, experiments, figures, gradients, \
    instances, metrics, network, patches, polynomial, realdata, sampling, scores, training, widgets

CASE_SECONDS = 5.0
HUGE_SECONDS = 20.0
HUGE_AS_BYTES = 2 * 1024**3
LIB_DIR = os.path.dirname(dit_lib.__file__)
#: TypeError/ValueError, and the exceptions the library documents: CancellationError (fast attention's row sums
#: vanished), FileNotFoundError (a benchmark results file that does not exist yet, with the command that writes it).
LIBRARY_EXCEPTIONS = (TypeError, ValueError, attention.CancellationError, FileNotFoundError)
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
        if hasattr(self.value, "shape"):
            text = f"{type(self.value).__name__}{tuple(self.value.shape)}"
        else:  # no memory addresses: the ids must be the same in every pytest-xdist worker
            text = re.sub(r" (object )?at 0x[0-9a-f]+", "", repr(self.value))
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


def ints(arg, call, low=1, high=None, none_ok=False):
    values = ["2", True, 2.5, NAN] + ([] if none_ok else [None])
    if low is not None:
        values.append(low - 1)
    if high is not None:
        values.append(high + 1)
    return _Spec(arg, call, tuple(values))


def floats(arg, call, low=None, high=None, low_open=False, high_open=False, none_ok=False):
    values = ["1.0", True, NAN, INF, -INF] + ([] if none_ok else [None])
    if low is not None:
        values.append(low if low_open else low - 1.0)
    if high is not None:
        values.append(high if high_open else high + 1.0)
    return _Spec(arg, call, tuple(values))


def seeds(call):
    return _Spec("seed", call, (-1, 2**64, 1.5, "0", True))


def _with(good, value):
    out = good.clone().contiguous() if isinstance(good, torch.Tensor) else np.array(good, dtype=float, copy=True)
    out.reshape(-1)[0] = value  # a view of a contiguous copy
    return out


def arrays(arg, call, good, batch_ok=False, none_ok=False):
    good = np.asarray(good, dtype=float)
    return _Spec(arg, call, ("abc", _with(good, NAN), _with(good, INF)) + (() if none_ok else (None,))
                 + (() if batch_ok else (good[None],)))


def tensors(arg, call, good, batch_ok=False, int_ok=False, none_ok=False):
    return _Spec(arg, call, ("abc", _with(good, NAN), _with(good, INF)) + (() if none_ok else (None,))
                 + (() if batch_ok else (good[None],)) + (() if int_ok else (good.round().long(),)))


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
    def mix1(self):
        return data.default_mixture(1, 2, seed=0)

    @functools.cached_property
    def x(self):
        return self.sd.sample(20, seed=1)

    @functools.cached_property
    def hbar(self):
        return self.x @ self.sd.basis

    @functools.cached_property
    def h(self):
        return np.arange(16.0).reshape(1, 16) / 16

    @functools.cached_property
    def model(self):
        torch.manual_seed(0)
        return network.LatentDiT(8, 4, 1, blocks=1, basis=self.sd.basis, train_basis=False)

    @functools.cached_property
    def xt(self):
        return torch.tensor(self.x[:5], dtype=torch.float32)

    @functools.cached_property
    def tt(self):
        return torch.full((5,), 0.5)

    @functools.cached_property
    def Xtok(self):  # (n, d, L) tokens of the model
        return torch.zeros(5, 1, 4)

    @functools.cached_property
    def Y(self):  # (n, L, d) tokens for the blocks
        return torch.zeros(5, 4, 3)

    @functools.cached_property
    def inst(self):
        return instances.uniform_instance(6, 3, 1.0, heads=2, dtype=torch.float64, seed=0)

    @functools.cached_property
    def Q(self):
        return self.inst.Q

    @functools.cached_property
    def K(self):
        return self.inst.K

    @functools.cached_property
    def V(self):
        return self.inst.V

    @functools.cached_property
    def planted(self):
        return instances.planted_pair_instance(8, 4, 1.0, seed=0)

    @functools.cached_property
    def prob(self):
        return gradients.random_problem(4, 2, seed=0, device="cpu")

    @functools.cached_property
    def prob4(self):  # d = 4 = 2^2 and L = 4: a problem the decoder can read back
        return gradients.random_problem(4, 4, seed=0, device="cpu")

    @functools.cached_property
    def target(self):
        return torch.zeros(20, dtype=torch.float64)

    @functools.cached_property
    def W_A(self):
        return torch.tensor(data.random_orthonormal_basis(20, 16, seed=0))

    @functools.cached_property
    def batch(self):
        return instances.planted_batch_instance(8, 4, 1.0, seed=0)

    @functools.cached_property
    def mha(self):
        return network.MultiHeadAttention(3, 2, 2)

    @functools.cached_property
    def block(self):
        return network.DiTBlock(3, 2, 2, 8)

    @functools.cached_property
    def temb(self):
        return network.TimeEmbedding(4)

    @functools.cached_property
    def enc(self):
        return self.sd.basis

    @functools.cached_property
    def runs(self):
        return [experiments.Run(n=n, D=8, seed=0, t_grid=np.array([0.1, 1.0]), errors=np.array([1.0, 0.5]),
                                mean_sq_error=1.0 / n, subspace_error=0.1, seconds=1.0) for n in (10, 20)]

    @functools.cached_property
    def bench(self):
        return benchreport.load_result("attention")

    @functools.cached_property
    def static(self):
        import plotly.graph_objects as go
        return widgets.explorer(lambda a: go.Figure(), {"a": [1, 2]}, mode="static")

    @functools.cached_property
    def digits(self):
        return realdata.load_digits(seed=0)

    @functools.cached_property
    def clf(self):
        return realdata.fit_digit_classifier(self.digits.x_train[:200], self.digits.y_train[:200])

    @functools.cached_property
    def fit(self):
        return experiments.loglog_fit([1.0, 2.0, 4.0], [1.0, 0.8, 0.5])

    @functools.cached_property
    def fig(self):
        import plotly.graph_objects as go
        return go.Figure()


F = _Fixtures()


def _score(x, t):
    return -np.asarray(x)


def _replace(prob, **kw):
    import dataclasses
    return dataclasses.replace(prob, **kw)


def _pa(**kw):
    """PolynomialAttention(...)(q, k, v) with F.Q, F.K, F.V unless given."""
    q, k, v = kw.pop("q", F.Q), kw.pop("k", F.K), kw.pop("v", F.V)
    return efficient.PolynomialAttention(**{"degree": 3, **kw})(q, k, v)


def _train(**kw):
    kw = {"x0": F.x, "d0": 4, "patch": 1, "steps": 1, "progress": False, **kw}
    return training.train_score_model(kw.pop("x0"), **kw)


def _fig(**kw):
    import plotly.graph_objects as go
    return go.Figure()


def _chain_cases(fn):
    """The arguments the chained low-rank gradient and its step-by-step errors share (chapter 5)."""
    return [
        bad("A1", lambda v: fn(v, *F.prob.args[1:], degree=3), F.prob.A1[:, :1]),
        ints("degree", lambda v: fn(F.prob, degree=v), low=0),
        floats("radius", lambda v: fn(F.prob, degree=3, radius=v), low=0.0, low_open=True, none_ok=True),
        choices("kind", lambda v: fn(F.prob, degree=3, kind=v)),
        bad("wrong_scaling", lambda v: fn(F.prob, degree=3, wrong_scaling=v), "y", None),
    ]


# ------------------------------------------------------------------------------------------------------ the table
CASES: dict[str, list[_Spec]] = {
    # ---- data
    "data.random_orthonormal_basis": [
        ints("D", lambda v: data.random_orthonormal_basis(v, 2)),
        ints("d0", lambda v: data.random_orthonormal_basis(4, v), high=4),
        seeds(lambda v: data.random_orthonormal_basis(4, 2, seed=v)),
        huge("D", lambda v: data.random_orthonormal_basis(v, v), 10**5),
    ],
    "data.GaussianMixture": [
        arrays("weights", lambda v: data.GaussianMixture(v, F.mix.means, F.mix.covs), F.mix.weights),
        bad("weights", lambda v: data.GaussianMixture(v, F.mix.means, F.mix.covs), ["0.5", "0.5"], [0.7, 0.7], [1.5, -0.5]),
        arrays("means", lambda v: data.GaussianMixture(F.mix.weights, v, F.mix.covs), F.mix.means),
        arrays("covs", lambda v: data.GaussianMixture(F.mix.weights, F.mix.means, v), F.mix.covs),
        bad("covs", lambda v: data.GaussianMixture(F.mix.weights, F.mix.means, v), -F.mix.covs, F.mix.covs[:, :1]),
    ],
    "data.GaussianMixture.sample": [
        ints("n", lambda v: F.mix.sample(v)),
        seeds(lambda v: F.mix.sample(3, seed=v)),
        huge("n", lambda v: F.mix.sample(v), 10**12),
    ],
    "data.GaussianMixture.log_density": [
        arrays("h", lambda v: F.mix.log_density(v), F.hbar),
        bad("h", lambda v: F.mix.log_density(v), F.hbar[:, :1]),
    ],
    "data.GaussianMixture.score": [
        arrays("h", lambda v: F.mix.score(v), F.hbar),
        bad("h", lambda v: F.mix.score(v), F.hbar[:, :1]),
    ],
    "data.GaussianMixture.diffused": [
        floats("scale", lambda v: F.mix.diffused(v, 0.5), low=0.0),
        floats("variance", lambda v: F.mix.diffused(0.5, v), low=0.0),
    ],
    "data.default_mixture": [
        ints("d0", lambda v: data.default_mixture(v)),
        ints("n_components", lambda v: data.default_mixture(2, v)),
        floats("separation", lambda v: data.default_mixture(2, separation=v), low=0.0),
        floats("spread", lambda v: data.default_mixture(2, spread=v), low=0.0, low_open=True),
        seeds(lambda v: data.default_mixture(2, seed=v)),
        huge("d0", lambda v: data.default_mixture(v), 10**6),
        huge("n_components", lambda v: data.default_mixture(2, v), 10**10),
    ],
    "data.SubspaceData": [
        arrays("basis", lambda v: data.SubspaceData(v, F.mix), F.sd.basis),
        bad("basis", lambda v: data.SubspaceData(v, F.mix), 2 * F.sd.basis, F.sd.basis[:, :2]),
        bad("latent", lambda v: data.SubspaceData(F.sd.basis, v), None, "mix", F.mix1),
    ],
    "data.SubspaceData.random": [
        ints("D", lambda v: data.SubspaceData.random(v, 2)),
        ints("d0", lambda v: data.SubspaceData.random(4, v), high=4),
        ints("n_components", lambda v: data.SubspaceData.random(4, 2, v)),
        seeds(lambda v: data.SubspaceData.random(4, 2, seed=v)),
    ],
    "data.SubspaceData.sample": [
        ints("n", lambda v: F.sd.sample(v)),
        seeds(lambda v: F.sd.sample(3, seed=v)),
        floats("noise", lambda v: F.sd.sample(3, noise=v), low=0.0),
        bad("return_latent", lambda v: F.sd.sample(3, return_latent=v), "yes", None, 2),
        huge("n", lambda v: F.sd.sample(v), 10**12),
    ],
    "data.estimate_subspace": [
        arrays("x", lambda v: data.estimate_subspace(v, 2), F.x),
        ints("d0", lambda v: data.estimate_subspace(F.x, v), high=8),
    ],
    "data.subspace_angles": [
        arrays("basis_a", lambda v: data.subspace_angles(v, F.sd.basis), F.sd.basis),
        arrays("basis_b", lambda v: data.subspace_angles(F.sd.basis, v), F.sd.basis),
        bad("basis_b", lambda v: data.subspace_angles(F.sd.basis, v), F.sd.basis[:4]),
    ],
    "data.projection_distance": [
        arrays("basis_a", lambda v: data.projection_distance(v, F.sd.basis), F.sd.basis),
        arrays("basis_b", lambda v: data.projection_distance(F.sd.basis, v), F.sd.basis),
        bad("basis_b", lambda v: data.projection_distance(F.sd.basis, v), F.sd.basis[:4], 2 * F.sd.basis),
    ],
    # ---- diffusion
    "diffusion.beta": [floats("t", diffusion.beta, low=0.0, low_open=True), bad("t", diffusion.beta, [1.0, -1.0])],
    "diffusion.sigma": [floats("t", diffusion.sigma, low=0.0, low_open=True), bad("t", diffusion.sigma, [1.0, NAN])],
    "diffusion.forward_sample": [
        arrays("x0", lambda v: diffusion.forward_sample(v, 0.5), F.x),
        floats("t", lambda v: diffusion.forward_sample(F.x, v), low=0.0, low_open=True),
        seeds(lambda v: diffusion.forward_sample(F.x, 0.5, seed=v)),
    ],
    # ---- patches
    "patches.PatchGeometry": [
        ints("i", lambda v: patches.PatchGeometry(v, 1)),
        ints("p", lambda v: patches.PatchGeometry(4, v)),
        bad("p", lambda v: patches.PatchGeometry(4, v), 3, 5),
    ],
    "patches.patch_geometry": [
        ints("d0", lambda v: patches.patch_geometry(v, 1)),
        ints("p", lambda v: patches.patch_geometry(16, v)),
        bad("d0", lambda v: patches.patch_geometry(v, 1), 15),
        bad("p", lambda v: patches.patch_geometry(16, v), 3),
        huge("p", lambda v: patches.patch_geometry(10**18, v), 3),
    ],
    "patches.patch_choices": [
        ints("d0", patches.patch_choices),
        huge("d0", patches.patch_choices, 10**40),
    ],
    # ---- issue 13: the primer's Langevin sampler and binned DSM minimiser; the batch closest-pair instance
    "sampling.langevin": [
        callables("score_fn", lambda v: sampling.langevin(v, np.zeros((3, 1)), step=0.1, steps=2)),
        arrays("x0", lambda v: sampling.langevin(lambda x: -x, v, step=0.1, steps=2), np.zeros((3, 1))),
        floats("step", lambda v: sampling.langevin(lambda x: -x, np.zeros((3, 1)), step=v, steps=2), low=0.0,
               low_open=True),
        ints("steps", lambda v: sampling.langevin(lambda x: -x, np.zeros((3, 1)), step=0.1, steps=v)),
        seeds(lambda v: sampling.langevin(lambda x: -x, np.zeros((3, 1)), step=0.1, steps=2, seed=v)),
        bad("score_fn", lambda v: sampling.langevin(v, np.zeros((3, 1)), step=0.1, steps=2),
            lambda x: x[:1], lambda x: x * np.nan),
    ],
    "scores.dsm_binned_minimiser": [
        arrays("x0", lambda v: scores.dsm_binned_minimiser(v, np.ones((4, 1)), 1.0, np.array([0.0, 2.0])),
               np.zeros((4, 1))),
        arrays("xt", lambda v: scores.dsm_binned_minimiser(np.zeros((4, 1)), v, 1.0, np.array([0.0, 2.0])),
               np.ones((4, 1))),
        floats("t", lambda v: scores.dsm_binned_minimiser(np.zeros((4, 1)), np.ones((4, 1)), v, np.array([0.0, 2.0])),
               low=0.0, low_open=True),
        arrays("edges", lambda v: scores.dsm_binned_minimiser(np.zeros((4, 1)), np.ones((4, 1)), 1.0, v),
               np.array([0.0, 2.0])),
        bad("edges", lambda v: scores.dsm_binned_minimiser(np.zeros((4, 1)), np.ones((4, 1)), 1.0, v),
            np.array([2.0, 0.0]), np.array([1.0])),
    ],
    "instances.planted_batch_instance": [
        ints("L", lambda v: instances.planted_batch_instance(v, 8, 1.0), low=2),
        ints("d", lambda v: instances.planted_batch_instance(16, v, 1.0)),
        floats("B", lambda v: instances.planted_batch_instance(16, 8, v), low=0.0, low_open=True),
        ints("distance", lambda v: instances.planted_batch_instance(16, 8, 1.0, distance=v), low=0, high=7,
             none_ok=True),
        seeds(lambda v: instances.planted_batch_instance(16, 8, 1.0, seed=v)),
    ],
    "patches.patchify": [
        arrays("h", lambda v: patches.patchify(v, 2), F.h, batch_ok=True),
        tensors("h", lambda v: patches.patchify(v, 2), torch.tensor(F.h), batch_ok=True, int_ok=True),
        bad("h", lambda v: patches.patchify(v, 2), np.zeros((1, 15)), [0.0] * 16, np.zeros(16, dtype=bool)),
        ints("p", lambda v: patches.patchify(F.h, v)),
    ],
    "patches.unpatchify": [
        arrays("X", lambda v: patches.unpatchify(v), patches.patchify(F.h, 2), batch_ok=True),
        tensors("X", lambda v: patches.unpatchify(v), patches.patchify(torch.tensor(F.h), 2), batch_ok=True,
                int_ok=True),
        bad("X", lambda v: patches.unpatchify(v), np.zeros((1, 3, 4)), np.zeros((1, 4, 3))),
        ints("p", lambda v: patches.unpatchify(patches.patchify(F.h, 2), v), none_ok=True),
        bad("p", lambda v: patches.unpatchify(patches.patchify(F.h, 2), v), 4),
    ],
    "patches.token_entry_bound": [
        arrays("h", lambda v: patches.token_entry_bound(v, 2), F.h, batch_ok=True),
        ints("p", lambda v: patches.token_entry_bound(F.h, v)),
    ],
    # ---- scores
    **{f"scores.{name}": [
        bad("data", lambda v, f=getattr(scores, name): f(v, 0.5), None, F.mix, "sd"),
        floats("t", lambda v, f=getattr(scores, name): f(F.sd, v), low=0.0, low_open=True),
    ] for name in ("latent_diffused", "ambient_mixture")},
    **{f"scores.{name}": [
        bad("data", lambda v, f=getattr(scores, name): f(v, F.hbar, 0.5), None, F.mix),
        arrays("hbar", lambda v, f=getattr(scores, name): f(F.sd, v, 0.5), F.hbar),
        bad("hbar", lambda v, f=getattr(scores, name): f(F.sd, v, 0.5), F.x),
        floats("t", lambda v, f=getattr(scores, name): f(F.sd, F.hbar, v), low=0.0, low_open=True),
    ] for name in ("latent_score", "tweedie_q", "posterior_mean")},
    **{f"scores.{name}": [
        bad("data", lambda v, f=getattr(scores, name): f(v, F.x, 0.5), None, F.mix),
        arrays("x", lambda v, f=getattr(scores, name): f(F.sd, v, 0.5), F.x),
        bad("x", lambda v, f=getattr(scores, name): f(F.sd, v, 0.5), F.hbar),
        floats("t", lambda v, f=getattr(scores, name): f(F.sd, F.x, v), low=0.0, low_open=True),
    ] for name in ("ambient_log_density", "ambient_score_autograd", "score_decomposition", "ambient_score")},
    "scores.orthogonal_score_rms": [
        ints("D", lambda v: scores.orthogonal_score_rms(v, 2, 0.5)),
        ints("d0", lambda v: scores.orthogonal_score_rms(8, v, 0.5), high=8),
        floats("t", lambda v: scores.orthogonal_score_rms(8, 2, v), low=0.0, low_open=True),
        bad("t", lambda v: scores.orthogonal_score_rms(8, 2, v), [0.5, -1.0]),
    ],
    "scores.transition_log_density": [
        arrays("xt", lambda v: scores.transition_log_density(v, F.x, 0.5), F.x),
        arrays("x0", lambda v: scores.transition_log_density(F.x, v, 0.5), F.x),
        bad("xt", lambda v: scores.transition_log_density(v, F.x, 0.5), F.x[:3]),
        floats("t", lambda v: scores.transition_log_density(F.x, F.x, v), low=0.0, low_open=True),
    ],
    "scores.dsm_target": [
        arrays("x0", lambda v: scores.dsm_target(v, F.x, 0.5), F.x),
        arrays("xt", lambda v: scores.dsm_target(F.x, v, 0.5), F.x),
        floats("t", lambda v: scores.dsm_target(F.x, F.x, v), low=0.0, low_open=True),
        tensors("x0", lambda v: scores.dsm_target(v, F.xt, F.tt), F.xt),
        tensors("xt", lambda v: scores.dsm_target(F.xt, v, F.tt), F.xt),
        bad("xt", lambda v: scores.dsm_target(F.xt, v, F.tt), F.xt[:, :1], F.x[:5]),
        bad("t", lambda v: scores.dsm_target(F.xt, F.xt, v), torch.full((5,), NAN), torch.full((3,), 0.5),
            torch.full((5,), 1.5).long(), -F.tt, NAN, "0.5"),
    ],
    "scores.dsm_loss": [
        callables("score", lambda v: scores.dsm_loss(v, F.xt, F.tt, F.xt)),
        bad("score", lambda v: scores.dsm_loss(v, F.xt, F.tt, F.xt), lambda x, t: x[:, :1], lambda x, t: "s",
            lambda x, t: x * NAN),
        tensors("x0", lambda v: scores.dsm_loss(F.model, v, F.tt, F.xt), F.xt),
        tensors("t", lambda v: scores.dsm_loss(F.model, F.xt, v, F.xt), F.tt),
        bad("t", lambda v: scores.dsm_loss(F.model, F.xt, v, F.xt), -F.tt, F.tt[:3]),
        tensors("noise", lambda v: scores.dsm_loss(F.model, F.xt, F.tt, v), F.xt),
        bad("noise", lambda v: scores.dsm_loss(F.model, F.xt, F.tt, v), F.xt[:, :3]),
        choices("weighting", lambda v: scores.dsm_loss(F.model, F.xt, F.tt, F.xt, v)),
    ],
    "scores.sample_pt": [
        bad("data", lambda v: scores.sample_pt(v, 3, 0.5), None, F.mix),
        ints("n", lambda v: scores.sample_pt(F.sd, v, 0.5)),
        floats("t", lambda v: scores.sample_pt(F.sd, 3, v), low=0.0, low_open=True),
        seeds(lambda v: scores.sample_pt(F.sd, 3, 0.5, seed=v)),
        huge("n", lambda v: scores.sample_pt(F.sd, v, 0.5), 10**12),
    ],
    "scores.score_error": [
        callables("score_fn", lambda v: scores.score_error(v, F.sd, [0.5], n=4)),
        bad("score_fn", lambda v: scores.score_error(v, F.sd, [0.5], n=4), lambda x, t: x[:, :1],
            lambda x, t: x * NAN),
        bad("data", lambda v: scores.score_error(_score, v, [0.5], n=4), None, F.mix),
        arrays("t_grid", lambda v: scores.score_error(_score, F.sd, v, n=4), [0.5, 1.0]),
        bad("t_grid", lambda v: scores.score_error(_score, F.sd, v, n=4), [], [-1.0]),
        bad("t_grid", lambda v: scores.score_error(_score, F.sd, v, n=4, T=1.0), [0.5, 9.0]),
        ints("n", lambda v: scores.score_error(_score, F.sd, [0.5], n=v)),
        seeds(lambda v: scores.score_error(_score, F.sd, [0.5], n=4, seed=v)),
        bad("relative", lambda v: scores.score_error(_score, F.sd, [0.5], n=4, relative=v), "yes", None),
        floats("T", lambda v: scores.score_error(_score, F.sd, [0.5], n=4, T=v), low=0.0, low_open=True,
               none_ok=True),
        huge("n", lambda v: scores.score_error(_score, F.sd, [0.5], n=v), 10**12),
    ],
    "scores.trivial_score": [
        arrays("x", lambda v: scores.trivial_score(v, 0.5), F.x),
        floats("t", lambda v: scores.trivial_score(F.x, v), low=0.0, low_open=True),
    ],
    # ---- network
    "network.ExactAttention": [floats("scale", network.ExactAttention, low=0.0, low_open=True, none_ok=True)],
    "network.ExactAttention.forward": [
        tensors("q", lambda v: network.ExactAttention()(v, F.K, F.V), F.Q),
        tensors("k", lambda v: network.ExactAttention()(F.Q, v, F.V), F.K),
        tensors("v", lambda v: network.ExactAttention()(F.Q, F.K, v), F.V),
        bad("k", lambda v: network.ExactAttention()(F.Q, v, F.V), F.K[..., :2], F.K[:1]),
        bad("v", lambda v: network.ExactAttention()(F.Q, F.K, v), F.V[..., :3, :]),
    ],
    "network.FunctionAttention": [callables("fn", network.FunctionAttention)],
    "network.FunctionAttention.forward": [
        tensors("q", lambda v: network.FunctionAttention(torch.nn.functional.scaled_dot_product_attention)(v, F.K, F.V),
                F.Q),
        bad("fn", lambda v: network.FunctionAttention(v)(F.Q, F.K, F.V), lambda q, k, v: q[..., :1],
            lambda q, k, v: "out"),
    ],
    "network.MultiHeadAttention": [
        ints("d", lambda v: network.MultiHeadAttention(v, 2, 2)),
        ints("heads", lambda v: network.MultiHeadAttention(3, v, 2)),
        ints("head_dim", lambda v: network.MultiHeadAttention(3, 2, v)),
        bad("attention", lambda v: network.MultiHeadAttention(3, 2, 2, v), 3, "nonsense"),
        huge("heads", lambda v: network.MultiHeadAttention(3, v, 2), 10**9),
    ],
    "network.MultiHeadAttention.project": [
        tensors("Y", lambda v: F.mha.project(v), F.Y),
        bad("Y", lambda v: F.mha.project(v), F.Y[..., :2], F.Y[0]),
    ],
    "network.MultiHeadAttention.forward": [
        tensors("Y", lambda v: F.mha(v), F.Y),
        bad("Y", lambda v: F.mha(v), F.Y[..., :2], F.Y[0]),
    ],
    "network.DiTBlock": [
        ints("d", lambda v: network.DiTBlock(v, 2, 2, 8)),
        ints("heads", lambda v: network.DiTBlock(3, v, 2, 8)),
        ints("head_dim", lambda v: network.DiTBlock(3, 2, v, 8)),
        ints("ff_width", lambda v: network.DiTBlock(3, 2, 2, v)),
        bad("attention", lambda v: network.DiTBlock(3, 2, 2, 8, v), 3),
        huge("ff_width", lambda v: network.DiTBlock(3, 2, 2, v), 10**10),
    ],
    "network.DiTBlock.forward": [
        tensors("X", lambda v: F.block(v, torch.zeros(5, 15)), F.Y),
        tensors("mod", lambda v: F.block(F.Y, v), torch.zeros(5, 15)),
        bad("mod", lambda v: F.block(F.Y, v), torch.zeros(5, 3), torch.zeros(5, 6, 3), torch.zeros(4, 15)),
        bad("record", lambda v: F.block(F.Y, torch.zeros(5, 15), v), "rec", 3),
    ],
    "network.TimeEmbedding": [
        ints("n_out", network.TimeEmbedding),
        ints("features", lambda v: network.TimeEmbedding(4, v), low=2),
        ints("hidden", lambda v: network.TimeEmbedding(4, 16, v)),
        huge("hidden", lambda v: network.TimeEmbedding(4, 16, v), 10**10),
    ],
    "network.TimeEmbedding.forward": [
        tensors("t", lambda v: F.temb(v), F.tt),
        bad("t", lambda v: F.temb(v), -F.tt, torch.zeros(5, 2)),
    ],
    "network.LatentDiT": [
        ints("D", lambda v: network.LatentDiT(v, 4, 1)),
        ints("d0", lambda v: network.LatentDiT(8, v, 1), high=8),
        ints("patch", lambda v: network.LatentDiT(8, 4, v)),
        bad("patch", lambda v: network.LatentDiT(8, 4, v), 3),
        ints("heads", lambda v: network.LatentDiT(8, 4, 1, heads=v)),
        ints("head_dim", lambda v: network.LatentDiT(8, 4, 1, head_dim=v)),
        ints("ff_width", lambda v: network.LatentDiT(8, 4, 1, ff_width=v)),
        ints("blocks", lambda v: network.LatentDiT(8, 4, 1, blocks=v)),
        ints("time_features", lambda v: network.LatentDiT(8, 4, 1, time_features=v), low=2),
        ints("time_hidden", lambda v: network.LatentDiT(8, 4, 1, time_hidden=v)),
        bad("attention", lambda v: network.LatentDiT(8, 4, 1, attention=v), 3, "exact"),
        arrays("basis", lambda v: network.LatentDiT(8, 4, 1, basis=v), F.sd.basis, none_ok=True),
        bad("basis", lambda v: network.LatentDiT(8, 4, 1, basis=v), 2 * F.sd.basis, F.sd.basis[:, :2]),
        bad("train_basis", lambda v: network.LatentDiT(8, 4, 1, train_basis=v), "no", None),
        huge("blocks", lambda v: network.LatentDiT(8, 4, 1, blocks=v), 10**9),
        huge("D", lambda v: network.LatentDiT(v, 1, 1), 10**9),
        huge("ff_width", lambda v: network.LatentDiT(8, 4, 1, ff_width=v), 10**10),
        huge("heads", lambda v: network.LatentDiT(8, 4, 1, heads=v), 10**9),
    ],
    "network.LatentDiT.forward": [
        tensors("x", lambda v: F.model(v, 0.5), F.xt),
        bad("x", lambda v: F.model(v, 0.5), F.xt[:, :3], F.x[:5]),
        floats("t", lambda v: F.model(F.xt, v), low=0.0, low_open=True),
        bad("t", lambda v: F.model(F.xt, v), torch.full((5,), NAN), -F.tt, F.tt[:3], F.tt.long() + 1),
    ],
    "network.LatentDiT.f": [
        tensors("hbar", lambda v: F.model.f(v, 0.5), F.xt[:, :4]),
        bad("hbar", lambda v: F.model.f(v, 0.5), F.xt),
        floats("t", lambda v: F.model.f(F.xt[:, :4], v), low=0.0, low_open=True),
    ],
    "network.LatentDiT.transformer": [
        tensors("X", lambda v: F.model.transformer(v, F.tt), F.Xtok),
        bad("X", lambda v: F.model.transformer(v, F.tt), F.Xtok[:, :, :2]),
        bad("t", lambda v: F.model.transformer(F.Xtok, v), torch.full((5,), NAN), -F.tt, "0.5", None),
        bad("record", lambda v: F.model.transformer(F.Xtok, F.tt, v), "rec", 3),
    ],
    "network.LatentDiT.set_basis": [
        arrays("basis", lambda v: F.model.set_basis(v), F.sd.basis),
        bad("basis", lambda v: F.model.set_basis(v), 2 * F.sd.basis, F.sd.basis[:4]),
    ],
    "network.LatentDiT.set_attention": [bad("attention", lambda v: F.model.set_attention(v), 3, "exact")],
    "network.LatentDiT.keys_queries": [
        tensors("x", lambda v: F.model.keys_queries(v, 0.5), F.xt),
        floats("t", lambda v: F.model.keys_queries(F.xt, v), low=0.0, low_open=True),
    ],
    "network.LatentDiT.folded_weights": [floats("t", lambda v: F.model.folded_weights(v), low=0.0, low_open=True)],
    "network.LatentDiT.class_norms": [floats("t", lambda v: F.model.class_norms(v), low=0.0, low_open=True)],
    # ---- training
    "training.default_device": [devices(training.default_device)],
    "training.train_score_model": [
        arrays("x0", lambda v: _train(x0=v), F.x),
        ints("d0", lambda v: _train(d0=v), high=8),
        ints("patch", lambda v: _train(patch=v)),
        ints("steps", lambda v: _train(steps=v)),
        ints("batch_size", lambda v: _train(batch_size=v)),
        floats("lr", lambda v: _train(lr=v), low=0.0, low_open=True),
        floats("T0", lambda v: _train(T0=v), low=0.0, low_open=True),
        floats("T", lambda v: _train(T=v), low=0.0, low_open=True),
        choices("weighting", lambda v: _train(weighting=v)),
        choices("time_sampling", lambda v: _train(time_sampling=v)),
        bad("basis_init", lambda v: _train(basis_init=v), "nonsense", 3, F.sd.basis[:, :2], 2 * F.sd.basis),
        bad("train_basis", lambda v: _train(train_basis=v), "no"),
        seeds(lambda v: _train(seed=v)),
        devices(lambda v: _train(device=v)),
        ints("log_every", lambda v: _train(log_every=v)),
        bad("progress", lambda v: _train(progress=v), "yes", 2),
        huge("steps", lambda v: _train(steps=v), 10**12),
        huge("batch_size", lambda v: _train(batch_size=v), 10**10),
    ],
    "training.as_score_fn": [
        bad("model", training.as_score_fn, None, torch.nn.Identity(), _score),
        ints("batch_size", lambda v: training.as_score_fn(F.model, batch_size=v)),
        bad("x", lambda v: training.as_score_fn(F.model)(v, 0.5), F.x[:, :3], None),
        bad("t", lambda v: training.as_score_fn(F.model)(F.x, v), NAN, -1.0, "0.5"),
    ],
    # ---- sampling
    "sampling.time_grid": [
        floats("T0", lambda v: sampling.time_grid(v, 1.0, 5), low=0.0, low_open=True),
        floats("T", lambda v: sampling.time_grid(0.01, v, 5), low=0.0, low_open=True),
        bad("T0", lambda v: sampling.time_grid(v, 1.0, 5), 2.0),
        ints("steps", lambda v: sampling.time_grid(0.01, 1.0, v)),
        choices("kind", lambda v: sampling.time_grid(0.01, 1.0, 5, v)),
        huge("steps", lambda v: sampling.time_grid(0.01, 1.0, v), 10**10),
    ],
    "sampling.sample": [
        callables("score_fn", lambda v: sampling.sample(v, 3, 8, steps=2)),
        bad("score_fn", lambda v: sampling.sample(v, 3, 8, steps=2), lambda x, t: x[:, :1], lambda x, t: x * NAN),
        ints("n", lambda v: sampling.sample(_score, v, 8, steps=2)),
        ints("D", lambda v: sampling.sample(_score, 3, v, steps=2)),
        floats("T0", lambda v: sampling.sample(_score, 3, 8, steps=2, T0=v), low=0.0, low_open=True),
        floats("T", lambda v: sampling.sample(_score, 3, 8, steps=2, T=v), low=0.0, low_open=True),
        ints("steps", lambda v: sampling.sample(_score, 3, 8, steps=v)),
        choices("method", lambda v: sampling.sample(_score, 3, 8, steps=2, method=v)),
        choices("grid", lambda v: sampling.sample(_score, 3, 8, steps=2, grid=v)),
        seeds(lambda v: sampling.sample(_score, 3, 8, steps=2, seed=v)),
        arrays("y_T", lambda v: sampling.sample(_score, 3, 8, steps=2, y_T=v), F.x[:3], none_ok=True),
        bad("y_T", lambda v: sampling.sample(_score, 3, 8, steps=2, y_T=v), F.x[:4]),
        bad("return_path", lambda v: sampling.sample(_score, 3, 8, steps=2, return_path=v), "yes", None),
        ints("path_every", lambda v: sampling.sample(_score, 3, 8, steps=2, path_every=v)),
        huge("n", lambda v: sampling.sample(_score, v, 8, steps=2), 10**12),
        huge("steps", lambda v: sampling.sample(_score, 3, 8, steps=v, return_path=True), 10**10),
    ],
    "sampling.orthogonal_variance_recursion": [
        floats("T0", lambda v: sampling.orthogonal_variance_recursion(v, 1.0, 5), low=0.0, low_open=True),
        floats("T", lambda v: sampling.orthogonal_variance_recursion(0.01, v, 5), low=0.0, low_open=True),
        ints("steps", lambda v: sampling.orthogonal_variance_recursion(0.01, 1.0, v)),
        choices("method", lambda v: sampling.orthogonal_variance_recursion(0.01, 1.0, 5, method=v)),
        choices("grid", lambda v: sampling.orthogonal_variance_recursion(0.01, 1.0, 5, grid=v)),
        floats("start", lambda v: sampling.orthogonal_variance_recursion(0.01, 1.0, 5, start=v), low=0.0),
        huge("steps", lambda v: sampling.orthogonal_variance_recursion(0.01, 1.0, v), 10**10),
    ],
    # ---- metrics
    "metrics.Estimate": [floats("value", lambda v: metrics.Estimate(v, 0.1)),
                         floats("se", lambda v: metrics.Estimate(1.0, v), low=0.0)],
    "metrics.TVEstimate": [floats("value", lambda v: metrics.TVEstimate(v, 0.1, 0.0), low=0.0, high=1.0),
                           floats("se", lambda v: metrics.TVEstimate(0.5, v, 0.0), low=0.0),
                           floats("floor", lambda v: metrics.TVEstimate(0.5, 0.1, v), low=0.0, high=1.0)],
    "metrics.Leakage": [floats("variance", lambda v: metrics.Leakage(v, 0.1, 0.1), low=0.0),
                        floats("se", lambda v: metrics.Leakage(0.5, v, 0.1), low=0.0),
                        floats("max_eigenvalue", lambda v: metrics.Leakage(0.5, 0.1, v), low=0.0)],
    "metrics.aligned_latents": [
        arrays("samples", lambda v: metrics.aligned_latents(v, F.enc), F.x),
        bad("samples", lambda v: metrics.aligned_latents(v, F.enc), F.x[:, :3]),
        arrays("encoder", lambda v: metrics.aligned_latents(F.x, v), F.enc),
        bad("encoder", lambda v: metrics.aligned_latents(F.x, v), 2 * F.enc),
        bad("basis", lambda v: metrics.aligned_latents(F.x, F.enc, v), 2 * F.enc, F.enc[:, :2], "b"),
    ],
    "metrics.bin_probabilities": [
        bad("mixture", lambda v: metrics.bin_probabilities(v, [np.linspace(-3, 3, 5)]), None, F.sd),
        bad("edges", lambda v: metrics.bin_probabilities(F.mix1, v), [np.linspace(3, -3, 5)], "e", None,
            [np.array([0.0, NAN, 1.0])], [np.linspace(-3, 3, 5)] * 2),
        ints("nodes", lambda v: metrics.bin_probabilities(F.mix1, [np.linspace(-3, 3, 5)], nodes=v)),
        huge("nodes", lambda v: metrics.bin_probabilities(F.mix1, [np.linspace(-3, 3, 5)], nodes=v), 10**10),
        huge("edges", lambda v: metrics.bin_probabilities(data.default_mixture(2), v), [np.linspace(-3, 3, 10**5)] * 2),
    ],
    "metrics.tv_histogram": [
        arrays("samples", lambda v: metrics.tv_histogram(v, F.mix1, bins=2, n_boot=2), F.mix1.sample(10)),
        bad("reference", lambda v: metrics.tv_histogram(F.mix1.sample(10), v, bins=2, n_boot=2), None, F.mix, "r"),
        ints("bins", lambda v: metrics.tv_histogram(F.mix1.sample(10), F.mix1, bins=v, n_boot=2), low=2),
        bad("bounds", lambda v: metrics.tv_histogram(F.mix1.sample(10), F.mix1, bins=2, n_boot=2, bounds=v),
            [[1.0, -1.0]], [[NAN, 1.0]], "b"),
        ints("n_boot", lambda v: metrics.tv_histogram(F.mix1.sample(10), F.mix1, bins=2, n_boot=v)),
        seeds(lambda v: metrics.tv_histogram(F.mix1.sample(10), F.mix1, bins=2, n_boot=2, seed=v)),
        huge("n_boot", lambda v: metrics.tv_histogram(F.mix1.sample(10), F.mix1, bins=2, n_boot=v), 10**12),
    ],
    "metrics.mmd2": [
        arrays("a", lambda v: metrics.mmd2(v, F.x), F.x),
        arrays("b", lambda v: metrics.mmd2(F.x, v), F.x),
        bad("b", lambda v: metrics.mmd2(F.x, v), F.x[:, :3]),
        floats("bandwidth", lambda v: metrics.mmd2(F.x, F.x, bandwidth=v), low=0.0, low_open=True, none_ok=True),
        huge("a", lambda v: metrics.mmd2(v, v), np.broadcast_to(np.zeros(1), (10**6, 1))),
    ],
    "metrics.sliced_wasserstein": [
        arrays("a", lambda v: metrics.sliced_wasserstein(v, F.x, n_boot=2), F.x),
        arrays("b", lambda v: metrics.sliced_wasserstein(F.x, v, n_boot=2), F.x),
        ints("n_projections", lambda v: metrics.sliced_wasserstein(F.x, F.x, n_projections=v, n_boot=2)),
        ints("p", lambda v: metrics.sliced_wasserstein(F.x, F.x, p=v, n_boot=2), high=2),
        ints("n_boot", lambda v: metrics.sliced_wasserstein(F.x, F.x, n_boot=v)),
        seeds(lambda v: metrics.sliced_wasserstein(F.x, F.x, n_boot=2, seed=v)),
        huge("n_projections", lambda v: metrics.sliced_wasserstein(F.x, F.x, n_projections=v, n_boot=2), 10**12),
        huge("n_boot", lambda v: metrics.sliced_wasserstein(F.x, F.x, n_boot=v), 10**12),
    ],
    "metrics.orthogonal_leakage": [
        arrays("samples", lambda v: metrics.orthogonal_leakage(v, F.enc), F.x),
        arrays("encoder", lambda v: metrics.orthogonal_leakage(F.x, v), F.enc),
        bad("encoder", lambda v: metrics.orthogonal_leakage(F.x, v), 2 * F.enc, np.eye(8)),
    ],
    # ---- experiments
    "experiments.chzw_exponent": [
        ints("d0", experiments.chzw_exponent),
        floats("delta", lambda v: experiments.chzw_exponent(4, v), low=0.0, high=1.0, high_open=True),
    ],
    "experiments.mean_squared_score_error": [
        arrays("errors", lambda v: experiments.mean_squared_score_error(v, [0.1, 1.0]), [1.0, 0.5]),
        bad("errors", lambda v: experiments.mean_squared_score_error(v, [0.1, 1.0]), [1.0], [-1.0, 1.0]),
        arrays("t_grid", lambda v: experiments.mean_squared_score_error([1.0, 0.5], v), [0.1, 1.0]),
        bad("t_grid", lambda v: experiments.mean_squared_score_error([1.0, 0.5], v), [1.0, 0.1], [-1.0, 1.0]),
    ],
    "experiments.Run": [
        ints("n", lambda v: experiments.Run(n=v, D=8, seed=0, t_grid=[0.1, 1.0], errors=[1.0, 0.5],
                                           mean_sq_error=1.0, subspace_error=0.1, seconds=1.0)),
        ints("D", lambda v: experiments.Run(n=5, D=v, seed=0, t_grid=[0.1, 1.0], errors=[1.0, 0.5],
                                           mean_sq_error=1.0, subspace_error=0.1, seconds=1.0)),
        seeds(lambda v: experiments.Run(n=5, D=8, seed=v, t_grid=[0.1, 1.0], errors=[1.0, 0.5],
                                        mean_sq_error=1.0, subspace_error=0.1, seconds=1.0)),
        arrays("errors", lambda v: experiments.Run(n=5, D=8, seed=0, t_grid=[0.1, 1.0], errors=v,
                                                  mean_sq_error=1.0, subspace_error=0.1, seconds=1.0), [1.0, 0.5]),
        bad("errors", lambda v: experiments.Run(n=5, D=8, seed=0, t_grid=[0.1, 1.0], errors=v,
                                               mean_sq_error=1.0, subspace_error=0.1, seconds=1.0), [1.0]),
        floats("mean_sq_error", lambda v: experiments.Run(n=5, D=8, seed=0, t_grid=[0.1, 1.0], errors=[1.0, 0.5],
                                                         mean_sq_error=v, subspace_error=0.1, seconds=1.0), low=0.0),
        floats("seconds", lambda v: experiments.Run(n=5, D=8, seed=0, t_grid=[0.1, 1.0], errors=[1.0, 0.5],
                                                   mean_sq_error=1.0, subspace_error=0.1, seconds=v), low=0.0),
    ],
    "experiments.train_across_n": [
        bad("data", lambda v: experiments.train_across_n(v, [10], patch=1, steps=1), None, F.mix),
        bad("ns", lambda v: experiments.train_across_n(F.sd, v, patch=1, steps=1), [], [0], ["10"], [True], 10),
        ints("patch", lambda v: experiments.train_across_n(F.sd, [10], patch=v, steps=1)),
        bad("seeds", lambda v: experiments.train_across_n(F.sd, [10], patch=1, seeds=v, steps=1), [-1], [], [1.5], 0),
        floats("T0", lambda v: experiments.train_across_n(F.sd, [10], patch=1, T0=v, steps=1), low=0.0,
               low_open=True),
        floats("T", lambda v: experiments.train_across_n(F.sd, [10], patch=1, T=v, steps=1), low=0.0, low_open=True),
        bad("t_grid", lambda v: experiments.train_across_n(F.sd, [10], patch=1, t_grid=v, steps=1), [1.0, 0.1],
            [NAN, 1.0], "t"),
        ints("n_eval", lambda v: experiments.train_across_n(F.sd, [10], patch=1, n_eval=v, steps=1)),
        bad("eval_seed", lambda v: experiments.train_across_n(F.sd, [10], patch=1, eval_seed=v, steps=1), -1, 1.5),
        bad("keep_models", lambda v: experiments.train_across_n(F.sd, [10], patch=1, keep_models=v, steps=1), "y"),
        devices(lambda v: experiments.train_across_n(F.sd, [10], patch=1, device=v, steps=1)),
        bad("train", lambda v: experiments.train_across_n(F.sd, [10], patch=1, train=v, steps=1), 3, "t"),
        huge("ns", lambda v: experiments.train_across_n(F.sd, v, patch=1, steps=1), [10**12]),
    ],
    "experiments.by_n": [
        bad("runs", experiments.by_n, [], None, [1, 2], "runs"),
        choices("attribute", lambda v: experiments.by_n(F.runs, v)),
    ],
    "experiments.LogLogFit": [
        floats("slope", lambda v: experiments.LogLogFit(v, 0.1, 0.0)),
        bad("se", lambda v: experiments.LogLogFit(1.0, v, 0.0), "1.0", True, None, INF, -1.0),
        floats("intercept", lambda v: experiments.LogLogFit(1.0, 0.1, v)),
        ints("dof", lambda v: experiments.LogLogFit(1.0, 0.1, 0.0, v), low=0),
    ],
    "experiments.LogLogFit.interval": [
        floats("level", lambda v: experiments.LogLogFit(1.0, 0.1, 0.0, 3).interval(v), low=0.0, high=1.0,
               low_open=True, high_open=True),
        bad("dof", lambda v: experiments.LogLogFit(1.0, 0.1, 0.0, v).interval(0.9), 0),
    ],
    "experiments.loglog_fit": [
        arrays("x", lambda v: experiments.loglog_fit(v, [1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]),
        arrays("y", lambda v: experiments.loglog_fit([1.0, 2.0, 3.0], v), [1.0, 2.0, 3.0]),
        bad("x", lambda v: experiments.loglog_fit(v, [1.0, 2.0, 3.0]), [2.0, 2.0, 2.0], [1.0, 2.0], [-1.0, 1.0, 2.0]),
        bad("y", lambda v: experiments.loglog_fit([1.0, 2.0, 3.0], v), [0.0, 1.0, 2.0]),
    ],
    "experiments.Recovery": [
        floats("subspace_error", lambda v: experiments.Recovery(v, metrics.Estimate(0.1, 0.01), "mmd2",
                                                                metrics.Leakage(0.1, 0.01, 0.1), F.x), low=0.0),
        bad("latent", lambda v: experiments.Recovery(0.1, v, "mmd2", metrics.Leakage(0.1, 0.01, 0.1), F.x), 0.1, None),
        choices("latent_metric", lambda v: experiments.Recovery(0.1, metrics.Estimate(0.1, 0.01), v,
                                                                metrics.Leakage(0.1, 0.01, 0.1), F.x)),
        bad("leakage", lambda v: experiments.Recovery(0.1, metrics.Estimate(0.1, 0.01), "mmd2", v, F.x), 0.1, None),
        arrays("samples", lambda v: experiments.Recovery(0.1, metrics.Estimate(0.1, 0.01), "mmd2",
                                                         metrics.Leakage(0.1, 0.01, 0.1), v), F.x),
    ],
    "experiments.LogLogFit.interval": [
        floats("level", lambda v: F.fit.interval(v), low=0.0, high=1.0, low_open=True, high_open=True),
    ],
    "experiments.uniform_attention": [
        bad("v", lambda v: experiments.uniform_attention(F.Q, F.K, v), "abc", None, torch.zeros(3)),
    ],
    "experiments.swapped_attention": [
        bad("model", lambda v: experiments.swapped_attention(v, experiments.uniform_attention).__enter__(), None, "m"),
        callables("attention", lambda v: experiments.swapped_attention(F.model, v).__enter__()),
    ],
    "experiments.attention_weights": [
        bad("model", lambda v: experiments.attention_weights(v, F.x, 0.5), None, "m"),
        arrays("x", lambda v: experiments.attention_weights(F.model, v, 0.5), F.x),
        bad("x", lambda v: experiments.attention_weights(F.model, v, 0.5), F.x[:, :3]),
        floats("t", lambda v: experiments.attention_weights(F.model, F.x, v), low=0.0, low_open=True),
    ],
    "experiments.sample_quality": [
        arrays("samples", lambda v: experiments.sample_quality(v, F.digits.x_test[:20], F.clf), F.digits.x_test[:20]),
        arrays("reference", lambda v: experiments.sample_quality(F.digits.x_test[:20], v, F.clf),
               F.digits.x_test[:20]),
        bad("reference", lambda v: experiments.sample_quality(F.digits.x_test[:20], v, F.clf), F.x),
        bad("classifier", lambda v: experiments.sample_quality(F.digits.x_test[:20], F.digits.x_test[:20], v), None, 3),
        seeds(lambda v: experiments.sample_quality(F.digits.x_test[:20], F.digits.x_test[:20], F.clf, seed=v)),
    ],
    "experiments.distribution_recovery": [
        callables("score_fn", lambda v: experiments.distribution_recovery(v, F.enc, F.sd, steps=2, n=20)),
        arrays("encoder", lambda v: experiments.distribution_recovery(_score, v, F.sd, steps=2, n=20), F.enc),
        bad("encoder", lambda v: experiments.distribution_recovery(_score, v, F.sd, steps=2, n=20), 2 * F.enc,
            F.enc[:, :2]),
        bad("data", lambda v: experiments.distribution_recovery(_score, F.enc, v, steps=2, n=20), None, F.mix),
        floats("T0", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, T0=v, steps=2, n=20), low=0.0,
               low_open=True),
        floats("T", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, T=v, steps=2, n=20), low=0.0,
               low_open=True),
        ints("steps", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=v, n=20)),
        ints("n", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=2, n=v)),
        choices("method", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=2, n=20, method=v)),
        seeds(lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=2, n=20, seed=v)),
        ints("bins", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=2, n=20, bins=v), low=2),
        huge("n", lambda v: experiments.distribution_recovery(_score, F.enc, F.sd, steps=2, n=v), 10**12),
    ],
    # ---- instances
    "instances.AttentionInstance": [
        tensors("Q", lambda v: instances.AttentionInstance(v, F.K, F.V, 1.0), F.Q),
        tensors("K", lambda v: instances.AttentionInstance(F.Q, v, F.V, 1.0), F.K),
        tensors("V", lambda v: instances.AttentionInstance(F.Q, F.K, v, 1.0), F.V),
        bad("K", lambda v: instances.AttentionInstance(F.Q, v, F.V, 1.0), F.K[..., :2]),
        floats("B", lambda v: instances.AttentionInstance(F.Q, F.K, F.V, v), low=0.0, low_open=True),
        bad("B", lambda v: instances.AttentionInstance(F.Q, F.K, F.V, v), 0.5),
    ],
    "instances.uniform_instance": [
        ints("L", lambda v: instances.uniform_instance(v, 3, 1.0)),
        ints("d", lambda v: instances.uniform_instance(6, v, 1.0)),
        floats("B", lambda v: instances.uniform_instance(6, 3, v), low=0.0, low_open=True),
        ints("d_v", lambda v: instances.uniform_instance(6, 3, 1.0, d_v=v), none_ok=True),
        ints("heads", lambda v: instances.uniform_instance(6, 3, 1.0, heads=v), none_ok=True),
        seeds(lambda v: instances.uniform_instance(6, 3, 1.0, seed=v)),
        bad("dtype", lambda v: instances.uniform_instance(6, 3, 1.0, dtype=v), torch.int64, "float32", None),
        devices(lambda v: instances.uniform_instance(6, 3, 1.0, device=v)),
        huge("L", lambda v: instances.uniform_instance(v, 3, 1.0), 10**12),
    ],
    "instances.PlantedPair": [
        tensors("q", lambda v: instances.PlantedPair(v, F.planted.K, F.planted.planted, F.planted.distance,
                                                     F.planted.distances, 1.0), F.planted.q),
        ints("planted", lambda v: instances.PlantedPair(F.planted.q, F.planted.K, v, F.planted.distance,
                                                        F.planted.distances, 1.0), low=0, high=7),
        floats("B", lambda v: instances.PlantedPair(F.planted.q, F.planted.K, F.planted.planted, F.planted.distance,
                                                    F.planted.distances, v), low=0.0, low_open=True),
    ],
    **{f"instances.{name}": [
        ints("L", lambda v, f=getattr(instances, name): f(v, 4, 1.0), low=2),
        ints("d", lambda v, f=getattr(instances, name): f(8, v, 1.0)),
        floats("B", lambda v, f=getattr(instances, name): f(8, 4, v), low=0.0, low_open=True),
        ints("distance", lambda v, f=getattr(instances, name): f(8, 4, 1.0, distance=v), low=0, high=3, none_ok=True),
        seeds(lambda v, f=getattr(instances, name): f(8, 4, 1.0, seed=v)),
        bad("dtype", lambda v, f=getattr(instances, name): f(8, 4, 1.0, dtype=v), torch.int64, "float64"),
        devices(lambda v, f=getattr(instances, name): f(8, 4, 1.0, device=v)),
        huge("L", lambda v, f=getattr(instances, name): f(v, 4, 1.0), 10**12),
    ] for name in ("planted_pair_instance", "planted_batch_instance")},
    "instances.PlantedBatch": [
        tensors("Q", lambda v: instances.PlantedBatch(v, F.batch.K, F.batch.query, F.batch.key, F.batch.distance, 1.0),
                F.batch.Q),
        ints("query", lambda v: instances.PlantedBatch(F.batch.Q, F.batch.K, v, F.batch.key, F.batch.distance, 1.0),
             low=0, high=7),
        ints("key", lambda v: instances.PlantedBatch(F.batch.Q, F.batch.K, F.batch.query, v, F.batch.distance, 1.0),
             low=0, high=7),
        ints("distance", lambda v: instances.PlantedBatch(F.batch.Q, F.batch.K, F.batch.query, F.batch.key, v, 1.0),
             low=0, high=4),
        floats("B", lambda v: instances.PlantedBatch(F.batch.Q, F.batch.K, F.batch.query, F.batch.key,
                                                     F.batch.distance, v), low=0.0, low_open=True),
        bad("B", lambda v: instances.PlantedBatch(F.batch.Q, F.batch.K, F.batch.query, F.batch.key,
                                                  F.batch.distance, v), 0.5),
    ],
    "instances.planted_weight_share": [
        bad("instance", instances.planted_weight_share, None, F.inst),
        floats("scale", lambda v: instances.planted_weight_share(F.planted, scale=v), low=0.0, low_open=True,
               none_ok=True),
    ],
    # ---- attention
    "attention.feature_rank": [
        ints("d", lambda v: attention.feature_rank(v, 2)),
        ints("degree", lambda v: attention.feature_rank(3, v), low=0),
        huge("degree", lambda v: attention.feature_rank(10**9, v), 10**9),
    ],
    "attention.monomial_exponents": [
        ints("d", lambda v: attention.monomial_exponents(v, 2)),
        ints("degree", lambda v: attention.monomial_exponents(3, v), low=0),
        huge("d", lambda v: attention.monomial_exponents(v, 8), 10**5),
    ],
    "attention.feature_coefficients": [
        ints("d", lambda v: attention.feature_coefficients(v, 2, [1.0, 1.0, 0.5])),
        ints("degree", lambda v: attention.feature_coefficients(3, v, [1.0, 1.0, 0.5]), low=0),
        arrays("coefficients", lambda v: attention.feature_coefficients(3, 2, v), [1.0, 1.0, 0.5]),
        bad("coefficients", lambda v: attention.feature_coefficients(3, 2, v), [1.0, 1.0]),
    ],
    "attention.exp_feature_maps": [
        tensors("Q", lambda v: attention.exp_feature_maps(v, F.K, 2), F.Q),
        tensors("K", lambda v: attention.exp_feature_maps(F.Q, v, 2), F.K),
        bad("K", lambda v: attention.exp_feature_maps(F.Q, v, 2), F.K[..., :2], F.K[:1]),
        ints("degree", lambda v: attention.exp_feature_maps(F.Q, F.K, v), low=0),
        floats("radius", lambda v: attention.exp_feature_maps(F.Q, F.K, 2, v), low=0.0, low_open=True,
               none_ok=True),
        floats("scale", lambda v: attention.exp_feature_maps(F.Q, F.K, 2, scale=v), low=0.0, low_open=True,
               none_ok=True),
        choices("kind", lambda v: attention.exp_feature_maps(F.Q, F.K, 2, kind=v)),
        huge("degree", lambda v: attention.exp_feature_maps(torch.zeros(4096, 64), torch.zeros(4096, 64), v), 8),
    ],
    "attention.logit_bound": [
        tensors("Q", lambda v: attention.logit_bound(v, F.K), F.Q),
        tensors("K", lambda v: attention.logit_bound(F.Q, v), F.K),
        floats("scale", lambda v: attention.logit_bound(F.Q, F.K, v), low=0.0, low_open=True, none_ok=True),
        bad("tight", lambda v: attention.logit_bound(F.Q, F.K, tight=v), "yes", None, 2),
    ],
    "attention.reference_attention": [
        tensors("Q", lambda v: attention.reference_attention(v, F.K, F.V), F.Q),
        tensors("K", lambda v: attention.reference_attention(F.Q, v, F.V), F.K),
        tensors("V", lambda v: attention.reference_attention(F.Q, F.K, v), F.V),
        bad("V", lambda v: attention.reference_attention(F.Q, F.K, v), F.V[..., :3, :], torch.zeros(2, 6, 3, 2)),
        floats("scale", lambda v: attention.reference_attention(F.Q, F.K, F.V, scale=v), low=0.0, low_open=True,
               none_ok=True),
        bad("rows", lambda v: attention.reference_attention(F.Q, F.K, F.V, rows=v), torch.tensor([0, 99]),
            torch.tensor([0.5]), "r", torch.tensor([-7])),
        ints("chunk", lambda v: attention.reference_attention(F.Q, F.K, F.V, chunk=v)),
    ],
    "attention.sdpa_attention": [
        tensors("Q", lambda v: attention.sdpa_attention(v, F.K, F.V), F.Q),
        tensors("V", lambda v: attention.sdpa_attention(F.Q, F.K, v), F.V),
        bad("V", lambda v: attention.sdpa_attention(F.Q, F.K, v), F.V.float(), F.V[..., :3, :]),
        floats("scale", lambda v: attention.sdpa_attention(F.Q, F.K, F.V, scale=v), low=0.0, low_open=True,
               none_ok=True),
    ],
    "attention.fast_attention": [
        tensors("Q", lambda v: attention.fast_attention(v, F.K, F.V, 3), F.Q),
        tensors("K", lambda v: attention.fast_attention(F.Q, v, F.V, 3), F.K),
        tensors("V", lambda v: attention.fast_attention(F.Q, F.K, v, 3), F.V),
        bad("K", lambda v: attention.fast_attention(F.Q, v, F.V, 3), torch.zeros(2, 6, 0), F.K[..., :2]),
        ints("degree", lambda v: attention.fast_attention(F.Q, F.K, F.V, v), low=0),
        floats("radius", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, v), low=0.0, low_open=True,
               none_ok=True),
        floats("scale", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, scale=v), low=0.0, low_open=True,
               none_ok=True),
        choices("kind", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, kind=v)),
        ints("chunk", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, chunk=v), none_ok=True),
        floats("max_rel_error", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, max_rel_error=v), low=0.0,
               high=1.0, low_open=True),
        choices("on_cancel", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, on_cancel=v)),
        choices("precision", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, precision=v)),
        choices("kernel", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, kernel=v)),
        bad("Q", lambda v: attention.fast_attention(v, F.K, F.V, 3), F.Q.clone().requires_grad_(True)),  # no backward
        bad("return_info", lambda v: attention.fast_attention(F.Q, F.K, F.V, 3, return_info=v), "yes", None),
        huge("degree", lambda v: attention.fast_attention(torch.zeros(4096, 64), torch.zeros(4096, 64),
                                                          torch.zeros(4096, 1), v), 12),
    ],
    "attention.performer_features": [
        tensors("Q", lambda v: attention.performer_features(v, F.K, 8), F.Q),
        tensors("K", lambda v: attention.performer_features(F.Q, v, 8), F.K),
        ints("num_features", lambda v: attention.performer_features(F.Q, F.K, v)),
        floats("scale", lambda v: attention.performer_features(F.Q, F.K, 8, scale=v), low=0.0, low_open=True,
               none_ok=True),
        bad("orthogonal", lambda v: attention.performer_features(F.Q, F.K, 8, orthogonal=v), "yes", None),
        seeds(lambda v: attention.performer_features(F.Q, F.K, 8, seed=v)),
        huge("num_features", lambda v: attention.performer_features(F.Q, F.K, v), 10**9),
        huge("num_features", lambda v: attention.performer_features(torch.zeros(1, 1), torch.zeros(1, 1), v), 10**9),
        huge("num_features", lambda v: attention.performer_features(torch.zeros(1, 1), torch.zeros(1, 1), v),
             10**7),
    ],
    "attention.performer_attention": [
        tensors("V", lambda v: attention.performer_attention(F.Q, F.K, v, 8), F.V),
        ints("num_features", lambda v: attention.performer_attention(F.Q, F.K, F.V, v)),
        seeds(lambda v: attention.performer_attention(F.Q, F.K, F.V, 8, seed=v)),
        huge("num_features", lambda v: attention.performer_attention(F.Q, F.K, F.V, v), 10**9),
    ],
    # ---- polynomial
    "polynomial.exp_poly_coefficients": [
        floats("radius", lambda v: polynomial.exp_poly_coefficients(v, 6), low=0.0, low_open=True),
        ints("degree", lambda v: polynomial.exp_poly_coefficients(1.0, v), low=0),
        choices("kind", lambda v: polynomial.exp_poly_coefficients(1.0, 6, v)),
        bad("radius", lambda v: polynomial.exp_poly_coefficients(v, 60), 1e6),
    ],
    "polynomial.exp_poly_eval": [
        arrays("coefficients", lambda v: polynomial.exp_poly_eval(v, [0.0, 0.5]), [1.0, 1.0, 0.5]),
        bad("coefficients", lambda v: polynomial.exp_poly_eval(v, [0.0, 0.5]), [], [[1.0, 1.0]]),
        arrays("s", lambda v: polynomial.exp_poly_eval([1.0, 1.0, 0.5], v), [0.0, 0.5], batch_ok=True),
    ],
    "polynomial.exp_poly_error": [
        floats("radius", lambda v: polynomial.exp_poly_error(v, 6), low=0.0, low_open=True),
        ints("degree", lambda v: polynomial.exp_poly_error(1.0, v), low=0),
        choices("kind", lambda v: polynomial.exp_poly_error(1.0, 6, v)),
        bad("relative", lambda v: polynomial.exp_poly_error(1.0, 6, relative=v), "yes", None),
        floats("bound", lambda v: polynomial.exp_poly_error(1.0, 6, bound=v), low=0.0, low_open=True, none_ok=True),
        ints("n_grid", lambda v: polynomial.exp_poly_error(1.0, 6, n_grid=v), low=2),
        huge("n_grid", lambda v: polynomial.exp_poly_error(1.0, 6, n_grid=v), 10**11),
    ],
    "polynomial.degree_for_error": [
        floats("radius", lambda v: polynomial.degree_for_error(v, 1e-3), low=0.0, low_open=True),
        floats("target", lambda v: polynomial.degree_for_error(1.0, v), low=0.0, low_open=True),
        choices("kind", lambda v: polynomial.degree_for_error(1.0, 1e-3, v)),
        bad("relative", lambda v: polynomial.degree_for_error(1.0, 1e-3, relative=v), "yes", None),
        ints("max_degree", lambda v: polynomial.degree_for_error(1.0, 1e-3, max_degree=v), low=0, high=60),
        ints("length", lambda v: polynomial.degree_for_error(1.0, 1e-3, dtype="float32", length=v)),
        ints("d", lambda v: polynomial.degree_for_error(1.0, 1e-3, dtype="float32", d=v), none_ok=True),
    ],
    "polynomial.aggarwal_alman_degree": [
        floats("radius", lambda v: polynomial.aggarwal_alman_degree(v, 1e-3), low=0.0, low_open=True),
        floats("target", lambda v: polynomial.aggarwal_alman_degree(1.0, v), low=0.0, high=1.0, low_open=True,
               high_open=True),
    ],
    # ---- complexity
    "complexity.rank": [
        ints("d", lambda v: complexity.rank(v, 2)),
        ints("degree", lambda v: complexity.rank(3, v), low=0),
        huge("degree", lambda v: complexity.rank(10**9, v), 10**9),
    ],
    "complexity.eps_for_output_error": [floats("delta", complexity.eps_for_output_error, low=0.0, high=1.0,
                                               low_open=True, high_open=True)],
    "complexity.degree_needed": [
        floats("B", lambda v: complexity.degree_needed(v, 1e-3), low=0.0, low_open=True),
        floats("delta", lambda v: complexity.degree_needed(1.0, v), low=0.0, high=1.0, low_open=True,
               high_open=True),
        choices("kind", lambda v: complexity.degree_needed(1.0, 1e-3, v)),
        floats("scale_times_d", lambda v: complexity.degree_needed(1.0, 1e-3, scale_times_d=v), low=0.0,
               low_open=True),
    ],
    "complexity.exact_cost": [
        ints("L", lambda v: complexity.exact_cost(v, 4)),
        ints("d", lambda v: complexity.exact_cost(8, v)),
        ints("d_v", lambda v: complexity.exact_cost(8, 4, v), none_ok=True),
    ],
    "complexity.fast_cost": [
        ints("L", lambda v: complexity.fast_cost(v, 4, 3)),
        ints("d", lambda v: complexity.fast_cost(8, v, 3)),
        ints("degree", lambda v: complexity.fast_cost(8, 4, v), low=0),
        ints("d_v", lambda v: complexity.fast_cost(8, 4, 3, v), none_ok=True),
        huge("degree", lambda v: complexity.fast_cost(10, 10**9, v), 10**9),
    ],
    "complexity.cost_ratio": [
        ints("L", lambda v: complexity.cost_ratio(v, 4, 1.0)),
        ints("d", lambda v: complexity.cost_ratio(8, v, 1.0)),
        floats("B", lambda v: complexity.cost_ratio(8, 4, v), low=0.0, low_open=True),
        floats("delta", lambda v: complexity.cost_ratio(8, 4, 1.0, v), low=0.0, high=1.0, low_open=True,
               high_open=True),
        choices("kind", lambda v: complexity.cost_ratio(8, 4, 1.0, kind=v)),
    ],
    "complexity.crossover_B": [
        ints("L", lambda v: complexity.crossover_B(v, 4)),
        bad("d", lambda v: complexity.crossover_B(1024, v), 0, "4", None, 2.5, lambda L: 0, lambda L: "x"),
        bad("delta", lambda v: complexity.crossover_B(1024, 4, v), 0.0, NAN, "0.1", 1.5, lambda L: -1.0),
        choices("kind", lambda v: complexity.crossover_B(1024, 4, kind=v)),
        floats("B_max", lambda v: complexity.crossover_B(1024, 4, B_max=v), low=0.0, low_open=True),
        floats("tol", lambda v: complexity.crossover_B(1024, 4, tol=v), low=0.0, low_open=True),
        huge("tol", lambda v: complexity.crossover_B(1024, 2, tol=v), 1e-300),
    ],
    "complexity.phase_diagram": [
        bad("Ls", lambda v: complexity.phase_diagram(v, [1.0, 2.0], 4), [], [0, 8], ["8"], [8.5], "Ls", None),
        bad("Bs", lambda v: complexity.phase_diagram([8, 16], v, 4), [], [0.0], [NAN], ["1"], None),
        bad("d", lambda v: complexity.phase_diagram([8, 16], [1.0, 2.0], v), 0, "4", lambda L: 0),
        bad("delta", lambda v: complexity.phase_diagram([8, 16], [1.0, 2.0], 4, v), 0.0, NAN, "0.1"),
        choices("kind", lambda v: complexity.phase_diagram([8, 16], [1.0, 2.0], 4, kind=v)),
        huge("Ls", lambda v: complexity.phase_diagram(v, [1.0], 4), range(2, 10**9)),
    ],
    "complexity.fit_sqrt_log": [
        arrays("Ls", lambda v: complexity.fit_sqrt_log(v, [1.0, 1.2]), [8.0, 16.0]),
        bad("Ls", lambda v: complexity.fit_sqrt_log(v, [1.0, 1.2]), [1.0, 16.0], [8.0]),
        arrays("Bstar", lambda v: complexity.fit_sqrt_log([8.0, 16.0], v), [1.0, 1.2]),
        bad("Bstar", lambda v: complexity.fit_sqrt_log([8.0, 16.0], v), [1.0], [-1.0, 1.0]),
    ],
    # ---- efficient
    "efficient.poly_features": [
        tensors("Q", lambda v: efficient.poly_features(v, F.K, 2, 1.0), F.Q),
        tensors("K", lambda v: efficient.poly_features(F.Q, v, 2, 1.0), F.K),
        ints("degree", lambda v: efficient.poly_features(F.Q, F.K, v, 1.0), low=0),
        floats("radius", lambda v: efficient.poly_features(F.Q, F.K, 2, v), low=0.0, low_open=True),
        floats("scale", lambda v: efficient.poly_features(F.Q, F.K, 2, 1.0, scale=v), low=0.0, low_open=True,
               none_ok=True),
        choices("kind", lambda v: efficient.poly_features(F.Q, F.K, 2, 1.0, kind=v)),
        huge("degree", lambda v: efficient.poly_features(torch.zeros(4096, 64), torch.zeros(4096, 64), v, 1.0), 8),
    ],
    "efficient.factorised_attention": [
        tensors("Q", lambda v: efficient.factorised_attention(v, F.K, F.V, 2, 1.0), F.Q),
        tensors("V", lambda v: efficient.factorised_attention(F.Q, F.K, v, 2, 1.0), F.V),
        bad("V", lambda v: efficient.factorised_attention(F.Q, F.K, v, 2, 1.0), F.V[..., :3, :]),
        ints("degree", lambda v: efficient.factorised_attention(F.Q, F.K, F.V, v, 1.0), low=0),
        floats("radius", lambda v: efficient.factorised_attention(F.Q, F.K, F.V, 2, v), low=0.0, low_open=True),
        choices("kind", lambda v: efficient.factorised_attention(F.Q, F.K, F.V, 2, 1.0, kind=v)),
    ],
    "efficient.bound_entries": [
        tensors("X", lambda v: efficient.bound_entries(v, 1.0), F.Q, batch_ok=True),
        floats("bound", lambda v: efficient.bound_entries(F.Q, v), low=0.0, low_open=True),
    ],
    "efficient.degree_for_radius": [
        floats("radius", lambda v: efficient.degree_for_radius(v), low=0.0, low_open=True),
        floats("target", lambda v: efficient.degree_for_radius(1.0, v), low=0.0, low_open=True),
        choices("kind", lambda v: efficient.degree_for_radius(1.0, kind=v)),
        ints("max_degree", lambda v: efficient.degree_for_radius(1.0, max_degree=v), low=0, high=60),
    ],
    "efficient.PolynomialAttention": [
        ints("degree", lambda v: efficient.PolynomialAttention(v), low=0, none_ok=True),
        floats("target", lambda v: efficient.PolynomialAttention(target=v), low=0.0, low_open=True),
        floats("bound", lambda v: efficient.PolynomialAttention(bound=v), low=0.0, low_open=True, none_ok=True),
        ints("max_degree", lambda v: efficient.PolynomialAttention(max_degree=v), low=0, high=60),
        floats("guard", lambda v: efficient.PolynomialAttention(guard=v), low=0.0, high=1.0, low_open=True),
        floats("scale", lambda v: efficient.PolynomialAttention(scale=v), low=0.0, low_open=True, none_ok=True),
        choices("kind", lambda v: efficient.PolynomialAttention(kind=v)),
    ],
    "efficient.PolynomialAttention.forward": [
        tensors("q", lambda v: _pa(q=v), F.Q),
        tensors("k", lambda v: _pa(k=v), F.K),
        tensors("v", lambda v: _pa(v=v), F.V),
        bad("k", lambda v: _pa(k=v), F.K[..., :2], F.K.float()),
    ],
    "efficient.BoundedExactAttention": [
        floats("bound", lambda v: efficient.BoundedExactAttention(v), low=0.0, low_open=True, none_ok=True),
        floats("scale", lambda v: efficient.BoundedExactAttention(scale=v), low=0.0, low_open=True, none_ok=True),
    ],
    "efficient.BoundedExactAttention.forward": [
        tensors("q", lambda v: efficient.BoundedExactAttention(1.0)(v, F.K, F.V), F.Q),
        tensors("k", lambda v: efficient.BoundedExactAttention(1.0)(F.Q, v, F.V), F.K),
        tensors("v", lambda v: efficient.BoundedExactAttention(1.0)(F.Q, F.K, v), F.V),
    ],
    "efficient.entry_bound": [
        bad("model", lambda v: efficient.entry_bound(v, F.xt, 0.5), None, torch.nn.Linear(2, 2), "m"),
        tensors("x", lambda v: efficient.entry_bound(F.model, v, 0.5), F.xt),
        floats("t", lambda v: efficient.entry_bound(F.model, F.xt, v), low=0.0, low_open=True),
        floats("bound", lambda v: efficient.entry_bound(F.model, F.xt, 0.5, bound=v), low=0.0, low_open=True,
               none_ok=True),
    ],
    "efficient.attention_gap": [
        bad("model", lambda v: efficient.attention_gap(v, F.xt, 0.5, network.ExactAttention()), None, "m"),
        tensors("x", lambda v: efficient.attention_gap(F.model, v, 0.5, network.ExactAttention()), F.xt),
        floats("t", lambda v: efficient.attention_gap(F.model, F.xt, v, network.ExactAttention()), low=0.0,
               low_open=True),
        bad("attention", lambda v: efficient.attention_gap(F.model, F.xt, 0.5, v), None, 3, "exact"),
        floats("bound", lambda v: efficient.attention_gap(F.model, F.xt, 0.5, network.ExactAttention(), bound=v),
               low=0.0, low_open=True, none_ok=True),
    ],
    "efficient.time_training_step": [
        bad("model", lambda v: efficient.time_training_step(v, F.xt, repeats=1), None, torch.nn.Identity(), "m"),
        tensors("x0", lambda v: efficient.time_training_step(F.model, v, repeats=1), F.xt),
        bad("x0", lambda v: efficient.time_training_step(F.model, v, repeats=1), F.xt[:, :3], F.x[:5]),
        ints("repeats", lambda v: efficient.time_training_step(F.model, F.xt, repeats=v)),
        floats("T0", lambda v: efficient.time_training_step(F.model, F.xt, repeats=1, T0=v), low=0.0,
               low_open=True),
        floats("T", lambda v: efficient.time_training_step(F.model, F.xt, repeats=1, T=v), low=0.0, low_open=True),
        bad("T0", lambda v: efficient.time_training_step(F.model, F.xt, repeats=1, T0=v), 9.0),
        seeds(lambda v: efficient.time_training_step(F.model, F.xt, repeats=1, seed=v)),
        huge("repeats", lambda v: efficient.time_training_step(F.model, F.xt, repeats=v), 10**12),
    ],
    "efficient.time_attention": [
        bad("attention", lambda v: efficient.time_attention(v, n=1, heads=1, L=4, m=2, repeats=1), None, 3),
        ints("n", lambda v: efficient.time_attention(network.ExactAttention(), n=v, heads=1, L=4, m=2, repeats=1)),
        ints("heads", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=v, L=4, m=2,
                                                         repeats=1)),
        ints("L", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=v, m=2, repeats=1)),
        ints("m", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=v, repeats=1)),
        bad("backward", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=2,
                                                           repeats=1, backward=v), "yes", None),
        ints("repeats", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=2,
                                                           repeats=v)),
        seeds(lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=2, repeats=1,
                                                 seed=v)),
        floats("bound", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=2,
                                                           repeats=1, bound=v), low=0.0, low_open=True),
        devices(lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=4, m=2, repeats=1,
                                                   device=v)),
        huge("L", lambda v: efficient.time_attention(network.ExactAttention(), n=1, heads=1, L=v, m=2, repeats=1),
             10**10),
    ],
    # ---- gradients
    "gradients.GradientProblem": [
        tensors("A1", lambda v: _replace(F.prob, A1=v), F.prob.A1),
        tensors("X", lambda v: _replace(F.prob, X=v), F.prob.X),
        bad("Y", lambda v: _replace(F.prob, Y=v), F.prob.Y[:, :1], F.prob.Y[:1]),
        bad("E", lambda v: _replace(F.prob, E=v), F.prob.E[:, :1], F.prob.E.float()),
        bad("A2", lambda v: _replace(F.prob, A2=v), F.prob.A2[:, :1], torch.zeros(0, 2, dtype=torch.float64)),
        bad("X_star", lambda v: _replace(F.prob, X_star=v), F.prob.X[:1], "x"),
    ],
    "gradients.GradientProblem.to": [
        bad("dtype", lambda v: F.prob.to(dtype=v), torch.int64, "float32", 3),
        devices(lambda v: F.prob.to(device=v)),
    ],
    "gradients.GradientProblem.with_X": [
        tensors("X", lambda v: F.prob.with_X(v), F.prob.X, int_ok=True),
        bad("X", lambda v: F.prob.with_X(v), F.prob.X[:1]),
    ],
    "gradients.random_problem": [
        ints("L", lambda v: gradients.random_problem(v, 2, device="cpu")),
        ints("d", lambda v: gradients.random_problem(4, v, device="cpu")),
        floats("B", lambda v: gradients.random_problem(4, 2, v, device="cpu"), low=0.0, low_open=True),
        ints("M", lambda v: gradients.random_problem(4, 2, M=v, device="cpu"), none_ok=True),
        floats("noise", lambda v: gradients.random_problem(4, 2, noise=v, device="cpu"), low=0.0),
        seeds(lambda v: gradients.random_problem(4, 2, seed=v, device="cpu")),
        bad("dtype", lambda v: gradients.random_problem(4, 2, dtype=v, device="cpu"), torch.int64, "float64", None),
        devices(lambda v: gradients.random_problem(4, 2, device=v)),
        huge("L", lambda v: gradients.random_problem(v, 2, device="cpu"), 10**11),
        huge("d", lambda v: gradients.random_problem(2, v, device="cpu"), 10**6),
    ],
    "gradients.as_problem": [
        arrays("A1", lambda v: gradients.as_problem(v, *F.prob.args[1:], device="cpu"), F.prob.A1.numpy()),
        bad("E", lambda v: gradients.as_problem(*F.prob.args[:5], v, device="cpu"), F.prob.E[:, :1], "e", None),
        bad("dtype", lambda v: gradients.as_problem(*F.prob.args, dtype=v, device="cpu"), torch.int64, "float64"),
        devices(lambda v: gradients.as_problem(*F.prob.args, device=v)),
    ],
    "gradients.training_loss": [
        bad("Y", lambda v: gradients.training_loss(_replace(F.prob, Y=v)), F.prob.Y[:, :1]),
        bad("A1", lambda v: gradients.training_loss(v, *F.prob.args[1:]), F.prob.A1[:, :1], "a"),
        choices("backend", lambda v: gradients.training_loss(F.prob, backend=v)),
        bad("dtype", lambda v: gradients.training_loss(F.prob, dtype=v), torch.int64, "float32"),
        devices(lambda v: gradients.training_loss(F.prob, device=v)),
        bad("arguments", lambda v: gradients.training_loss(*v), (), (F.prob, F.prob), (1, 2, 3)),
    ],
    "gradients.exact_gradient": [
        bad("A1", lambda v: gradients.exact_gradient(v, *F.prob.args[1:]), F.prob.A1[:, :1]),
        ints("block_size", lambda v: gradients.exact_gradient(F.prob, block_size=v), none_ok=True),
        bad("return_intermediates", lambda v: gradients.exact_gradient(F.prob, return_intermediates=v), "y", None),
        bad("dtype", lambda v: gradients.exact_gradient(F.prob, dtype=v), torch.int64),
        devices(lambda v: gradients.exact_gradient(F.prob, device=v)),
    ],
    "gradients.autograd_gradient": [
        bad("A1", lambda v: gradients.autograd_gradient(v, *F.prob.args[1:]), F.prob.A1[:, :1]),
        choices("backend", lambda v: gradients.autograd_gradient(F.prob, backend=v)),
        bad("return_loss", lambda v: gradients.autograd_gradient(F.prob, return_loss=v), "y", None),
        devices(lambda v: gradients.autograd_gradient(F.prob, device=v)),
    ],
    "gradients.LowRankGradient": [
        bad("grad", lambda v: gradients.LowRankGradient(*[torch.zeros(2, 2)] * 8, v, {}), None, "g",
            torch.full((2, 2), NAN)),
        bad("info", lambda v: gradients.LowRankGradient(*[torch.zeros(2, 2)] * 9, v), None, "i"),
    ],
    "gradients.lowrank_gradient": [
        *_chain_cases(gradients.lowrank_gradient),
        choices("on_cancel", lambda v: gradients.lowrank_gradient(F.prob, degree=3, on_cancel=v)),
        floats("max_rel_error", lambda v: gradients.lowrank_gradient(F.prob, degree=3, max_rel_error=v), low=0.0,
               high=1.0, low_open=True),
        choices("precision", lambda v: gradients.lowrank_gradient(F.prob, degree=3, precision=v)),
        devices(lambda v: gradients.lowrank_gradient(F.prob, degree=3, device=v)),
        huge("degree", lambda v: gradients.lowrank_gradient(gradients.random_problem(4096, 64, device="cpu"),
                                                            degree=v), 10),
    ],
    "gradients.chain_errors": [
        *_chain_cases(gradients.chain_errors),
        bad("form_products", lambda v: gradients.chain_errors(F.prob, degree=3, form_products=v), "y", None),
        devices(lambda v: gradients.chain_errors(F.prob, degree=3, device=v)),
    ],
    "gradients.relative_max_error": [
        bad("approx", lambda v: gradients.relative_max_error(v, F.prob.X), "a", None, F.prob.X[:1],
            torch.full((2, 2), NAN)),
        bad("exact", lambda v: gradients.relative_max_error(F.prob.X, v), "a", None, torch.full((2, 2), INF)),
    ],
    "gradients.decoded_loss": [
        bad("problem", lambda v: gradients.decoded_loss(v, F.prob4.X, F.W_A, F.target), None, "p"),
        bad("problem", lambda v: gradients.decoded_loss(v, F.prob.X, F.W_A, F.target),
            gradients.random_problem(3, 2, device="cpu")),
        tensors("X", lambda v: gradients.decoded_loss(F.prob4, v, F.W_A, F.target), F.prob4.X),
        bad("X", lambda v: gradients.decoded_loss(F.prob4, v, F.W_A, F.target), F.prob4.X[:1]),
        tensors("W_A", lambda v: gradients.decoded_loss(F.prob4, F.prob4.X, v, F.target), F.W_A),
        bad("W_A", lambda v: gradients.decoded_loss(F.prob4, F.prob4.X, v, F.target), 2 * F.W_A,
            F.W_A[:, :4]),
        tensors("target", lambda v: gradients.decoded_loss(F.prob4, F.prob4.X, F.W_A, v), F.target),
        bad("target", lambda v: gradients.decoded_loss(F.prob4, F.prob4.X, F.W_A, v), F.target[:19]),
    ],
    "gradients.gradient_descent": [
        bad("problem", lambda v: gradients.gradient_descent(v, steps=1, lr=0.1), None, "p"),
        ints("steps", lambda v: gradients.gradient_descent(F.prob, steps=v, lr=0.1)),
        floats("lr", lambda v: gradients.gradient_descent(F.prob, steps=1, lr=v), low=0.0, low_open=True),
        choices("method", lambda v: gradients.gradient_descent(F.prob, steps=1, lr=0.1, method=v)),
        bad("degree", lambda v: gradients.gradient_descent(F.prob, steps=1, lr=0.1, method="lowrank", degree=v),
            None, -1, "3", 2.5),
        choices("kind", lambda v: gradients.gradient_descent(F.prob, steps=1, lr=0.1, method="lowrank", degree=3,
                                                             kind=v)),
        huge("steps", lambda v: gradients.gradient_descent(F.prob, steps=v, lr=0.1), 10**12),
    ],
    # ---- figures, widgets, benchreport
    "figures.setup_notebook": [bad("seed_print", figures.setup_notebook, "yes", None, 2)],
    "figures.figure_html": [
        bad("fig", figures.figure_html, None, {}, "fig"),
        bad("post_script", lambda v: figures.figure_html(F.fig, v), 3, b"js"),
    ],
    "figures.line_figure": [
        arrays("x", lambda v: figures.line_figure(v, {"a": [1.0, 2.0]}), [1.0, 2.0]),
        bad("ys", lambda v: figures.line_figure([1.0, 2.0], v), {}, None, {"a": [1.0]}, {"a": ["u", "v"]}),
        bad("title", lambda v: figures.line_figure([1.0, 2.0], {"a": [1.0, 2.0]}, title=v), 3, None),
        bad("log_x", lambda v: figures.line_figure([1.0, 2.0], {"a": [1.0, 2.0]}, log_x=v), "yes"),
        bad("log_x", lambda v: figures.line_figure(v, {"a": [1.0, 2.0]}, log_x=True), [0.0, 1.0]),
        ints("height", lambda v: figures.line_figure([1.0, 2.0], {"a": [1.0, 2.0]}, height=v), low=100, high=4000),
    ],
    "figures.patch_figure": [
        arrays("h", lambda v: figures.patch_figure(v, 2), F.h[0]),
        bad("h", lambda v: figures.patch_figure(v, 2), F.h, np.zeros(15)),
        ints("p", lambda v: figures.patch_figure(F.h[0], v)),
        bad("title", lambda v: figures.patch_figure(F.h[0], 2, title=v), 3),
        ints("height", lambda v: figures.patch_figure(F.h[0], 2, height=v), low=100, high=4000),
    ],
    "widgets.explorer": [
        callables("make_figure", lambda v: widgets.explorer(v, {"a": [1, 2]}, mode="static")),
        bad("make_figure", lambda v: widgets.explorer(v, {"a": [1, 2]}, mode="static"), lambda a: 3),
        bad("grid", lambda v: widgets.explorer(_fig, v, mode="static"), {}, None, {"a": []}, {3: [1]}, [1, 2],
            {"a": 1}),
        bad("initial", lambda v: widgets.explorer(_fig, {"a": [1, 2]}, initial=v, mode="static"), {"a": 3},
            {"b": 1}, 3),
        bad("initial", lambda v: widgets.explorer(_fig, {"a": [1, 2]}, initial=v, mode="live"), {"a": 3}, {"b": 1}),
        bad("live", lambda v: widgets.explorer(_fig, {"a": [1, 2]}, live=v, mode="live"), {"b": None}, 3),
        bad("mode", lambda v: widgets.explorer(_fig, {"a": [1, 2]}, mode=v), "nonsense", 3, "pdf"),  # None: ACCEPTED
        huge("grid", lambda v: widgets.explorer(_fig, v, mode="static"), {"a": range(10**6), "b": range(10**6)}),
    ],
    "widgets.StaticExplorer": [
        bad("figure", lambda v: widgets.StaticExplorer(v, {}, [0]), None, "fig"),
        bad("combos", lambda v: widgets.StaticExplorer(F.fig, v, [0]), None, "c"),
        bad("state", lambda v: widgets.StaticExplorer(F.fig, {}, v), None, "s", [-1]),
    ],
    "widgets.LiveRange": [
        floats("min", lambda v: widgets.LiveRange(v, 10.0, 0.5), high=10.0, high_open=True),
        floats("max", lambda v: widgets.LiveRange(0.0, v, 0.5), low=0.0, low_open=True),
        floats("step", lambda v: widgets.LiveRange(0.0, 1.0, v), low=0.0, low_open=True),
        bad("min", lambda v: widgets.LiveRange(v, 1.0, 0.1, log=True), 0.0, -1.0),
        bad("log", lambda v: widgets.LiveRange(0.1, 1.0, 0.1, log=v), "yes", None, 1),
    ],
    "widgets.LiveRange.raw": [ints("k", widgets.LiveRange(0, 10, 1).raw, low=0, high=10)],
    "widgets.LiveRange.clean": [bad("value", widgets.LiveRange(0, 10, 1).clean, "1", None, True, NAN, INF)],
    "widgets.LiveRange.stops": [ints("count", widgets.LiveRange(0, 10, 1).stops, low=2)],
    "widgets.check_live": [
        callables("make_figure", lambda v: widgets.check_live(v, {"a": [1, 2]})),
        bad("grid", lambda v: widgets.check_live(_fig, v), {}, None, {"a": []}, {"a": 1}),
        bad("live", lambda v: widgets.check_live(_fig, {"a": [1, 2]}, live=v), {"b": None}, 3, {"a": "x"},
            {"a": (5, 9, 1)}),
        bad("initial", lambda v: widgets.check_live(_fig, {"a": [1, 2]}, initial=v), {"a": 3}, 3),
        ints("stops", lambda v: widgets.check_live(_fig, {"a": [1, 2]}, stops=v), low=2),
    ],
    "benchreport.BenchResult": [
        bad("name", lambda v: benchreport.BenchResult(v, F.bench.path, F.bench.meta, F.bench.records), "nonsense", 3),
        bad("records", lambda v: benchreport.BenchResult("attention", F.bench.path, F.bench.meta, v), [], None, "r"),
        bad("meta", lambda v: benchreport.BenchResult("attention", F.bench.path, v, F.bench.records), None, "m"),
    ],
    "benchreport.results_dir": [bad("directory", benchreport.results_dir, 3, b"dir", 1.5)],
    "benchreport.result_path": [
        choices("name", benchreport.result_path),
        bad("directory", lambda v: benchreport.result_path("attention", v), 3),
    ],
    "benchreport.regenerate_command": [choices("name", benchreport.regenerate_command)],
    "benchreport.load_result": [
        choices("name", benchreport.load_result),
        bad("directory", lambda v: benchreport.load_result("attention", v), 3, "/nonexistent/dir"),
    ],
    "benchreport.missing_message": [
        choices("name", benchreport.missing_message),
        bad("directory", lambda v: benchreport.missing_message("attention", v), 3),
    ],
    "benchreport.variant_label": [bad("record", benchreport.variant_label, None, "r", {})],
    "benchreport.loglog_slope": [
        arrays("L", lambda v: benchreport.loglog_slope(v, [1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]),
        bad("L", lambda v: benchreport.loglog_slope(v, [1.0, 2.0, 3.0]), [0.0, 2.0, 3.0], [1.0, 2.0]),
        arrays("seconds", lambda v: benchreport.loglog_slope([1.0, 2.0, 3.0], v), [1.0, 2.0, 3.0]),
    ],
    "benchreport.overview_figure": [
        bad("result", benchreport.overview_figure, None, "attention"),
        bad("B", lambda v: benchreport.overview_figure(F.bench, B=v), 12345.0, "1", NAN),
        ints("height", lambda v: benchreport.overview_figure(F.bench, height=v), low=100, high=4000),
    ],
    "benchreport.method_figure": [
        bad("result", lambda v: benchreport.method_figure(v, method="fast", B=1.0), None),
        choices("method", lambda v: benchreport.method_figure(F.bench, method=v, B=F.bench.main_B)),
        bad("B", lambda v: benchreport.method_figure(F.bench, method=F.bench.methods[0], B=v), "1", None, NAN),
        ints("height", lambda v: benchreport.method_figure(F.bench, method=F.bench.methods[0], B=F.bench.main_B,
                                                          height=v), low=100, high=4000),
        ints("legend_rows", lambda v: benchreport.method_figure(F.bench, method=F.bench.methods[0],
                                                               B=F.bench.main_B, legend_rows=v), low=1, high=20,
             none_ok=True),
    ],
    **{f"benchreport.{name}": [bad("result", getattr(benchreport, name), None, "attention", {})]
       for name in ("explorer_spec", "records_markdown", "crossover_markdown", "headline_markdown",
                    "machine_summary")},
    "benchreport.headline_markdown": [
        bad("result", benchreport.headline_markdown, None, "attention", {}),
        choices("rule", lambda v: benchreport.headline_markdown(F.bench, v)),
    ],
    # ---- realdata
    "realdata.load_digits": [
        floats("test_size", lambda v: realdata.load_digits(test_size=v), low=0.05, high=0.95),
        seeds(lambda v: realdata.load_digits(seed=v)),
    ],
    "realdata.Digits.to_pixels": [
        arrays("x", F.digits.to_pixels, F.digits.x_test[:3]),
        bad("x", F.digits.to_pixels, F.digits.x_test[:3, :5]),
    ],
    "realdata.pca_spectrum": [
        arrays("x", realdata.pca_spectrum, F.x),
        bad("x", realdata.pca_spectrum, F.x[:1]),
    ],
    "realdata.gaussian_baseline": [
        arrays("x", lambda v: realdata.gaussian_baseline(v, F.enc), F.x),
        bad("x", lambda v: realdata.gaussian_baseline(v, F.enc), F.x[:3]),
        arrays("basis", lambda v: realdata.gaussian_baseline(F.x, v), F.enc),
        bad("basis", lambda v: realdata.gaussian_baseline(F.x, v), 2 * F.enc, F.enc[:5]),
    ],
    "realdata.DigitClassifier": [
        bad("model", lambda v: realdata.DigitClassifier(v, 64), None, 3),
        ints("D", lambda v: realdata.DigitClassifier(F.clf.model, v)),
    ],
    "realdata.DigitClassifier.predict_proba": [
        arrays("x", F.clf.predict_proba, F.digits.x_test[:5]),
        bad("x", F.clf.predict_proba, F.digits.x_test[:5, :10]),
    ],
    "realdata.DigitClassifier.accuracy": [
        arrays("x", lambda v: F.clf.accuracy(v, F.digits.y_test[:5]), F.digits.x_test[:5]),
        bad("y", lambda v: F.clf.accuracy(F.digits.x_test[:5], v), [1, 2], None),
    ],
    "realdata.DigitClassifier.score": [
        arrays("x", F.clf.score, F.digits.x_test[:5]),
    ],
    "realdata.fit_digit_classifier": [
        arrays("x", lambda v: realdata.fit_digit_classifier(v, F.digits.y_train[:50]), F.digits.x_train[:50]),
        bad("y", lambda v: realdata.fit_digit_classifier(F.digits.x_train[:50], v), F.digits.y_train[:3],
            F.digits.y_train[:50] + 0.5, np.zeros(50, int), "abc"),
        floats("C", lambda v: realdata.fit_digit_classifier(F.digits.x_train[:50], F.digits.y_train[:50], C=v),
               low=0.0, low_open=True),
        seeds(lambda v: realdata.fit_digit_classifier(F.digits.x_train[:50], F.digits.y_train[:50], seed=v)),
    ],
    "realdata.digit_grid_figure": [
        arrays("images", realdata.digit_grid_figure, np.zeros((3, 64))),
        bad("images", realdata.digit_grid_figure, np.zeros((3, 10))),
        ints("columns", lambda v: realdata.digit_grid_figure(np.zeros((3, 64)), columns=v)),
        ints("height", lambda v: realdata.digit_grid_figure(np.zeros((3, 64)), height=v), low=50, high=5000,
             none_ok=True),
        bad("row_titles", lambda v: realdata.digit_grid_figure(np.zeros((3, 64)), columns=3, row_titles=v),
            ["a", "b"], "abc"),
        ints("side", lambda v: realdata.digit_grid_figure(np.zeros((3, 64)), side=v)),
    ],
    # issue 10: the certified bound (rounding analysis) and the adversarial instances
    "attention.monomial_features": [
        tensors("X", lambda v: attention.monomial_features(v, 2), F.Q, batch_ok=True),
        ints("degree", lambda v: attention.monomial_features(F.Q, v), low=0, high=60),
    ],
    "attention.adversarial_instance": [
        ints("L", lambda v: attention.adversarial_instance(v, 2, 1.0)),
        ints("d", lambda v: attention.adversarial_instance(8, v, 1.0)),
        floats("B", lambda v: attention.adversarial_instance(8, 2, v), low=0.0, low_open=True),
        choices("pattern", lambda v: attention.adversarial_instance(8, 2, 1.0, v)),
        floats("jitter", lambda v: attention.adversarial_instance(8, 2, 1.0, jitter=v), low=0.0, high=1.0),
        seeds(lambda v: attention.adversarial_instance(8, 2, 1.0, seed=v)),
        bad("degree", lambda v: attention.adversarial_instance(8, 2, 1.0, "aligned", degree=v), None, -1, "a", 61),
    ],
    "attention.choose_precision": [
        choices("precision", lambda v: attention.choose_precision(v, torch.float32, 1e-4, 1e-3)),
    ],
    "polynomial.unit_roundoff": [bad("dtype", polynomial.unit_roundoff, "int32", 3, None, torch.int64)],
    "polynomial.coefficient_growth": [
        floats("radius", lambda v: polynomial.coefficient_growth(v, 3), low=0.0, low_open=True),
        ints("degree", lambda v: polynomial.coefficient_growth(1.0, v), low=0, high=60),
        floats("bound", lambda v: polynomial.coefficient_growth(1.0, 3, bound=v), low=0.0, low_open=True,
               none_ok=True),
        choices("kind", lambda v: polynomial.coefficient_growth(1.0, 3, v)),
    ],
    "polynomial.accumulation_length": [
        ints("degree", polynomial.accumulation_length, low=0, high=60),
        ints("length", lambda v: polynomial.accumulation_length(3, v)),
        ints("d", lambda v: polynomial.accumulation_length(3, 100, v), none_ok=True),
    ],
    "polynomial.rounding_rel_error": [
        floats("radius", lambda v: polynomial.rounding_rel_error(v, 3), low=0.0, low_open=True),
        ints("degree", lambda v: polynomial.rounding_rel_error(1.0, v), low=0, high=60),
        bad("dtype", lambda v: polynomial.rounding_rel_error(1.0, 3, dtype=v), "int32", 3, None),
        ints("length", lambda v: polynomial.rounding_rel_error(1.0, 3, length=v)),
        ints("terms", lambda v: polynomial.rounding_rel_error(1.0, 3, terms=v), none_ok=True),
        ints("d", lambda v: polynomial.rounding_rel_error(1.0, 3, d=v), none_ok=True),
    ],
    "polynomial.attention_error_bound": [
        bad("eps", polynomial.attention_error_bound, -0.1, "a", None, math.nan, -math.inf),
        bad("rho", lambda v: polynomial.attention_error_bound(0.1, v), -0.1, "a", None, math.nan, -math.inf),
        floats("u_out", lambda v: polynomial.attention_error_bound(0.1, 0.0, v), low=0.0, high=1.0),
    ],
}

NO_INPUT: dict[str, str] = {
    "attention.default_device": "takes no argument",
    "native.available": "takes no argument",
    "native.unavailable_reason": "takes no argument",
    "native.cache_dir": "takes no argument (reads DIT_NATIVE_CACHE / XDG_CACHE_HOME)",
    "attention.CancellationError": "an exception class (any message is allowed)",
    "attention.CancellationWarning": "a warning class (any message is allowed)",
    "network.ExactAttention.extra_repr": "takes no argument (torch's repr hook)",
    "efficient.PolynomialAttention.extra_repr": "takes no argument (torch's repr hook)",
    "efficient.PolynomialAttention.reset_stats": "takes no argument",
    "efficient.BoundedExactAttention.extra_repr": "takes no argument (torch's repr hook)",
    "data.GaussianMixture.second_moment": "takes no argument",
    "network.MultiHeadAttention.head_weights": "takes no argument",
    "network.LatentDiT.n_parameters": "takes no argument",
    "figures.is_static": "takes no argument (reads DIT_BOOK_BUILD)",
    "widgets.StaticExplorer.to_html": "takes no argument",
    "widgets.LiveRange.positions": "takes no argument",
    "widgets.ExplorerCheckError": "an exception class (raised by the live check), not called with user input",
    "experiments.Quality": "a record returned by sample_quality, which validates its inputs",
    "realdata.ClassifierScore": "a record returned by DigitClassifier.score",
    "realdata.Digits": "a record returned by load_digits, which validates its inputs",
}

ACCEPTED: list[tuple[str, str, Callable[[Any], Any], Any, str]] = [
    ("widgets.explorer", "mode", lambda v: widgets.explorer(_fig, {"a": [1, 2]}, mode=v), None,
     "mode=None is the documented default: the environment (DIT_BOOK_BUILD) picks the rendering"),
    ("data.random_orthonormal_basis", "D", lambda v: data.random_orthonormal_basis(v, 2), np.int64(4),
     "numpy integers are integers"),
    ("benchreport.results_dir", "directory", benchreport.results_dir, "/nonexistent/dir",
     "documented: the folder need not exist yet (the benchmark writes it); load_result then says what to run"),
    ("benchreport.loglog_slope", "L", lambda v: benchreport.loglog_slope(v, [1.0, 2.0, 3.0]), [2.0, 2.0, 2.0],
     "documented: a single length has no slope, the answer is nan (a figure legend then omits it)"),
    ("benchreport.method_figure", "B", lambda v: benchreport.method_figure(F.bench, method=F.bench.methods[0], B=v),
     12345.0, "documented: an entry bound the sweep did not reach gives a figure that says it was not measured"),
    ("gradients.GradientProblem.with_X", "X", lambda v: F.prob.with_X(v), torch.eye(2, dtype=torch.int64),
     "with_X and as_problem convert numbers (integer tensors, arrays) to the problem's dtype on purpose; the record "
     "itself takes only floating tensors"),
    ("polynomial.exp_poly_coefficients", "radius", lambda v: polynomial.exp_poly_coefficients(v, 6), 1e-300,
     "a valid radius: below R^(g+1)/(g+1)! < 2^-53 the interpolant is the Taylor polynomial (finite coefficients)"),
    ("polynomial.exp_poly_error", "radius", lambda v: polynomial.exp_poly_error(v, 60), 1e6,
     "documented: the error of a polynomial that overflows float64 is reported as inf, not raised"),
    ("patches.patch_choices", "d0", patches.patch_choices, 10**18,
     "the divisors of i = 10^9 come from sqrt(i) trial divisions: fast, so a huge valid square is answered"),
    ("patches.patchify", "h", lambda v: patches.patchify(v, 2), np.arange(16),
     "the reshape is a permutation of entries: integer arrays keep their dtype (chapter 1 draws index images)"),
    ("patches.patchify", "h", lambda v: patches.patchify(v, 2), torch.arange(32).reshape(2, 16),
     "integer tensors likewise; any number of leading batch axes is allowed"),
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
    stale = sorted((set(CASES) | set(NO_INPUT)) - set(public))
    assert not stale, f"CASES/NO_INPUT name callables that are not public: {stale}"
    assert all(CASES[name] for name in CASES), "every CASES entry needs at least one case"
    both = sorted(set(CASES) & set(NO_INPUT))
    assert not both, f"callables both with cases and listed as taking no input: {both}"


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


def test_time_training_step_with_a_trainable_basis():
    """Issue 15, part 5: a default LatentDiT (trainable W_B) is timed without "backward through the graph a second
    time", and the timing leaves the model as it was."""
    torch.manual_seed(0)
    model = network.LatentDiT(8, 4, 1, blocks=1)
    assert model.encoder.parametrizations.weight.original.requires_grad
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seconds = efficient.time_training_step(model, F.xt, repeats=2)
    assert math.isfinite(seconds) and seconds > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


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
    cases = all_cases()
    print(f"{len(public_callables())} public callables ({len(CASES)} with cases, {len(NO_INPUT)} without input), "
          f"{len(cases)} cases ({sum(c.isolate for c in cases)} size cases in a forked child), "
          f"{time.perf_counter() - t0:.1f} s")
    for outcome in ("named", "unnamed", "other", "returned", "hung"):
        print(f"  {outcome:9s} {counts.get(outcome, 0)}")
    print(f"  accepted on purpose: {len(ACCEPTED)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
