"""The IGA math: kernels, transformation matrix, surrogate gradient (float64 where exactness matters)."""

import math

import pytest
import torch

from iga.adjust import IGAAdjuster, surrogate_loss
from iga.configs import AdjusterConfig, ConfigError, FRConfig, ModelConfig
from iga.models import build_model
from iga.ntk import analytic_relu_ntk, entk, grouped_entk, jacobian, transformation_matrix


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def small_model(arch="PE", technique="none", out=3):
    cfg = ModelConfig(
        architecture=arch,
        out_features=out,
        hidden_features=24,
        hidden_layers=2,
        pe_frequencies=3,
        technique=technique,
        fr=FRConfig(low_freqs=4, high_freqs=4, phases=3, alpha=0.05),
    )
    return build_model(cfg)


@pytest.mark.parametrize("arch", ["ReLU", "PE", "SIREN"])
@pytest.mark.parametrize("technique", ["none", "fr"])
def test_fast_entk_equals_jacobian_kernel(arch, technique):
    model = small_model(arch, technique)
    x = torch.rand(17, 2) * 2 - 1
    J = jacobian(model, x)
    assert torch.allclose(entk(model, x), J @ J.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("technique", ["none", "fr"])
def test_blocked_symmetric_entk_equals_jacobian_kernel(monkeypatch, technique):
    """Large kernels are assembled from upper-triangular blocks: same K (uneven blocks, frozen parts)."""
    import iga.ntk as ntk

    monkeypatch.setattr(ntk, "SYMMETRIC_FROM", 8)
    monkeypatch.setattr(ntk, "SYMMETRIC_BLOCK", 5)  # 23 points: 4 blocks of 5-6 rows
    model = small_model("SIREN", technique)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    first.weight.requires_grad_(False)  # a layer with its bias alone trainable
    x = torch.rand(23, 2) * 2 - 1
    J = jacobian(model, x)
    K = entk(model, x)
    assert torch.allclose(K, K.T, rtol=1e-12, atol=1e-14)
    assert torch.allclose(K, J @ J.T, rtol=1e-10, atol=1e-12)


def test_grouped_entk_is_kernel_of_group_summed_gradients():
    model = small_model("ReLU")
    x = torch.rand(5, 4, 2) * 2 - 1
    Jg = jacobian(model, x.reshape(-1, 2)).reshape(5, 4, -1).sum(1)
    assert torch.allclose(grouped_entk(model, x), Jg @ Jg.T, rtol=1e-10, atol=1e-12)


def test_sum_of_logits_matches_frozen_linear_layer():
    """The official code appends a frozen linear layer with weights 1/sqrt(out)."""
    model = small_model("SIREN")
    x = torch.rand(6, 2)
    head = torch.nn.Linear(3, 1, bias=False)
    torch.nn.init.constant_(head.weight, 1 / math.sqrt(3))
    head.weight.requires_grad_(False)
    J1 = jacobian(torch.nn.Sequential(model, head), x)
    assert torch.allclose(J1 @ J1.T, entk(model, x))


@pytest.mark.parametrize("end", [1, 4, 9])
def test_surrogate_gradient_equals_explicit_adjusted_gradient(end):
    model = small_model("PE")
    G, P = 12, 5
    inputs = torch.rand(G, P, 2) * 2 - 1
    targets = torch.rand(G, P, 3)
    adj = IGAAdjuster(AdjusterConfig(kind="iga", end=end, sampling="slr"))
    outputs = model(inputs.reshape(-1, 2)).reshape(G, P, 3)
    sampled = adj.sample(inputs, outputs, targets)
    S = transformation_matrix(entk(model, sampled), end)
    loss = adj.loss(model, inputs, outputs, targets)
    params = [p for p in model.parameters()]
    got = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    # explicit: (2/numel) Σ_i J_iᵀ (S R)_i with per-output Jacobians of every point
    R = (outputs - targets).detach()
    SR = torch.einsum("ij,jkl->ikl", S, R).reshape(-1)
    Jfull = torch.autograd.functional.jacobian(
        lambda *ps: torch.func.functional_call(
            model, dict(zip([n for n, _ in model.named_parameters()], ps)), (inputs.reshape(-1, 2),)
        ).reshape(-1),
        tuple(p.detach() for p in params),
    )
    Jmat = torch.cat([j.reshape(j.shape[0], -1) for j in Jfull], dim=1)
    expected = 2.0 / SR.numel() * (Jmat.T @ SR)
    assert torch.allclose(got, expected, rtol=1e-8, atol=1e-12)
    assert not torch.allclose(S, torch.eye(G))  # the adjustment really changes something


def test_identity_surrogate_equals_mse_gradient():
    model = small_model("ReLU")
    x, y = torch.rand(4, 6, 2), torch.rand(4, 6, 3)
    out = model(x.reshape(-1, 2)).reshape(4, 6, 3)
    g1 = torch.autograd.grad(surrogate_loss(out, y, torch.eye(4)), list(model.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(((out - y) ** 2).mean(), list(model.parameters()))
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)


def random_spd(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g)
    lam = torch.logspace(3, -3, n)
    Q, _ = torch.linalg.qr(A)
    return (Q * lam) @ Q.T, lam


@pytest.mark.parametrize("target", ["end", "start"])
@pytest.mark.parametrize("start,end", [(0, 5), (2, 6)])
def test_effective_kernel_has_the_intended_spectrum(target, start, end):
    K, lam = random_spd(10)
    S = transformation_matrix(K, end, target=target, start=start)
    got = torch.linalg.eigvalsh((K @ S + (K @ S).T) / 2)
    lam_t = lam[end] if target == "end" else lam[start]
    expected = lam.clone()
    expected[start:end] = lam_t
    assert torch.allclose(got.sort(descending=True).values, expected.sort(descending=True).values, rtol=1e-8)
    # S shares K's eigenvectors, so K·S is symmetric
    assert torch.allclose(K @ S, (K @ S).T, atol=1e-8)


def test_paper_variant_weighs_other_directions_by_lambda():
    K, lam = random_spd(8)
    S = transformation_matrix(K, 3, variant="paper")
    got = torch.linalg.eigvalsh((K @ S + (K @ S).T) / 2).sort(descending=True).values
    expected = torch.cat([lam[3].repeat(3), lam[3:] ** 2])
    assert torch.allclose(got, expected.sort(descending=True).values, rtol=1e-8)


def test_nonpositive_eigenvalues_stop_the_range_and_bad_kernels_fall_back_to_identity(caplog):
    K = torch.diag(torch.tensor([4.0, 2.0, 0.0, 0.0, -1.0]))
    S = transformation_matrix(K, 3, target="start")  # λ_2 = 0 ends the range after two directions
    assert torch.allclose(torch.diag(S), torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0]))
    S = transformation_matrix(K, 3, target="end")  # λ_end = 0: not positive -> S = I
    assert torch.equal(S, torch.eye(5))
    K_nan = torch.full((4, 4), float("nan"))
    assert torch.equal(transformation_matrix(K_nan, 2), torch.eye(4))
    assert "S = I" in caplog.text


