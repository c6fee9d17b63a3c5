"""Rule robust_eval: a model's robustness on its task's test images (a source on the source task, a retrained
model on the target task, in its domain): clean, PGD and APGD accuracy per eps, randomized-smoothing certified
accuracy per radius (advtransfer.evaluation.robustness_of), on the same seeded subset for every model."""

from _job import log, sm  # noqa: I001 - the preamble first

import time

from advtransfer import data, evaluation
from advtransfer.io import load_json, load_tensors, save_json
from advtransfer.models import load_classifier
from advtransfer.runtime import resolve_device

p = sm.params
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("test_idx", "test_y"))
chosen = evaluation.evaluation_order(len(split["test_idx"]), p.evaluation["n_images"])
d = p.data
x = data.load_images(d["dataset"], p.root, "test", split["test_idx"][chosen], channels=d["channels"], size=d["size"],
                     domain=d["domain"], seed=d["seed"])  # fmt: skip
model = load_classifier(sm.input.model).to(device).eval()
info = load_json(sm.input.info)
log.info("robustness of %s (%s) on %d test images of %s, device %s", sm.input.model,
         info.get("objective", info.get("scheme")), len(x), d["dataset"], device)  # fmt: skip
started = time.perf_counter()
result = evaluation.robustness_of(model, x, split["test_y"][chosen], p.evaluation, p.seed, device)
log.info("%s", result)
save_json(sm.output[0], {**result, "n_images": len(x), "seconds": time.perf_counter() - started})
