"""Rule task_tau: tau1, tau2, tau1 tau2 and alpha between every ordered pair of task encoders (their pooled
features; a zoo network's output), advtransfer.metrics.transferability_matrix: one virtual attack per
network, one jvp per pair, on clean test images; a second, label-free view of adversarial transferability."""

from _job import log, sm  # noqa: I001 - the preamble first
from _tasks import clean_images, models, parts, zoo_images

import pandas as pd

from advtransfer.io import save_csv
from advtransfer.metrics import transferability_matrix
from advtransfer.models import inference_graph
from advtransfer.runtime import generator, resolve_device

p, cfg = sm.params, sm.params.tau
device = resolve_device(p.device)
if p.zoo:  # a zoo network's output is its representation here (its encoder is not known)
    x = zoo_images()[: cfg["n_images"]]
    graphs = [net.eval().to(device) for net in models(p.zoo).values()]
else:  # the task encoders' pooled features, on clean images
    x = clean_images(parts()["test"], cfg["n_images"])
    graphs = [inference_graph(net, "features").to(device) for net in models(p.zoo).values()]
result = transferability_matrix(
    graphs, x.to(device), method="lanczos", tol=cfg["tol"], max_iter=cfg["max_iter"], batch_size=cfg["batch_size"],
    linearize=True, generator=generator(p.seed),
)  # fmt: skip
rows = [
    dict(source=s, target=t, tau1=float(result.tau1[a, b]), tau2=float(result.tau2[a, b]),
         tau1_tau2=float(result.tau1_tau2[a, b]), alpha=float(result.alpha[a, b]), n_images=len(x))
    for a, s in enumerate(p.tasks) for b, t in enumerate(p.tasks)
]  # fmt: skip
save_csv(sm.output[0], pd.DataFrame(rows))
log.info("tau1 tau2 (rows: source encoder, columns: target encoder), %d Lanczos steps at most:\n%s",
         result.iterations, pd.DataFrame(result.tau1_tau2.numpy(), index=p.tasks, columns=p.tasks).round(3).to_string())
