"""Case pgd: ``attacks.pgd`` with ``own_prediction_objective`` vs torchattacks.PGD on the same model and batch.

CIFAR ResNet-18 (4 classes, random weights, eval mode), Linf eps 0.1, 10 steps of 0.025, no random
start for either (so both produce the same examples, checked as the largest absolute difference). Both
timed regions include the clean forward pass that fixes the labels (the model's own prediction).
torchattacks is the test-only reference (``make install`` puts it in .venv). Batch: 32 on CUDA, 8 on
the CPU (``--pgd-batch``); the ratio hardly depends on it.
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import attacks
from benchmarks.common import CaseResult, Settings, build, figure, images, time_figures, time_interleaved, time_ratio

NAME = "pgd"
GOAL = "attacks.pgd time / torchattacks.PGD time <= 1.05"
EPS, STEPS, STEP_SIZE = 0.1, 10, 0.025


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"model": "small_cnn", "channels": 1, "size": 8, "batch": 4}
    batch = settings.pgd_batch or (32 if settings.cuda else 8)
    return {"model": "resnet18_cifar", "channels": 3, "size": 32, "batch": batch}


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    model = build(params["model"], 4, params["channels"], params["size"], seed=0).to(device)
    x = images(params["batch"], params["channels"], params["size"], seed=3).to(device)
    return {"model": model, "x": x}


def ours(ctx: dict[str, Any]) -> torch.Tensor:
    model, x = ctx["model"], ctx["x"]
    objective = attacks.own_prediction_objective(model, x)
    return attacks.pgd(objective, x, eps=EPS, steps=STEPS, step_size=STEP_SIZE, random_start=False)


def theirs(ctx: dict[str, Any]) -> torch.Tensor:
    import torchattacks

    model, x = ctx["model"], ctx["x"]
    with torch.no_grad():
        labels = model(x).argmax(dim=1)
    return torchattacks.PGD(model, eps=EPS, alpha=STEP_SIZE, steps=STEPS, random_start=False)(x, labels)


def run(ctx: dict[str, Any], variant: str) -> torch.Tensor:
    return ours(ctx) if variant == "ours" else theirs(ctx)


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    ctx = setup(p, settings.device)
    timings, outs = time_interleaved(
        {"ours": lambda: ours(ctx), "torchattacks": lambda: theirs(ctx)},
        settings.device,
        settings.reps(5),
        settings.warmup,
    )
    figures = {
        **time_figures("advtransfer_pgd", timings["ours"], settings),
        **time_figures("torchattacks_pgd", timings["torchattacks"], settings),
        "x_adv_max_abs_diff": figure(float((outs["ours"] - outs["torchattacks"]).abs().max()), "1"),
    }
    ratios = {
        "time_ratio": time_ratio(figures, "advtransfer_pgd", "torchattacks_pgd", settings),
        "time_ratio_wall": time_ratio(figures, "advtransfer_pgd", "torchattacks_pgd", settings, wall=True),
    }
    notes = ["quick: small_cnn on 8x8 images instead of ResNet-18"] if settings.quick else []
    if not settings.quick and p["batch"] != 32:
        notes.append(f"batch {p['batch']} instead of 32 on the CPU (--pgd-batch 32 for the full batch)")
    return CaseResult(NAME, figures, ratios, GOAL, ratios["time_ratio"] <= 1.05, params=p, notes=notes)
