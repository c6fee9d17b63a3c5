"""Rule task_affinity: knowledge transfer among tasks: a decoder of every target task trained on every source
task's FROZEN encoder, its per-image test losses, and per target task the tournament of the sources (lower
loss wins) normalised as the adversarial transferability matrix is."""

from _job import log, sm  # noqa: I001 - the preamble first
from _tasks import inputs_and_targets, models, parts

import pandas as pd

from advtransfer.affinity import affinity_matrix
from advtransfer.io import save_csv, save_tensors
from advtransfer.runtime import resolve_device
from advtransfer.tasks import readout_loss_matrix

p, cfg = sm.params, sm.params.readout
images = parts()
train = inputs_and_targets(images["train"], p.tasks, limit=cfg["n_train"])
test = inputs_and_targets(images["test"], p.tasks)
losses = readout_loss_matrix(models(), train, test, epochs=cfg["epochs"], lr=cfg["lr"], seed=p.seed,
                             batch_size=cfg["batch_size"], device=resolve_device(p.device))  # fmt: skip
matrix = affinity_matrix(losses.double().numpy())
rows = [
    dict(source=s, target=t, value=float(matrix[a, b]), mean_loss=float(losses[a, b].mean()), n_images=losses.shape[2])
    for a, s in enumerate(p.tasks) for b, t in enumerate(p.tasks)
]  # fmt: skip
save_tensors(sm.output.losses, {"losses": losses}, metadata={"tasks": list(p.tasks)})
save_csv(sm.output.matrix, pd.DataFrame(rows))
log.info("mean test loss of each target task's decoder (columns) on each source encoder (rows):\n%s",
         pd.DataFrame(losses.mean(2).numpy(), index=p.tasks, columns=p.tasks).round(4).to_string())
