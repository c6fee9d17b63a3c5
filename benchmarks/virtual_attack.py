"""Case virtual_attack: matrix-free Lanczos vs explicit Jacobian + SVD for the virtual attack (Def. 1).

Model: CIFAR ResNet-18's penultimate features (``build_model("resnet18_cifar", 4, 3, 32).features``,
n = 3072 inputs, m = 512 outputs), random weights, uniform random images. ``lanczos`` is
``attacks.virtual_attack(method="lanczos", tol=TOL)`` (jvp / vjp products, stops at the tolerance);
``exact`` is ``method="exact"``: the explicit per-sample Jacobian (torch.func vmap over jacrev) and its
SVD. Figures: wall time of each, peak memory of each, the Lanczos iteration count, and the agreement
min_i |cos(v_lanczos(x_i), v_exact(x_i))| over the batch. The workflow's own tolerance (1e-5, config
``metrics.tol``) and solver setup are timed as well: ``lanczos_graph`` is Lanczos at TOL on
``models.inference_graph`` of the features (batch norm folded, no in-place ReLU) with a traced jvp
(``linearize=True``): about 1.5-2 s of tracing per call, then a jvp costs one forward pass instead of
three; ``lanczos_workflow_tol`` is the same at tol 1e-5, exactly what the metrics rule runs.

On the CPU the batch defaults to 2 (``--va-batch``): the explicit Jacobian of one ResNet-18 image costs
512 backward passes (about 14 s on one core) and its vmap intermediates about 0.8 GB per image, so a
batch of 32 would take about 8 minutes and about 27 GB. The explicit path's warm-up call uses one image.
Both Lanczos variants are then also timed once at batch 32 (``lanczos_batch32``,
``lanczos_graph_batch32``), and ``speedup_batch32_extrapolated`` (``..._graph_...``) compares them with
the explicit path scaled linearly from the small batch (its cost is linear in the batch: its vmap
already runs 512 backward passes per image).
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import attacks
from advtransfer.models import inference_graph
from benchmarks.common import (
    CaseResult,
    Settings,
    build,
    figure,
    images,
    judged,
    peak_memory_mb,
    ratio,
    seeded,
    time_calls,
    time_figures,
    time_ratio,
)  # fmt: skip

NAME = "virtual_attack"
GOAL = ">= 10x faster than the explicit Jacobian + SVD at min |cos| >= 0.999, iterations chosen by the tolerance"
WORKFLOW_TOL = 1e-5


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"model": "small_cnn", "channels": 1, "size": 8, "batch": 2, "tol": 1e-2, "max_iter": 100}
    batch = settings.va_batch or (32 if settings.cuda else 2)
    return {"model": "resnet18_cifar", "channels": 3, "size": 32, "batch": batch, "tol": 1e-2, "max_iter": 100}


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    model = build(params["model"], 4, params["channels"], params["size"], seed=0).to(device)
    x = images(params["batch"], params["channels"], params["size"], seed=1).to(device)
    return {"f": model.features, "graph": inference_graph(model, "features"), "x": x, "params": params}


def run(ctx: dict[str, Any], variant: str, x: torch.Tensor | None = None):
    p, x = ctx["params"], ctx["x"] if x is None else x
    if variant == "exact":
        return attacks.virtual_attack(ctx["f"], x, method="exact")
    tol = WORKFLOW_TOL if variant == "lanczos_workflow_tol" else p["tol"]
    graph = variant in ("lanczos_graph", "lanczos_workflow_tol")
    return attacks.virtual_attack(ctx["graph"] if graph else ctx["f"], x, method="lanczos", tol=tol,
                                  max_iter=p["max_iter"], linearize=graph, generator=seeded(0))  # fmt: skip


def warm(ctx: dict[str, Any], variant: str) -> None:
    """Memory probe warm-up: the same call on the first image only."""
    run(ctx, variant, x=ctx["x"][:1])


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    ctx = setup(p, dev)
    heavy = 1 if not settings.cuda else 3  # explicit-Jacobian repeats on the CPU: each takes about a minute
    figures: dict[str, dict[str, Any]] = {}
    results = {}
    for variant, reps in (("lanczos", 3), ("lanczos_workflow_tol", 3), ("lanczos_graph", 3), ("exact", heavy)):
        warm_x = ctx["x"][:1] if variant == "exact" and not settings.cuda else None
        timing, results[variant] = time_calls(
            lambda v=variant: run(ctx, v), dev, settings.reps(reps), settings.warmup,
            warmup_fn=(lambda warm_x=warm_x: run(ctx, "exact", warm_x)) if warm_x is not None else None,
        )  # fmt: skip
        figures.update(time_figures(variant, timing, settings))
    for variant, mib in peak_memory_mb(NAME, ["lanczos", "exact"], p, settings).items():
        figures[f"{variant}_peak_memory"] = figure(mib, "MiB")
    exact = results["exact"]
    cos = (results["lanczos"].delta * exact.delta).sum(dim=1).abs()  # both unit vectors (eps = 1)
    cos_wf = (results["lanczos_workflow_tol"].delta * exact.delta).sum(dim=1).abs()
    figures["lanczos_iterations"] = figure(results["lanczos"].iterations, "iterations")
    figures["lanczos_workflow_tol_iterations"] = figure(results["lanczos_workflow_tol"].iterations, "iterations")
    figures["cos_min"] = figure(float(cos.min()), "|cos|")
    figures["cos_min_workflow_tol"] = figure(float(cos_wf.min()), "|cos|")
    cos_graph = (results["lanczos_graph"].delta * exact.delta).sum(dim=1).abs()
    figures["cos_min_graph"] = figure(float(cos_graph.min()), "|cos|")
    figures["sigma1_rel_error_max"] = figure(
        float(((results["lanczos"].sigma1 - exact.sigma1).abs() / exact.sigma1).max()), "1"
    )
    ratios = {
        "speedup": time_ratio(figures, "exact", "lanczos", settings),
        "speedup_wall": time_ratio(figures, "exact", "lanczos", settings, wall=True),
        "speedup_workflow_tol": time_ratio(figures, "exact", "lanczos_workflow_tol", settings),
        "speedup_graph": time_ratio(figures, "exact", "lanczos_graph", settings),
        "memory_exact_over_lanczos": ratio(figures["exact_peak_memory"], figures["lanczos_peak_memory"], "median"),
    }
    notes = []
    if settings.quick:
        notes.append("quick: small_cnn features on 8x8 images instead of ResNet-18")
    elif p["batch"] < 32:
        notes.append(f"batch {p['batch']} instead of 32 (--va-batch 32 for the full batch; see the module docstring)")
        # Lanczos alone at the full batch (one call); the explicit path costs the same per image at any
        # batch (its vmap already runs 512 backward passes per image), so scale it linearly to 32.
        big = dict(ctx, x=images(32, p["channels"], p["size"], seed=1).to(dev))
        exact32 = judged(figures, "exact", settings)["median"] * 32 / p["batch"]
        for variant, name in (("lanczos", "lanczos_batch32"), ("lanczos_graph", "lanczos_graph_batch32")):
            timing, out32 = time_calls(lambda v=variant: run(big, v), dev, 1, warmup=0)
            figures.update(time_figures(name, timing, settings))
            figures[f"{name}_iterations"] = figure(out32.iterations, "iterations")
            key = "speedup_batch32_extrapolated" if variant == "lanczos" else "speedup_graph_batch32_extrapolated"
            ratios[key] = exact32 / judged(figures, name, settings)["median"]
        notes.append(
            "speedup_batch32_extrapolated: Lanczos timed at batch 32, explicit path scaled from batch "
            f"{p['batch']} x{32 / p['batch']:g}"
        )
    if not settings.cuda:
        notes.append(f"explicit path: {settings.reps(heavy)} timed call(s) after a one-image warm-up")
    met = ratios["speedup"] >= 10 and figures["cos_min"]["min"] >= 0.999
    return CaseResult(NAME, figures, ratios, GOAL, met, params=p, notes=notes)
