"""Case atm: the adversarial transferability matrix's loss evaluations (Section 4.4), batched as
``tasks.transfer_gains`` does them (one forward of every target network per source's batch of adversarial
images) against a per-image loop, on the same perturbations; and the whole matrix for one eps.

Shapes-world task networks with random weights (the cost does not depend on training): 9 tasks (3 per kind,
3 of them dense), 100 test images, PGD 10 steps. Both evaluations give the same gains (checked as the largest
absolute difference). Quick: 3 tasks, 8 images, 2 steps.
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import shapes, tasks
from benchmarks.common import CaseResult, Settings, figure, time_figures, time_interleaved, time_ratio

NAME = "atm"
GOAL = "batched / per-image evaluation time <= 0.2"
TASKS = ("shape", "identity", "colour", "autoencoding", "denoising", "edges", "position", "scale", "mask")


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"tasks": TASKS[2:5], "n_images": 8, "steps": 2, "eps": 0.03}
    return {"tasks": TASKS, "n_images": 100, "steps": 10, "eps": 0.03}


def setup(p: dict[str, Any], device: torch.device) -> dict[str, Any]:
    batch = shapes.render(p["n_images"], seed=5)
    idx = torch.arange(p["n_images"])
    nets = {t: tasks.build_task_network(t, seed=0).to(device).eval() for t in p["tasks"]}
    inputs = {t: tasks.task_inputs(batch, t, 0, idx).to(device) for t in p["tasks"]}
    targets = {t: tasks.task_targets(batch, t).to(device) for t in p["tasks"]}
    # one perturbation per source, fixed: both evaluations score the same adversarial images
    deltas = {t: 0.03 * torch.sign(torch.randn(inputs[t].shape, generator=torch.Generator().manual_seed(i))).to(device)
              for i, t in enumerate(p["tasks"])}  # fmt: skip
    return {"nets": nets, "inputs": inputs, "targets": targets, "deltas": deltas, "p": p}


@torch.no_grad()
def batched(ctx: dict[str, Any]) -> torch.Tensor:
    """Every target on each source's whole batch: N^2 forwards."""
    names = list(ctx["nets"])
    out = torch.empty(len(names), len(names), len(ctx["inputs"][names[0]]))
    for a, i in enumerate(names):
        for b, j in enumerate(names):
            x = (ctx["inputs"][j] + ctx["deltas"][i]).clamp(0, 1)
            out[a, b] = tasks.task_loss(j, ctx["nets"][j](x), ctx["targets"][j], reduction="none").cpu()
    return out


@torch.no_grad()
def per_image(ctx: dict[str, Any]) -> torch.Tensor:
    """The same losses, one image at a time: N^2 n forwards."""
    names = list(ctx["nets"])
    n = len(ctx["inputs"][names[0]])
    out = torch.empty(len(names), len(names), n)
    for a, i in enumerate(names):
        for b, j in enumerate(names):
            for k in range(n):
                x = (ctx["inputs"][j][k : k + 1] + ctx["deltas"][i][k : k + 1]).clamp(0, 1)
                out[a, b, k] = tasks.task_loss(
                    j, ctx["nets"][j](x), ctx["targets"][j][k : k + 1], reduction="none"
                ).cpu()[0]
    return out


def whole_matrix(ctx: dict[str, Any]) -> torch.Tensor:
    """``tasks.transfer_gains`` for one eps: N PGD attacks and the batched evaluation."""
    p = ctx["p"]
    return tasks.transfer_gains(
        ctx["nets"], ctx["inputs"], ctx["targets"], p["eps"], p["steps"], torch.Generator().manual_seed(0)
    )


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    ctx = setup(p, settings.device)
    timings, outs = time_interleaved({"batched": lambda: batched(ctx), "per_image": lambda: per_image(ctx)},
                                     settings.device, settings.reps(3), settings.warmup)  # fmt: skip
    whole, _ = time_interleaved({"matrix": lambda: whole_matrix(ctx)}, settings.device, settings.reps(3), 0)
    figures = {
        **time_figures("atm_eval_batched", timings["batched"], settings),
        **time_figures("atm_eval_per_image", timings["per_image"], settings),
        **time_figures("atm_one_eps", whole["matrix"], settings),
        "gains_max_abs_diff": figure(float((outs["batched"] - outs["per_image"]).abs().max()), "1"),
    }
    ratios = {
        "time_ratio": time_ratio(figures, "atm_eval_batched", "atm_eval_per_image", settings),
        "time_ratio_wall": time_ratio(figures, "atm_eval_batched", "atm_eval_per_image", settings, wall=True),
    }
    notes = [f"{len(p['tasks'])} tasks, {p['n_images']} images, PGD {p['steps']} steps; random weights"]
    return CaseResult(NAME, figures, ratios, GOAL, ratios["time_ratio"] <= 0.2, params=dict(p, tasks=list(p["tasks"])),
                      notes=notes)  # fmt: skip
