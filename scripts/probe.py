"""Rule probe: linear probes on the frozen source's penultimate features, fitted on all labelled target
images and on k-shot sets of them (the same sets for every source); accuracy on the target test split."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

from advtransfer.data import few_shot_sets, labelled_pool
from advtransfer.io import load_tensors, save_json
from advtransfer.models import load_classifier
from advtransfer.probe import extract_features, few_shot_accuracies, fit_linear_probe
from advtransfer.runtime import resolve_device
from advtransfer.designs import few_shot_column
from advtransfer.stats import mean_interval

p = sm.params
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y", "test_idx", "test_y"))
pool_idx, pool_y = labelled_pool(split)  # the probe selects nothing: all labelled target images
source = load_classifier(sm.input.source)
features = {
    part: extract_features(source, target_images(part, idx), 500, device)
    for part, idx in (("train", pool_idx), ("test", split["test_idx"]))
}
fit = dict(l2=p.probe["l2"], max_iter=p.probe["max_iter"], device=device, num_classes=len(p.target["classes"]))
probe = fit_linear_probe(features["train"], pool_y, **fit)
train_accuracy, train_loss = probe.evaluate(features["train"], pool_y)
accuracy, loss = probe.evaluate(features["test"], split["test_y"])
log.info(
    "all-data probe: train accuracy %.4f, test accuracy %.4f, test cross-entropy %.4f", train_accuracy, accuracy, loss
)
result = {
    "probe_accuracy": accuracy,
    "probe_cross_entropy": loss,
    "probe_train_accuracy": train_accuracy,
    "n_train": len(pool_y),
    "n_test": len(split["test_y"]),
    "feature_dim": features["train"].shape[1],
    "lbfgs_iterations": probe.iterations,
}
few_shot = {}
for k in p.probe["shots"]:
    sets = few_shot_sets(pool_y, k, p.probe["draws"], p.probe["seed"])
    draws = few_shot_accuracies(features["train"], pool_y, features["test"], split["test_y"], sets, **fit)
    mean, lo, hi = mean_interval(draws)
    result[few_shot_column(k)] = mean
    few_shot[str(k)] = draws
    log.info("%d-shot probe: test accuracy %.4f [%.4f, %.4f] over %d draws", k, mean, lo, hi, len(draws))
save_json(sm.output[0], {**result, "few_shot_draws": few_shot})
