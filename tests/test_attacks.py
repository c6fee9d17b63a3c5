"""Tests of advtransfer.attacks: the virtual adversarial attack (Def. 1) and PGD (used for Def. 6's
cross adversarial loss). Explicit dtypes and seeds everywhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advtransfer import attacks
from advtransfer.attacks import output_deviation_objective, own_prediction_objective, pgd, virtual_attack
from advtransfer.jacobian import jacobian
from tests.nets import frozen

F64, F32 = torch.float64, torch.float32


def classifier(seed: int, dtype=F32) -> nn.Module:
    """A small random CNN classifier on 1 x 8 x 8 images (10 classes), with confident (scaled) logits."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(128, 10)
    )
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[-1].weight.mul_(10.0)
    return frozen(net, dtype)


def regressor(seed: int, dtype=F64) -> nn.Module:
    torch.manual_seed(seed)
    return frozen(nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)), dtype)


def images(n: int, seed: int, dtype=F32) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ---------------------------------------------------------------------------------- virtual attack


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_virtual_attack_is_eps_times_top_singular_vector(method):
    """Def. 1: delta = eps v1 (||delta|| = eps), deviation = J delta, ||deviation|| = eps sigma1 >= ||J u|| eps."""
    f = regressor(0)
    x = torch.randn(10, 6, dtype=F64, generator=torch.Generator().manual_seed(0))
    eps = 0.3
    att = virtual_attack(f, x, eps=eps, method=method, generator=torch.Generator().manual_seed(0))
    jac = jacobian(f, x)
    torch.testing.assert_close(att.delta.norm(dim=1), torch.full((10,), eps, dtype=F64))
    torch.testing.assert_close(att.deviation, torch.einsum("bmn,bn->bm", jac, att.delta), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(att.sigma1, torch.linalg.matrix_norm(jac, ord=2), rtol=1e-8, atol=0)
    torch.testing.assert_close(att.deviation.norm(dim=1), eps * att.sigma1, rtol=1e-8, atol=0)
    # no other unit direction does better (optimality of v1 among random directions)
    u = torch.randn(10, 50, 6, dtype=F64, generator=torch.Generator().manual_seed(1))
    u = eps * u / u.norm(dim=2, keepdim=True)
    other = torch.einsum("bmn,bkn->bkm", jac, u).norm(dim=2)
    assert (other <= att.deviation.norm(dim=1, keepdim=True) * (1 + 1e-10)).all()


def test_virtual_attack_rejects_unknown_method():
    with pytest.raises(ValueError):
        virtual_attack(regressor(0), torch.zeros(2, 6, dtype=F64), method="power")


# ---------------------------------------------------------------------------------------------- PGD


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_pgd_linf_stays_in_eps_box_and_bounds(eps):
    f = classifier(0)
    x = images(16, 0)
    x_adv = pgd(own_prediction_objective(f, x), x, eps=eps, steps=7, step_size=0.03, norm="linf",
                generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    if eps > 0:
        assert float((x_adv - x).abs().max()) > 0.5 * eps  # it actually moves


@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_pgd_l2_stays_in_eps_ball_and_bounds(eps):
    f = classifier(1)
    x = images(16, 1)
    x_adv = pgd(own_prediction_objective(f, x), x, eps=eps, steps=7, step_size=eps / 3, norm="l2",
                generator=torch.Generator().manual_seed(1))
    dist = (x_adv - x).flatten(1).norm(dim=1)
    assert (dist <= eps * (1 + 1e-5)).all()
    assert (dist > 0.5 * eps).all()
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_pgd_unbounded_l2_reaches_the_sphere():
    """bounds=None: no clipping; the L2 iterate is projected onto the eps-ball (here it ends on the sphere)."""
    f = regressor(2)
    x = torch.randn(8, 6, dtype=F64, generator=torch.Generator().manual_seed(2)) * 3
    x_adv = pgd(output_deviation_objective(f, x), x, eps=0.5, steps=10, step_size=0.2, norm="l2", bounds=None,
                generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close((x_adv - x).norm(dim=1), torch.full((8,), 0.5, dtype=F64), rtol=1e-9, atol=0)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_increases_classification_objective(norm):
    """Untargeted PGD on cross-entropy against the clean prediction raises the loss of every sample."""
    f = classifier(3)
    x = images(16, 3)
    objective = own_prediction_objective(f, x)
    eps = 0.1 if norm == "linf" else 1.0
    x_adv = pgd(objective, x, eps=eps, steps=10, step_size=eps / 4, norm=norm,
                generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before, after = objective(x), objective(x_adv)
        # objective definition: cross-entropy against the clean argmax
        torch.testing.assert_close(before, F.cross_entropy(f(x), f(x).argmax(1), reduction="none"))
        # a random point of the same ball (Linf: a random corner; L2: a random direction on the sphere)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(30)).to(x.dtype)
        noise = (
            eps * noise.sign() if norm == "linf" else eps * noise / noise.flatten(1).norm(dim=1)[:, None, None, None]
        )
        random_point = objective((x + noise).clamp(0, 1))
    assert (after > before).all()
    assert float((after - before).mean()) > 3 * float((random_point - before).abs().mean())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_increases_regression_deviation(norm):
    """PGD (random start) on ||f(x') - f(x)||^2 moves the output away from the clean output."""
    f = regressor(4)
    x = torch.rand(12, 6, dtype=F64, generator=torch.Generator().manual_seed(4))
    objective = output_deviation_objective(f, x)
    with torch.no_grad():
        assert torch.count_nonzero(objective(x)) == 0  # zero at the clean point by definition
    x_adv = pgd(objective, x, eps=0.1, steps=10, step_size=0.03, norm=norm, bounds=None,
                generator=torch.Generator().manual_seed(4))
    # a random point of the same ball does much worse than PGD
    noise = torch.rand(x.shape, dtype=F64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    noise = noise * 0.1 if norm == "linf" else 0.1 * noise / noise.norm(dim=1, keepdim=True)
    with torch.no_grad():
        after, random_point = objective(x_adv), objective(x + noise)
    assert (after > 0).all()
    assert float(after.mean()) > 2 * float(random_point.mean())


def test_pgd_same_seed_same_output():
    f = classifier(5)
    x = images(8, 5)
    objective = own_prediction_objective(f, x)
    kwargs = dict(eps=0.1, steps=5, step_size=0.03, norm="linf")
    a = pgd(objective, x, generator=torch.Generator().manual_seed(7), **kwargs)
    b = pgd(objective, x, generator=torch.Generator().manual_seed(7), **kwargs)
    c = pgd(objective, x, generator=torch.Generator().manual_seed(8), **kwargs)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kwargs", [dict(eps=-0.1), dict(eps=0.1, steps=-1), dict(eps=0.1, step_size=-0.01)])
def test_pgd_rejects_negative_parameters(kwargs):
    f = classifier(0)
    x = images(2, 0)
    args = dict(eps=0.1, steps=3, step_size=0.01) | kwargs
    with pytest.raises(ValueError):
        pgd(own_prediction_objective(f, x), x, **args)


def test_pgd_rejects_unknown_norm():
    f = classifier(0)
    x = images(2, 0)
    with pytest.raises(ValueError):
        pgd(own_prediction_objective(f, x), x, eps=0.1, steps=1, step_size=0.01, norm="l1")


def reference_linf_pgd(objective, x, eps, steps, step_size):
    """Minimal Linf PGD (no random start): sign-gradient ascent, clamp to the eps box, clamp to [0, 1]."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = objective(x_adv).sum()
        loss.backward()
        with torch.no_grad():
            x_adv = x_adv + step_size * x_adv.grad.sign()
            x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
            x_adv = x_adv.clamp(0.0, 1.0)
    return x_adv.detach()


@pytest.mark.parametrize("dtype", [F32, F64])
def test_pgd_linf_matches_reference_loop(dtype):
    """attacks.pgd(norm='linf', random_start=False) equals an independent minimal PGD loop."""
    f = classifier(6, dtype)
    x = images(16, 6, dtype)
    objective = own_prediction_objective(f, x)
    ours = pgd(objective, x, eps=0.08, steps=8, step_size=0.02, norm="linf", random_start=False)
    ref = reference_linf_pgd(objective, x, eps=0.08, steps=8, step_size=0.02)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    assert float((ours - x).abs().max()) > 0.05  # non-trivial: it moved most of the way


def reference_l2_pgd(objective, x, eps, steps, step_size):
    """Minimal L2 PGD (no random start): normalised-gradient ascent, project onto the eps-ball, clamp to [0, 1]."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x_adv).sum(), x_adv)
        with torch.no_grad():
            g_norm = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            x_adv = x_adv + step_size * grad / g_norm
            delta = x_adv - x
            d_norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = torch.where(d_norm > eps, delta * eps / d_norm, delta)
            x_adv = (x + delta).clamp(0.0, 1.0)
    return x_adv.detach()


@pytest.mark.parametrize("eps", [0.25, 2.0])
def test_pgd_l2_matches_reference_loop(eps):
    """attacks.pgd(norm='l2', random_start=False) equals an independent minimal L2 PGD loop, both when the
    projection binds (eps = 0.25) and when the iterate stays strictly inside the ball (eps = 2)."""
    f = classifier(7, F64)
    x = 0.3 + 0.4 * images(16, 7, F64)  # away from the [0, 1] bounds, so the norm checks below are exact
    objective = own_prediction_objective(f, x)
    ours = pgd(objective, x, eps=eps, steps=6, step_size=0.1, norm="l2", random_start=False)
    ref = reference_l2_pgd(objective, x, eps=eps, steps=6, step_size=0.1)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)
    dist = (ours - x).flatten(1).norm(dim=1)
    if eps < 0.6:
        torch.testing.assert_close(dist, torch.full_like(dist, eps), rtol=1e-6, atol=0)  # on the sphere
    else:
        assert (dist < 0.61).all()  # at most 6 steps of 0.1 (clipping only shortens): strictly inside


def test_pgd_step_one_vocabulary():
    """step_size as given, or step_factor x eps, or the caller's default factor; never both."""
    assert attacks.pgd_step({"step_size": 0.03}, eps=0.1) == 0.03
    assert attacks.pgd_step({"step_factor": 0.25}, eps=0.1) == 0.1 * 0.25
    assert attacks.pgd_step({}, eps=0.2, default_factor=0.25) == 0.05
    assert attacks.pgd_step({"step_size": None, "step_factor": None}, eps=0.2) is None
    with pytest.raises(ValueError, match="not both"):
        attacks.pgd_step({"step_size": 0.03, "step_factor": 0.25}, eps=0.1)
