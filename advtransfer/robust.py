"""Source training schemes of the robustness family: training objectives for ``advtransfer.train``
(registered in ``advtransfer.registry.OBJECTIVES``), each ``fn(model, x, y, **params, [generator], [state],
[teacher]) -> (loss, logits)`` (the loop-supplied arguments: ``advtransfer.train.OBJECTIVE_CONTEXT``).

Inputs are images in [0, 1]; perturbations are L-inf and clipped to [0, 1]. The attacks inside a training
step run with the model in eval mode (batch-norm statistics untouched, as TRADES' reference code does) and
the loss is then taken in train mode. Random starts and noise come from the run's seeded CPU generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advtransfer import attacks


def _ce_at(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def gaussian_noise(model, x, y, *, sigma: float, generator: torch.Generator):
    """Objective ``noise``: cross-entropy at x + e, e ~ N(0, sigma^2 I) (Gaussian data augmentation, the
    training of Cohen et al.'s base classifiers; no clipping, as there)."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return _ce_at(model, x + sigma * noise, y)


def _given_step(objective: str, step_size: float | None, step_factor: float | None, eps: float) -> float:
    """The PGD step an objective's parameters give (advtransfer.attacks.pgd_step), which must be given."""
    step = attacks.pgd_step({"step_size": step_size, "step_factor": step_factor}, eps)
    if step is None:
        raise ValueError(f"objective {objective}: give its PGD step, step_size or step_factor (x eps)")
    return step


def pgd_at(model, x, y, *, eps: float, steps: int, step_size: float | None = None, step_factor: float | None = None,
           generator: torch.Generator):
    """Objective ``pgd_at`` (Madry et al. 2018): cross-entropy at the PGD examples of the batch (the step: its
    ``step_size``, or ``step_factor`` x eps)."""
    step = _given_step("pgd_at", step_size, step_factor, eps)
    x_adv = attacks.pgd_examples(model, x, y, eps=eps, steps=steps, step_size=step, generator=generator)
    return _ce_at(model, x_adv, y)


def fast_at(model, x, y, *, eps: float, step_size: float | None = None, step_factor: float | None = None,
            generator: torch.Generator):
    """Objective ``fast_at`` (Wong, Rice and Kolter 2020, "Fast is better than free"): one FGSM step of size
    ``step_size`` (or ``step_factor`` x eps; default 1.25 eps) from a uniform random start in the eps-ball,
    projected back onto it; cross-entropy there."""
    alpha = attacks.pgd_step({"step_size": step_size, "step_factor": step_factor}, eps)
    alpha = 1.25 * eps if alpha is None else alpha
    return pgd_at(model, x, y, eps=eps, steps=1, step_size=alpha, generator=generator)


def trades(model, x, y, *, eps: float, steps: int, beta: float, step_size: float | None = None,
           step_factor: float | None = None, generator: torch.Generator):
    """Objective ``trades`` (Zhang et al. 2019): CE(f(x), y) + beta KL(p(x) || p(x')), x' maximising that KL by
    L-inf PGD (step: ``step_size``, or ``step_factor`` x eps) from x + 0.001 N(0, I) (the reference code's
    start), the model in eval mode for the search."""
    step_size = _given_step("trades", step_size, step_factor, eps)
    with attacks.attack_mode(model):
        clean = F.softmax(model(x).float(), 1).detach()
        start = x + 0.001 * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)

        def kl(z):
            return F.kl_div(F.log_softmax(model(z).float(), 1), clean, reduction="none").sum(1)

        x_adv = attacks.pgd(kl, x, eps=eps, steps=steps, step_size=step_size, start=start)
    logits = model(x)
    robust = F.kl_div(F.log_softmax(model(x_adv).float(), 1), F.softmax(logits.float(), 1), reduction="batchmean")
    return F.cross_entropy(logits.float(), y) + beta * robust, logits


