"""Adversarial attacks: the virtual adversarial attack of Definition 1 and projected gradient descent."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from advtransfer.jacobian import (
    BatchedModel,
    JacobianOperator,
    jacobian,
    top_singular_exact,
    top_singular_lanczos,
)

EXPLICIT_MAX_OUTPUTS = 16  # method "auto": form J from m vjps up to this many outputs (docs/performance.md)


@dataclass(frozen=True)
class VirtualAttack:
    """delta_f(x) = eps * v1(x) (Def. 1) with what the metrics need from the same computation."""

    delta: torch.Tensor  # (B, n): eps * top right singular vector of J_f(x)
    deviation: torch.Tensor  # (B, m): Delta_{f, delta_f}(x) = J_f(x) delta_f(x)
    sigma1: torch.Tensor  # (B,): ||J_f(x)||_2
    sigma2: torch.Tensor  # (B,): second singular value (0 for rank one)
    iterations: int  # Lanczos steps (0 when J was formed)
    jacobian: torch.Tensor | None = None  # (B, m, n) when J was formed explicitly, for further products


@torch.no_grad()  # torch.func transforms still differentiate; results carry no autograd graph
def virtual_attack(
    f: BatchedModel,
    x: torch.Tensor,
    *,
    eps: float = 1.0,
    method: Literal["exact", "lanczos", "auto"] = "lanczos",
    tol: float = 1e-6,
    max_iter: int = 100,
    linearize: bool = False,
    generator: torch.Generator | None = None,
) -> VirtualAttack:
    """Virtual adversarial attack (Def. 1): eps times the top right singular vector of J_f(x), per sample.

    ``exact`` takes the SVD of the explicit Jacobian (vmap over jacrev); ``lanczos`` iterates on J^T J
    through jvp / vjp (``linearize``: see JacobianOperator); ``auto`` forms J from m vjps and takes its SVD
    when the model has at most EXPLICIT_MAX_OUTPUTS outputs, else runs ``lanczos``.
    """
    jac = None
    if method == "exact":
        jac = jacobian(f, x)
    elif method in ("lanczos", "auto"):
        op = JacobianOperator(f, x, linearize=linearize)
        if method == "auto" and op.n_out <= EXPLICIT_MAX_OUTPUTS:
            jac = op.explicit()
        else:
            top = top_singular_lanczos(op, tol=tol, max_iter=max_iter, generator=generator)
            deviation = op.matvec(top.v1)
    else:
        raise ValueError(f"virtual_attack: unknown method {method!r}; use 'exact', 'lanczos' or 'auto'")
    if jac is not None:
        top = top_singular_exact(jac)
        deviation = torch.einsum("bmn,bn->bm", jac, top.v1)
    return VirtualAttack(
        delta=eps * top.v1,
        deviation=eps * deviation,
        sigma1=top.sigma1,
        sigma2=top.sigma2,
        iterations=top.iterations,
        jacobian=jac,
    )


def pgd_step(settings: Mapping[str, Any], eps: float, default_factor: float | None = None) -> float | None:
    """The PGD step size that config settings give at ``eps`` (one vocabulary in every block): ``step_size`` as
    it is, or ``step_factor`` times eps; with neither, ``default_factor`` times eps (None without a default)."""
    if settings.get("step_size") is not None and settings.get("step_factor") is not None:
        raise ValueError("give step_size or step_factor, not both")
    if settings.get("step_size") is not None:
        return settings["step_size"]
    factor = settings.get("step_factor", default_factor)
    return None if factor is None else eps * factor


def pgd(
    objective: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    norm: Literal["linf", "l2"] = "linf",
    bounds: tuple[float, float] | None = (0.0, 1.0),
    random_start: bool = True,
    generator: torch.Generator | None = None,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Projected gradient ascent on ``objective`` (per-sample losses, shape (B,)) within the eps-ball.

    The first iterate is ``start`` when given (projected onto the ball; TRADES starts at x + 0.001 N(0, I)),
    else x plus a uniform draw from the ball (``random_start``), else x.

    Linf steps follow the gradient sign, L2 steps the normalised gradient; after each step the iterate is
    projected onto the eps-ball around x and then clipped to ``bounds`` (None: unbounded inputs).
    """
    if eps < 0 or steps < 0 or step_size < 0:
        raise ValueError(f"pgd: eps, steps and step_size must be >= 0 (got {eps}, {steps}, {step_size})")
    x = x.detach()
    delta = torch.zeros_like(x)
    if start is not None:
        delta = start.detach() - x
    elif random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        if norm == "linf":
            delta = (2 * noise - 1) * eps
        else:
            direction = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
            radius = noise.flatten(1)[:, :1] ** (1.0 / x[0].numel()) * eps
            delta = (direction.flatten(1) / _row_norm(direction) * radius).reshape(x.shape)
    x_adv = _project(x, x + delta, eps, norm, bounds)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x_adv).sum(), x_adv)
        with torch.no_grad():
            if norm == "linf":
                step = grad.sign()
            else:
                step = (grad.flatten(1) / _row_norm(grad).clamp_min(1e-12)).reshape(x.shape)
            x_adv = _project(x, x_adv.detach() + step_size * step, eps, norm, bounds)
    return x_adv.detach()


