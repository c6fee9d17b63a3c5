"""Rule selection_scores: one candidate's transferability estimators (advtransfer.selection.estimator_scores) from
its penultimate features F and its softmax theta over its own classes on the labelled target images (those the
probe fits on), each estimator timed, and the forward passes timed too (every estimator needs them)."""

from _job import log, sm  # noqa: I001 - the preamble first

import time

from advtransfer import selection
from advtransfer.data import evaluation_subset, labelled_pool, load_images
from advtransfer.io import load_json, load_tensors, save_json
from advtransfer.models import load_classifier
from advtransfer.probe import features_and_logits
from advtransfer.runtime import resolve_device

p, s = sm.params, sm.params.settings
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y"))
idx, y = labelled_pool(split)
if s["n_images"] is not None:
    chosen = evaluation_subset(len(idx), s["n_images"], seed=s["seed"])
    idx, y = idx[chosen], y[chosen]
x = load_images(p.target["dataset"], p.root, "train", idx, channels=p.channels, size=p.image_size,
                domain=p.target["domain"], seed=p.target["domain_seed"])  # fmt: skip
model = load_classifier(sm.input.model)
wall, cpu = time.perf_counter(), time.process_time()
F, logits = features_and_logits(model, x, s["batch_size"], device)
theta = logits.double().softmax(1)
result = {
    "candidate": sm.wildcards.candidate,
    "n_images": len(y),
    "feature_dim": F.shape[1],
    "source_classes": logits.shape[1],
    "parameter_count": sum(t.numel() for t in model.parameters()),
    "source_val_accuracy": load_json(sm.input.info).get("val_accuracy"),
    "features_wall_seconds": time.perf_counter() - wall,
    "features_cpu_seconds": time.process_time() - cpu,
}
for row in selection.estimator_scores(F.numpy(), theta.numpy(), y.numpy(), s):
    name = row["score"]
    result.update({name: row["value"], f"{name}_wall_seconds": row["wall_seconds"],
                   f"{name}_cpu_seconds": row["cpu_seconds"]})  # fmt: skip
    log.info("%-18s %+.5g  (%.3f s)", name, row["value"], row["wall_seconds"])
save_json(sm.output[0], result)
