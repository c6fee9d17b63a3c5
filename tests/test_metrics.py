"""Tests of advtransfer.metrics against DESIGN.md "The quantities" (Section 3 of Liang et al., ICML 2021).

Everything runs in float64 with explicit dtypes and explicit seeds. Reference values are recomputed in
numpy straight from the definitions, independently of the library code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from advtransfer import metrics
from advtransfer.jacobian import jacobian, top_singular_exact

F64 = torch.float64


# --------------------------------------------------------------------------------------------- helpers


def smooth_mlp(n_in: int, n_hidden: int, n_out: int, seed: int, act: type[nn.Module] = nn.Tanh) -> nn.Module:
    """A seeded float64 two-layer MLP with a smooth activation (eval mode, parameters frozen)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(n_in, n_hidden), act(), nn.Linear(n_hidden, n_out)).to(F64).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def inputs(n_samples: int, n_in: int, seed: int) -> torch.Tensor:
    return torch.randn(n_samples, n_in, dtype=F64, generator=torch.Generator().manual_seed(seed))


def matvec(jac: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-sample J(x_i) v_i for explicit Jacobians (N, m, n) and vectors (N, n)."""
    return torch.einsum("bmn,bn->bm", jac, v)


def deviations(jac_s: torch.Tensor, jac_t: torch.Tensor):
    """(delta_S, delta_T, dev_s = J_S delta_S, dev_t = J_T delta_S, dev_tt = J_T delta_T) with eps = 1."""
    delta_s = top_singular_exact(jac_s).v1
    delta_t = top_singular_exact(jac_t).v1
    return delta_s, delta_t, matvec(jac_s, delta_s), matvec(jac_t, delta_s), matvec(jac_t, delta_t)


def np_tau1(delta_s: np.ndarray, delta_t: np.ndarray) -> float:
    """Def. 2 in numpy: E_x <dS, dT>^2 / (||dS||^2 ||dT||^2)."""
    per = [float(a @ b) ** 2 / (float(a @ a) * float(b @ b)) for a, b in zip(delta_s, delta_t)]
    return float(np.mean(per))


def np_alpha(dev_t_under_s: np.ndarray, dev_t_under_t: np.ndarray) -> float:
    """alpha in numpy: ||J_T delta_S||_D^2 / ||J_T delta_T||_D^2."""
    return float(np.mean(np.sum(dev_t_under_s**2, axis=1)) / np.mean(np.sum(dev_t_under_t**2, axis=1)))


def np_tau2(dev_s: np.ndarray, dev_t: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Def. 3 in numpy, written from the formula: returns (unclamped tau2, A, r).

    A_raw = E[dT dS^T] pinv(E[dS dS^T]); r = ||dT||_D / ||dS||_D; A = proj(A_raw, r);
    tau2 = <2 dT - A dS, A dS>_D / ||dT||_D^2.
    """
    ds, dt = np.asarray(dev_s, dtype=np.float64), np.asarray(dev_t, dtype=np.float64)
    n = ds.shape[0]
    cross = dt.T @ ds / n  # E[dT dS^T], (d, m)
    gram = ds.T @ ds / n  # E[dS dS^T], (m, m)
    a_raw = cross @ np.linalg.pinv(gram)
    r = np.sqrt(np.mean(np.sum(dt**2, axis=1))) / np.sqrt(np.mean(np.sum(ds**2, axis=1)))
    norm = np.linalg.norm(a_raw, 2)
    a = a_raw if norm <= r else a_raw * (r / norm)
    mapped = ds @ a.T
    value = np.mean(np.sum((2 * dt - mapped) * mapped, axis=1)) / np.mean(np.sum(dt**2, axis=1))
    return float(value), a, float(r)


def unclamped_tau2(dev_s: torch.Tensor, dev_t: torch.Tensor) -> float:
    """<2 dT - A dS, A dS>_D / ||dT||_D^2 with the library's A but WITHOUT the final clamp (Prop. 1 check)."""
    align = metrics.alignment_matrix(dev_s, dev_t)
    mapped = dev_s.double() @ align.T
    num = ((2 * dev_t.double() - mapped) * mapped).sum(dim=1).mean()
    den = dev_t.double().pow(2).sum(dim=1).mean()
    return float(num / den) if den > 0 else 0.0


# ------------------------------------------------------------------------------ Theorem 1 (identity)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_theorem1_is_an_identity_for_scalar_models(seed):
    """Theorem 1 (m = d = 1): ||grad f_T - A grad f_S||_D^2 == E[(1 - tau1(x) tau2) ||grad f_T(x)||^2]."""
    n = 5 + seed  # 5..8 inputs
    f_s = smooth_mlp(n, 12, 1, seed=10 + seed)
    f_t = smooth_mlp(n, 12, 1, seed=20 + seed, act=nn.Softplus)
    x = inputs(300, n, seed)
    res = metrics.transferability(f_s, f_t, x, method="exact")
    jac_s, jac_t = jacobian(f_s, x), jacobian(f_t, x)
    lhs = metrics.gradient_difference(jac_s, jac_t, res.align)
    rhs = metrics.theorem1_rhs(res.tau1_x, res.tau2, jac_t)
    # The identity is non-trivial: both quantities are strictly between 0 and E||grad f_T||^2.
    total = jac_t.pow(2).sum(dim=(1, 2)).mean()
    assert 0 < float(lhs) < float(total)
    assert 0 < float(res.tau2) < 1 and 0 < float(res.tau1) < 1
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-6)


