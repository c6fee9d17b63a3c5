"""Rules train_source / train_reference: train a classifier, selecting the epoch on the validation split."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path
import torch

from advtransfer import data
from advtransfer.io import load_tensors, save_model
from advtransfer.models import build_model
from advtransfer.runtime import configure, resolve_device
from advtransfer.train import checkpoint_path, evaluate, train_classifier

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
p = sm.params
seed = int(sm.wildcards.get("seed", p.get("seed", 0)))
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y"))
images = dict(channels=p.channels, size=p.image_size, domain=p.domain, seed=p.get("domain_seed", 0))
train_x = data.load_images(p.dataset, p.root, "train", split["train_idx"], **images)
val_x = data.load_images(p.dataset, p.root, "train", split["val_idx"], **images)
architecture = dict(name=p.model, num_classes=len(p.classes), in_channels=p.channels, image_size=p.image_size)
torch.manual_seed(seed)
model = build_model(**architecture)
device = resolve_device(p.device)
log.info("training %s on %s %s: %d train / %d val images, device %s", p.model, p.dataset, p.classes, len(train_x), len(val_x), device)
result = train_classifier(
    model, train_x, split["train_y"], val_x, split["val_y"], **p.train, seed=seed, device=device,
    checkpoint_dir=p.checkpoint_dir,
)  # fmt: skip
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
        "seed": seed,
        "train": dict(p.train),
        "best_epoch": result.best_epoch,
        "val_accuracy": val_accuracy,
        "val_cross_entropy": val_loss,
        "history": result.history,
        "wall_seconds": result.wall_seconds,
        "device": str(device),
    },
)
checkpoint_path(p.checkpoint_dir).unlink(missing_ok=True)  # the finished model supersedes it
