"""Case probe: ``probe.fit_linear_probe`` (full-batch L-BFGS) vs a plain SGD logistic-regression probe.

Features are computed once per source by ``probe.extract_features`` (timed on its own, as the probe rule
does for the target train and test splits) and reused by both probes. Source: a SmallCNN (28x28, m = 128,
random weights) on a synthetic 4-class image task (``common.class_images``). The SGD probe is what one
would write by hand: the same standardisation, zero start, minibatch SGD with momentum on the same
penalised cross-entropy, run epoch by epoch until its TEST accuracy reaches the L-BFGS probe's (or a cap
of 100 epochs); the accuracy checks are part of its time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from advtransfer import probe
from benchmarks.common import (
    CaseResult,
    Settings,
    build,
    class_images,
    figure,
    seeded,
    time_calls,
    time_figures,
    time_ratio,
)

NAME = "probe"
GOAL = "fit_linear_probe (L-BFGS) no slower than an SGD probe trained to the same test accuracy"
L2, MAX_ITER = 1e-3, 500  # the scenarios' probe settings
SGD = {"lr": 0.1, "momentum": 0.9, "batch_size": 64, "max_epochs": 100}


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"size": 8, "n_train": 64, "n_test": 32}
    return {"size": 28, "n_train": 2000, "n_test": 1000}


def setup(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    n, m = params["n_train"], params["n_test"]
    x, y = class_images(n + m, 4, 1, params["size"], seed=5, noise=0.6)
    source = build("small_cnn", 4, 1, params["size"], seed=0)
    return {"source": source, "x": (x[:n], x[n:]), "y": (y[:n], y[n:]), "device": device}


def features(ctx: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(probe.extract_features(ctx["source"], part, 500, ctx["device"]) for part in ctx["x"])  # type: ignore[return-value]


def lbfgs(ctx: dict[str, Any], feats: tuple[torch.Tensor, torch.Tensor]) -> tuple[probe.LinearProbe, float]:
    fitted = probe.fit_linear_probe(
        feats[0], ctx["y"][0], l2=L2, max_iter=MAX_ITER, device=ctx["device"], num_classes=4
    )
    return fitted, fitted.evaluate(feats[1], ctx["y"][1])[0]


def sgd(ctx: dict[str, Any], feats: tuple[torch.Tensor, torch.Tensor], target_accuracy: float) -> tuple[int, float]:
    """Minibatch SGD logistic regression until test accuracy >= target_accuracy; (epochs, accuracy)."""
    dev = ctx["device"]
    x, x_test = feats[0].to(dev), feats[1].to(dev)
    y, y_test = ctx["y"][0].to(dev), ctx["y"][1].to(dev)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-12)
    z, z_test = (x - mean) / std, (x_test - mean) / std
    weight = torch.zeros(4, x.shape[1], device=dev, requires_grad=True)
    bias = torch.zeros(4, device=dev, requires_grad=True)
    opt = torch.optim.SGD([weight, bias], lr=SGD["lr"], momentum=SGD["momentum"])
    generator, accuracy = seeded(0), 0.0
    for epoch in range(1, SGD["max_epochs"] + 1):  # noqa: B007 - returned after the loop
        order = torch.randperm(len(z), generator=generator).to(dev)
        for start in range(0, len(z), SGD["batch_size"]):
            idx = order[start : start + SGD["batch_size"]]
            loss = F.cross_entropy(z[idx] @ weight.T + bias, y[idx]) + 0.5 * L2 * weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = float(((z_test @ weight.T + bias).argmax(1) == y_test).float().mean())
        if accuracy >= target_accuracy:
            break
    return epoch, accuracy


def run(ctx: dict[str, Any], variant: str):
    feats = features(ctx)
    if variant == "features":
        return feats
    return lbfgs(ctx, feats)


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    ctx = setup(p, dev)
    t_feat, feats = time_calls(lambda: features(ctx), dev, settings.reps(3), settings.warmup)
    t_lbfgs, (fitted, acc_lbfgs) = time_calls(lambda: lbfgs(ctx, feats), dev, settings.reps(3), settings.warmup)
    t_sgd, (epochs, acc_sgd) = time_calls(lambda: sgd(ctx, feats, acc_lbfgs), dev, settings.reps(3), settings.warmup)
    figures = {
        **time_figures("extract_features", t_feat, settings),
        **time_figures("lbfgs_probe", t_lbfgs, settings),
        **time_figures("sgd_probe", t_sgd, settings),
        "lbfgs_iterations": figure(fitted.iterations, "iterations"),
        "sgd_epochs_to_match": figure(epochs, "epochs"),
        "lbfgs_test_accuracy": figure(acc_lbfgs, "1"),
        "sgd_test_accuracy": figure(acc_sgd, "1"),
    }
    ratios = {
        "lbfgs_over_sgd": time_ratio(figures, "lbfgs_probe", "sgd_probe", settings),
        "lbfgs_over_sgd_wall": time_ratio(figures, "lbfgs_probe", "sgd_probe", settings, wall=True),
        "extract_features_over_lbfgs": time_ratio(figures, "extract_features", "lbfgs_probe", settings),
    }
    notes = [f"features of {p['n_train']} train + {p['n_test']} test images computed once and reused by both probes"]
    if acc_sgd < acc_lbfgs:
        notes.append(f"SGD probe stopped at the {SGD['max_epochs']}-epoch cap below the L-BFGS accuracy")
    return CaseResult(NAME, figures, ratios, GOAL, ratios["lbfgs_over_sgd"] <= 1.0, params=p, notes=notes)