# ------------------------------------------------------------------------ Proposition 1 (hypothesis)

KINDS = ["full", "low_rank", "duplicated_rows", "zero", "constant_over_samples"]
SCALES = [1.0, 1e-8, 1e-12, 1e-20, 1e-30, 1e3]


def random_jacobians(rng: np.random.Generator, n_samples: int, m: int, n: int, kind: str, scale: float) -> np.ndarray:
    if kind == "zero":
        return np.zeros((n_samples, m, n))
    if kind == "low_rank":  # product of thin random matrices: rank 1 per sample
        jac = rng.standard_normal((n_samples, m, 1)) @ rng.standard_normal((n_samples, 1, n))
    elif kind == "duplicated_rows":
        row = rng.standard_normal((n_samples, 1, n))
        jac = np.repeat(row, m, axis=1)
        if m > 1:
            jac[:, -1] *= -2.0  # still rank one, but not exactly equal rows
    elif kind == "constant_over_samples":  # same J at every x: dS is rank one across samples
        jac = np.repeat(rng.standard_normal((1, m, n)), n_samples, axis=0)
    else:
        jac = rng.standard_normal((n_samples, m, n))
    return jac * scale


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 8),
    d=st.integers(1, 8),
    n=st.integers(1, 8),
    n_samples=st.integers(1, 12),
    kind_s=st.sampled_from(KINDS + ["full"]),
    kind_t=st.sampled_from(KINDS + ["full", "linear_of_source"]),
    scale_s=st.sampled_from(SCALES),
    scale_t=st.sampled_from(SCALES),
)
def test_proposition1_bounds(seed, m, d, n, n_samples, kind_s, kind_t, scale_s, scale_t):
    """Proposition 1: tau1, tau2 in [0, 1] (and alpha in [0, 1]); finite for degenerate Jacobians.

    Besides the (clamped) library values, the UNCLAMPED expressions are checked, so that the clamp in
    metrics cannot hide a wrong alignment matrix or a wrong deviation.
    """
    rng = np.random.default_rng(seed)
    js = random_jacobians(rng, n_samples, m, n, kind_s, scale_s)
    if kind_t == "linear_of_source":  # J_T = B J_S: tau2 should hit its upper end
        jt = rng.standard_normal((d, m)) @ js * (scale_t / max(scale_s, 1e-300))
    else:
        jt = random_jacobians(rng, n_samples, d, n, kind_t, scale_t)
    jac_s, jac_t = torch.tensor(js, dtype=F64), torch.tensor(jt, dtype=F64)
    delta_s, delta_t, dev_s, dev_t, dev_tt = deviations(jac_s, jac_t)

    t1 = metrics.tau1(delta_s, delta_t)
    t2 = metrics.tau2(dev_s, dev_t)
    al = metrics.alpha(dev_t, dev_tt)
    for value in (t1, t2, al):
        assert value.dtype == F64 and value.shape == ()
        assert torch.isfinite(value)
        assert 0.0 <= float(value) <= 1.0

    tol = 1e-9
    align = metrics.alignment_matrix(dev_s, dev_t)
    assert torch.isfinite(align).all()
    raw_t2 = unclamped_tau2(dev_s, dev_t)
    assert -tol <= raw_t2 <= 1 + tol
    # alpha unclamped: ||J_T delta_S|| <= ||J_T delta_T|| = sigma1(J_T) per sample, so the ratio is <= 1.
    num, den = dev_t.pow(2).sum(1).mean(), dev_tt.pow(2).sum(1).mean()
    if den > 0:
        assert float(num / den) <= 1 + tol
    # unit attack directions (Def. 1), also for zero Jacobians
    assert torch.allclose(delta_s.norm(dim=1), torch.ones(n_samples, dtype=F64))
    assert torch.allclose(delta_t.norm(dim=1), torch.ones(n_samples, dtype=F64))


