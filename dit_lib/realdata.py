"""Real data: the 8 x 8 handwritten digits that scikit-learn ships, and yardsticks for generated digits (chapter 7).

Every other chapter samples its data from the model of the paper (``x = U h``). Here the data are real:

* :func:`load_digits` — the 1,797 images of :func:`sklearn.datasets.load_digits` (bundled in the scikit-learn
  wheel: nothing is downloaded), as vectors in ``R^64``, centred and scaled by statistics of the training split only;
* :func:`pca_spectrum` — the fraction of variance that the top ``d0`` principal directions keep
  (:class:`sklearn.decomposition.PCA`);
* :func:`gaussian_baseline` — the simplest generator on the same subspace: one Gaussian fitted to the latents
  ``W^T x``, returned as :class:`dit_lib.data.SubspaceData`, the baseline a latent DiT must beat;
* :class:`DigitClassifier`, :func:`fit_digit_classifier` — a classifier trained on real digits only (the generative
  models never see it) that scores generated digits by its confidence and by how evenly they cover the ten classes;
* :func:`digit_grid_figure` — a grid of images, real or generated, as a plotly heatmap.

scikit-learn is imported when a function needs it, so the rest of :mod:`dit_lib` imports without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

from ._checks import check_array, check_float, check_int, check_orthonormal
from .data import GaussianMixture, SubspaceData

__all__ = ["Digits", "load_digits", "pca_spectrum", "gaussian_baseline", "ClassifierScore", "DigitClassifier",
           "fit_digit_classifier", "digit_grid_figure"]

#: Side of one image of the bundled digits, and their number of grey levels (pixels run from 0 to 16).
SIDE, LEVELS = 8, 16
#: scikit-learn's ``random_state`` must lie in ``[0, 2**32 - 1]``.
SKLEARN_MAX_SEED = 2**32 - 1


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - requirements.txt installs it
        raise ImportError("dit_lib.realdata needs scikit-learn (pip install 'scikit-learn>=1.4,<2')") from exc


@dataclass(frozen=True)
class Digits:
    """The bundled digits, split and standardised (chapter 7).

    ``x = (pixels - mean) / scale`` with the pixel mean and one global scale (the root mean square of the centred
    training pixels) computed on the training split, so a coordinate has unit variance on average and
    ``E||x||^2 = 64`` on the training set. :meth:`to_pixels` undoes it.
    """

    x_train: np.ndarray = field(repr=False)     #: ``(n_train, 64)``
    y_train: np.ndarray = field(repr=False)     #: labels ``0..9``
    x_test: np.ndarray = field(repr=False)      #: ``(n_test, 64)``, held out from every model
    y_test: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)        #: pixel mean of the training split, ``(64,)``
    scale: float = 1.0                          #: pixel units per unit of ``x``

    @property
    def D(self) -> int:
        """Ambient dimension, 64."""
        return int(self.x_train.shape[1])

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """Standardised vectors ``(n, 64)`` back to grey levels, clipped to ``[0, 16]``."""
        x = check_array("x", x, ndim=2, shape=(self.D,))
        return np.clip(x * self.scale + self.mean, 0.0, LEVELS)


def load_digits(*, test_size: float = 0.3, seed: int = 0) -> Digits:
    """The 8 x 8 digits of :func:`sklearn.datasets.load_digits`, split and standardised (chapter 7).

    The split is stratified by label (:func:`sklearn.model_selection.train_test_split`), so both halves hold every
    digit in its proportion; centring and scale come from the training split only.

    Parameters
    ----------
    test_size : float
        Fraction held out, in ``[0.05, 0.95]``.
    seed : int
        Seeds the split, in ``[0, 2**32 - 1]``.

    Returns
    -------
    Digits

    Raises
    ------
    ValueError, TypeError
        For ``test_size`` outside ``[0.05, 0.95]`` or a negative/non-integer ``seed``.
    """
    test_size = check_float("test_size", test_size, low=0.05, high=0.95)
    seed = check_int("seed", seed, low=0, high=SKLEARN_MAX_SEED)
    _sklearn()
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    bunch = _load()
    pixels, labels = bunch.data.astype(float), bunch.target.astype(int)
    p_tr, p_te, y_tr, y_te = train_test_split(pixels, labels, test_size=test_size, random_state=seed,
                                              stratify=labels)
    mean = p_tr.mean(0)
    scale = float(np.sqrt(((p_tr - mean) ** 2).mean()))
    return Digits((p_tr - mean) / scale, y_tr, (p_te - mean) / scale, y_te, mean, scale)


def pca_spectrum(x: np.ndarray) -> np.ndarray:
    """Cumulative fraction of variance kept by the top ``1, 2, ..., D`` principal directions of ``x`` (chapter 7).

    :class:`sklearn.decomposition.PCA` on the (centred) data; entry ``d0 - 1`` is what a ``d0``-dimensional subspace
    keeps, and ``1 -`` it is the fraction the subspace assumption throws away.

    Raises
    ------
    ValueError
        For an array that is not 2-D or has fewer than 2 rows.
    """
    x = check_array("x", x, ndim=2)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 samples (rows), got {x.shape[0]}")
    _sklearn()
    from sklearn.decomposition import PCA

    return np.cumsum(PCA().fit(x).explained_variance_ratio_)


def gaussian_baseline(x: np.ndarray, basis: np.ndarray) -> SubspaceData:
    """One Gaussian fitted to the latents ``W^T x``, carried back by ``W``: the baseline generator (chapter 7).

    The sample mean and covariance of the latents define ``N(mu, C)`` on ``R^{d0}``; samples ``W h`` lie on the same
    subspace as a latent DiT with encoder ``W`` would put them. A DiT earns its attention only if it beats this.

    Parameters
    ----------
    x : array of shape (n, D)
        Training data, ``n > d0``.
    basis : array of shape (D, d0)
        Orthonormal columns.

    Returns
    -------
    SubspaceData
        With a one-component :class:`~dit_lib.data.GaussianMixture` latent; draw with ``.sample(n, seed)``.

    Raises
    ------
    ValueError
        For mismatched shapes, a basis that is not orthonormal, or ``n <= d0``.
    """
    x = check_array("x", x, ndim=2)
    W = check_orthonormal("basis", basis, tol=1e-6)
    if W.shape[0] != x.shape[1]:
        raise ValueError(f"basis must have D = x.shape[1] = {x.shape[1]} rows, got {W.shape[0]}")
    if x.shape[0] <= W.shape[1]:
        raise ValueError(f"x must hold more samples than d0 = {W.shape[1]} to fit a covariance, got {x.shape[0]}")
    u, _, vt = np.linalg.svd(W, full_matrices=False)
    W = u @ vt                      # the nearest exactly orthonormal basis (a float32 W_B is orthonormal to ~1e-7)
    h = x @ W
    cov = np.cov(h, rowvar=False).reshape(W.shape[1], W.shape[1])
    return SubspaceData(W, GaussianMixture(np.ones(1), h.mean(0)[None], cov[None]))


class ClassifierScore(NamedTuple):
    """How a real-digit classifier reads a set of digits (chapter 7).

    ``confidence``: mean over digits of the largest class probability (near 1 for clean digits, ``0.1`` for
    noise spread over ten classes); ``se``: its standard error; ``coverage``: ``exp`` of the entropy of the
    predicted-class frequencies, the effective number of classes (10 when every class is equally frequent, 1 when
    all digits get one label); ``counts``: digits per predicted class.
    """

    confidence: float
    se: float
    coverage: float
    counts: np.ndarray


class DigitClassifier:
    """A multinomial logistic regression on standardised digit vectors, trained on real digits only (chapter 7).

    Use :func:`fit_digit_classifier`. :meth:`score` reads any set of vectors of the same standardisation.
    """

    def __init__(self, model: Any, D: int):
        if not callable(getattr(model, "predict_proba", None)):
            raise TypeError(f"model must be a fitted scikit-learn classifier with predict_proba, got {type(model).__name__}")
        self.model, self.D = model, check_int("D", D)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, 10)``."""
        x = check_array("x", x, ndim=2, shape=(self.D,))
        return self.model.predict_proba(x)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of ``x`` whose predicted class is ``y``."""
        y = np.asarray(y)
        p = self.predict_proba(x)
        if y.shape != (p.shape[0],):
            raise ValueError(f"y must have shape ({p.shape[0]},), got {y.shape}")
        return float((p.argmax(1) == y).mean())

    def score(self, x: np.ndarray) -> ClassifierScore:
        """Confidence and class coverage of the digits ``x`` (:class:`ClassifierScore`)."""
        p = self.predict_proba(x)
        top = p.max(1)
        counts = np.bincount(p.argmax(1), minlength=p.shape[1])
        freq = counts[counts > 0] / counts.sum()
        se = float(top.std(ddof=1) / np.sqrt(top.size)) if top.size > 1 else float("nan")
        return ClassifierScore(float(top.mean()), se, float(np.exp(-(freq * np.log(freq)).sum())), counts)


def fit_digit_classifier(x: np.ndarray, y: np.ndarray, *, C: float = 0.1, seed: int = 0) -> DigitClassifier:
    """Fit the yardstick classifier on real digits (chapter 7).

    :class:`sklearn.linear_model.LogisticRegression` (multinomial, L2 penalty of strength ``1/C``). A linear
    classifier is deliberately simple: it is a fixed judge, independent of the generative models it scores.

    Parameters
    ----------
    x : array of shape (n, D)
    y : array of shape (n,)
        Integer labels; at least two classes.
    C : float
        Inverse regularisation strength, ``> 0``.
    seed : int

    Raises
    ------
    ValueError
        For mismatched lengths, fewer than two classes or ``C <= 0``.
    """
    x = check_array("x", x, ndim=2)
    y = np.asarray(y)
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold one integer label per row of x, shape ({x.shape[0]},), got {y.shape} {y.dtype}")
    if np.unique(y).size < 2:
        raise ValueError("y must hold at least two classes")
    C = check_float("C", C, low=0.0, low_open=True)
    seed = check_int("seed", seed, low=0, high=SKLEARN_MAX_SEED)
    _sklearn()
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, y)
    return DigitClassifier(model, x.shape[1])


def digit_grid_figure(images: np.ndarray, *, columns: int = 10, title: str = "", height: int | None = None,
                      row_titles: list[str] | None = None, side: int = SIDE) -> go.Figure:
    """A grid of ``side x side`` grey-level images as one plotly heatmap (chapter 7).

    Parameters
    ----------
    images : array of shape (n, side*side)
        Grey levels (e.g. :meth:`Digits.to_pixels`), row-major images; dark is high.
    columns : int
        Images per row of the grid.
    title : str
    height : int, optional
        Figure height in pixels, in ``[50, 5000]``; default from the number of rows.
    row_titles : list of str, optional
        One label per row of the grid, drawn at its left.
    side : int
        Image side.

    Raises
    ------
    ValueError
        For an array that is not ``(n, side*side)``, ``columns < 1``, or ``row_titles`` of the wrong length.
    """
    side = check_int("side", side)
    images = check_array("images", images, ndim=2, shape=(side * side,))
    columns = check_int("columns", columns)
    height = None if height is None else check_int("height", height, low=50, high=5000)
    n = images.shape[0]
    rows = max(1, -(-n // columns))
    if row_titles is not None and (isinstance(row_titles, str) or len(row_titles) != rows):
        raise ValueError(f"row_titles must be a list of {rows} strings (one per row of the grid), got {row_titles!r}")
    pad = side + 1                                  # one blank line between images
    canvas = np.full((rows * pad - 1, columns * pad - 1), np.nan)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        canvas[r * pad:r * pad + side, c * pad:c * pad + side] = img.reshape(side, side)
    fig = go.Figure(go.Heatmap(z=np.round(canvas, 2), colorscale="Greys", zmin=0, zmax=LEVELS,
                               showscale=False, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False,
                     visible=row_titles is not None, tickvals=[r * pad + side / 2 - 0.5 for r in range(rows)],
                     ticktext=list(row_titles or []))
    fig.update_xaxes(visible=False)
    fig.update_layout(title=title, height=height or 60 + 75 * rows,
                      margin=dict(l=10 if row_titles is None else 150, r=10, t=40, b=10), plot_bgcolor="white")
    return fig
