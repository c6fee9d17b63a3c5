"""A classifier's robustness, as the robustness family measures it on each model: clean accuracy, accuracy under
L-inf PGD and APGD (and the AutoAttack ensemble) per eps, and randomized-smoothing certified accuracy per
radius."""

from __future__ import annotations

from typing import Any

import torch

from advtransfer import attacks, smoothing
from advtransfer.runtime import generator


def evaluation_order(n_total: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """Positions of the test images a robustness evaluation uses: ``n`` of ``n_total`` (all when None) in a
    seeded random order, the same for every model, so the first ``smoothing.n_images`` of them (the
    certified ones) are a random subset too."""
    order = torch.randperm(n_total, generator=generator(seed))
    return order if n is None else order[:n]


def robustness_of(model, x, y, evaluation: dict[str, Any], seed: int, device) -> dict[str, float]:
    """A classifier's robustness on (x, y) (images in [0, 1]): clean accuracy; accuracy under L-inf PGD on
    the true label at each eps (``evaluation.pgd``: steps, the step ``step_size`` or eps x ``step_factor``, 0.25
    by default, a random start; advtransfer.attacks.pgd_examples) and under
    APGD-CE at each eps or those of ``evaluation.apgd.eps`` (pyautoattack; and the standard AutoAttack ensemble
    when ``evaluation.autoattack``); the randomized-smoothing certified accuracy at each radius and the smoothed
    (PREDICT) accuracy on the first ``smoothing.n_images`` images (PREDICT's binomial test on CERTIFY's n
    estimation counts). ``model``: in eval mode on ``device``. Keys: clean_accuracy, pgd_accuracy_eps<e>,
    apgd_accuracy_eps<e>, autoattack_accuracy_eps<e>, certified_accuracy_r<r>, smoothed_accuracy, abstain_rate."""
    out: dict[str, float] = {}
    net, x, y = model, x.to(device), y.to(device).long()

    def accuracy(images) -> float:
        with torch.no_grad():
            predictions = torch.cat([net(images[i : i + 500]).argmax(1) for i in range(0, len(images), 500)])
            return float(predictions.eq(y).float().mean())

    out["clean_accuracy"] = accuracy(x)
    pgd = evaluation["pgd"]
    for eps in pgd["eps"]:
        x_adv = attacks.pgd_examples(net, x, y, eps=eps, steps=pgd["steps"], step_size=attacks.pgd_step(pgd, eps, 0.25),
                             seed=seed, batch_size=500)  # fmt: skip
        out[f"pgd_accuracy_eps{eps:g}"] = accuracy(x_adv)
        apgd_eps = evaluation["apgd"].get("eps")
        if evaluation["apgd"]["n_iter"] and (apgd_eps is None or eps in apgd_eps):
            x_apgd = attacks.apgd(net, x, y, eps=eps, n_iter=evaluation["apgd"]["n_iter"], seed=seed)
            out[f"apgd_accuracy_eps{eps:g}"] = accuracy(x_apgd)
        if evaluation["autoattack"]:
            out[f"autoattack_accuracy_eps{eps:g}"] = accuracy(attacks.autoattack(net, x, y, eps=eps, seed=seed))
    rs = evaluation["smoothing"]
    n = min(rs["n_images"], len(x))
    g = torch.Generator(device=device).manual_seed(seed)
    cert = smoothing.certify(net, x[:n], sigma=rs["sigma"], n0=rs["n0"], n=rs["n"], alpha=rs["alpha"], generator=g,
                             batch_size=rs["batch_size"])  # fmt: skip
    labels = y[:n].cpu().numpy()
    for r, acc in zip(rs["radii"], smoothing.certified_accuracy(cert.prediction, cert.radius, labels, rs["radii"])):
        out[f"certified_accuracy_r{r:g}"] = float(acc)
    predicted = smoothing.smoothed_prediction(cert.counts_estimation, rs["alpha"])
    out["smoothed_accuracy"] = float((predicted == labels).mean())
    out["abstain_rate"] = float((predicted == smoothing.ABSTAIN).mean())
    return out