def test_zero_jacobians_give_zero_not_nan():
    """Degenerate case of Defs. 2-3: a zero target Jacobian gives tau2 = alpha = 0, not NaN."""
    rng = np.random.default_rng(0)
    jac_s = torch.tensor(rng.standard_normal((5, 3, 4)), dtype=F64)
    jac_t = torch.zeros(5, 2, 4, dtype=F64)
    delta_s, delta_t, dev_s, dev_t, dev_tt = deviations(jac_s, jac_t)
    assert float(metrics.tau2(dev_s, dev_t)) == 0.0
    assert float(metrics.alpha(dev_t, dev_tt)) == 0.0
    assert torch.isfinite(metrics.tau1(delta_s, delta_t))
    assert torch.count_nonzero(metrics.alignment_matrix(dev_s, dev_t)) == 0


# ------------------------------------------------------------------ identical and rotated models


@pytest.mark.parametrize("seed", [0, 1])
def test_identical_models_give_perfect_transferability(seed):
    """f_S = f_T: tau1 = tau2 = alpha = 1 (Defs. 2-3)."""
    f = smooth_mlp(6, 16, 4, seed=seed)
    x = inputs(80, 6, seed)
    res = metrics.transferability(f, f, x, method="exact")
    for value in (res.tau1, res.tau2, res.alpha):
        assert float(value) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("seed", "c"), [(0, 1.0), (1, 0.05), (2, 30.0)])
def test_orthogonal_transform_of_source_gives_tau_one(seed, c):
    """f_T = B o f_S with B = c Q (Q orthogonal): J_T = B J_S, same v1, so tau1 = tau2 = 1 (and alpha = 1)."""
    m = 4
    f_s = smooth_mlp(5, 16, m, seed=seed)
    q, _ = torch.linalg.qr(torch.randn(m, m, dtype=F64, generator=torch.Generator().manual_seed(100 + seed)))
    b = c * q

    def f_t(x):
        return f_s(x) @ b.T

    x = inputs(60, 5, seed)
    res = metrics.transferability(f_s, f_t, x, method="exact")
    assert float(res.tau1) == pytest.approx(1.0, abs=1e-9)
    assert float(res.tau2) == pytest.approx(1.0, abs=1e-9)
    assert float(res.alpha) == pytest.approx(1.0, abs=1e-9)
    # A recovers B on the span of the deviations; its norm is c (the projection radius is not exceeded).
    assert float(torch.linalg.matrix_norm(res.align, ord=2)) == pytest.approx(c, rel=1e-8)


