"""Rule retrain: a target model from a source model by one retraining scheme (probe: a linear head on the
frozen body; finetune: the whole network, clean; adv_finetune: the whole network with PGD adversarial training
on the target), its epoch chosen on the target validation split. The source model file is only read."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import copy
import time

import torch
from torch import nn

from advtransfer.io import load_json, load_tensors, save_model
from advtransfer.models import load_classifier
from advtransfer.probe import extract_features, fit_linear_probe
from advtransfer.runtime import resolve_device
from advtransfer.train import TrainContext, TrainSettings, checkpoint_path, evaluate, train_classifier

p = sm.params
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y"))
x = {part: target_images("train", split[f"{part}_idx"]) for part in ("train", "val")}
source = load_classifier(sm.input.source)
feature_dim = extract_features(source, x["train"][:1], 1, "cpu").shape[1]
n_classes = len(p.target["classes"])
torch.manual_seed(p.seed)
model = copy.deepcopy(source)
model.head = nn.Linear(feature_dim, n_classes)
started, cpu_started = time.perf_counter(), time.process_time()
log.info("retraining %s by %s on %d target images, device %s", sm.input.source, p.scheme, len(x["train"]), device)
history = []
if p.scheme == "probe":
    probe = fit_linear_probe(extract_features(source, x["train"], 512, device), split["train_y"], l2=p.settings["l2"],
                             max_iter=p.settings["max_iter"], device=device, num_classes=n_classes)  # fmt: skip
    weight, bias = probe.as_linear()
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
else:
    settings = dict(p.settings)
    objective = (
        {"objective": "pgd_at", "objective_params": settings.pop("params")} if p.scheme == "adv_finetune" else {}
    )
    context = TrainContext(seed=p.seed, device=device, checkpoint_dir=p.checkpoint_dir, **objective)
    result = train_classifier(
        model, x["train"], split["train_y"], x["val"], split["val_y"], TrainSettings.from_config(settings), context
    )
    history = result.history
wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
model = model.to(device).eval()
val_accuracy, _ = evaluate(model, x["val"], split["val_y"], batch_size=512, device=device)
save_model(
    sm.output.model,
    model,
    {
        "architecture": {**load_json(sm.input.source_info)["architecture"], "num_classes": n_classes},
        "source": sm.input.source,
        "scheme": p.scheme,
        "settings": p.settings,
        "classes": list(p.target["classes"]),
        "val_accuracy": val_accuracy,
        "history": history,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "device": str(device),
    },
)
checkpoint_path(p.checkpoint_dir).unlink(missing_ok=True)  # the model supersedes it
