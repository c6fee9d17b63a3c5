"""Adversarial-transferability metrics and the theorems' quantities (Section 3; docs/definitions.md, Section 3).

All functions take tensors over the target data D (first dimension = samples) and return tensors;
expectations E_x are sample means. Deviations are Delta_{f,delta}(x) = J_f(x) delta(x):
``dev_s`` = J_S delta_S (m outputs), ``dev_t`` = J_T delta_S (d outputs), both under the SOURCE attack.
Reductions run in float64; degenerate cases (zero norms) give 0 instead of NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from advtransfer.attacks import virtual_attack
from advtransfer.jacobian import BatchedModel, jvp


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _sq_norm_mean(t: torch.Tensor) -> torch.Tensor:
    """||f||_D^2 = E_x ||f(x)||^2 for per-sample values (N, ...)."""
    return t.double().flatten(1).pow(2).sum(dim=1).mean()


def tau1_per_sample(delta_s: torch.Tensor, delta_t: torch.Tensor) -> torch.Tensor:
    """tau1(x) = <delta_S, delta_T>^2 / (||delta_S||^2 ||delta_T||^2) (Def. 2), shape (N,)."""
    a, b = delta_s.double().flatten(1), delta_t.double().flatten(1)
    num = (a * b).sum(dim=1).pow(2)
    return _safe_ratio(num, a.pow(2).sum(dim=1) * b.pow(2).sum(dim=1)).clamp(0.0, 1.0)


def tau1(delta_s: torch.Tensor, delta_t: torch.Tensor) -> torch.Tensor:
    """tau1 = E_x tau1(x) (Def. 2)."""
    return tau1_per_sample(delta_s, delta_t).mean()


def spectral_projection(matrix: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
    """proj(M, r) = M if ||M||_2 <= r else r M / ||M||_2 (Def. 3)."""
    norm = torch.linalg.matrix_norm(matrix, ord=2)
    radius = torch.as_tensor(radius, dtype=matrix.dtype)
    return matrix if norm <= radius else matrix * (radius / norm)


def alignment_matrix(dev_s: torch.Tensor, dev_t: torch.Tensor) -> torch.Tensor:
    """A = proj(E[dT dS^T] (E[dS dS^T])^+, ||dT||_D / ||dS||_D) of Def. 3, shape (d, m).

    E[dT dS^T] (E[dS dS^T])^+ equals (dS^+ dT)^T for the sample matrices; the SVD-based pseudo-inverse of
    dS avoids squaring its condition number.
    """
    ds, dt = dev_s.double().flatten(1), dev_t.double().flatten(1)
    least_squares = (torch.linalg.pinv(ds) @ dt).T
    radius = _safe_ratio(_sq_norm_mean(dt), _sq_norm_mean(ds)).sqrt()
    return spectral_projection(least_squares, radius)


def tau2(
    dev_s: torch.Tensor, dev_t: torch.Tensor, align: torch.Tensor | None = None, *, clamp: bool = True
) -> torch.Tensor:
    """tau2 from S to T (Def. 3): <2 dT - A dS, A dS>_D / ||dT||_D^2, both deviations under delta_S.

    Proposition 1 puts it in [0, 1]; the result is clamped there against rounding unless ``clamp`` is
    false (what a check of Proposition 1 reads)."""
    ds, dt = dev_s.double().flatten(1), dev_t.double().flatten(1)
    align = alignment_matrix(ds, dt) if align is None else align.double()
    mapped = ds @ align.T
    num = ((2 * dt - mapped) * mapped).sum(dim=1).mean()
    value = _safe_ratio(num, _sq_norm_mean(dt))
    return value.clamp(0.0, 1.0) if clamp else value


def alpha(dev_t_under_s: torch.Tensor, dev_t_under_t: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
    """alpha = ||Delta_{f_T, delta_S}||_D^2 / ||Delta_{f_T, delta_T}||_D^2 (normalised cross adversarial loss),
    in [0, 1] because delta_T maximises ||J_T delta||; clamped there against solver error unless ``clamp``
    is false."""
    value = _safe_ratio(_sq_norm_mean(dev_t_under_s), _sq_norm_mean(dev_t_under_t))
    return value.clamp(0.0, 1.0) if clamp else value


def singular_value_ratio(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """lambda_f(x) = sigma2(x) / sigma1(x) (Def. 4), per sample; lambda_f is its max over the data."""
    return _safe_ratio(sigma2.double(), sigma1.double())


def gradient_difference(jac_s: torch.Tensor, jac_t: torch.Tensor, align: torch.Tensor) -> torch.Tensor:
    """||J_T - A J_S||_{D,2}^2 = E_x ||J_T(x) - A J_S(x)||_2^2 (Theorems 1-2, left-hand side)."""
    diff = jac_t.double() - align.double() @ jac_s.double()
    return torch.linalg.matrix_norm(diff, ord=2).pow(2).mean()


def theorem1_rhs(tau1_x: torch.Tensor, tau2_value: torch.Tensor, grad_t: torch.Tensor) -> torch.Tensor:
    """E[(1 - tau1(x) tau2) ||grad f_T(x)||^2] (Theorem 1, m = d = 1)."""
    return ((1 - tau1_x.double() * tau2_value.double()) * grad_t.double().flatten(1).pow(2).sum(dim=1)).mean()


def theorem2_bound(
    tau1_x: torch.Tensor,
    tau2_value: torch.Tensor,
    lambda_s_x: torch.Tensor,
    lambda_t_x: torch.Tensor,
    norm_s_x: torch.Tensor,
    norm_t_x: torch.Tensor,
) -> torch.Tensor:
    """Theorem 2 bound on ||J_T - A J_S||_{D,2}^2 (expectation form); norm_*_x = ||J_*(x)||_2 per sample.

    5 E[((1 - tau1(x) tau2) + (1 - tau1(x))(1 - tau2) lambda_T(x)^2) ||J_T(x)||^2
        + (lambda_T(x) + lambda_S(x))^2 ||J_S(x)||^2 ||J_T||_{D,2}^2 / ||J_S||_{D,2}^2].
    """
    t1, t2 = tau1_x.double(), tau2_value.double()
    ls, lt = lambda_s_x.double(), lambda_t_x.double()
    ns2, nt2 = norm_s_x.double().pow(2), norm_t_x.double().pow(2)
    norm_ratio = _safe_ratio(nt2.mean(), ns2.mean())
    per_sample = ((1 - t1 * t2) + (1 - t1) * (1 - t2) * lt.pow(2)) * nt2 + (lt + ls).pow(2) * ns2 * norm_ratio
    return 5 * per_sample.mean()


def theorem2_bound_lipschitz(
    tau1_value: torch.Tensor,
    tau2_value: torch.Tensor,
    lambda_s: torch.Tensor,
    lambda_t: torch.Tensor,
    lipschitz: torch.Tensor,
) -> torch.Tensor:
    """Theorem 2, Lipschitz form: ((1 - tau1 tau2) + (1 - tau1)(1 - tau2) lambda_T^2 + (lambda_T + lambda_S)^2) 5 L^2.

    tau1 = E tau1(x), lambda_* = max over the data, L = max_x ||J_T(x)||_2 (so it bounds the expectation form).
    """
    t1, t2 = tau1_value.double(), tau2_value.double()
    ls, lt = lambda_s.double(), lambda_t.double()
    return ((1 - t1 * t2) + (1 - t1) * (1 - t2) * lt.pow(2) + (lt + ls).pow(2)) * 5 * lipschitz.double().pow(2)


def theorem3_bound(
    target_error: torch.Tensor,
    grad_diff: torch.Tensor,
    norm_s_x: torch.Tensor,
    norm_t_x: torch.Tensor,
    beta: torch.Tensor | float,
) -> torch.Tensor:
    """Theorem 3 bound on ||g o f_S - y||_D^2, g(z) = A (z - f_S(0)) + f_T(0), inputs in the unit ball:

    (||f_T - y||_D + ||J_T - A J_S||_{D,2} + (1 + ||J_T||_{D,2} / ||J_S||_{D,2}) beta)^2, with
    ``target_error`` = ||f_T - y||_D^2 and ``grad_diff`` = ||J_T - A J_S||_{D,2}^2.
    """
    norm_ratio = _safe_ratio(norm_t_x.double().pow(2).mean(), norm_s_x.double().pow(2).mean()).sqrt()
    beta = torch.as_tensor(beta, dtype=torch.float64)
    return (target_error.double().sqrt() + grad_diff.double().sqrt() + (1 + norm_ratio) * beta).pow(2)


def affine_transfer(out_s: torch.Tensor, out_s_origin: torch.Tensor, out_t_origin: torch.Tensor, align: torch.Tensor):
    """g(f_S(x)) with g(z) = A (z - f_S(0)) + f_T(0) (Theorem 3's map from source to target outputs)."""
    return (out_s.double() - out_s_origin.double()) @ align.double().T + out_t_origin.double()


def squared_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||f - y||_D^2 = E_x ||f(x) - y(x)||^2 (regression loss used throughout Section 4.1)."""
    return _sq_norm_mean(prediction.double() - target.double())


def cross_adversarial_loss(target_output_at_source_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_adv = E loss_T(f_T(x + delta_S(x)), y(x)) (Def. 6): cross-entropy for integer labels, else squared error."""
    if y.dtype in (torch.int64, torch.int32):
        logits = target_output_at_source_adv.double()
        return torch.nn.functional.cross_entropy(logits, y.long())
    return squared_error(target_output_at_source_adv, y)


@dataclass(frozen=True)
class Transferability:
    """Per-sample and aggregate adversarial transferability of a source f_S to a reference f_T on D."""

    tau1_x: torch.Tensor  # (N,)
    tau1: torch.Tensor
    tau2: torch.Tensor
    alpha: torch.Tensor
    align: torch.Tensor  # A of Def. 3, (d, m)
    lambda_s_x: torch.Tensor  # (N,)
    lambda_t_x: torch.Tensor  # (N,)
    norm_s_x: torch.Tensor  # ||J_S(x)||_2, (N,)
    norm_t_x: torch.Tensor  # ||J_T(x)||_2, (N,)
    iterations: int  # Lanczos steps of the slower of the two attacks (0 when exact)
    tau2_unclamped: torch.Tensor  # tau2 and alpha before the clamp to [0, 1] (Proposition 1 checks)
    alpha_unclamped: torch.Tensor


def _deviation_under(f: BatchedModel, own_attack, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """J_f(x) delta per sample: from the explicit Jacobian f's own virtual attack formed, else by one jvp."""
    if own_attack.jacobian is not None:
        return torch.einsum("bmn,bn->bm", own_attack.jacobian, delta)
    return jvp(f, x, delta)


@torch.no_grad()  # torch.func transforms still differentiate; results carry no autograd graph
def transferability(
    source: BatchedModel,
    target: BatchedModel,
    x: torch.Tensor,
    *,
    method: Literal["exact", "lanczos", "auto"] = "auto",
    tol: float = 1e-6,
    max_iter: int = 100,
    batch_size: int | None = None,
    linearize: bool = False,
    generator: torch.Generator | None = None,
) -> Transferability:
    """tau1, tau2, alpha (Defs. 2-3) and the singular-value ratios (Def. 4) of ``source`` to ``target`` on x.

    Both virtual attacks (Def. 1) are computed per sample; the target's deviation is taken under the
    SOURCE's attack for tau2 and alpha. ``method`` and ``linearize`` as in ``virtual_attack``;
    ``batch_size`` bounds memory. Results depend on neither beyond the solver's tolerance.
    """
    step = batch_size or x.shape[0]
    solver = {"method": method, "tol": tol, "max_iter": max_iter, "linearize": linearize, "generator": generator}
    v, iterations = _paired_attacks(source, target, x, step, solver)
    align = alignment_matrix(v["dev_s"], v["dev_t"])
    tau1_x = tau1_per_sample(v["delta_s"], v["delta_t"])
    tau2_raw = tau2(v["dev_s"], v["dev_t"], align, clamp=False)
    alpha_raw = alpha(v["dev_t"], v["dev_tt"], clamp=False)
    return Transferability(
        tau1_x=tau1_x,
        tau1=tau1_x.mean(),
        tau2=tau2_raw.clamp(0.0, 1.0),  # what tau2() and alpha() return by default
        alpha=alpha_raw.clamp(0.0, 1.0),
        align=align,
        lambda_s_x=singular_value_ratio(v["sigma1_s"], v["sigma2_s"]),
        lambda_t_x=singular_value_ratio(v["sigma1_t"], v["sigma2_t"]),
        norm_s_x=v["sigma1_s"].double(),
        norm_t_x=v["sigma1_t"].double(),
        iterations=iterations,
        tau2_unclamped=tau2_raw,
        alpha_unclamped=alpha_raw,
    )


def _paired_attacks(
    source: BatchedModel, target: BatchedModel, x: torch.Tensor, step: int, solver: dict
) -> tuple[dict[str, torch.Tensor], int]:
    """Both models' virtual attacks on x, ``step`` samples at a time (source first, then target, per batch),
    concatenated over the batches: delta_S, delta_T, dev_s = J_S delta_S, dev_t = J_T delta_S,
    dev_tt = J_T delta_T and both attacks' top two singular values; with the most Lanczos steps of any attack."""
    fields = ("delta_s", "delta_t", "dev_s", "dev_t", "dev_tt", "sigma1_s", "sigma2_s", "sigma1_t", "sigma2_t")
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in fields}
    iterations = 0
    for start in range(0, x.shape[0], step):
        xb = x[start : start + step]
        att_s = virtual_attack(source, xb, **solver)
        att_t = virtual_attack(target, xb, **solver)
        dev_t = _deviation_under(target, att_t, xb, att_s.delta)
        batch = {
            "delta_s": att_s.delta,
            "delta_t": att_t.delta,
            "dev_s": att_s.deviation,  # J_S delta_S
            "dev_t": dev_t,  # J_T delta_S
            "dev_tt": att_t.deviation,  # J_T delta_T
            "sigma1_s": att_s.sigma1,
            "sigma2_s": att_s.sigma2,
            "sigma1_t": att_t.sigma1,
            "sigma2_t": att_t.sigma2,
        }
        for name in fields:
            parts[name].append(batch[name])
        iterations = max(iterations, att_s.iterations, att_t.iterations)
    return {name: torch.cat(values) for name, values in parts.items()}, iterations


@dataclass
class TransferabilityMatrix:
    """tau1, tau2, tau1 tau2 and alpha from every model i (the source, rows) to every model j (columns)."""

    tau1: torch.Tensor  # (N, N), symmetric, 1 on the diagonal
    tau2: torch.Tensor  # (N, N): tau2 from i to j (Def. 3), clamped to [0, 1]
    alpha: torch.Tensor  # (N, N): ||J_j delta_i||^2 / ||J_j delta_j||^2, clamped to [0, 1]
    iterations: int

    @property
    def tau1_tau2(self) -> torch.Tensor:
        return self.tau1 * self.tau2


@torch.no_grad()
def transferability_matrix(
    models: list[BatchedModel],
    x: torch.Tensor,
    *,
    method: Literal["exact", "lanczos", "auto"] = "auto",
    tol: float = 1e-6,
    max_iter: int = 100,
    batch_size: int | None = None,
    linearize: bool = False,
    generator: torch.Generator | None = None,
) -> TransferabilityMatrix:
    """:func:`transferability` between every ordered pair of ``models`` on x, with one virtual attack per
    model (N attacks, not N^2) and one jvp per ordered pair: model j's deviation under model i's attack.

    Entry (i, j) equals ``transferability(models[i], models[j], x)`` up to the solvers' tolerance (the same
    definitions, Defs. 2-3; tests check it). The models' outputs may differ in size (each task's encoder).
    """
    n = len(models)
    step = batch_size or x.shape[0]
    solver = {"method": method, "tol": tol, "max_iter": max_iter, "linearize": linearize, "generator": generator}
    deltas: list[list[torch.Tensor]] = [[] for _ in range(n)]
    own: list[list[torch.Tensor]] = [[] for _ in range(n)]  # J_i delta_i
    cross: dict[tuple[int, int], list[torch.Tensor]] = {(i, j): [] for i in range(n) for j in range(n) if i != j}
    iterations = 0
    for start in range(0, x.shape[0], step):
        xb = x[start : start + step]
        attacks = [virtual_attack(f, xb, **solver) for f in models]
        for i, att in enumerate(attacks):
            deltas[i].append(att.delta)
            own[i].append(att.deviation)
            iterations = max(iterations, att.iterations)
        for i, j in cross:
            cross[i, j].append(_deviation_under(models[j], attacks[j], xb, attacks[i].delta))
    delta = [torch.cat(d) for d in deltas]
    dev = [torch.cat(d) for d in own]
    t1 = torch.ones(n, n, dtype=torch.float64)
    t2 = torch.ones(n, n, dtype=torch.float64)
    al = torch.ones(n, n, dtype=torch.float64)
    for (i, j), parts in cross.items():
        dev_j_under_i = torch.cat(parts)
        t1[i, j] = tau1(delta[i], delta[j])
        t2[i, j] = tau2(dev[i], dev_j_under_i)
        al[i, j] = alpha(dev_j_under_i, dev[j])
    return TransferabilityMatrix(tau1=t1, tau2=t2, alpha=al, iterations=iterations)
