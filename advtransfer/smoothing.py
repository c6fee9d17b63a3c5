"""Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019): the smoothed classifier
g(x) = argmax_c P(f(x + e) = c), e ~ N(0, sigma^2 I) in [0, 1] pixel space, its certificate (CERTIFY) and its
prediction (PREDICT), as docs/definitions.md, Section 6 states them.

The Monte-Carlo counts are the heavy part: ``class_counts`` draws the noise in chunks of ``batch_size`` noisy
copies, spread over the images and their copies alike, so memory is bounded by the chunk whatever n is, and
draws it from a seeded generator on the model's device. The statistics (Clopper-Pearson bound, binomial test,
radius) are scipy's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from advtransfer.models import frozen_on

ABSTAIN = -1


@torch.no_grad()
def class_counts(
    model: nn.Module,
    x: torch.Tensor,
    *,
    sigma: float,
    n: int,
    generator: torch.Generator,
    batch_size: int = 1000,
) -> torch.Tensor:
    """counts[b, c] = #{k <= n : argmax f(x_b + e_bk) = c}, e_bk ~ N(0, sigma^2 I) i.i.d. (int64, CPU, (B, C)).

    The B x n noisy copies are enumerated image-major and evaluated ``batch_size`` at a time, the noise drawn
    per chunk from ``generator`` on its device, where the model runs (in eval mode; left as it was)."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"class_counts: n ({n}) and batch_size ({batch_size}) must be >= 1")
    if sigma < 0:
        raise ValueError(f"class_counts: sigma must be >= 0, got {sigma}")
    device = generator.device
    x = x.to(device)
    total, counts = len(x) * n, None
    with frozen_on(model, device) as net:
        for start in range(0, total, batch_size):
            image = torch.arange(start, min(start + batch_size, total), device=device) // n
            batch = x[image]
            noisy = batch + sigma * torch.randn(batch.shape, generator=generator, device=device, dtype=batch.dtype)
            logits = net(noisy)
            if counts is None:
                counts = torch.zeros(len(x), logits.shape[1], dtype=torch.int64, device=device)
            counts.index_put_((image, logits.argmax(1)), torch.ones_like(image), accumulate=True)
    return counts.cpu()


def clopper_pearson_lower(successes, trials, alpha: float) -> np.ndarray:
    """The one-sided (1 - alpha) Clopper-Pearson lower confidence bound of a binomial proportion:
    the Beta(successes, trials - successes + 1) quantile at alpha (0 where successes = 0)."""
    k, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore"):
        bound = stats.beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, bound, 0.0)


def certified_radius(p_lower, sigma: float) -> np.ndarray:
    """R = sigma Phi^-1(p_A lower bound) (Cohen et al., Theorem 1 with p_B = 1 - p_A)."""
    return sigma * stats.norm.ppf(np.asarray(p_lower, dtype=float))


@dataclass(frozen=True)
class Certificate:
    """CERTIFY's answer per image: ``prediction`` (ABSTAIN = -1 where p_lower <= 1/2), ``radius`` (0 where it
    abstains), the lower bound ``p_lower`` of P(f(x + e) = c_A) and the selection / estimation counts."""

    prediction: np.ndarray  # (B,) int64
    radius: np.ndarray  # (B,) float64
    p_lower: np.ndarray  # (B,) float64
    counts_selection: np.ndarray  # (B, C) over n0 copies
    counts_estimation: np.ndarray  # (B, C) over n fresh copies


def certify(
    model: nn.Module,
    x: torch.Tensor,
    *,
    sigma: float,
    n0: int,
    n: int,
    alpha: float,
    generator: torch.Generator,
    batch_size: int = 1000,
) -> Certificate:
    """CERTIFY(x; n0, n, alpha) of Cohen et al. (Algorithm, Section 3.2): c_A = the mode of f over n0 noisy
    copies; n_A = its count over n fresh copies; p_A = clopper_pearson_lower(n_A, n, alpha); certified with
    radius sigma Phi^-1(p_A) if p_A > 1/2, else abstain (docs/definitions.md, Section 6)."""
    selection = class_counts(model, x, sigma=sigma, n=n0, generator=generator, batch_size=batch_size).numpy()
    estimation = class_counts(model, x, sigma=sigma, n=n, generator=generator, batch_size=batch_size).numpy()
    guess = selection.argmax(1)
    n_a = estimation[np.arange(len(guess)), guess]
    p_lower = clopper_pearson_lower(n_a, n, alpha)
    certified = p_lower > 0.5
    return Certificate(
        prediction=np.where(certified, guess, ABSTAIN).astype(np.int64),
        radius=np.where(certified, certified_radius(p_lower, sigma), 0.0),
        p_lower=p_lower,
        counts_selection=selection,
        counts_estimation=estimation,
    )


def smoothed_prediction(counts: np.ndarray, alpha: float) -> np.ndarray:
    """PREDICT's decision from counts (B, C) over n copies (Cohen et al., Section 3.1): the top class if the
    two-sided binomial test of n_A out of n_A + n_B at 1/2 (n_A, n_B the two largest counts; ties go to the
    lower class index) has p <= alpha, else ABSTAIN."""
    counts = np.asarray(counts)
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(len(counts))
    n_a, n_b = counts[rows, order[:, 0]], counts[rows, order[:, 1]]
    p = np.array([stats.binomtest(int(a), int(a + b), 0.5).pvalue if a + b > 0 else 1.0 for a, b in zip(n_a, n_b)])
    return np.where(p <= alpha, order[:, 0], ABSTAIN).astype(np.int64)


def predict(
    model: nn.Module,
    x: torch.Tensor,
    *,
    sigma: float,
    n: int,
    alpha: float,
    generator: torch.Generator,
    batch_size: int = 1000,
) -> np.ndarray:
    """PREDICT(x; n, alpha) of Cohen et al.: :func:`smoothed_prediction` of the counts over n noisy copies."""
    counts = class_counts(model, x, sigma=sigma, n=n, generator=generator, batch_size=batch_size)
    return smoothed_prediction(counts.numpy(), alpha)


def certified_accuracy(prediction, radius, labels, radii) -> np.ndarray:
    """Certified accuracy at each r in ``radii``: the share of points with prediction = label and R >= r
    (an abstention is never correct)."""
    prediction, radius, labels = (np.asarray(a) for a in (prediction, radius, labels))
    correct = prediction == labels
    return np.array([float(np.mean(correct & (radius >= r))) for r in radii])
