"""Rule finetune: the whole source network with a new head trained on the labelled target images
(epoch selected on the target validation split); accuracy on the target test split. The source model
file is only read."""

from _job import log, sm  # noqa: I001 - the preamble first
from _target import target_images

import torch

from advtransfer.io import load_tensors, save_json
from advtransfer.models import load_classifier
from advtransfer.probe import FineTuned, extract_features
from advtransfer.runtime import resolve_device
from advtransfer.train import TrainContext, TrainSettings, checkpoint_path, evaluate, train_classifier

p = sm.params
device = resolve_device(p.device)
split = load_tensors(sm.input.split, required=("train_idx", "train_y", "val_idx", "val_y", "test_idx", "test_y"))
x = {
    part: target_images(source_part, split[f"{part}_idx"])
    for part, source_part in (("train", "train"), ("val", "train"), ("test", "test"))
}
source = load_classifier(sm.input.source)
feature_dim = extract_features(source, x["train"][:1], 1, "cpu").shape[1]
torch.manual_seed(p.seed)
model = FineTuned(source, len(p.target["classes"]), feature_dim)
log.info(
    "fine-tuning %s on %d target images (%d validation), device %s",
    sm.input.source, len(x["train"]), len(x["val"]), device,
)  # fmt: skip
result = train_classifier(
    model, x["train"], split["train_y"], x["val"], split["val_y"], TrainSettings.from_config(p.finetune),
    TrainContext(seed=p.seed, device=device, checkpoint_dir=p.checkpoint_dir),
)  # fmt: skip
accuracy, loss = evaluate(model, x["test"], split["test_y"], batch_size=512, device=device)
log.info(
    "best epoch %d of %d: test accuracy %.4f, test cross-entropy %.4f",
    result.best_epoch, len(result.history), accuracy, loss,
)  # fmt: skip
save_json(
    sm.output[0],
    {
        "finetune_accuracy": accuracy,
        "finetune_cross_entropy": loss,
        "finetune_val_accuracy": result.best_val_accuracy,
        "finetune_best_epoch": result.best_epoch,
        "finetune_wall_seconds": result.wall_seconds,
        "finetune_history": result.history,
    },
)
checkpoint_path(p.checkpoint_dir).unlink(missing_ok=True)  # the result supersedes it