def test_unrelated_models_are_not_perfectly_transferable():
    """Sanity counterpart of the tests above: two unrelated models have tau1, tau2 clearly below 1."""
    f_s, f_t = smooth_mlp(6, 16, 2, seed=3), smooth_mlp(6, 16, 4, seed=103)
    res = metrics.transferability(f_s, f_t, inputs(200, 6, 3), method="exact")
    assert float(res.tau1) < 0.9 and float(res.tau2) < 0.9


# ----------------------------------------------------------------------- direction of tau2 (S -> T)


def direction_case():
    """Two unrelated tanh MLPs (m = 2, d = 4) whose S->T and T-attack tau2 differ clearly."""
    f_s, f_t = smooth_mlp(6, 16, 2, seed=5), smooth_mlp(6, 16, 4, seed=105)
    return f_s, f_t, inputs(200, 6, 5)


def test_tau2_is_source_to_target_under_source_attack():
    """Def. 3: tau2 uses dS = J_S delta_S and dT = J_T delta_S (both under the SOURCE attack).

    The library value must match a numpy recomputation from the definition, and must NOT match the
    official-code variant where the deviations are taken under the target's attack delta_T.
    """
    f_s, f_t, x = direction_case()
    jac_s, jac_t = jacobian(f_s, x), jacobian(f_t, x)
    delta_s, delta_t, dev_s, dev_t, _ = deviations(jac_s, jac_t)

    expected, expected_align, _ = np_tau2(dev_s.numpy(), dev_t.numpy())
    wrong_target_attack, _, _ = np_tau2(matvec(jac_s, delta_t).numpy(), matvec(jac_t, delta_t).numpy())
    wrong_source_swapped, _, _ = np_tau2(dev_s.numpy(), matvec(jac_s, delta_t).numpy())

    lib_direct = metrics.tau2(dev_s, dev_t)
    res = metrics.transferability(f_s, f_t, x, method="exact")
    assert float(lib_direct) == pytest.approx(expected, rel=1e-8)
    assert float(res.tau2) == pytest.approx(expected, rel=1e-8)
    np.testing.assert_allclose(res.align.detach().numpy(), expected_align, rtol=1e-7, atol=1e-10)
    assert abs(float(res.tau2) - wrong_target_attack) > 0.05
    assert abs(float(res.tau2) - wrong_source_swapped) > 0.05


def test_tau2_is_asymmetric():
    """tau2 from S to T differs from tau2 from T to S (Def. 3 is directional)."""
    f_s, f_t, x = direction_case()
    forward = metrics.transferability(f_s, f_t, x, method="exact")
    backward = metrics.transferability(f_t, f_s, x, method="exact")
    assert abs(float(forward.tau2) - float(backward.tau2)) > 0.05
    assert forward.align.shape == (4, 2) and backward.align.shape == (2, 4)
    # tau1 is symmetric in its two arguments.
    assert float(forward.tau1) == pytest.approx(float(backward.tau1), abs=1e-12)


# ------------------------------------------------------------- tau1 and alpha against numpy references


