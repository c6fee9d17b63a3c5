"""Rule probe: linear probe on the frozen source's penultimate features; accuracy on the target test split."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import torch

from advtransfer.io import load_tensors, save_json
from advtransfer.models import load_classifier
from advtransfer.probe import extract_features, fit_linear_probe
from advtransfer.runtime import resolve_device

p = sm.params
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y", "test_idx", "test_y"))
train_idx = torch.cat([split["train_idx"], split["val_idx"]])  # the probe selects nothing: all target-train
train_y = torch.cat([split["train_y"], split["val_y"]])
source = load_classifier(sm.input.source)
features = {
    part: extract_features(source, target_images(part, idx), 500, device)
    for part, idx in (("train", train_idx), ("test", split["test_idx"]))
}
probe = fit_linear_probe(features["train"], train_y, **p.probe, device=device, num_classes=len(p.target["classes"]))
train_accuracy, train_loss = probe.evaluate(features["train"], train_y)
accuracy, loss = probe.evaluate(features["test"], split["test_y"])
log.info("probe: train accuracy %.4f, test accuracy %.4f, test cross-entropy %.4f", train_accuracy, accuracy, loss)
save_json(
    sm.output[0],
    {
        "probe_accuracy": accuracy,
        "probe_cross_entropy": loss,
        "probe_train_accuracy": train_accuracy,
        "n_train": len(train_y),
        "n_test": len(split["test_y"]),
        "feature_dim": features["train"].shape[1],
        "lbfgs_iterations": probe.iterations,
    },
)
