"""Tests of advtransfer.jacobian (explicit and matrix-free Jacobians, Def. 1's top singular vector) and of
models.sigmoid_mlp_smoothness (the beta of Theorem 3).

Explicit dtypes and seeds everywhere; the matrix-free Lanczos is checked against the SVD of the explicit
Jacobian, and the explicit Jacobian against finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from advtransfer import metrics
from advtransfer.attacks import virtual_attack
from advtransfer.jacobian import JacobianOperator, jacobian, top_singular_exact, top_singular_lanczos
from advtransfer.models import SigmoidMLP, SmallCNN, sigmoid_mlp_smoothness
from tests.nets import frozen

F64, F32 = torch.float64, torch.float32


# --------------------------------------------------------------------------------------------- helpers


def small_cnn(seed: int, dtype: torch.dtype, channels: int = 1, n_out: int = 10, batch_norm: bool = False) -> nn.Module:
    """Conv(c,4,3)-[BN]-ReLU-Conv(4,8,3)-[BN]-ReLU-flatten-Linear(128, n_out) on c x 8 x 8 inputs."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(channels, 4, 3)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.Conv2d(4, 8, 3)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(8))
    layers += [nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, n_out)]
    net = nn.Sequential(*layers)
    if batch_norm:  # non-trivial running statistics and affine parameters, as after training
        gen = torch.Generator().manual_seed(seed + 1)
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                mod.weight.data.copy_(1 + 0.5 * torch.randn(c, generator=gen))
                mod.bias.data.copy_(0.2 * torch.randn(c, generator=gen))
    return frozen(net, dtype)


def images(n: int, channels: int, dtype: torch.dtype, seed: int, size: int = 8) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)).to(dtype)


def tanh_mlp(n_in: int, n_hidden: int, n_out: int, seed: int, dtype=F64) -> nn.Module:
    torch.manual_seed(seed)
    return frozen(nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, n_out)), dtype)


def per_sample_abs_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double().flatten(1), b.double().flatten(1)
    return (a * b).sum(1).abs() / (a.norm(dim=1) * b.norm(dim=1))


# ---------------------------------------------------------------------------------- explicit Jacobian


def test_jacobian_matches_central_finite_differences():
    """jacobian(f, x)[i] is the (m, n) Jacobian of row i w.r.t. x[i] (checked by central differences)."""
    f = tanh_mlp(5, 8, 3, seed=0)
    x = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    jac = jacobian(f, x)
    assert jac.shape == (4, 3, 5) and jac.dtype == F64
    h = 1e-6
    for j in range(5):
        e = torch.zeros(5, dtype=F64)
        e[j] = h
        fd = (f(x + e) - f(x - e)) / (2 * h)
        torch.testing.assert_close(jac[:, :, j], fd, rtol=1e-7, atol=1e-8)


def test_jacobian_of_image_model_is_flattened_and_per_sample():
    """Image inputs: J is (B, m, prod(input_shape)) and row i does not depend on the other samples."""
    f = small_cnn(0, F64, channels=3)
    x = images(3, 3, F64, seed=1)
    jac = jacobian(f, x)
    assert jac.shape == (3, 10, 3 * 8 * 8)
    alone = jacobian(f, x[1:2])
    torch.testing.assert_close(jac[1:2], alone, rtol=1e-12, atol=1e-12)


def test_top_singular_exact_matches_numpy_svd():
    """top_singular_exact: unit v1 with |<v1, v1_numpy>| = 1, sigma1, sigma2 equal numpy's, sigma2 = 0 for m = 1."""
    rng = np.random.default_rng(0)
    jac = rng.standard_normal((6, 4, 7))
    top = top_singular_exact(torch.tensor(jac, dtype=F64))
    for i in range(6):
        _, s, vh = np.linalg.svd(jac[i])
        assert abs(float(top.v1[i].numpy() @ vh[0])) == pytest.approx(1.0, abs=1e-12)
        assert float(top.sigma1[i]) == pytest.approx(s[0], rel=1e-12)
        assert float(top.sigma2[i]) == pytest.approx(s[1], rel=1e-12)
    row = top_singular_exact(torch.tensor(jac[:, :1, :], dtype=F64))
    assert torch.count_nonzero(row.sigma2) == 0
    torch.testing.assert_close(row.sigma1, torch.tensor(np.linalg.norm(jac[:, 0, :], axis=1), dtype=F64))


# ------------------------------------------------------------------------------ JacobianOperator


