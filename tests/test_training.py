"""Tests of dit_lib.training: DSM training of the latent DiT (chapter 2)."""
import numpy as np
import pytest
import torch

import dit_lib as dl
from dit_lib import scores as S
from dit_lib.training import as_score_fn, default_device, train_score_model

DATA = dl.SubspaceData.random(24, 16, seed=0)
X0 = DATA.sample(2000, seed=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks this small are overhead-bound; a second intra-op thread only adds contention on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = dict(d0=16, patch=2, heads=2, head_dim=1, ff_width=8, blocks=1, batch_size=64, lr=1e-2, progress=False)


@pytest.fixture(scope="module")
def trained():
    return train_score_model(X0, steps=200, T0=0.05, T=3.0, basis_init="pca", seed=3, **SMALL)


def test_training_lowers_the_loss_and_beats_the_trivial_score(trained):
    model, hist = trained
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    grid = [0.05, 0.3, 1.0, 3.0]
    # held-out: fresh draws (seed 99), not the training samples
    learned = S.score_error(as_score_fn(model), DATA, grid, n=1000, seed=99)
    trivial = S.score_error(S.trivial_score, DATA, grid, n=1000, seed=99)
    assert np.all(learned < trivial)


def test_basis_stays_orthonormal_and_learns_the_subspace():
    start, _ = train_score_model(X0, steps=1, basis_init="random", seed=0, **dict(SMALL, lr=1e-9))
    model, _ = train_score_model(X0, steps=120, T0=0.05, T=3.0, basis_init="random", seed=0, **SMALL)
    W = model.W_B.detach().double()
    torch.testing.assert_close(W.T @ W, torch.eye(16, dtype=torch.float64), atol=1e-5, rtol=0)
    before = dl.projection_distance(start.W_B.detach().double().numpy(), DATA.basis)
    assert dl.projection_distance(W.numpy(), DATA.basis) < before - 0.2


def test_frozen_basis_stays_put():
    model, _ = train_score_model(X0, steps=20, basis_init=DATA.basis, train_basis=False, **SMALL)
    np.testing.assert_allclose(model.W_B.detach().numpy(), DATA.basis, atol=1e-5)


def test_seeds_make_runs_reproducible():
    a, ha = train_score_model(X0, steps=15, seed=7, **SMALL)
    b, hb = train_score_model(X0, steps=15, seed=7, **SMALL)
    c, _ = train_score_model(X0, steps=15, seed=8, **SMALL)
    np.testing.assert_array_equal(ha["loss"], hb["loss"])
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), k
    assert not torch.equal(a.pos_embedding, c.pos_embedding)


def test_training_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    train_score_model(X0, steps=2, **SMALL)
    torch.testing.assert_close(torch.rand(3), want)


def test_as_score_fn(trained):
    model, _ = trained
    fn = as_score_fn(model, batch_size=7)
    x = DATA.sample(20, seed=4)
    out = fn(x, 0.4)
    assert out.shape == (20, 24) and out.dtype == np.float64
    with torch.no_grad():
        want = model(torch.as_tensor(x, dtype=torch.float32), torch.full((20,), 0.4)).double().numpy()
    np.testing.assert_allclose(out, want, atol=1e-6)
    with pytest.raises(ValueError, match="t"):
        fn(x, 0.0)


def test_history_and_device(trained):
    model, hist = trained
    assert hist["step"][-1] == 200 and len(hist["loss"]) == len(hist["step"])
    assert hist["device"] == str(default_device()) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(model.parameters()).device.type == default_device().type
    assert default_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        default_device("not-a-device")


def test_progress_bar_quiet_in_book_build(monkeypatch, capsys):
    monkeypatch.setenv("DIT_BOOK_BUILD", "1")
    kw = {k: v for k, v in SMALL.items() if k != "progress"}
    train_score_model(X0, steps=3, **kw)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_bad_inputs():
    with pytest.raises(ValueError, match="T0"):
        train_score_model(X0, steps=1, T0=2.0, T=1.0, **SMALL)
    with pytest.raises(ValueError, match="T0"):
        train_score_model(X0, steps=1, T0=0.0, **SMALL)
    with pytest.raises(ValueError, match="weighting"):
        train_score_model(X0, steps=1, weighting="bogus", **SMALL)
    with pytest.raises(ValueError, match="p must divide"):
        train_score_model(X0, steps=1, **dict(SMALL, patch=3))
    with pytest.raises(ValueError, match="d0"):
        train_score_model(X0, steps=1, **dict(SMALL, d0=36))
    with pytest.raises(ValueError, match="x0"):
        train_score_model(X0[:, :, None], steps=1, **SMALL)
    with pytest.raises(ValueError, match="steps"):
        train_score_model(X0, steps=0, **SMALL)
    with pytest.raises(ValueError, match="heads"):
        train_score_model(X0, steps=1, **dict(SMALL, heads=0))
    with pytest.raises(ValueError, match="basis_init"):
        train_score_model(X0, steps=1, basis_init="svd", **SMALL)
