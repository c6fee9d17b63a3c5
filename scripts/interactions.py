"""Rule interactions: one model's multi-order interaction profile (advtransfer.interactions) on its task's test
images: per image and order, the strength mean |I^(m)| on the clean image and on its PGD example, and the
attack-induced change. Images: the first ``n_images`` of a seeded order that the model classifies correctly
(labels: the true ones), or, for a scenario's source on the target images, scored on its own prediction."""

from _job import log, sm  # noqa: I001 - the preamble first

import time

import pandas as pd
import torch

from advtransfer import data, evaluation, interactions
from advtransfer.attacks import pgd_examples, pgd_step
from advtransfer.io import load_tensors, save_csv
from advtransfer.models import load_classifier
from advtransfer.runtime import resolve_device

p = sm.params
s, d = p.settings, p.data
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("test_idx", "test_y"))
order = evaluation.evaluation_order(len(split["test_idx"]), None, seed=s["seed"])
x = data.load_images(d["dataset"], p.root, "test", split["test_idx"][order], channels=d["channels"], size=d["size"],
                     domain=d["domain"], seed=d["seed"])  # fmt: skip
model = load_classifier(sm.input.model).to(device).eval()
predicted = interactions.predictions(model, x, 512, device)
if d["labels"] == "own":
    y, usable = predicted, torch.ones(len(x), dtype=torch.bool)
else:
    y = split["test_y"][order]
    usable = predicted == y
chosen = usable.nonzero()[:, 0][: s["n_images"]]
if len(chosen) < s["n_images"]:
    log.warning("only %d of the %d test images are usable (correctly classified)", len(chosen), s["n_images"])
if not len(chosen):
    raise RuntimeError(f"{sm.input.model}: no correctly classified test image to analyse")
baseline = {"mean": x.mean((0, 2, 3)), "zero": 0.0}.get(s["baseline"], s["baseline"])
xs, ys = x[chosen].to(device), y[chosen].to(device)
a = s["attack"]
started = time.perf_counter()
x_adv = pgd_examples(model, xs, ys, eps=a["eps"], steps=a["steps"], step_size=pgd_step(a, a["eps"], 0.25),
                     seed=s["seed"], batch_size=500)  # fmt: skip
rows = interactions.clean_and_adversarial_profile(
    model, xs, x_adv, ys, s["grid"], s["ratios"], s["n_pairs"], s["n_contexts"], baseline, s["seed"],
    kind=s["score"], batch_size=s["batch_size"], device=device,
)  # fmt: skip
log.info("%s: %d images, %.1f s", sm.input.model, len(chosen), time.perf_counter() - started)
save_csv(sm.output[0], pd.DataFrame(rows, columns=interactions.PROFILE_COLUMNS))
