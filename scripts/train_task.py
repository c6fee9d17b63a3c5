"""Rule train_task: one task network of the shapes world (the shared encoder architecture and the task's
light decoder), the epoch with the lowest validation loss kept."""

from _job import log, sm  # noqa: I001 - the preamble first
from _tasks import inputs_and_targets, parts

from advtransfer.io import save_model
from advtransfer.runtime import resolve_device
from advtransfer.tasks import build_task_network, train_task_network
from advtransfer.train import TrainSettings

p, task = sm.params, sm.wildcards.task
device = resolve_device(p.device)
images = parts()
(train_x, train_t), (val_x, val_t) = (inputs_and_targets(images[part], [task])[task] for part in ("train", "val"))
model = build_task_network(task, seed=p.seed)
log.info("training %s on %d images (%d validation), device %s", task, len(train_x), len(val_x), device)
settings = TrainSettings.from_config(p.train)
result = train_task_network(model, task, train_x, train_t, val_x, val_t, settings, seed=p.seed, device=device)
log.info("best epoch %d: validation loss %.4f (initial %.4f)", result["best_epoch"], result["val_loss"],
         result["initial_val_loss"])  # fmt: skip
save_model(sm.output.model, model, {"task": task, "kind": model.spec.kind, "seed": p.seed, "train": dict(p.train),
                                    **result, "device": str(device)})  # fmt: skip
