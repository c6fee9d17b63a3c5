"""Case scaling: time of ``metrics.transferability`` against the number of images N and the feature width m.

Source: SmallCNN penultimate features, reference: SmallCNN logits (d = 4), 28x28 grayscale, random
weights, run as the metrics rule runs it (``models.inference_graph``, ``method="auto"``, ``linearize``,
tol 1e-5, the digits / fashion_mnist ``metrics.batch_size`` of 64). Sweep 1: N = 64, 128, 256, 512 at
m = 128, reported as time per image (constant if the cost is linear in N). Sweep 2: m = 64, 128, 256
(``SmallCNN(hidden=m)``) at N = 128. The Lanczos iteration count (the largest over the batches) is
recorded with each point: a batch runs until its slowest sample converges, which is why the rule works
in fixed-size batches. Warm-up: one call at the smallest N.
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import metrics
from advtransfer.models import inference_graph
from benchmarks.common import (
    CaseResult,
    Settings,
    Timing,
    build,
    figure,
    images,
    judged,
    seeded,
    time_calls,
    time_figures,
    time_ratio,
)

NAME = "scaling"
GOAL = "linear in N: time per image within +-30 % across N (informational for m)"


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"size": 8, "n_values": [8, 16], "m_values": [24, 32], "m_at_n": 24, "n_at_m": 8, "batch_size": 8}
    return {"size": 28, "n_values": [64, 128, 256, 512], "m_values": [64, 128, 256], "m_at_n": 128, "n_at_m": 128,
            "batch_size": 64}  # fmt: skip


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    size = params["size"]
    reference = inference_graph(build("small_cnn", 4, 1, size, seed=1), "logits").to(device)
    widths = set(params["m_values"]) | {params["m_at_n"]}
    sources = {
        m: inference_graph(build("small_cnn", 4, 1, size, seed=0, hidden=m), "features").to(device) for m in widths
    }
    x = images(max(params["n_values"] + [params["n_at_m"]]), 1, size, seed=4).to(device)
    return {"reference": reference, "sources": sources, "x": x, "batch_size": params["batch_size"]}


def point(ctx: dict[str, Any], n: int, m: int) -> metrics.Transferability:
    return metrics.transferability(
        ctx["sources"][m], ctx["reference"], ctx["x"][:n], method="auto", tol=1e-5, max_iter=100,
        batch_size=ctx["batch_size"], linearize=True, generator=seeded(0),
    )  # fmt: skip


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    ctx = setup(p, dev)
    reps = settings.reps(1 if not settings.cuda else 3)
    point(ctx, min(p["n_values"]), p["m_at_n"])  # warm-up
    figures: dict[str, dict[str, Any]] = {}
    done: dict[tuple[int, int], tuple[Timing, int]] = {}
    grid = [(n, p["m_at_n"]) for n in p["n_values"]] + [(p["n_at_m"], m) for m in p["m_values"]]
    for n, m in grid:
        if (n, m) not in done:
            timing, res = time_calls(lambda n=n, m=m: point(ctx, n, m), dev, reps, warmup=0)
            done[(n, m)] = (timing, res.iterations)
    for n in p["n_values"]:
        timing, iters = done[(n, p["m_at_n"])]
        figures.update(time_figures(f"N{n}", timing, settings))
        figures.update(time_figures(f"N{n}_per_image", timing, settings, per=1e3 / n, unit="ms"))
        figures.update(time_figures(f"N{n}_per_image_iteration", timing, settings, per=1e3 / (n * iters), unit="ms"))
        figures[f"N{n}_iterations"] = figure(iters, "iterations")
    for m in p["m_values"]:
        timing, iters = done[(p["n_at_m"], m)]
        figures.update(time_figures(f"m{m}", timing, settings))
        figures[f"m{m}_iterations"] = figure(iters, "iterations")
    n_lo, n_hi = min(p["n_values"]), max(p["n_values"])
    m_lo, m_hi = min(p["m_values"]), max(p["m_values"])
    per_image = [judged(figures, f"N{n}_per_image", settings)["median"] for n in p["n_values"]]
    per_iter = [judged(figures, f"N{n}_per_image_iteration", settings)["median"] for n in p["n_values"]]
    ratios = {
        "per_image_max_over_min_across_N": max(per_image) / min(per_image),
        "per_image_iteration_max_over_min_across_N": max(per_iter) / min(per_iter),
        f"iterations_N{n_hi}_over_N{n_lo}": figures[f"N{n_hi}_iterations"]["min"]
        / figures[f"N{n_lo}_iterations"]["min"],
        f"time_m{m_hi}_over_m{m_lo}": time_ratio(figures, f"m{m_hi}", f"m{m_lo}", settings),
        f"iterations_m{m_hi}_over_m{m_lo}": figures[f"m{m_hi}_iterations"]["min"]
        / figures[f"m{m_lo}_iterations"]["min"],
    }
    notes = [f"{reps} timed call(s) per point after one warm-up call"]
    met = ratios["per_image_max_over_min_across_N"] <= 1.3
    return CaseResult(NAME, figures, ratios, GOAL, met, params=p, notes=notes)