def _row_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1, keepdim=True)


def _project(x, x_adv, eps, norm, bounds):
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "l2":
        flat = delta.flatten(1)
        factor = (eps / _row_norm(flat).clamp_min(1e-12)).clamp(max=1.0)
        delta = (flat * factor).reshape(x.shape)
    else:
        raise ValueError(f"pgd: unknown norm {norm!r}; use 'linf' or 'l2'")
    out = x + delta
    return out.clamp(*bounds) if bounds is not None else out


@contextmanager
def attack_mode(model: torch.nn.Module) -> Iterator[None]:
    """The model in eval mode, its parameters not accumulating gradients (both restored on exit)."""
    training, flags = model.training, [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        model.train(training)
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def pgd_examples(model, x, y, *, eps: float, steps: int, step_size: float, generator: torch.Generator | None = None,
                 seed: int | None = None, batch_size: int | None = None) -> torch.Tensor:
    """Madry et al.'s inner maximisation (the PGD of adversarial training and of the robustness evaluation):
    L-inf PGD on the cross-entropy against the TRUE label, from a uniform random start, with the model in eval
    mode. Training passes its ``generator``; an evaluation passes a ``seed`` instead and attacks in batches of
    ``batch_size`` (all at once by default), each from a fresh CPU generator seeded with it, so a batch's
    examples do not depend on the batches before it."""
    if generator is None:
        size = batch_size or len(x)
        return torch.cat([
            pgd_examples(model, x[i : i + size], y[i : i + size], eps=eps, steps=steps, step_size=step_size,
                         generator=torch.Generator().manual_seed(int(seed)))
            for i in range(0, len(x), size)
        ])  # fmt: skip
    with attack_mode(model):
        return pgd(
            lambda z: F.cross_entropy(model(z).float(), y, reduction="none"), x, eps=eps, steps=steps,
            step_size=step_size, generator=generator,
        )  # fmt: skip


def own_prediction_objective(model: BatchedModel, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Untargeted classification objective: cross-entropy against the model's own clean prediction."""
    with torch.no_grad():
        label = model(x).argmax(dim=1)
    return lambda x_adv: F.cross_entropy(model(x_adv), label, reduction="none")


def output_deviation_objective(model: BatchedModel, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Untargeted regression objective: squared distance of the output from the clean output."""
    with torch.no_grad():
        clean = model(x)
    return lambda x_adv: (model(x_adv) - clean).pow(2).flatten(1).sum(dim=1)


# ------------------------------------------------------------------ AutoAttack (the maintained library)


def _autoattack_ready(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    device = next(model.parameters()).device
    return x.detach().float().to(device), y.detach().long().to(device), device


def apgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    n_iter: int = 100,
    n_restarts: int = 1,
    loss: Literal["ce", "dlr"] = "ce",
    seed: int = 0,
) -> torch.Tensor:
    """L-inf APGD (Croce and Hein 2020) on ``loss`` against the true labels, from pyautoattack (the official
    AutoAttack code): adversarial examples for the points ``model`` (in eval mode, on its device) classifies
    correctly, x itself elsewhere. Its seeding of torch's global generators is undone on return."""
    from pyautoattack.autopgd_base import APGDAttack

    x, y, device = _autoattack_ready(model, x, y)
    attack = APGDAttack(model, n_iter=n_iter, norm="Linf", n_restarts=n_restarts, eps=eps, seed=seed, loss=loss,
                        device=device)  # fmt: skip
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return attack.perturb(x, y).detach()


def autoattack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, seed: int = 0,
               batch_size: int = 250) -> torch.Tensor:  # fmt: skip
    """The standard L-inf AutoAttack ensemble (APGD-CE, APGD-T, FAB-T, Square; Croce and Hein 2020) from
    pyautoattack: per point, the first adversarial example any of them finds, else x."""
    from pyautoattack import AutoAttack

    x, y, device = _autoattack_ready(model, x, y)
    ensemble = AutoAttack(model, eps=eps, norm="Linf", version="standard", seed=seed, device=device)
    ensemble.verbose = False
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        x_adv, _ = ensemble.run_standard_evaluation(x, y, batch_size=batch_size)
    return x_adv.detach()
