"""Case training: images/s of ``train.train_classifier`` vs a minimal plain PyTorch SGD loop.

Same SmallCNN (28x28 grayscale, 4 classes, same initial weights), same synthetic class data
(``common.class_images``), batch size, epochs, SGD with momentum and weight decay (the fashion_mnist
scenario's settings). The library call does what a training job does besides the optimiser steps: the
per-step cosine learning rate, loss / accuracy bookkeeping, an evaluation of the validation split
(10 % of the training size) after every epoch and a copy of the best weights; no checkpoint files,
progress bar off. The plain loop only shuffles and steps. Throughput = training images x epochs / wall
time. The validation pass is also timed on its own (``validation_pass_time``) to show its share. On CUDA
``train_classifier`` runs with ``amp=False`` so that both loops compute in float32.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from advtransfer import train
from benchmarks.common import (
    CaseResult,
    Settings,
    build,
    class_images,
    figure,
    judged,
    seeded,
    time_calls,
    time_figures,
    time_interleaved,
    time_ratio,
)  # fmt: skip

NAME = "training"
GOAL = "train_classifier throughput within 5 % of the plain loop (overhead < 5 %)"
HYPER = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"size": 8, "n_train": 64, "n_val": 8, "batch_size": 16, "epochs": 1}
    n = 8192 if settings.cuda else 2048
    return {"size": 28, "n_train": n, "n_val": n // 10, "batch_size": 64, "epochs": 2}


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    x, y = class_images(params["n_train"] + params["n_val"], 4, 1, params["size"], seed=0)
    model = build("small_cnn", 4, 1, params["size"], seed=0)
    return {
        "initial": copy.deepcopy(model.state_dict()),
        "model": model.to(device),
        "train": (x[: params["n_train"]], y[: params["n_train"]]),
        "val": (x[params["n_train"] :], y[params["n_train"] :]),
        "params": params,
        "device": device,
    }


def library(ctx: dict[str, Any]) -> train.TrainResult:
    p, model = ctx["params"], ctx["model"]
    model.load_state_dict(ctx["initial"])
    settings = train.TrainSettings(epochs=p["epochs"], batch_size=p["batch_size"], **HYPER)
    context = train.TrainContext(seed=0, device=ctx["device"], progress=False, amp=False)
    return train.train_classifier(model, *ctx["train"], *ctx["val"], settings, context)


def plain(ctx: dict[str, Any]) -> float:
    """A minimal loop: shuffle, forward, cross-entropy, backward, SGD step. Returns the last loss."""
    p, model, device = ctx["params"], ctx["model"], ctx["device"]
    model.load_state_dict(ctx["initial"])
    x, y = (t.to(device) for t in ctx["train"])
    optimizer = torch.optim.SGD(model.parameters(), **HYPER)
    generator = seeded(0)
    model.train()
    loss = torch.zeros(())
    for _ in range(p["epochs"]):
        order = torch.randperm(len(x), generator=generator).to(device)
        for start in range(0, len(x), p["batch_size"]):
            idx = order[start : start + p["batch_size"]]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return float(loss.detach())


def run(ctx: dict[str, Any], variant: str):
    return library(ctx) if variant == "library" else plain(ctx)


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    ctx = setup(p, dev)
    timings, outs = time_interleaved(
        {"library": lambda: library(ctx), "plain": lambda: plain(ctx)}, dev, settings.reps(3), settings.warmup
    )
    images = p["n_train"] * p["epochs"]
    figures = {
        **time_figures("train_classifier", timings["library"], settings),
        **time_figures("plain_loop", timings["plain"], settings),
    }
    for name in ("train_classifier", "plain_loop"):  # images/s: the fastest call gives the highest throughput
        for key, unit in (("time", "images/s"), ("cpu_time", "images/cpu-s")):
            if f"{name}_{key}" in figures:
                f = figures[f"{name}_{key}"]
                figures[f"{name}_throughput{'' if key == 'time' else '_cpu'}"] = {
                    "min": images / f["max"], "median": images / f["median"], "max": images / f["min"],
                    "unit": unit, "repeats": f["repeats"],
                }  # fmt: skip
    t_val, _ = time_calls(
        lambda: train.evaluate(ctx["model"], *ctx["val"], 512, dev), dev, settings.reps(3), settings.warmup
    )
    figures.update(time_figures("validation_pass", t_val, settings))
    share = (
        judged(figures, "validation_pass", settings)["median"]
        * p["epochs"]
        / judged(figures, "plain_loop", settings)["median"]
    )
    figures["validation_share_of_plain_time"] = figure(100 * share, "%")
    figures["train_classifier_best_val_accuracy"] = figure(outs["library"].best_val_accuracy, "1")
    ratios = {
        "overhead": time_ratio(figures, "train_classifier", "plain_loop", settings) - 1,
        "overhead_wall": time_ratio(figures, "train_classifier", "plain_loop", settings, wall=True) - 1,
        "overhead_excluding_validation": time_ratio(figures, "train_classifier", "plain_loop", settings) - 1 - share,
    }
    notes = ["quick: 64 images of 8x8"] if settings.quick else []
    return CaseResult(NAME, figures, ratios, GOAL, ratios["overhead"] < 0.05, params=p, notes=notes)
