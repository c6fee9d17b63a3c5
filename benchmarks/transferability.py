"""Case transferability: tau1 / tau2 / alpha for N target images, batched Lanczos vs the per-sample loop.

Source: a SmallCNN's penultimate features (m = 128) and reference: another SmallCNN's logits (d = 4),
both on 28x28 grayscale images (n = 784), random weights: the shapes of the fashion_mnist scenario.
``batched`` is what the metrics rule runs: ``metrics.transferability(method="auto", linearize=True)`` on
``models.inference_graph`` copies (batch norm folded, no in-place ops) with the workflow's settings (tol
1e-5, max_iter 100, batch_size 64): Lanczos for the source, J formed from 4 vjps for the reference.
``per_sample`` is the loop the paper's code runs, on the same inference graphs: for each image the
explicit Jacobians of source and reference (``jacobian.jacobian`` on that one image), their SVDs, the
deviations, then the same formulas (``metrics.alignment_matrix``, ``tau1``, ``tau2``, ``alpha``).
``batched_plain`` is the batched path without the three speed-ups (Lanczos for both models, plain jvp,
on the models as trained), timed to show what they add up to.

On the CPU the per-sample loop runs on the first ``--tau-subset`` images (default 100) and its time is
extrapolated linearly to N (each image costs the same: fixed shapes, no batching). Agreement: the largest
|tau1(x_i)| difference between the two paths on the subset. ``--tau-model resnet18_cifar`` (with small
``--tau-images``) runs the same comparison on ResNet-18 (source features m = 512, reference logits).
The batched path's warm-up call uses its first batch only.
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import jacobian, metrics
from advtransfer.models import inference_graph
from benchmarks.common import CaseResult, Settings, build, figure, images, seeded, time_calls, time_figures, time_ratio

NAME = "transferability"
GOAL = ">= 20x faster than the per-sample explicit-Jacobian loop (extrapolated to all images)"


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"model": "small_cnn", "channels": 1, "size": 8, "n_images": 16, "subset": 4,
                "tol": 1e-5, "max_iter": 100, "batch_size": 8}  # fmt: skip
    model = settings.tau_model
    resnet = model == "resnet18_cifar"
    n = settings.tau_images or 1000
    subset = settings.tau_subset or (n if settings.cuda else min(n, 100))
    return {
        "model": model, "channels": 3 if resnet else 1, "size": 32 if resnet else 28, "n_images": n,
        "subset": min(subset, n), "tol": 1e-5, "max_iter": 100, "batch_size": 100 if resnet else 64,
    }  # fmt: skip


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    c, s = params["channels"], params["size"]
    source = build(params["model"], 4, c, s, seed=0).to(device)
    reference = build(params["model"], 4, c, s, seed=1).to(device)
    x = images(params["n_images"], c, s, seed=2).to(device)
    return {
        "source": inference_graph(source, "features"), "reference": inference_graph(reference, "logits"),
        "plain_source": source.features, "plain_reference": reference, "x": x, "params": params,
    }  # fmt: skip


def batched(ctx: dict[str, Any], x: torch.Tensor | None = None, plain: bool = False) -> metrics.Transferability:
    p = ctx["params"]
    models = (ctx["plain_source"], ctx["plain_reference"]) if plain else (ctx["source"], ctx["reference"])
    return metrics.transferability(
        *models, ctx["x"] if x is None else x, method="lanczos" if plain else "auto", tol=p["tol"],
        max_iter=p["max_iter"], batch_size=p["batch_size"], linearize=not plain, generator=seeded(0),
    )  # fmt: skip


@torch.no_grad()
def per_sample(ctx: dict[str, Any], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The paper code's loop: per image, explicit Jacobians + SVD; then the same aggregate formulas."""
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("delta_s", "delta_t", "dev_s", "dev_t", "dev_tt")}
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        jac_s, jac_t = jacobian.jacobian(ctx["source"], xi), jacobian.jacobian(ctx["reference"], xi)
        top_s, top_t = jacobian.top_singular_exact(jac_s), jacobian.top_singular_exact(jac_t)
        rows["delta_s"].append(top_s.v1)
        rows["delta_t"].append(top_t.v1)
        rows["dev_s"].append(torch.einsum("bmn,bn->bm", jac_s, top_s.v1))
        rows["dev_t"].append(torch.einsum("bmn,bn->bm", jac_t, top_s.v1))
        rows["dev_tt"].append(torch.einsum("bmn,bn->bm", jac_t, top_t.v1))
    v = {k: torch.cat(vals) for k, vals in rows.items()}
    align = metrics.alignment_matrix(v["dev_s"], v["dev_t"])
    tau1_x = metrics.tau1_per_sample(v["delta_s"], v["delta_t"])
    return {
        "tau1_x": tau1_x,
        "tau1": tau1_x.mean(),
        "tau2": metrics.tau2(v["dev_s"], v["dev_t"], align),
        "alpha": metrics.alpha(v["dev_t"], v["dev_tt"]),
    }


