"""Rule selection_zoo: one zoo model of a model-selection block, built by the zoo loader
(advtransfer.zoo.load_zoo_model, the same for every family's zoo: through the model registry, ``torchvision:<arch>``,
``timm:<name>`` or ``package.module:function``, its local weights read without unpickling) as a classifier for the
target's channels and image size, saved as a classifier (safetensors and sidecar) that the generic attack,
metrics, probe and fine-tuning rules read."""

from _job import log, sm  # noqa: I001 - the preamble first

import hashlib
from pathlib import Path

from advtransfer.io import save_model
from advtransfer.zoo import load_zoo_model, zoo_entry

p = sm.params
try:
    entry = zoo_entry(p.entry, "model_selection")
    model = load_zoo_model(entry, in_channels=p.channels, image_size=p.image_size)  # seeded with entry.seed
except (ValueError, FileNotFoundError) as err:
    raise ValueError(f"config {p.where}: {err}") from err
sidecar = {
    # the weights now live in the safetensors file: the sidecar's spec does not point back at the original
    "architecture": {
        "name": {"name": entry.model, "features": entry.features},
        "num_classes": entry.num_classes,
        "in_channels": p.channels,
        "image_size": p.image_size,
    },
    "zoo_entry": dict(p.entry),
    "weights_sha256": hashlib.sha256(Path(entry.weights).read_bytes()).hexdigest() if entry.weights else None,
    "parameter_count": sum(t.numel() for t in model.parameters()),
    "val_accuracy": None,  # a zoo model's own validation accuracy is not known here
    "seed": entry.seed,
}
log.info("%s: %s, %d parameters, feature width %s", entry.name, entry.model, sidecar["parameter_count"],
         getattr(model, "feature_dim", "?"))  # fmt: skip
save_model(sm.output.model, model, sidecar)
