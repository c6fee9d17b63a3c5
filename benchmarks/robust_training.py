"""Case robust_training: the cost of the robust training schemes as the train jobs run them.

- PGD adversarial training (objective ``pgd_at``, 5 steps) through ``train.train_classifier`` against a
  minimal plain PGD-AT loop (shuffle, PGD with the model in eval mode, cross-entropy step; no validation,
  bookkeeping or checkpoint selection): the platform's overhead (goal < 5 %).
- Robust representation matching (objective ``rrm`` with a frozen teacher) against ``pgd_at``, both through
  ``train_classifier``: the time ratio RRM exists for (clean images only: about one plain epoch per epoch).

SmallCNN 28x28 grayscale, synthetic class images (``common.class_images``), batch 64, 1 epoch. Quick: 8x8,
64 images.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from advtransfer import robust, train
from benchmarks.common import (
    CaseResult,
    Settings,
    build,
    class_images,
    seeded,
    time_figures,
    time_interleaved,
    time_ratio,
)

NAME = "robust_training"
GOAL = "pgd_at through train_classifier within 5 % of a plain PGD-AT loop; rrm epoch <= 0.3 x pgd_at epoch"
HYPER = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
PGD = {"eps": 0.1, "steps": 5, "step_size": 0.03}


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"size": 8, "n_train": 64, "n_val": 8, "batch_size": 16}
    return {"size": 28, "n_train": 4096 if settings.cuda else 1024, "n_val": 100, "batch_size": 64}


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    device = settings.device
    x, y = class_images(p["n_train"] + p["n_val"], 4, 1, p["size"], seed=0)
    train_xy, val_xy = (x[: p["n_train"]], y[: p["n_train"]]), (x[p["n_train"] :], y[p["n_train"] :])
    model = build("small_cnn", 4, 1, p["size"], seed=0).to(device)
    initial = copy.deepcopy(model.state_dict())
    teacher = build("small_cnn", 4, 1, p["size"], seed=1)

    def library(objective: str, params: dict, **extra):
        model.load_state_dict(initial)
        context = train.TrainContext(seed=0, device=device, progress=False, amp=False, objective=objective,
                                     objective_params=params, **extra)  # fmt: skip
        return train.train_classifier(
            model, *train_xy, *val_xy, train.TrainSettings(epochs=1, batch_size=p["batch_size"], **HYPER), context
        )

    def plain():
        model.load_state_dict(initial)
        xs, ys = (t.to(device) for t in train_xy)
        optimizer = torch.optim.SGD(model.parameters(), **HYPER)
        g = seeded(0)
        model.train()
        order = torch.randperm(len(xs), generator=g).to(device)
        for start in range(0, len(xs), p["batch_size"]):
            idx = order[start : start + p["batch_size"]]
            xb, yb = xs[idx], ys[idx]
            x_adv = robust.attacks.pgd_examples(model, xb, yb, generator=g, **PGD)
            loss = F.cross_entropy(model(x_adv), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return float(loss)

    timings, _ = time_interleaved({
        "pgd_at": lambda: library("pgd_at", PGD), "plain_pgd_at": plain,
        "rrm": lambda: library("rrm", {"lam": 0.1}, teacher=teacher),
    }, device, settings.reps(3), settings.warmup)  # fmt: skip
    figures = {}
    for name, t in timings.items():
        figures.update(time_figures(f"{name}_epoch", t, settings))
    ratios = {
        "pgd_at_overhead": time_ratio(figures, "pgd_at_epoch", "plain_pgd_at_epoch", settings) - 1,
        "pgd_at_overhead_wall": time_ratio(figures, "pgd_at_epoch", "plain_pgd_at_epoch", settings, wall=True) - 1,
        "rrm_over_pgd_at": time_ratio(figures, "rrm_epoch", "pgd_at_epoch", settings),
    }
    met = ratios["pgd_at_overhead"] < 0.05 and ratios["rrm_over_pgd_at"] <= 0.3
    notes = [f"{p['n_train']} images {p['size']}x{p['size']}, batch {p['batch_size']}, 1 epoch; PGD {PGD}; the library "
             "also validates on the validation split after the epoch and keeps the best weights"]  # fmt: skip
    return CaseResult(NAME, figures, ratios, GOAL, met, params=p, notes=notes)