@pytest.mark.parametrize(("seed", "m", "d", "n"), [(0, 3, 2, 5), (1, 1, 4, 6), (2, 5, 5, 3), (3, 2, 1, 8)])
def test_tau1_and_alpha_match_numpy_definitions(seed, m, d, n):
    """Def. 2 (tau1) and the normalised cross adversarial loss alpha, recomputed in numpy."""
    rng = np.random.default_rng(seed)
    jac_s = torch.tensor(rng.standard_normal((40, m, n)), dtype=F64)
    jac_t = torch.tensor(rng.standard_normal((40, d, n)), dtype=F64)
    delta_s, delta_t, dev_s, dev_t, dev_tt = deviations(jac_s, jac_t)

    # independent v1 from numpy's SVD (sign does not matter for tau1 or for squared norms)
    v_s = np.stack([np.linalg.svd(j)[2][0] for j in jac_s.numpy()])
    v_t = np.stack([np.linalg.svd(j)[2][0] for j in jac_t.numpy()])
    ref_tau1 = np_tau1(v_s, v_t)
    ref_alpha = np_alpha(np.einsum("bmn,bn->bm", jac_t.numpy(), v_s), np.einsum("bmn,bn->bm", jac_t.numpy(), v_t))

    assert float(metrics.tau1(delta_s, delta_t)) == pytest.approx(ref_tau1, abs=1e-10)
    assert float(metrics.alpha(dev_t, dev_tt)) == pytest.approx(ref_alpha, abs=1e-10)
    assert 0.05 < ref_tau1 < 0.95 and 0.05 < ref_alpha < 0.999  # a non-degenerate case
    # per-sample tau1 as well
    per = metrics.tau1_per_sample(delta_s, delta_t).numpy()
    ref_per = [float(a @ b) ** 2 for a, b in zip(v_s, v_t)]
    np.testing.assert_allclose(per, ref_per, atol=1e-10)


def test_tau2_matches_numpy_definition_on_random_jacobians():
    """Def. 3 recomputed in numpy on explicit random Jacobians with m != d."""
    rng = np.random.default_rng(7)
    jac_s = torch.tensor(rng.standard_normal((50, 3, 6)), dtype=F64)
    jac_t = torch.tensor(rng.standard_normal((50, 5, 6)), dtype=F64)
    _, _, dev_s, dev_t, _ = deviations(jac_s, jac_t)
    expected, expected_align, _ = np_tau2(dev_s.numpy(), dev_t.numpy())
    assert float(metrics.tau2(dev_s, dev_t)) == pytest.approx(expected, abs=1e-10)
    np.testing.assert_allclose(metrics.alignment_matrix(dev_s, dev_t).numpy(), expected_align, atol=1e-10)


# ------------------------------------------------------------------------------ spectral projection


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(1, 10), m=st.integers(1, 6), d=st.integers(1, 6))
def test_alignment_matrix_norm_never_exceeds_radius(seed, n_samples, m, d):
    """Def. 3: ||A||_2 <= r = ||dT||_D / ||dS||_D for any deviations."""
    rng = np.random.default_rng(seed)
    ds = rng.standard_normal((n_samples, m)) * 10.0 ** rng.uniform(-6, 3, size=(n_samples, 1))
    dt = rng.standard_normal((n_samples, d)) * 10.0 ** rng.uniform(-6, 3, size=(n_samples, 1))
    dev_s, dev_t = torch.tensor(ds, dtype=F64), torch.tensor(dt, dtype=F64)
    align = metrics.alignment_matrix(dev_s, dev_t)
    r = dev_t.pow(2).sum(1).mean().sqrt() / dev_s.pow(2).sum(1).mean().sqrt()
    assert float(torch.linalg.matrix_norm(align, ord=2)) <= float(r) * (1 + 1e-12)


def test_spectral_projection_binds_for_nearly_collinear_deviations():
    """Def. 3 projection: N = 2 nearly collinear dS make the least-squares A huge; proj scales it to norm r."""
    dev_s = torch.tensor([[1.0, 0.0], [1.0, 1e-6]], dtype=F64)
    dev_t = torch.tensor([[0.0, 1.0], [0.0, -1.0]], dtype=F64)
    least_squares = (torch.linalg.pinv(dev_s) @ dev_t).T
    r = dev_t.pow(2).sum(1).mean().sqrt() / dev_s.pow(2).sum(1).mean().sqrt()
    assert float(torch.linalg.matrix_norm(least_squares, ord=2)) > 1e5 * float(r)  # the projection binds

    align = metrics.alignment_matrix(dev_s, dev_t)
    assert float(torch.linalg.matrix_norm(align, ord=2)) == pytest.approx(float(r), rel=1e-12)
    # direction kept: A is a positive multiple of the least-squares matrix
    torch.testing.assert_close(align, least_squares * (r / torch.linalg.matrix_norm(least_squares, ord=2)))

    expected, expected_align, _ = np_tau2(dev_s.numpy(), dev_t.numpy())
    value = metrics.tau2(dev_s, dev_t)
    assert 0.0 <= float(value) <= 1.0
    assert 0.0 <= unclamped_tau2(dev_s, dev_t) <= 1.0
    assert float(value) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(align.numpy(), expected_align, rtol=1e-6)
    assert 0 < float(value) < 1e-4  # the projected A explains only a tiny part of dT


