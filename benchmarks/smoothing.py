"""Case smoothing: randomized-smoothing certification throughput (noise samples per second) of
``smoothing.certify`` against adversarial-robustness-toolbox's ``PyTorchRandomizedSmoothing.certify`` on the
same model, images, sigma, n0, n and alpha (noise drawn by each in its own way: ours in bounded chunks over
images and copies alike from a seeded torch generator; ART per image from numpy's global generator).

SmallCNN on 28x28 grayscale with random weights (the cost does not depend on training); both radii are
reported as the largest absolute difference, which the binomial noise bounds (the test suite checks the
agreement band on a model with known probabilities). Quick: 4 images, n 100.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from advtransfer import smoothing
from benchmarks.common import CaseResult, Settings, build, figure, images, time_figures, time_interleaved, time_ratio

NAME = "smoothing"
GOAL = "certify time <= 0.5 x adversarial-robustness-toolbox's (>= 2x its noise samples per second)"


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"n_images": 4, "n0": 20, "n": 100, "batch_size": 200, "size": 8}
    return {"n_images": 20, "n0": 100, "n": 2000, "batch_size": 1000, "size": 28}


def measure(settings: Settings) -> CaseResult:
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    p = params_for(settings)
    device = settings.device
    model = build("small_cnn", 10, 1, p["size"], seed=0).to(device).eval()
    x = images(p["n_images"], 1, p["size"], seed=3)
    sigma, alpha = 0.25, 0.001
    art = PyTorchRandomizedSmoothing(model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, p["size"], p["size"]),
                                     nb_classes=10, device_type="gpu" if settings.cuda else "cpu",
                                     sample_size=p["n0"], scale=sigma, alpha=alpha)  # fmt: skip

    def ours():
        g = torch.Generator(device=device).manual_seed(0)
        return smoothing.certify(model, x.to(device), sigma=sigma, n0=p["n0"], n=p["n"], alpha=alpha, generator=g,
                                 batch_size=p["batch_size"]).radius  # fmt: skip

    def theirs():
        np.random.seed(0)
        return art.certify(x.numpy(), n=p["n"], batch_size=p["batch_size"])[1]

    timings, outs = time_interleaved({"ours": ours, "art": theirs}, device, settings.reps(3), settings.warmup)
    samples = p["n_images"] * (p["n0"] + p["n"])
    figures = {**time_figures("certify_ours", timings["ours"], settings),
               **time_figures("certify_art", timings["art"], settings)}  # fmt: skip
    for name in ("ours", "art"):
        wall = timings[name].wall
        figures[f"samples_per_second_{name}"] = figure([samples / t for t in wall], "noise samples/s")
    figures["radius_max_abs_diff"] = figure(float(np.abs(outs["ours"] - outs["art"]).max()), "1")
    ratios = {"time_ratio": time_ratio(figures, "certify_ours", "certify_art", settings),
              "time_ratio_wall": time_ratio(figures, "certify_ours", "certify_art", settings, wall=True)}  # fmt: skip
    notes = [f"{p['n_images']} images, n0 {p['n0']}, n {p['n']}, sigma {sigma}, alpha {alpha}, "
             f"batch {p['batch_size']}; random weights"]  # fmt: skip
    return CaseResult(NAME, figures, ratios, GOAL, ratios["time_ratio"] <= 0.5, params=p, notes=notes)
