"""Case products: the cost of one Jacobian product, per image, relative to a forward pass.

Every Lanczos step of the virtual attack and the tau metrics is one jvp and one vjp, so these costs set
the speed of cases virtual_attack, transferability and scaling. For SmallCNN features (28x28, batch 64)
and ResNet-18 features (32x32, batch 8 on the CPU, 32 on CUDA), each on the model as trained (``plain``)
and on ``models.inference_graph`` (``graph``: batch norm folded, no in-place ops), it times: the forward
pass, the vjp (pullback applied; the forward is built once), the jvp (``torch.func.jvp``) and the traced
jvp of ``torch.func.linearize`` (applied; its one-off tracing is reported as ``*_linearize_trace``).
Ratios are each product's time over the same model's forward pass: 1 is the floor for a jvp, about 1-2
for a vjp. No goal: these figures explain the others (docs/performance.md).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import func

from advtransfer.jacobian import JacobianOperator
from advtransfer.models import inference_graph
from benchmarks.common import CaseResult, Settings, build, figure, images, judged, sync, time_calls, time_figures

NAME = "products"
GOAL = "informational: cost of jvp / vjp / traced jvp relative to a forward pass"


def params_for(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"models": {"small_cnn": (1, 8, 4)}}
    return {"models": {"small_cnn": (1, 28, 64), "resnet18_cifar": (3, 32, 32 if settings.cuda else 8)}}


def measure(settings: Settings) -> CaseResult:
    p = params_for(settings)
    dev = settings.device
    figures: dict[str, dict[str, Any]] = {}
    ratios: dict[str, float] = {}
    for name, (channels, size, batch) in p["models"].items():
        model = build(name, 4, channels, size, seed=0).to(dev)
        x = images(batch, channels, size, seed=1).to(dev)
        v = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(dev)
        for kind, f in (("plain", model.features), ("graph", inference_graph(model, "features"))):
            key = f"{name}_{kind}"
            with torch.no_grad():
                out, pullback = func.vjp(f, x)
                u = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dev)
                op = JacobianOperator(f, x, linearize=True)
                sync(dev)
                started = time.perf_counter()
                op.matvec(v)  # traces once
                sync(dev)
                figures[f"{key}_linearize_trace"] = figure(time.perf_counter() - started, "s")
                calls = {"forward": lambda f=f, x=x: f(x), "vjp": lambda pullback=pullback, u=u: pullback(u),
                         "jvp": lambda f=f, x=x, v=v: func.jvp(f, (x,), (v,)),
                         "linearized_jvp": lambda op=op, v=v: op.matvec(v)}  # fmt: skip
                for label, fn in calls.items():
                    timing, _ = time_calls(fn, dev, settings.reps(5), settings.warmup)
                    figures.update(time_figures(f"{key}_{label}", timing, settings, per=1e3 / batch, unit="ms"))
            forward = judged(figures, f"{key}_forward", settings)["median"]
            for label in ("vjp", "jvp", "linearized_jvp"):
                ratios[f"{key}_{label}_over_forward"] = judged(figures, f"{key}_{label}", settings)["median"] / forward
    notes = ["times per image; batch " + ", ".join(f"{n} {b}" for n, (_, _, b) in p["models"].items())]
    return CaseResult(NAME, figures, ratios, GOAL, True,
                      params={"models": {k: list(v) for k, v in p["models"].items()}}, notes=notes)  # fmt: skip
