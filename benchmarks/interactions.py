"""Case interactions: throughput (masked forwards per second) of ``interactions.estimate_interactions``, which
builds all masked inputs of an image as cell masks, runs each distinct one once and batches the forwards,
against a per-context loop (per image, pair, order and context: the 4 masked inputs of Delta_ij(S), run as
one batch of 4, no deduplication) on the same model, images, pairs and contexts (same seed, same sampling).

Both are credited with the masked inputs NEEDED (4 x pairs x orders x contexts per image), so the ratio of
forwards per second is the inverse time ratio. The two estimates agree up to float rounding (max abs
difference reported). SmallCNN 28x28 grayscale, random weights, labels = its own predictions (all correctly
classified), baseline = the images' mean, 7x7 grid, orders of r = 0.1..1.0. ``profile_quick`` times one
profile at the quick settings (4 images, 2 pairs, 4 contexts). Quick: those settings for the comparison too.
"""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import interactions
from benchmarks.common import (
    CaseResult,
    Settings,
    build,
    figure,
    images,
    seeded,
    time_calls,
    time_figures,
    time_interleaved,
    time_ratio,
)

NAME = "interactions"
GOAL = "batched estimator >= 2x the masked forwards per second of a per-context loop (time ratio <= 0.5)"
RATIOS = [round(0.1 * k, 1) for k in range(1, 11)]
QUICK = {"n_images": 4, "size": 28, "grid": 7, "n_pairs": 2, "n_contexts": 4, "batch_size": 128}


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return dict(QUICK)
    return {**QUICK, "n_images": 8, "n_pairs": 8, "n_contexts": 16 if settings.cuda else 8,
            "batch_size": 4096 if settings.cuda else 128}  # one CPU thread: 64-128 images of 28 x 28 run fastest


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    device = settings.device
    model = build("small_cnn", 10, 1, p["size"], seed=0).to(device).eval()
    x = images(p["n_images"], 1, p["size"], seed=3).to(device)
    with torch.no_grad():
        y = model(x).argmax(1)
    baseline = x.mean((0, 2, 3))
    gh = gw = p["grid"]
    n = gh * gw
    ms = interactions.orders(n, RATIOS)

    def run(q: dict[str, Any]):
        return interactions.estimate_interactions(model, x[: q["n_images"]], y[: q["n_images"]], (gh, gw), RATIOS,
                                                  q["n_pairs"], q["n_contexts"], baseline, seeded(0),
                                                  batch_size=q["batch_size"])  # fmt: skip

    pixel_cell = interactions.cell_index(gh, gw, p["size"], p["size"]).to(device)

    def loop():
        g, out = seeded(0), torch.zeros(p["n_images"], p["n_pairs"], len(ms), device=device)
        with torch.no_grad():
            for b in range(p["n_images"]):
                pairs = interactions.sample_pairs(gh, gw, p["n_pairs"], g)
                masks = interactions.delta_masks(pairs, ms, p["n_contexts"], n, g).to(device)
                for i in range(p["n_pairs"]):
                    for k in range(len(ms)):
                        for c in range(p["n_contexts"]):
                            keep = masks[i, k, c][:, pixel_cell][:, None]  # (4, 1, H, W)
                            inputs = torch.where(keep, x[b], baseline[:, None, None])
                            v = interactions.scores(model(inputs), y[b])
                            out[b, i, k] += interactions.deltas_from_values(v) / p["n_contexts"]
        return out.cpu()

    timings, outs = time_interleaved({"ours": lambda: run(p), "loop": loop}, device, settings.reps(3), settings.warmup)
    profile, _ = time_calls(lambda: run(QUICK), device, settings.reps(3), warmup=0)
    ours = outs["ours"]
    needed = ours.forwards_needed
    figures = {**time_figures("estimate_ours", timings["ours"], settings),
               **time_figures("estimate_loop", timings["loop"], settings),
               **time_figures("profile_quick", profile, settings)}  # fmt: skip
    for name in ("ours", "loop"):
        figures[f"forwards_per_second_{name}"] = figure([needed / t for t in timings[name].wall], "masked inputs/s")
    figures["forwards_needed"] = figure(needed, "masked inputs")
    figures["forwards_run_ours"] = figure(ours.forwards_run, "masked inputs")
    figures["estimate_max_abs_diff"] = figure(float((ours.interactions - outs["loop"]).abs().max()), "1")
    ratios = {"time_ratio": time_ratio(figures, "estimate_ours", "estimate_loop", settings),
              "time_ratio_wall": time_ratio(figures, "estimate_ours", "estimate_loop", settings, wall=True),
              "forwards_run_share": ours.forwards_run / needed}  # fmt: skip
    notes = [(f"{p['n_images']} images, {gh}x{gw} grid on {p['size']}x{p['size']}, orders {ms}, "
              f"{p['n_pairs']} adjacent pairs, {p['n_contexts']} contexts, batch {p['batch_size']}; random weights; "
              f"profile_quick: {QUICK['n_images']} images, {QUICK['n_pairs']} pairs, "
              f"{QUICK['n_contexts']} contexts")]  # fmt: skip
    return CaseResult(NAME, figures, ratios, GOAL, ratios["time_ratio"] <= 0.5, params=p, notes=notes)
