"""Model registry: the networks of the experiments, built from torch / torchvision parts."""

from __future__ import annotations

import torch
from torch import nn


class SigmoidMLP(nn.Module):
    """One-hidden-layer sigmoid network x -> W2 sigmoid(W1 x + b1) + b2 (the models of Section 4.1)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.head = nn.Linear(n_hidden, n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations sigmoid(W1 x + b1), what a last-layer refit stacks on."""
        return torch.sigmoid(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# Largest |sigmoid''(z)| = 1 / (6 sqrt 3), reached at sigmoid(z) = 1/2 +- 1/(2 sqrt 3).
SIGMOID_SECOND_DERIVATIVE_MAX = 1.0 / (6.0 * 3.0**0.5)


def sigmoid_mlp_smoothness(model: SigmoidMLP) -> torch.Tensor:
    """A smoothness constant beta of a SigmoidMLP: ||J(x) - J(x')||_2 <= beta ||x - x'|| for all x, x'.

    J(x) = W2 diag(sigmoid'(W1 x + b1)) W1 and |sigmoid'(a) - sigmoid'(b)| <= c |a - b| with
    c = max |sigmoid''|, so beta = c ||W2||_2 ||W1||_2 max_k ||w1_k|| (rows w1_k of W1).
    """
    w1, w2 = model.hidden.weight.detach().double(), model.head.weight.detach().double()
    return (
        SIGMOID_SECOND_DERIVATIVE_MAX
        * torch.linalg.matrix_norm(w2, ord=2)
        * torch.linalg.matrix_norm(w1, ord=2)
        * w1.norm(dim=1).max()
    )
