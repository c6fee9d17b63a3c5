"""Rule train: train one classifier of an experiment (a source or a reference), selecting the epoch on
the validation split, with the training objective named in config."""

from _job import log, sm  # noqa: I001 - the preamble first

import torch

from advtransfer import data
from advtransfer.io import load_tensors, save_model
from advtransfer.models import build_model, load_classifier
from advtransfer.runtime import resolve_device
from advtransfer.train import TrainContext, TrainSettings, checkpoint_path, evaluate, train_classifier

p = sm.params
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y"))
images = dict(channels=p.channels, size=p.image_size, domain=p.domain, seed=p.domain_seed)
train_x = data.load_images(p.dataset, p.root, "train", split["train_idx"], **images)
val_x = data.load_images(p.dataset, p.root, "train", split["val_idx"], **images)
architecture = dict(name=p.architecture, num_classes=len(p.classes), in_channels=p.channels, image_size=p.image_size)
torch.manual_seed(p.seed)
model = build_model(**architecture)
device = resolve_device(p.device)
log.info(
    "training %s on %s %s: %d train / %d val images, device %s",
    p.architecture, p.dataset, p.classes, len(train_x), len(val_x), device,
)  # fmt: skip
teacher = load_classifier(sm.input.teacher) if hasattr(sm.input, "teacher") else None  # rrm's frozen teacher
context = TrainContext(
    seed=p.seed, device=device, checkpoint_dir=p.checkpoint_dir, objective=p.objective,
    objective_params=dict(p.objective_params), teacher=teacher,
)  # fmt: skip
result = train_classifier(
    model, train_x, split["train_y"], val_x, split["val_y"], TrainSettings.from_config(p.train), context
)
val_accuracy, val_loss = evaluate(model, val_x, split["val_y"], batch_size=512, device=device)
log.info("best epoch %d of %d: validation accuracy %.4f", result.best_epoch, len(result.history), val_accuracy)
save_model(
    sm.output.model,
    model,
    {
        "architecture": architecture,
        "dataset": p.dataset,
        "classes": list(p.classes),
        "domain": p.domain,
        "seed": p.seed,
        "objective": result.objective,
        "objective_params": result.objective_params,
        "train": dict(p.train),
        "best_epoch": result.best_epoch,
        "val_accuracy": val_accuracy,
        "val_cross_entropy": val_loss,
        "history": result.history,
        "wall_seconds": result.wall_seconds,
        "cpu_seconds": result.cpu_seconds,
        "teacher": getattr(sm.input, "teacher", None),
        "device": str(device),
    },
)
checkpoint_path(p.checkpoint_dir).unlink(missing_ok=True)  # the finished model supersedes it
