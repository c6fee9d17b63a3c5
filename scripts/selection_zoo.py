"""Rule selection_zoo: one zoo model of a model-selection block, built through the model registry
(advtransfer.models.build_model: ``torchvision:<arch>``, ``timm:<name>`` or ``package.module:function``, its local
weights read without unpickling) for the target's channels and image size, saved as a classifier (safetensors and
sidecar) that the generic attack, metrics, probe and fine-tuning rules read."""

from _job import log, sm  # noqa: I001 - the preamble first

import hashlib
from pathlib import Path

import torch

from advtransfer.io import save_model
from advtransfer.models import build_model

p = sm.params
entry = p.entry
spec = {"name": entry["model"], "weights": entry.get("weights"), "features": entry.get("features")}
torch.manual_seed(entry.get("seed", 0))  # a factory without weights draws its initial weights here
try:
    model = build_model(spec, entry["num_classes"], p.channels, p.image_size).eval()
except (ValueError, FileNotFoundError, RuntimeError) as err:
    raise ValueError(f"config {p.where}: cannot build zoo model {entry['name']!r}: {err}") from err
weights = entry.get("weights")
sidecar = {
    # the weights now live in the safetensors file: the sidecar's spec does not point back at the original
    "architecture": {
        "name": {"name": entry["model"], "features": entry.get("features")},
        "num_classes": entry["num_classes"],
        "in_channels": p.channels,
        "image_size": p.image_size,
    },
    "zoo_entry": dict(entry),
    "weights_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest() if weights else None,
    "parameter_count": sum(t.numel() for t in model.parameters()),
    "val_accuracy": None,  # a zoo model's own validation accuracy is not known here
    "seed": entry.get("seed", 0),
}
log.info("%s: %s, %d parameters, feature width %s", entry["name"], entry["model"], sidecar["parameter_count"],
         getattr(model, "feature_dim", "?"))  # fmt: skip
save_model(sm.output.model, model, sidecar)
