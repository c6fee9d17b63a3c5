"""Knowledge transfer (Section 4.2): linear probes on frozen features, few-shot probes, fine-tuning.

``extract_features`` runs a frozen classifier's ``features`` (the penultimate representation) in eval
mode without touching the model; ``fit_linear_probe`` fits a multinomial logistic regression on
standardised features by full-batch L-BFGS (strong-Wolfe line search) with an L2 penalty, starting from
zero weights: deterministic for fixed inputs on a given device. ``few_shot_accuracies`` scores probes
fitted on k-shot subsets; ``FineTuned`` is the source network with a new head, trained whole.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advtransfer.models import frozen_on
from advtransfer.runtime import resolve_device


@torch.no_grad()
def extract_features(model: nn.Module, x: torch.Tensor, batch_size: int, device: str | torch.device) -> torch.Tensor:
    """``model.features(x)`` as an (N, m) float32 CPU tensor, in eval mode (batch-norm statistics frozen).

    The model is left exactly as it was: parameters, buffers, device and every submodule's training flag
    (it runs in place when already on ``device``, else on a copy).
    """
    device = resolve_device(device)
    if not hasattr(model, "features"):
        raise TypeError(f"extract_features: {type(model).__name__} has no features(x) method")
    if batch_size < 1:
        raise ValueError(f"extract_features: batch_size must be >= 1, got {batch_size}")
    chunks = []
    with frozen_on(model, device) as net:
        for start in range(0, len(x), batch_size):
            feats = net.features(x[start : start + batch_size].to(device, non_blocking=True))
            chunks.append(feats.float().flatten(1).cpu())
    if not chunks:
        raise ValueError("extract_features: no inputs")
    return torch.cat(chunks)



def features_and_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int, device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.features(x)`` (N, m) and ``model(x)`` (N, Z) as float32 CPU tensors, in eval mode, the model left as
    it was (:func:`extract_features`): what the transferability estimators read (F and the source's logits)."""
    features, device, chunks = extract_features(model, x, batch_size, device), resolve_device(device), []
    with torch.no_grad(), frozen_on(model, device) as net:
        for start in range(0, len(x), batch_size):
            chunks.append(net(x[start : start + batch_size].to(device)).float().cpu())
    return features, torch.cat(chunks)

