"""Rule split_target: the target task's train / validation (reference, probe) and test indices."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path

from advtransfer import data
from advtransfer.io import save_tensors
from advtransfer.runtime import configure

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
p = sm.params
dataset, split_cfg = p.target["dataset"], p.split
classes = data.class_indices(dataset, p.target["classes"])
_, train_labels, _ = data.load_split(dataset, p.root, "train")
pool = None
if data.canonical_dataset(dataset) == data.canonical_dataset(p.source_dataset):
    _, pool = data.disjoint_pools(train_labels, split_cfg["source_pool_fraction"], split_cfg["seed"])
split = data.class_split(
    train_labels,
    classes,
    pool=pool,
    max_per_class=split_cfg["max_train_per_class"],
    val_fraction=split_cfg["val_fraction"],
    seed=split_cfg["seed"],
)
_, test_labels, _ = data.load_split(dataset, p.root, "test")
test = data.class_split(test_labels, classes, max_per_class=split_cfg["max_test_per_class"], seed=split_cfg["seed"])
split.update(test_idx=test["train_idx"], test_y=test["train_y"])
log.info("target %s %s: %s", dataset, p.target["classes"], {k: len(v) for k, v in split.items() if k.endswith("idx")})
save_tensors(sm.output[0], split, metadata={"dataset": dataset, "classes": list(p.target["classes"])})
