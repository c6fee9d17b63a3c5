"""Rule split: train / validation (and test) indices of one class mixture of a data set, by class NAME.

When the split shares its data set's images with another one (pool), the two get disjoint parts
(``pool.side`` 'source' or 'target' of ``disjoint_pools``; stratified by label unless the two label the
images differently), so a target holds images no source saw.
"""

from _job import log, sm  # noqa: I001 - the preamble first

from advtransfer import data
from advtransfer.io import save_tensors

p = sm.params.split
root = sm.params.root
classes = data.class_indices(p["dataset"], p["classes"])
_, labels, _ = data.load_split(p["dataset"], root, "train")
pool = None
if p["pool"]:
    pools = data.disjoint_pools(labels, p["pool"]["fraction"], p["pool"]["seed"], p["pool"].get("stratify", True))
    source_pool, target_pool = pools
    pool = source_pool if p["pool"]["side"] == "source" else target_pool
split = data.class_split(
    labels, classes, pool=pool, max_per_class=p["max_train_per_class"], val_fraction=p["val_fraction"], seed=p["seed"]
)
if p.get("label_noise"):  # the source's own labels are noisy: train and validation alike (its data)
    for key in ("train_y", "val_y"):
        split[key] = data.flip_labels(split[key], p["label_noise"], len(classes), p["seed"] + (key == "val_y"))
if p["test"]:
    _, test_labels, _ = data.load_split(p["dataset"], root, "test")
    test = data.class_split(test_labels, classes, max_per_class=p["max_test_per_class"], seed=p["seed"])
    split.update(test_idx=test["train_idx"], test_y=test["train_y"])
if p.get("min_labelled_per_class"):
    data.check_labelled_per_class(split, p["min_labelled_per_class"], p["classes"])
log.info("%s %s: %s", p["dataset"], p["classes"], {k: len(v) for k, v in split.items() if k.endswith("idx")})
save_tensors(sm.output[0], split, metadata={"dataset": p["dataset"], "classes": list(p["classes"])})