def test_end_must_fit_the_number_of_groups():
    K, _ = random_spd(6)
    with pytest.raises(ConfigError, match="end=6"):
        transformation_matrix(K, 6)
    with pytest.raises(ConfigError, match="end=7"):
        transformation_matrix(K, 7, target="start")
    with pytest.raises(ConfigError, match="target='middle'"):
        transformation_matrix(K, 2, target="middle")


def test_analytic_relu_ntk_matches_monte_carlo_entk():
    """E[eNTK] of f = (2m)^-1/2 Σ a relu(wᵀx + b), b = 0 at init, w ~ N(0, I), a = ±1 fixed."""
    n, m, nets = 12, 2000, 10
    theta = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    x = torch.stack([theta.cos(), theta.sin()], 1)
    mean = torch.zeros(n, n)
    for s in range(nets):
        torch.manual_seed(100 + s)
        lin = torch.nn.Linear(2, m)
        torch.nn.init.normal_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
        out = torch.nn.Linear(m, 1, bias=False)
        out.weight.data = (torch.randint(0, 2, (1, m)) * 2.0 - 1) / math.sqrt(2 * m)
        out.weight.requires_grad_(False)
        mean += entk(torch.nn.Sequential(lin, torch.nn.ReLU(), out), x) / nets
    K = analytic_relu_ntk(x)
    # each entry is a mean of N = nets·m iid terms t = (c+1)/2·1[both active]; 6 standard deviations
    c = (x @ x.T).clamp(-1, 1)
    p = (math.pi - torch.arccos(c)) / (2 * math.pi)
    tol = 6 * (c + 1) / 2 * torch.sqrt(p * (1 - p)) / math.sqrt(nets * m) + 1e-9
    assert ((mean - K).abs() <= tol).all(), float(((mean - K).abs() / tol).max())
    assert not torch.allclose(mean, 2 * K, rtol=0.05)  # the scaling really is pinned down
