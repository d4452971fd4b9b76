"""Tests of dit_lib.experiments: the runners behind chapter 3's sample-complexity and recovery figures."""
import numpy as np
import pytest

import dit_lib as dl
from dit_lib import experiments as ex
from dit_lib import sampling
from dit_lib.scores import ambient_score


def test_rates_and_time_average():
    assert ex.PAPER_EXPONENT == pytest.approx(-1 / 3)
    assert ex.chzw_exponent(4) == pytest.approx(-2 / 9)
    assert ex.chzw_exponent(16, delta=0.5) == pytest.approx(-1 / 21)
    t = np.linspace(0.1, 2.1, 7)
    assert ex.mean_squared_score_error(np.full(7, 3.0), t) == pytest.approx(9.0)
    # trapezoid of e(t)^2 = t^2 on [0, 1] with many points -> 1/3
    tt = np.linspace(0, 1, 2001)[1:]
    assert ex.mean_squared_score_error(tt, tt) == pytest.approx(1 / 3, rel=1e-3)


def test_loglog_fit_recovers_power_law():
    x = np.array([100, 300, 1000, 3000, 10000.0])
    noise = np.exp(0.01 * np.random.default_rng(0).standard_normal(5))
    fit = ex.loglog_fit(x, 7 * x ** (-1 / 3) * noise)
    assert abs(fit.slope + 1 / 3) < 3 * fit.se + 1e-3
    assert fit.se < 0.02
    np.testing.assert_allclose(fit(x), 7 * x ** fit.slope * np.exp(fit.intercept - np.log(7)))
    assert np.isnan(ex.loglog_fit([1, 2], [1, 2]).se)


def test_train_across_n_reproducible_and_shaped():
    data = dl.SubspaceData.random(D=6, d0=1, seed=0)
    kw = dict(patch=1, seeds=(0, 1), T0=0.02, T=3.0, n_eval=200, steps=8, batch_size=16, blocks=1, progress=False,
              device="cpu")
    runs = ex.train_across_n(data, [8, 32], **kw)
    again = ex.train_across_n(data, [8, 32], keep_models=False, **dict(kw, seeds=(0,)))
    assert [(r.n, r.seed) for r in runs] == [(8, 0), (8, 1), (32, 0), (32, 1)]
    np.testing.assert_array_equal(again[0].errors, runs[0].errors)        # seeds make runs reproducible
    assert again[0].subspace_error == runs[0].subspace_error and again[0].model is None
    assert not np.array_equal(runs[0].errors, runs[1].errors)             # and different seeds differ
    for a in runs:
        assert a.model is not None
        assert a.errors.shape == (12,) and a.t_grid[0] == 0.02 and a.t_grid[-1] == 3.0
        assert 0 <= a.subspace_error <= np.sqrt(2) + 1e-9
        assert a.mean_sq_error == pytest.approx(ex.mean_squared_score_error(a.errors, a.t_grid))
    ns, mean, se = ex.by_n(runs, "subspace_error")
    np.testing.assert_array_equal(ns, [8, 32])
    assert mean[0] == pytest.approx((runs[0].subspace_error + runs[1].subspace_error) / 2)
    assert np.all(np.isfinite(se))


def test_distribution_recovery_with_exact_score():
    # d0 = 1: histogram TV; with the exact score and W_B = U the latent reads its floor and the leakage the recursion.
    data = dl.SubspaceData.random(D=5, d0=1, seed=2)
    T0, steps = 0.05, 60
    rec = ex.distribution_recovery(lambda x, t: ambient_score(data, x, t), data.basis, data, T0=T0, T=5.0,
                                   steps=steps, n=1500, seed=1)
    assert rec.latent_metric == "tv" and rec.subspace_error < 1e-12
    assert rec.latent.value < rec.latent.floor + 0.04
    want = sampling.orthogonal_variance_recursion(T0, 5.0, steps)
    assert abs(rec.leakage.variance - want) < 4 * rec.leakage.se
    assert rec.samples.shape == (1500, 5)
    # d0 = 4: MMD^2, zero within noise
    data4 = dl.SubspaceData.random(D=6, d0=4, seed=3)
    rec4 = ex.distribution_recovery(lambda x, t: ambient_score(data4, x, t), data4.basis, data4, T0=0.05,
                                    steps=60, n=600, seed=2)
    assert rec4.latent_metric == "mmd2" and abs(rec4.latent.value) < 4 * rec4.latent.se + 2e-3