@dataclass
class LinearProbe:
    """logits = ((features - mean) / std) @ weight.T + bias, parameters on the CPU in ``dtype``."""

    mean: torch.Tensor  # (m,)
    std: torch.Tensor  # (m,), constant features get std 1
    weight: torch.Tensor  # (k, m)
    bias: torch.Tensor  # (k,)
    l2: float
    iterations: int
    train_loss: float  # final penalised objective

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    def predict_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(N, k) logits, computed on ``features``' device in the probe's dtype (float64 by default)."""
        if features.ndim != 2 or features.shape[1] != self.weight.shape[1]:
            raise ValueError(f"LinearProbe: features must be (N, {self.weight.shape[1]}), got {tuple(features.shape)}")
        dev, dtype = features.device, self.weight.dtype
        z = (features.to(dtype) - self.mean.to(dev)) / self.std.to(dev)
        return z @ self.weight.to(dev).T + self.bias.to(dev)

    @torch.no_grad()
    def evaluate(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """(accuracy, mean cross-entropy without the penalty)."""
        logits = self.predict_logits(features)
        labels = labels.to(logits.device).long()
        acc = (logits.argmax(1) == labels).double().mean().item()
        return acc, F.cross_entropy(logits, labels).item()

    def as_linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W', b') of the linear layer on RAW features with the probe's logits: ((f - mean) / std) W^T + b =
        f W'^T + b' for W' = W / std, b' = b - W' mean (float32), e.g. as a retrained model's head."""
        scaled = self.weight / self.std
        return scaled.float(), (self.bias - scaled @ self.mean).float()

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Named tensors for ``advtransfer.io.save_tensors`` (``from_tensors`` reads them back)."""
        return {
            "mean": self.mean,
            "std": self.std,
            "weight": self.weight,
            "bias": self.bias,
            "l2": torch.tensor(self.l2, dtype=torch.float64),
            "iterations": torch.tensor(self.iterations),
            "train_loss": torch.tensor(self.train_loss, dtype=torch.float64),
        }

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> LinearProbe:
        return cls(
            mean=t["mean"],
            std=t["std"],
            weight=t["weight"],
            bias=t["bias"],
            l2=float(t["l2"]),
            iterations=int(t["iterations"]),
            train_loss=float(t["train_loss"]),
        )


def fit_linear_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    l2: float = 1e-3,
    max_iter: int = 500,
    device: str | torch.device = "cpu",
    num_classes: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-12,
    dtype: torch.dtype = torch.float64,
) -> LinearProbe:
    """Multinomial logistic regression: minimise mean CE + (l2 / 2) ||W||^2 (bias unpenalised).

    Features are standardised with the training mean / std. Full-batch L-BFGS (history 20, strong-Wolfe
    line search) from W = 0, b = 0 for at most ``max_iter`` iterations, in ``dtype``. ``num_classes``
    defaults to labels.max() + 1. Returns the probe on the CPU.
    """
    device = resolve_device(device)
    k = _probe_classes(features, labels, l2, max_iter, num_classes)
    x = features.to(device=device, dtype=dtype)
    if not torch.isfinite(x).all():
        raise ValueError("fit_linear_probe: features contain NaN or inf")
    y = labels.to(device).long()
    mean, std = _standardisation(x)
    tolerances = {"tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change}
    weight, bias, final, iterations = _lbfgs_logistic((x - mean) / std, y, k, l2, max_iter, **tolerances)
    return LinearProbe(
        mean=mean.cpu(),
        std=std.cpu(),
        weight=weight.detach().cpu(),
        bias=bias.detach().cpu(),
        l2=float(l2),
        iterations=iterations,
        train_loss=final,
    )


def _probe_classes(
    features: torch.Tensor, labels: torch.Tensor, l2: float, max_iter: int, num_classes: int | None
) -> int:
    """k, the probe's number of classes (labels.max() + 1 unless ``num_classes``), after checking the inputs."""
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels) or len(labels) == 0:
        raise ValueError(
            "fit_linear_probe: need features (N, m) and labels (N,), "
            f"got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.min() < 0:
        raise ValueError("fit_linear_probe: labels must be non-negative integers")
    if l2 < 0 or max_iter < 1:
        raise ValueError(f"fit_linear_probe: need l2 >= 0 and max_iter >= 1, got {l2} and {max_iter}")
    k = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if int(labels.max()) >= k:
        raise ValueError(f"fit_linear_probe: label {int(labels.max())} >= num_classes {k}")
    return k


def _standardisation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and (biased) std of x (N, m); a constant feature (std <= 1e-12 (1 + |mean|)) gets std 1."""
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    return mean, torch.where(std > 1e-12 * (1 + mean.abs()), std, torch.ones_like(std))


def _penalised_ce(z: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, l2: float):
    """The probe's objective: mean CE(z W^T + b, y) + (l2 / 2) ||W||^2."""
    return F.cross_entropy(z @ weight.T + bias, y) + 0.5 * l2 * weight.pow(2).sum()


def _lbfgs_logistic(
    z: torch.Tensor,
    y: torch.Tensor,
    k: int,
    l2: float,
    max_iter: int,
    *,
    tolerance_grad: float,
    tolerance_change: float,
) -> tuple[torch.Tensor, torch.Tensor, float, int]:
    """(W, b, final objective, iterations) of full-batch L-BFGS (history 20, strong Wolfe) from W = 0, b = 0 on
    the standardised features z (N, m), in z's dtype and on its device."""
    weight = torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device, requires_grad=True)
    bias = torch.zeros(k, dtype=z.dtype, device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        opt.zero_grad()
        loss = _penalised_ce(z, y, weight, bias, l2)
        loss.backward()
        return loss

    opt.step(objective)
    with torch.no_grad():
        final = _penalised_ce(z, y, weight, bias, l2).item()
    iterations = int(opt.state[opt.param_groups[0]["params"][0]].get("n_iter", 0))
    return weight, bias, final, iterations


def few_shot_accuracies(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    sets: Sequence[torch.Tensor],
    num_classes: int,
    **probe: Any,
) -> list[float]:
    """Test accuracy of a linear probe (``fit_linear_probe(**probe)``) fitted on each k-shot set of
    positions into the training features (``advtransfer.data.few_shot_sets``): one value per set."""
    accuracies = []
    for positions in sets:
        fitted = fit_linear_probe(train_features[positions], train_labels[positions], num_classes=num_classes, **probe)
        accuracies.append(fitted.evaluate(test_features, test_labels)[0])
    return accuracies


class FineTuned(nn.Module):
    """Full fine-tuning's model: a COPY of the source network (the source is never modified) with a new
    linear head on its ``features``, initialised from torch's global RNG (seed it first). The source's own
    head is kept but unused (it gets no gradient, so the optimiser leaves it alone)."""

    def __init__(self, source: nn.Module, num_classes: int, feature_dim: int):
        super().__init__()
        self.body = copy.deepcopy(source).train()
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
