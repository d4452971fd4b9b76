"""Tests of dit_lib.realdata (chapter 7): the bundled digits, the Gaussian baseline, the yardstick classifier."""
import numpy as np
import plotly.graph_objects as go
import pytest

import dit_lib as dl
from dit_lib import realdata as rd


@pytest.fixture(scope="module")
def digits():
    return rd.load_digits(test_size=0.3, seed=0)


def test_load_digits_split_and_standardisation(digits):
    assert digits.x_train.shape[1] == digits.x_test.shape[1] == digits.D == 64
    assert digits.x_train.shape[0] + digits.x_test.shape[0] == 1797
    assert digits.x_test.shape[0] == pytest.approx(0.3 * 1797, abs=1)
    # standardised with training statistics: centred, unit mean square on the training split only
    np.testing.assert_allclose(digits.x_train.mean(0), 0.0, atol=1e-10)
    assert (digits.x_train ** 2).mean() == pytest.approx(1.0)
    assert abs(digits.x_test.mean()) > 1e-6          # the test split was not re-centred
    # stratified: every class in both halves, in nearly the same proportion
    p_tr = np.bincount(digits.y_train, minlength=10) / digits.y_train.size
    p_te = np.bincount(digits.y_test, minlength=10) / digits.y_test.size
    assert np.abs(p_tr - p_te).max() < 0.01
    # to_pixels undoes the standardisation and lands on the 17 grey levels 0..16
    px = digits.to_pixels(digits.x_train[:50])
    np.testing.assert_allclose(px, np.round(px), atol=1e-9)
    assert px.min() >= 0 and px.max() <= 16
    # deterministic given the seed, different for another seed
    again = rd.load_digits(test_size=0.3, seed=0)
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    assert not np.array_equal(rd.load_digits(test_size=0.3, seed=1).y_test, digits.y_test)


def test_pca_spectrum_matches_svd(digits):
    spec = rd.pca_spectrum(digits.x_train)
    assert spec.shape == (64,)
    assert np.all(np.diff(spec) >= -1e-12) and spec[-1] == pytest.approx(1.0)
    xc = digits.x_train - digits.x_train.mean(0)
    sv = np.linalg.svd(xc, compute_uv=False) ** 2
    np.testing.assert_allclose(spec, np.cumsum(sv) / sv.sum(), rtol=1e-8)
    # the digits are far from a 4-dimensional subspace, much closer to a 36-dimensional one
    assert spec[3] < 0.6 < 0.95 < spec[35]


def test_gaussian_baseline_fits_latent_moments(digits):
    W = dl.estimate_subspace(digits.x_train, 9)
    base = rd.gaussian_baseline(digits.x_train, W)
    assert isinstance(base, dl.SubspaceData) and base.d0 == 9 and base.latent.n_components == 1
    h = digits.x_train @ W
    np.testing.assert_allclose(base.latent.means[0], h.mean(0), atol=1e-12)
    np.testing.assert_allclose(base.latent.covs[0], np.cov(h, rowvar=False), atol=1e-12)
    x = base.sample(4000, seed=3)
    np.testing.assert_allclose(x - x @ W @ W.T, 0.0, atol=1e-10)      # on the subspace
    C = base.latent.covs[0]
    np.testing.assert_allclose(np.cov(x @ W, rowvar=False), C, atol=4 * np.sqrt(2 / 4000) * C.max())  # 4 s.e.
    with pytest.raises(ValueError, match="basis"):
        rd.gaussian_baseline(digits.x_train, W[:10])
    with pytest.raises(ValueError, match="d0"):
        rd.gaussian_baseline(digits.x_train[:5], W)


def test_classifier_scores_real_noise_and_one_class(digits):
    clf = rd.fit_digit_classifier(digits.x_train, digits.y_train)
    assert clf.accuracy(digits.x_test, digits.y_test) > 0.9
    real = clf.score(digits.x_test)
    assert real.coverage > 9.8 and real.counts.sum() == digits.x_test.shape[0]
    noise = clf.score(np.random.default_rng(0).standard_normal((500, 64)) * 3)
    assert real.confidence > noise.confidence + 3 * (real.se + noise.se)
    one = clf.score(digits.x_test[digits.y_test == 3])
    assert one.coverage < 1.5 and one.counts.argmax() == 3
    with pytest.raises(ValueError, match="x"):
        clf.score(digits.x_test[:, :10])
    with pytest.raises(ValueError, match="y"):
        clf.accuracy(digits.x_test, digits.y_test[:5])


def test_fit_digit_classifier_rejects_bad_input(digits):
    with pytest.raises(ValueError, match="y"):
        rd.fit_digit_classifier(digits.x_train, digits.y_train[:10])
    with pytest.raises(ValueError, match="two classes"):
        rd.fit_digit_classifier(digits.x_train[:20], np.zeros(20, int))
    with pytest.raises(ValueError, match="C"):
        rd.fit_digit_classifier(digits.x_train, digits.y_train, C=0.0)
    with pytest.raises(ValueError, match="test_size"):
        rd.load_digits(test_size=1.0)
    with pytest.raises(TypeError, match="seed"):
        rd.load_digits(seed=0.5)


def test_digit_grid_figure_layout(digits):
    fig = rd.digit_grid_figure(digits.to_pixels(digits.x_test[:23]), columns=10, title="t")
    assert isinstance(fig, go.Figure)
    z = np.array(fig.data[0].z, dtype=float)
    assert z.shape == (3 * 9 - 1, 10 * 9 - 1)               # 3 rows of 8x8 images with 1-pixel gaps
    np.testing.assert_allclose(z[:8, :8], digits.to_pixels(digits.x_test[:1]).reshape(8, 8), atol=0.01)
    assert np.isnan(z[8]).all() and np.isnan(z[-8:, 9 * 3:]).all()   # gaps, and the empty end of the last row
    with pytest.raises(ValueError, match="images"):
        rd.digit_grid_figure(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="columns"):
        rd.digit_grid_figure(np.zeros((3, 64)), columns=0)
    titled = rd.digit_grid_figure(np.zeros((20, 64)), columns=10, row_titles=["real", "generated"])
    assert list(titled.layout.yaxis.ticktext) == ["real", "generated"] and titled.layout.yaxis.visible
    with pytest.raises(ValueError, match="row_titles"):
        rd.digit_grid_figure(np.zeros((20, 64)), columns=10, row_titles=["one row only"])