def test_experiments_bad_input():
    data = dl.SubspaceData.random(D=4, d0=1, seed=0)
    with pytest.raises(ValueError, match="ns\\[0\\] must be >= 1"):
        ex.train_across_n(data, [0], patch=1)
    with pytest.raises(ValueError, match="at least one value"):
        ex.train_across_n(data, [], patch=1)
    with pytest.raises(ValueError, match="T0 must lie in"):
        ex.train_across_n(data, [4], patch=1, T0=5.0, T=5.0)
    with pytest.raises(ValueError, match="t_grid must increase"):
        ex.train_across_n(data, [4], patch=1, t_grid=[1.0, 0.5])
    with pytest.raises(TypeError, match="SubspaceData"):
        ex.train_across_n(np.zeros((3, 3)), [4], patch=1)
    with pytest.raises(ValueError, match="common length"):
        ex.loglog_fit([1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        ex.loglog_fit([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        ex.mean_squared_score_error([1.0, 1.0], [2.0, 1.0])
    with pytest.raises(ValueError, match="d0 must be >= 1"):
        ex.chzw_exponent(0)
    with pytest.raises(ValueError, match="attribute must be one of"):
        ex.by_n([ex.Run(1, 4, 0, np.ones(2), np.ones(2), 1.0, 0.0, 0.0)], "loss")
    with pytest.raises(ValueError, match="shape of data.basis"):
        ex.distribution_recovery(lambda x, t: -x, dl.random_orthonormal_basis(4, 2), data)
    with pytest.raises(ValueError, match="T0 must lie in"):
        ex.distribution_recovery(lambda x, t: -x, data.basis, data, T0=6.0, T=5.0)


def test_slope_interval_covers_truth_at_its_level():
    # 200 noisy power laws with slope -1/3: the 90% interval covers -1/3 in about 90% of them.
    rng = np.random.default_rng(1)
    x = np.repeat([16.0, 64, 256, 1024], 3)
    hits = []
    for _ in range(200):
        fit = ex.loglog_fit(x, 2 * x ** (-1 / 3) * np.exp(0.2 * rng.standard_normal(x.size)))
        lo, hi = fit.interval(0.9)
        assert lo < fit.slope < hi and fit.dof == x.size - 2
        hits.append(lo <= -1 / 3 <= hi)
    assert 0.82 < np.mean(hits) < 0.97
    wide, narrow = fit.interval(0.99), fit.interval(0.5)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    with pytest.raises(ValueError, match="degrees of freedom"):
        ex.loglog_fit([1.0, 2.0], [1.0, 2.0]).interval()
    with pytest.raises(ValueError, match="level"):
        fit.interval(1.0)


def _small_model(D=6, d0=4, patch=1):
    import torch

    torch.manual_seed(0)
    return dl.network.LatentDiT(D, d0, patch, blocks=2)


def test_uniform_attention_and_weights():
    import torch

    model = _small_model()
    # make the keys and queries large so that the softmax is far from uniform
    with torch.no_grad():
        for block in model.blocks:
            block.attn.key.weight.mul_(30)
            block.attn.query.weight.mul_(30)
        model.time_embedding.mlp[-1].bias.fill_(0.5)    # open the adaLN-Zero gates, so attention reaches the output
    x = np.random.default_rng(0).standard_normal((50, 6))
    w = ex.attention_weights(model, x, 0.3)
    assert w.shape == (2, 50, 2, 4, 4)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    assert np.abs(w - 0.25).max() > 0.2
    q = torch.randn(3, 2, 4, 2)
    v = torch.randn(3, 2, 4, 2)
    out = ex.uniform_attention(q, torch.zeros_like(q), v)
    torch.testing.assert_close(out, torch.softmax(torch.zeros(3, 2, 4, 4), -1) @ v)
    # swapping changes the output, and the original attention is restored afterwards, also after an error
    xt = torch.as_tensor(x, dtype=torch.float32)
    before = model(xt, 0.3)
    with ex.swapped_attention(model, ex.uniform_attention):
        swapped = model(xt, 0.3)
    assert (swapped - before).abs().max() > 1e-3
    with pytest.raises(RuntimeError):
        with ex.swapped_attention(model, ex.uniform_attention):
            raise RuntimeError("boom")
    torch.testing.assert_close(model(xt, 0.3), before)
    with pytest.raises(TypeError, match="attention"):
        with ex.swapped_attention(model, 3):
            pass
    with pytest.raises(TypeError, match="model"):
        ex.attention_weights(object(), x, 0.3)
    with pytest.raises(ValueError, match="t must"):
        ex.attention_weights(model, x, 0.0)


def test_sample_quality_orders_real_and_noise():
    from dit_lib import realdata

    dg = realdata.load_digits(seed=0)
    clf = realdata.fit_digit_classifier(dg.x_train, dg.y_train)
    real = ex.sample_quality(dg.x_train[:300], dg.x_test, clf, seed=0)
    noise = ex.sample_quality(np.random.default_rng(0).standard_normal((300, 64)), dg.x_test, clf, seed=0)
    assert real.confidence > noise.confidence and real.coverage > 9.5
    assert real.sliced_w.value + 3 * real.sliced_w.se < noise.sliced_w.value
    assert real.mmd2.value < noise.mmd2.value
    with pytest.raises(ValueError, match="reference"):
        ex.sample_quality(dg.x_train[:30], dg.x_test[:, :5], clf)
    with pytest.raises(TypeError, match="classifier"):
        ex.sample_quality(dg.x_train[:30], dg.x_test, object())
