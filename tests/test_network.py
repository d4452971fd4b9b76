"""Tests of dit_lib.network: the latent DiT of Defs 3.1–3.3 (chapter 2)."""
import numpy as np
import pytest
import torch

import dit_lib as dl
from dit_lib.network import ExactAttention, LatentDiT
from dit_lib import scores as S


def _model(D=12, d0=16, patch=2, seed=0, **kw):
    if D < d0:
        D = d0 + 4
    torch.manual_seed(seed)
    return LatentDiT(D, d0, patch, **kw)


def _perturb(model, scale=0.3, seed=1):
    """Give every parameter (gates included) a non-trivial value so that f is far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "encoder" not in name:
                p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_output_has_the_form_WB_f_minus_x_over_sigma():
    m = _perturb(_model())
    x = torch.randn(9, m.D)
    t = torch.rand(9) * 3 + 0.01
    W = m.W_B
    want = (m.f(x @ W, t) @ W.T - x) / (1 - torch.exp(-t))[:, None]
    torch.testing.assert_close(m(x, t), want)


def test_known_f_identity_gives_the_orthogonal_score():
    """Untrained: every gate is zero (adaLN-Zero) and E is removed after the blocks, so f(h) = h exactly.

    With W_B = U the network is then exactly s_- of Lemma 2.1."""
    data = dl.SubspaceData.random(20, 16, seed=2)
    m = LatentDiT(20, 16, 2, train_basis=False).double().set_basis(data.basis)
    assert float(m.pos_embedding.detach().abs().max()) > 0
    x = S.sample_pt(data, 11, 0.3, seed=1)
    _, s_minus = S.score_decomposition(data, x, 0.3)
    got = m(torch.as_tensor(x), torch.tensor(0.3, dtype=torch.float64)).detach().numpy()
    np.testing.assert_allclose(got, s_minus, atol=1e-10)


def test_basis_initialisation_and_orthonormality():
    U = dl.random_orthonormal_basis(24, 16, seed=3)
    m = LatentDiT(24, 16, 2, basis=U)
    np.testing.assert_allclose(m.W_B.detach().numpy(), U, atol=1e-5)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(30):  # big steps: a hand-rolled update would leave the manifold
        opt.zero_grad()
        m(torch.randn(32, 24), torch.rand(32) + 0.5).pow(2).mean().backward()
        opt.step()
    W = m.W_B.detach().double()
    assert float((W - torch.as_tensor(U)).abs().max()) > 1e-3          # it moved
    torch.testing.assert_close(W.T @ W, torch.eye(16, dtype=torch.float64), atol=1e-5, rtol=0)


def test_reshape_inside_f_is_exact_and_token_order_matters_only_through_E():
    m = _perturb(_model(D=16, d0=16))
    h = torch.randn(3, 16, dtype=torch.float32)
    torch.testing.assert_close(dl.unpatchify(dl.patchify(h, 2), 2), h, rtol=0, atol=0)
    X = dl.patchify(h, 2)
    t = torch.full((3,), 0.5)
    torch.testing.assert_close(m.f(h, t), dl.unpatchify(m.transformer(X, t), 2))
    # Without positional embedding the transformer is permutation-equivariant over tokens.
    with torch.no_grad():
        m.pos_embedding.zero_()
    perm = torch.tensor([2, 0, 3, 1])
    torch.testing.assert_close(m.transformer(X[..., perm], t), m.transformer(X, t)[..., perm])


def test_exact_attention_is_softmax_qk_over_m():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    want = torch.softmax(q @ k.transpose(-1, -2) / 4, dim=-1) @ v
    torch.testing.assert_close(ExactAttention()(q, k, v), want)
    want2 = torch.softmax(q @ k.transpose(-1, -2) * 0.5, dim=-1) @ v
    torch.testing.assert_close(ExactAttention(scale=0.5)(q, k, v), want2)


def test_attention_is_swappable():
    m = _perturb(_model())
    x, t = torch.randn(6, m.D), torch.rand(6) + 0.1
    before = m(x, t)
    manual = lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1], -1) @ v  # noqa: E731
    torch.testing.assert_close(m.set_attention(manual)(x, t), before, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(m.set_attention(lambda q, k, v: torch.zeros_like(v))(x, t), before)
    m.set_attention(None)
    torch.testing.assert_close(m(x, t), before)


def test_keys_queries_are_the_attention_inputs():
    m = _perturb(_model(heads=3, head_dim=2, blocks=2))
    x, t = torch.randn(4, m.D), torch.full((4,), 0.7)
    seen = []

    def spy(q, k, v):
        seen.append((q.clone(), k.clone()))
        return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1], -1) @ v

    m.set_attention(spy)
    m(x, t)
    rec = m.keys_queries(x, t)
    assert len(rec) == 2 and rec[0][0].shape == (4, 3, m.L, 2)
    for (q, k), (q2, k2) in zip(rec, seen):
        torch.testing.assert_close(q, q2)
        torch.testing.assert_close(k, k2)


def test_folded_weights_reproduce_the_logits():
    m = _perturb(_model(heads=2, head_dim=1, ff_width=4, blocks=1))
    x = torch.randn(3, m.D)
    (q, k), = m.keys_queries(x, 0.4)
    fw = m.folded_weights(0.4)[0]
    Z = dl.patchify(x @ m.W_B, m.patch).transpose(1, 2) + m.pos_embedding  # X + E, tokens as rows
    for i in range(2):
        want = q[:, i] @ k[:, i].transpose(1, 2)
        got = Z @ fw["W_Q"][i].T @ fw["W_K"][i] @ Z.transpose(1, 2)      # <W_Q z_l, W_K z_j>
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fw["W_KQ"][i], fw["W_K"][i].T @ fw["W_Q"][i])
        torch.testing.assert_close(fw["W_OV"][i], fw["W_O"][i] @ fw["W_V"][i])
    norms = m.class_norms(0.4)
    assert set(norms) == {"W_OV", "W_KQ"} and all(v >= 0 for v in norms.values())


def test_gradcheck_in_float64():
    m = _perturb(_model(D=18, d0=16, heads=2, head_dim=1, ff_width=4, blocks=1)).double()
    x = torch.randn(2, 18, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.3, 1.1], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: m(z, t), (x,))


def test_bad_inputs():
    with pytest.raises(ValueError, match="p must divide"):
        LatentDiT(20, 16, 3)
    with pytest.raises(ValueError, match="d0 must be a perfect square"):
        LatentDiT(20, 15, 1)
    with pytest.raises(ValueError, match="heads"):
        LatentDiT(20, 16, 2, heads=0)
    with pytest.raises(ValueError, match="head_dim"):
        LatentDiT(20, 16, 2, head_dim=-1)
    with pytest.raises(ValueError, match="ff_width"):
        LatentDiT(20, 16, 2, ff_width=0)
    with pytest.raises(ValueError, match="blocks"):
        LatentDiT(20, 16, 2, blocks=0)
    with pytest.raises(ValueError, match="d0"):
        LatentDiT(9, 16, 2)
    with pytest.raises(ValueError, match="basis must have shape"):
        LatentDiT(20, 16, 2, basis=dl.random_orthonormal_basis(21, 16))
    with pytest.raises(ValueError, match="orthonormal"):
        LatentDiT(20, 16, 2, basis=np.ones((20, 16)))
    m = LatentDiT(20, 16, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.zeros(3, 19), torch.ones(3))
    with pytest.raises(ValueError, match="t must be > 0"):
        m(torch.zeros(3, 20), torch.tensor([0.1, 0.0, 0.2]))
    with pytest.raises(ValueError, match="t must be a scalar"):
        m(torch.zeros(3, 20), torch.ones(2))
    with pytest.raises(TypeError, match="callable"):
        m.set_attention(3)