def test_spectral_projection_function():
    """proj(M, r) = M if ||M||_2 <= r else r M / ||M||_2."""
    m = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=F64)
    torch.testing.assert_close(metrics.spectral_projection(m, 5.0), m)
    torch.testing.assert_close(metrics.spectral_projection(m, 3.0), m)
    torch.testing.assert_close(metrics.spectral_projection(m, 1.5), m / 2)


# ---------------------------------------------------------------------------------- batch_size


def test_batch_size_does_not_change_results():
    """transferability(..., batch_size=k) equals the unbatched result (exact method, float64)."""
    f_s, f_t = smooth_mlp(5, 10, 3, seed=4), smooth_mlp(5, 10, 2, seed=5)
    x = inputs(37, 5, 4)
    full = metrics.transferability(f_s, f_t, x, method="exact")
    for batch_size in (1, 8, 36):
        part = metrics.transferability(f_s, f_t, x, method="exact", batch_size=batch_size)
        for name in ("tau1", "tau2", "alpha", "align", "tau1_x", "lambda_s_x", "lambda_t_x", "norm_s_x", "norm_t_x"):
            torch.testing.assert_close(getattr(part, name), getattr(full, name), rtol=0, atol=1e-10)


def test_transferability_does_not_keep_autograd_graphs():
    """transferability() on ordinary modules (parameters with requires_grad=True, grad mode on) should return
    plain values: otherwise every batch's deviations keep their autograd graph (saved activations) alive
    until the end, and ``batch_size`` no longer bounds memory as its docstring promises.
    """
    torch.manual_seed(0)
    f_s = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(F64).eval()  # parameters NOT frozen
    f_t = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).to(F64).eval()
    x = inputs(20, 5, 0)
    for method in ("exact", "lanczos"):
        res = metrics.transferability(f_s, f_t, x, method=method, batch_size=5,
                                      generator=torch.Generator().manual_seed(0))
        for name in ("tau1", "tau2", "alpha", "align", "tau1_x", "norm_s_x"):
            assert getattr(res, name).grad_fn is None, (method, name)


def test_transferability_matrix_equals_the_pairwise_measures():
    """One attack per model and one jvp per ordered pair give what transferability() gives pair by pair."""
    from advtransfer.metrics import transferability, transferability_matrix

    torch.manual_seed(0)
    nets = [
        torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, m)).double() for m in (3, 4, 5)
    ]
    x = torch.randn(40, 6, dtype=torch.float64)
    matrix = transferability_matrix(nets, x, method="exact", batch_size=16)
    for i in range(3):
        for j in range(3):
            if i == j:
                assert matrix.tau1[i, j] == matrix.tau2[i, j] == matrix.alpha[i, j] == 1.0
                continue
            pair = transferability(nets[i], nets[j], x, method="exact")
            assert torch.allclose(matrix.tau1[i, j], pair.tau1, atol=1e-12)
            assert torch.allclose(matrix.tau2[i, j], pair.tau2, atol=1e-12)
            assert torch.allclose(matrix.alpha[i, j], pair.alpha, atol=1e-12)
    assert torch.allclose(matrix.tau1, matrix.tau1.T)  # tau1 is symmetric; tau2 and alpha need not be
    lanczos = transferability_matrix(nets, x, method="lanczos", tol=1e-10, max_iter=50)
    assert torch.allclose(lanczos.tau1_tau2, matrix.tau1_tau2, atol=1e-6)
