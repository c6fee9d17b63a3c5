"""PGD agrees with an independent library implementation (torchattacks) on the same model, start and steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advtransfer.attacks import own_prediction_objective, pgd

torchattacks = pytest.importorskip("torchattacks", reason="test-only dependency (make test installs it)")


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 7 * 7, 4),
    ).eval()  # fmt: skip


@pytest.mark.parametrize(("eps", "steps", "step_size"), [(0.1, 10, 0.025), (8 / 255, 5, 2 / 255), (0.3, 1, 0.3)])
def test_pgd_matches_torchattacks_without_random_start(eps, steps, step_size):
    model = small_cnn()
    x = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = model(x).argmax(dim=1)  # our objective: cross-entropy on the model's own clean prediction
    ours = pgd(own_prediction_objective(model, x), x, eps=eps, steps=steps, step_size=step_size, random_start=False)
    theirs = torchattacks.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=False)(x, labels)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert (ours - x).abs().max() <= eps + 1e-6


def test_pgd_with_random_start_is_as_strong_as_torchattacks():
    model = small_cnn()
    x = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    objective = own_prediction_objective(model, x)
    ours = pgd(objective, x, eps=0.1, steps=10, step_size=0.025, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(3)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=10, random_start=True)(x, model(x).argmax(1))
    with torch.no_grad():
        ours_loss, theirs_loss, clean = objective(ours).mean(), objective(theirs).mean(), objective(x).mean()
    assert ours_loss > clean and theirs_loss > clean
    assert abs(float(ours_loss - theirs_loss)) <= 0.1 * float(theirs_loss)