def free_at(model, x, y, *, eps: float, state: dict):
    """Objective ``free_at`` (Shafahi et al. 2019, "Adversarial training for free!"), with
    ``train_classifier(replays=m)``: cross-entropy at x + delta (clipped to [0, 1]); the same backward pass
    that updates the weights updates the perturbation, delta <- clip(delta + eps sign(grad_delta), -eps, eps),
    and delta carries over to the next replay and the next minibatch (``state["delta"]``, a buffer of the
    first batch's shape)."""
    buffer = state.get("delta")
    if buffer is None or buffer.shape[1:] != x.shape[1:] or len(buffer) < len(x):
        buffer = torch.zeros_like(x)
    buffer = buffer.to(x.device)
    state["delta"] = buffer
    delta = buffer[: len(x)].clone().requires_grad_(True)

    def update(grad: torch.Tensor) -> None:
        with torch.no_grad():
            buffer[: len(grad)] = (buffer[: len(grad)] + eps * grad.sign()).clamp(-eps, eps)

    delta.register_hook(update)
    return _ce_at(model, (x + delta).clamp(0, 1), y)


def rrm(model, x, y, *, lam: float, teacher: nn.Module):
    """Objective ``rrm`` (Vaishnavi, Eykholt and Rahmati, robust representation matching; docs/definitions.md,
    Section 7): lam CE(S(x), y) + mean(1 - cos(g_S(x), g_T(x))) on clean images, g = the penultimate ``features`` and T
    the frozen adversarially trained teacher (the loop's frozen copy)."""
    features = model.features(x)
    logits = model.head(features)
    with torch.no_grad():
        target = teacher.features(x).float()
    cosine = F.cosine_similarity(features.float(), target, dim=1)
    return lam * F.cross_entropy(logits.float(), y) + (1 - cosine).mean(), logits


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss L_out (Khosla et al. 2020, eq. 2) of L2-normalised embeddings z (N, m):
    mean over anchors i with positives P(i) = {p != i : y_p = y_i} of
    -1/|P(i)| sum_p log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))."""
    sim = (z @ z.T) / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_prob = sim - torch.logsumexp(sim.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    positive = (y[:, None] == y[None, :]) & ~self_mask
    count = positive.sum(1)
    per_anchor = -(log_prob * positive).sum(1)[count > 0] / count[count > 0]
    return per_anchor.mean()


def _view(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random crop (zero padding of max(1, H // 8)) and horizontal flip per image: SupCon's two views."""
    from advtransfer.train import crop_flip  # the training loop's augmentation

    pad = max(1, x.shape[-1] // 8)
    offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=generator).to(x.device)
    flips = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return crop_flip(x, offsets, flips, pad)


def supcon(model, x, y, *, temperature: float = 0.1, generator: torch.Generator):
    """Objective ``supcon``: the body learns from the supervised contrastive loss of two augmented views
    (normalised ``features``, no projection head) only; the linear head learns cross-entropy on DETACHED
    clean features at the same time, so every epoch has a classifier to validate and the body never sees
    the classification loss (pre-training then a linear head, in one pass)."""
    views = torch.cat([_view(x, generator), _view(x, generator)])
    z = F.normalize(model.features(views).float(), dim=1)
    logits = model.head(model.features(x).detach())
    return supcon_loss(z, torch.cat([y, y]), temperature) + F.cross_entropy(logits.float(), y), logits


# ------------------------------------------------------------------------------- a 1-Lipschitz network


class MaxMin(nn.Module):
    """GroupSort with groups of 2 (Anil et al. 2019): (max(a, b), min(a, b)) per pair of units; 1-Lipschitz
    and gradient-norm preserving."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.cat([torch.maximum(a, b), torch.minimum(a, b)], dim=1)


class LipschitzMLP(nn.Module):
    """Model ``lipschitz_mlp``: a 1-Lipschitz body (L2 -> L2) of Linear layers with orthogonal weights
    (torch.nn.utils.parametrizations.orthogonal: W W^T = I, so ||W||_2 = 1) and MaxMin activations, on the
    flattened image, then an unconstrained linear ``head``. Exact, no power iteration. The Cayley map: a
    training step on 28 x 28 images costs a tenth of the default Householder product's (measured)."""

    def __init__(
        self, num_classes: int, in_channels: int = 1, image_size: int = 28, width: int = 256, hidden: int = 128
    ):
        super().__init__()
        from torch.nn.utils.parametrizations import orthogonal

        dims = [in_channels * image_size * image_size, width, width, hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(orthogonal(nn.Linear(a, b), orthogonal_map="cayley"))
            if i < len(dims) - 2:
                layers.append(MaxMin())
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