def run(ctx: dict[str, Any], variant: str):
    if variant == "batched":
        return batched(ctx)
    return per_sample(ctx, ctx["x"][: ctx["params"]["subset"]])


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    ctx = setup(p, dev)
    n, k = p["n_images"], p["subset"]
    heavy = 1 if not settings.cuda else 3
    t_batched, res = time_calls(
        lambda: batched(ctx), dev, settings.reps(heavy), settings.warmup,
        warmup_fn=lambda: batched(ctx, ctx["x"][: p["batch_size"]]),
    )  # fmt: skip
    t_plain, plain = time_calls(
        lambda: batched(ctx, plain=True), dev, settings.reps(heavy), settings.warmup,
        warmup_fn=lambda: batched(ctx, ctx["x"][: p["batch_size"]], plain=True),
    )  # fmt: skip
    t_loop, loop = time_calls(
        lambda: per_sample(ctx, ctx["x"][:k]), dev, settings.reps(3), settings.warmup,
        warmup_fn=lambda: per_sample(ctx, ctx["x"][:1]),
    )  # fmt: skip
    figures = {
        **time_figures("batched", t_batched, settings),
        **time_figures("batched_per_image", t_batched, settings, per=1e3 / n, unit="ms"),
        **time_figures("batched_plain", t_plain, settings),
        **time_figures("per_sample_subset", t_loop, settings),
        **time_figures("per_sample_extrapolated", t_loop, settings, per=n / k),
        **time_figures("per_sample_per_image", t_loop, settings, per=1e3 / k, unit="ms"),
        "lanczos_iterations": figure(res.iterations, "iterations"),
        "lanczos_iterations_plain": figure(plain.iterations, "iterations"),
        "tau1_x_max_abs_diff_subset": figure(float((res.tau1_x[:k] - loop["tau1_x"]).abs().max()), "1"),
        "tau1_max_abs_diff_plain": figure(float((res.tau1 - plain.tau1).abs()), "1"),
        "tau1": figure(float(res.tau1), "1"),
        "tau2": figure(float(res.tau2), "1"),
        "alpha": figure(float(res.alpha), "1"),
    }
    ratios = {
        "speedup": time_ratio(figures, "per_sample_extrapolated", "batched", settings),
        "speedup_wall": time_ratio(figures, "per_sample_extrapolated", "batched", settings, wall=True),
        "speedup_plain_batched": time_ratio(figures, "batched_plain", "batched", settings),
    }
    notes = []
    if k < n:
        notes.append(f"per-sample loop timed on {k} of {n} images and extrapolated linearly (x{n / k:g})")
    if not settings.cuda:
        notes.append(f"batched path: {settings.reps(heavy)} timed call(s) after a warm-up on its first batch")
    return CaseResult(NAME, figures, ratios, GOAL, ratios["speedup"] >= 20, params=p, notes=notes)