@pytest.mark.parametrize("dtype", [F32, F64])
def test_jacobian_operator_matches_explicit_jacobian(dtype):
    """JacobianOperator: matvec = J v, rmatvec = J^T u, gram_matvec = J^T J v, and <J v, u> = <v, J^T u>."""
    f = small_cnn(3, dtype, channels=3, n_out=7)
    x = images(5, 3, dtype, seed=3)
    gen = torch.Generator().manual_seed(3)
    op = JacobianOperator(f, x)
    jac = jacobian(f, x).double()
    assert (op.batch, op.n_in, op.n_out) == (5, 3 * 64, 7)
    v = torch.randn(5, 3 * 64, generator=gen).to(dtype)
    u = torch.randn(5, 7, generator=gen).to(dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == F32 else dict(rtol=1e-10, atol=1e-12)
    jv, jtu = op.matvec(v), op.rmatvec(u)
    assert jv.shape == (5, 7) and jtu.shape == (5, 3 * 64)
    torch.testing.assert_close(jv.double(), torch.einsum("bmn,bn->bm", jac, v.double()), **tol)
    torch.testing.assert_close(jtu.double(), torch.einsum("bmn,bm->bn", jac, u.double()), **tol)
    torch.testing.assert_close(
        op.gram_matvec(v).double(), torch.einsum("bmn,bm->bn", jac, torch.einsum("bmn,bn->bm", jac, v.double())), **tol
    )
    # adjoint identity, per sample
    torch.testing.assert_close((jv * u).double().sum(1), (v * jtu).double().sum(1), **tol)
    # matvec accepts image-shaped vectors too
    torch.testing.assert_close(op.matvec(v.reshape(x.shape)), jv)
    torch.testing.assert_close(op.output, f(x))
    # J itself from m vjps through the pullback, and the traced (linearized) forward product
    torch.testing.assert_close(op.explicit().double(), jac, **tol)
    linear = JacobianOperator(f, x, linearize=True)
    torch.testing.assert_close(linear.matvec(v), jv, **tol)
    torch.testing.assert_close(linear.matvec(v.reshape(x.shape)), jv, **tol)  # the trace is reused


def test_linearized_operator_on_batchnorm_maxpool_cnn():
    """linearize=True gives the same J v as the plain jvp on SmallCNN (batch norm in eval mode, max-pool),
    the model whose forward-mode rules it exists to avoid."""
    torch.manual_seed(4)
    net = frozen(SmallCNN(3, 1, 28), F64)
    x = images(3, 1, F64, seed=4, size=28)
    v = torch.randn(3, 784, dtype=F64, generator=torch.Generator().manual_seed(4))
    plain, linear = JacobianOperator(net.features, x), JacobianOperator(net.features, x, linearize=True)
    torch.testing.assert_close(linear.matvec(v), plain.matvec(v), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(linear.gram_matvec(v), plain.gram_matvec(v), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- Lanczos vs exact SVD


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("channels", [1, 3])
def test_lanczos_virtual_attack_matches_exact_svd(dtype, channels):
    """Def. 1 matrix-free: Lanczos v1 agrees with the SVD of the explicit Jacobian (|cos| >= 0.999 per
    sample), sigma1 to 1e-4 relative and sigma2 closely."""
    f = small_cnn(11 + channels, dtype, channels=channels)
    x = images(12, channels, dtype, seed=channels)
    exact = virtual_attack(f, x, method="exact")
    lanczos = virtual_attack(f, x, method="lanczos", generator=torch.Generator().manual_seed(0))
    assert lanczos.delta.dtype == dtype and lanczos.delta.shape == (12, channels * 64)
    assert (per_sample_abs_cos(lanczos.delta, exact.delta) >= 0.999).all()
    torch.testing.assert_close(lanczos.sigma1.double(), exact.sigma1.double(), rtol=1e-4, atol=0)
    torch.testing.assert_close(lanczos.sigma2.double(), exact.sigma2.double(), rtol=1e-3, atol=0)
    # the deviation is J delta under the same attack (sign fixed by the canonical-sign rule or not)
    torch.testing.assert_close(lanczos.deviation.double().norm(dim=1), exact.sigma1.double(), rtol=1e-4, atol=0)
    assert 0 < lanczos.iterations <= min(100, channels * 64)
    # the problem is non-trivial: a clear gap between sigma1 and sigma2
    assert (exact.sigma2 < 0.95 * exact.sigma1).all()


def test_lanczos_on_batchnorm_cnn_in_eval_mode():
    """Def. 1 matrix-free on a CNN with batch norm in eval mode (running statistics)."""
    f = small_cnn(5, F64, channels=3, batch_norm=True)
    x = images(8, 3, F64, seed=5)
    exact = virtual_attack(f, x, method="exact")
    lanczos = virtual_attack(f, x, method="lanczos", generator=torch.Generator().manual_seed(1))
    assert (per_sample_abs_cos(lanczos.delta, exact.delta) >= 0.999).all()
    torch.testing.assert_close(lanczos.sigma1, exact.sigma1, rtol=1e-4, atol=0)
    torch.testing.assert_close(lanczos.sigma2, exact.sigma2, rtol=1e-3, atol=0)


def test_lanczos_scalar_output_rank_one():
    """Scalar-output model: J is rank one, v1 = grad / ||grad||, sigma1 = ||grad||, sigma2 = 0, no NaN."""
    f = small_cnn(6, F64, channels=1, n_out=1)
    x = images(6, 1, F64, seed=6)
    grad = jacobian(f, x)[:, 0, :]
    top = top_singular_lanczos(JacobianOperator(f, x), generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(top.v1).all() and torch.isfinite(top.sigma1).all() and torch.isfinite(top.sigma2).all()
    assert (per_sample_abs_cos(top.v1, grad) >= 1 - 1e-10).all()
    torch.testing.assert_close(top.sigma1, grad.norm(dim=1), rtol=1e-10, atol=0)
    assert (top.sigma2 <= 1e-6 * top.sigma1).all()
    assert top.iterations <= 5  # the Krylov space is exhausted after two steps


def test_lanczos_dead_relu_zero_jacobian():
    """A dead ReLU net (J = 0 at every input): Lanczos returns a unit v1, sigma1 = sigma2 = 0, no NaN."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        net[0].weight.abs_()
        net[0].bias.fill_(-100.0)  # inputs in [0, 1]: every pre-activation is negative
    f = frozen(net, F64)
    x = torch.rand(4, 6, dtype=F64, generator=torch.Generator().manual_seed(7))
    assert torch.count_nonzero(jacobian(f, x)) == 0
    for method in ("lanczos", "exact"):
        att = virtual_attack(f, x, method=method, generator=torch.Generator().manual_seed(3))
        for t in (att.delta, att.deviation, att.sigma1, att.sigma2):
            assert torch.isfinite(t).all()
        torch.testing.assert_close(att.delta.norm(dim=1), torch.ones(4, dtype=F64))
        assert torch.count_nonzero(att.sigma1) == 0 and torch.count_nonzero(att.deviation) == 0
    # metrics with a dead target: zero, not NaN
    res = metrics.transferability(tanh_mlp(6, 8, 2, seed=8), f, x, method="lanczos",
                                  generator=torch.Generator().manual_seed(4))
    for value in (res.tau1, res.tau2, res.alpha):
        assert torch.isfinite(value)
    assert float(res.tau2) == 0.0 and float(res.alpha) == 0.0


def test_lanczos_mixed_batch_of_dead_and_live_samples():
    """A batch where J = 0 for some samples and not for others: the live samples force several Krylov
    steps while the dead ones break down at once; every v1 must still be a finite unit vector and the live
    samples must match the exact SVD."""
    torch.manual_seed(12)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        net[0].weight.abs_()
        net[0].bias.fill_(-1.0)  # x = 0 is dead, x with large positive entries is alive
    f = frozen(net, F64)
    live = 2 + torch.rand(4, 6, dtype=F64, generator=torch.Generator().manual_seed(12))
    x = torch.cat([torch.zeros(3, 6, dtype=F64), live])
    exact = virtual_attack(f, x, method="exact")
    assert torch.count_nonzero(exact.sigma1[:3]) == 0 and (exact.sigma1[3:] > 0).all()
    lanczos = virtual_attack(f, x, method="lanczos", generator=torch.Generator().manual_seed(13))
    assert lanczos.iterations > 1
    assert torch.isfinite(lanczos.delta).all() and torch.isfinite(lanczos.sigma2).all()
    torch.testing.assert_close(lanczos.delta.norm(dim=1), torch.ones(7, dtype=F64))
    assert (per_sample_abs_cos(lanczos.delta[3:], exact.delta[3:]) >= 0.999).all()
    torch.testing.assert_close(lanczos.sigma1, exact.sigma1, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("n_out, formed", [(4, True), (16, True), (17, False)])
def test_auto_method_forms_small_jacobians_and_iterates_on_large(n_out, formed):
    """virtual_attack(method="auto"): up to EXPLICIT_MAX_OUTPUTS outputs J is formed from m vjps (no Lanczos
    steps, J returned), above it Lanczos runs; both agree with the exact SVD."""
    f = small_cnn(30 + n_out, F64, channels=1, n_out=n_out)
    x = images(6, 1, F64, seed=n_out)
    exact = virtual_attack(f, x, method="exact")
    auto = virtual_attack(f, x, method="auto", linearize=True, generator=torch.Generator().manual_seed(0))
    assert (auto.jacobian is not None) == formed and (auto.iterations == 0) == formed
    if formed:
        torch.testing.assert_close(auto.jacobian, exact.jacobian, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(auto.delta, exact.delta, rtol=1e-10, atol=1e-12)
    assert (per_sample_abs_cos(auto.delta, exact.delta) >= 0.999).all()
    torch.testing.assert_close(auto.sigma1, exact.sigma1, rtol=1e-4, atol=0)


def test_lanczos_is_reproducible_with_a_generator():
    """Same generator seed, same Lanczos output."""
    f = small_cnn(9, F32, channels=1)
    x = images(4, 1, F32, seed=9)
    a = top_singular_lanczos(JacobianOperator(f, x), generator=torch.Generator().manual_seed(5))
    b = top_singular_lanczos(JacobianOperator(f, x), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.v1, b.v1) and torch.equal(a.sigma1, b.sigma1)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_matrix_free_transferability_matches_exact(dtype):
    """tau1, tau2, alpha (Defs. 2-3) from the matrix-free Lanczos attacks equal the exact-SVD ones (1e-3)."""
    f_s = small_cnn(21, dtype, channels=1, n_out=6)
    f_t = small_cnn(22, dtype, channels=1, n_out=10)
    x = images(24, 1, dtype, seed=21)
    exact = metrics.transferability(f_s, f_t, x, method="exact")
    assert 0.01 < float(exact.tau1) < 0.99 and 0.01 < float(exact.tau2) < 0.99  # non-trivial case
    # Lanczos for both models, plain and traced jvp; auto forms both Jacobians (6 and 10 outputs) from vjps
    for method, linearize in (("lanczos", False), ("lanczos", True), ("auto", False)):
        free = metrics.transferability(f_s, f_t, x, method=method, linearize=linearize,
                                       generator=torch.Generator().manual_seed(6))  # fmt: skip
        for name in ("tau1", "tau2", "alpha"):
            assert float(getattr(free, name)) == pytest.approx(float(getattr(exact, name)), abs=1e-3), name
        torch.testing.assert_close(free.norm_s_x, exact.norm_s_x, rtol=1e-4, atol=0)
        torch.testing.assert_close(free.lambda_t_x, exact.lambda_t_x, rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------ Theorem 3's smoothness constant


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_mlp_smoothness_bounds_jacobian_variation(seed):
    """||J(x) - J(x')||_2 <= beta ||x - x'|| for random SigmoidMLPs and random pairs of points."""
    torch.manual_seed(seed)
    model = frozen(SigmoidMLP(6, 20, 3), F64)
    with torch.no_grad():  # larger weights so that the curvature matters
        model.hidden.weight.mul_(3.0)
    beta = float(sigmoid_mlp_smoothness(model))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(400, 6, dtype=F64, generator=gen)
    scale = 10.0 ** torch.empty(400, 1, dtype=F64).uniform_(-4, 0.5, generator=gen)
    x2 = x + scale * torch.randn(400, 6, dtype=F64, generator=gen)
    jx, jx2 = jacobian(model, x), jacobian(model, x2)
    lhs = torch.linalg.matrix_norm(jx - jx2, ord=2)
    rhs = beta * (x - x2).norm(dim=1)
    assert (lhs <= rhs * (1 + 1e-9)).all()
    assert (lhs > 0).all()


def test_sigmoid_mlp_smoothness_is_tight_in_one_dimension():
    """1-1-1 SigmoidMLP: J'(x) = w2 w1^2 sigmoid''(w1 x + b1), so beta = |w2| w1^2 / (6 sqrt 3) is attained.

    This makes the constant falsifiable in both directions (too small fails the bound above, too
    large fails here).
    """
    model = SigmoidMLP(1, 1, 1).to(F64)
    with torch.no_grad():
        model.hidden.weight.fill_(2.0)
        model.hidden.bias.fill_(0.3)
        model.head.weight.fill_(-1.5)
    beta = float(sigmoid_mlp_smoothness(model))
    assert beta == pytest.approx(1.5 * 4.0 / (6 * 3**0.5), rel=1e-12)
    x = torch.linspace(-3, 3, 20001, dtype=F64).unsqueeze(1)
    jac = jacobian(frozen(model, F64), x)[:, 0, 0]
    slopes = (jac[1:] - jac[:-1]).abs() / (x[1:, 0] - x[:-1, 0])
    assert float(slopes.max()) <= beta * (1 + 1e-9)
    assert float(slopes.max()) >= 0.999 * beta
