"""The synthetic experiment of Section 4.1 (Figure 2): an RBF regression target, one-hidden-layer sigmoid
MLPs, and sources f_S = f_T with every parameter moved by t V, V ~ U(-r, r)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from advtransfer import metrics
from advtransfer.attacks import output_deviation_objective, pgd
from advtransfer.jacobian import jacobian
from advtransfer.models import SigmoidMLP, sigmoid_mlp_smoothness

RBF_TENSORS = ("x_train", "y_train", "x_test", "y_test")
# The samples D every quantity is taken on: the training sample (what Theorems 1-3 and the paper's code
# use) and the held-out split (which mixes in the reference's generalisation error).
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class RBFData:
    """Train / held-out split of the synthetic regression task; inputs lie in the unit ball."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_scale: float | None = None  # raw inputs were divided by this (their largest norm)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in RBF_TENSORS}

    def sample(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of the sample D named ``split``: 'train' or 'heldout'."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
        return (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)


def make_rbf_data(
    *,
    n_samples: int,
    dim: int,
    n_clusters: int,
    n_rbf: int,
    out_dim: int,
    width_scale: float,
    test_fraction: float,
    generator: torch.Generator,
) -> RBFData:
    """Section 4.1 data: x from a mixture of Gaussians (centres U(-1/2,1/2)^dim, covariance I),
    y = W phi(x), phi_i(x) = exp(-||x - c_i||^2 / (2 s_i^2)), c_i, W ~ U(-1/2,1/2), s_i^2 = width_scale U(0,1).

    y is standardised per output; x is then divided by its largest norm (unit ball, as Theorem 3 assumes).
    """
    g, f64 = generator, torch.float64
    centres = torch.rand(n_clusters, dim, generator=g, dtype=f64) - 0.5
    cluster = torch.randint(n_clusters, (n_samples,), generator=g)
    x = centres[cluster] + torch.randn(n_samples, dim, generator=g, dtype=f64)
    rbf_centres = torch.rand(n_rbf, dim, generator=g, dtype=f64) - 0.5
    widths_sq = width_scale * torch.rand(n_rbf, generator=g, dtype=f64)
    mixing = torch.rand(out_dim, n_rbf, generator=g, dtype=f64) - 0.5
    phi = torch.exp(-torch.cdist(x, rbf_centres).pow(2) / (2 * widths_sq))
    y = phi @ mixing.T
    y = (y - y.mean(dim=0)) / y.std(dim=0)
    scale = float(x.norm(dim=1).max())
    x = x / scale
    order = torch.randperm(n_samples, generator=g)
    n_test = int(round(test_fraction * n_samples))
    test, train = order[:n_test], order[n_test:]
    return RBFData(x[train], y[train], x[test], y[test], scale)


def fit_regression(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float) -> list[float]:
    """Full-batch Adam on the squared error E||f(x) - y||^2; returns the loss every step."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = metrics.squared_error(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def make_target(data: RBFData, *, hidden: int, steps: int, lr: float, seed: int) -> tuple[SigmoidMLP, list[float]]:
    """Train the reference model f_T (float64) on the training split."""
    torch.manual_seed(seed)
    model = SigmoidMLP(data.x_train.shape[1], hidden, data.y_train.shape[1]).double()
    return model, fit_regression(model, data.x_train, data.y_train, steps=steps, lr=lr)


def draw_perturbation(
    model: torch.nn.Module, *, half_range: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """V with entries ~ U(-half_range, half_range) for every parameter of ``model``."""
    return {
        name: (2 * torch.rand(p.shape, generator=generator, dtype=p.dtype) - 1) * half_range
        for name, p in model.named_parameters()
    }


def perturbed_source(target: torch.nn.Module, direction: dict[str, torch.Tensor], t: float) -> torch.nn.Module:
    """f_S with parameters theta_T + t V (t is the actual scale, never accumulated across the sweep)."""
    source = copy.deepcopy(target)
    with torch.no_grad():
        for name, p in source.named_parameters():
            p.copy_(dict(target.named_parameters())[name] + t * direction[name])
    return source


def refit_last_layer(source: SigmoidMLP, data: RBFData, split: str = "heldout") -> torch.Tensor:
    """Knowledge transfer as the paper plots it: least-squares refit of f_S's last layer (with bias) on
    the training split; returns the squared error ||h o f_S^features - y||_D^2 on the sample D ``split``."""
    x, y = data.sample(split)
    with torch.no_grad():
        design = _with_bias(source.features(data.x_train))
        weights = torch.linalg.lstsq(design, data.y_train, driver="gelsd").solution
        return metrics.squared_error(_with_bias(source.features(x)) @ weights, y)


class OutputCoordinate(torch.nn.Module):
    """x -> model(x)[:, index:index + 1]: one output of a model, the scalar case of Theorem 1 (m = d = 1)."""

    def __init__(self, model: torch.nn.Module, index: int = 0):
        super().__init__()
        self.model, self.index = model, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.index : self.index + 1]


def _with_bias(h: torch.Tensor) -> torch.Tensor:
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1)


def sweep_point(
    target: SigmoidMLP,
    source: SigmoidMLP,
    data: RBFData,
    *,
    attack_norm: str,
    attack_eps: float,
    attack_steps: int,
    attack_step_size: float,
    generator: torch.Generator,
    split: str = "heldout",
) -> dict[str, float]:
    """Every Figure 2 quantity for one source against the target on the sample D ``split`` ('train' or
    'heldout'); ``tau2_reverse`` is tau2 from T to S (Def. 3 with the roles swapped: the direction the
    paper's code computes), an ablation of the S -> T tau2 the theory uses. ``tau2_unclamped`` and
    ``alpha_unclamped`` are the values before the clamp to [0, 1] (Proposition 1); ``thm1_lhs``,
    ``thm1_rhs`` and ``thm1_gap`` are Theorem 1's identity on the first outputs (``_theorem1_sides``)."""
    x, y = data.sample(split)
    if float(x.norm(dim=1).max()) > 1 + 1e-9:
        raise ValueError("sweep_point: Theorem 3 needs inputs in the unit ball")
    r = metrics.transferability(source, target, x, method="exact")
    jac_s, jac_t = jacobian(source, x), jacobian(target, x)
    grad_diff = metrics.gradient_difference(jac_s, jac_t, r.align)
    lambda_s, lambda_t = r.lambda_s_x.max(), r.lambda_t_x.max()
    beta = torch.maximum(sigmoid_mlp_smoothness(source), sigmoid_mlp_smoothness(target))
    affine_loss, target_error = _affine_transfer_losses(source, target, x, y, r.align)
    attack = {"eps": attack_eps, "steps": attack_steps, "step_size": attack_step_size, "norm": attack_norm}
    cross_adv = _cross_adversarial_loss(source, target, x, y, attack, generator)
    thm1 = _theorem1_sides(source, target, x, jac_s, jac_t)
    values = {
        "tau1": r.tau1,
        "tau2": r.tau2,
        "alpha": r.alpha,
        "grad_diff": grad_diff,
        "thm2_bound": metrics.theorem2_bound(r.tau1_x, r.tau2, r.lambda_s_x, r.lambda_t_x, r.norm_s_x, r.norm_t_x),
        "thm2_bound_lipschitz": metrics.theorem2_bound_lipschitz(r.tau1, r.tau2, lambda_s, lambda_t, r.norm_t_x.max()),
        "transfer_loss_lastlayer": refit_last_layer(source, data, split),
        "transfer_loss_affine": affine_loss,
        "thm3_bound": metrics.theorem3_bound(target_error, grad_diff, r.norm_s_x, r.norm_t_x, beta),
        "cross_adv_loss": cross_adv,
        "lambda_s": lambda_s,
        "lambda_t": lambda_t,
        "beta": beta,
        "target_loss": target_error,
        "tau2_reverse": metrics.transferability(target, source, x, method="exact").tau2,
        "tau2_unclamped": r.tau2_unclamped,
        "alpha_unclamped": r.alpha_unclamped,
        **thm1,
    }
    return {k: float(torch.as_tensor(v).detach()) for k, v in values.items()}


def _affine_transfer_losses(
    source: torch.nn.Module, target: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, align: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(||g o f_S - y||_D^2, ||f_T - y||_D^2) with Theorem 3's map g(z) = A (z - f_S(0)) + f_T(0)."""
    with torch.no_grad():
        origin = torch.zeros_like(x[:1])
        mapped = metrics.affine_transfer(source(x), source(origin), target(origin), align)
        target_error = metrics.squared_error(target(x), y)
    return metrics.squared_error(mapped, y), target_error


def _cross_adversarial_loss(
    source: torch.nn.Module,
    target: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: dict[str, float | int | str],
    generator: torch.Generator,
) -> torch.Tensor:
    """E ||f_T(x + delta_S(x)) - y||^2 (Def. 6) for delta_S a PGD attack (``attack``: eps, steps, step_size,
    norm; no bounds) on the source's output deviation."""
    x_adv = pgd(output_deviation_objective(source, x), x, bounds=None, generator=generator, **attack)
    with torch.no_grad():
        return metrics.cross_adversarial_loss(target(x_adv), y)


def _theorem1_sides(
    source: torch.nn.Module, target: torch.nn.Module, x: torch.Tensor, jac_s: torch.Tensor, jac_t: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``thm1_lhs`` and ``thm1_rhs``, the two sides of Theorem 1's identity for the first output of f_S and f_T
    (m = d = 1), and ``thm1_gap``, their difference in full precision divided by E ||grad f_T||^2, which bounds
    both."""
    scalar = metrics.transferability(OutputCoordinate(source), OutputCoordinate(target), x, method="exact")
    lhs = metrics.gradient_difference(jac_s[:, :1], jac_t[:, :1], scalar.align)
    rhs = metrics.theorem1_rhs(scalar.tau1_x, scalar.tau2, jac_t[:, :1])
    gap = (lhs - rhs) / jac_t[:, :1].double().pow(2).sum(dim=(1, 2)).mean()
    return {"thm1_lhs": lhs, "thm1_rhs": rhs, "thm1_gap": gap}
