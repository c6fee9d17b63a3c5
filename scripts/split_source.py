"""Rule split_source: train / validation indices of one source's class mixture (source pool only)."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path

from advtransfer import data
from advtransfer.io import save_tensors
from advtransfer.runtime import configure

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
p = sm.params
_, labels, _ = data.load_split(p.dataset, p.root, "train")
pool = None
if data.canonical_dataset(p.dataset) == data.canonical_dataset(p.target_dataset):
    pool, _ = data.disjoint_pools(labels, p.pool_fraction, p.seed)
split = data.class_split(
    labels,
    data.class_indices(p.dataset, p.classes),
    pool=pool,
    max_per_class=p.max_per_class,
    val_fraction=p.val_fraction,
    seed=p.seed,
)
log.info("%s: classes %s, %d train / %d validation images", sm.wildcards.source, p.classes, len(split["train_idx"]), len(split["val_idx"]))
save_tensors(sm.output[0], split, metadata={"dataset": p.dataset, "classes": list(p.classes)})
