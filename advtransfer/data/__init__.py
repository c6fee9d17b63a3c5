"""Data sets: the registry's entries (advtransfer/registry.py) acquired, read, split and shifted.

- ``acquisition``: files present under ``data.root`` (mirrors, archives, downloads), checksums verified;
- ``reading``: one split as uint8 images, int64 labels and class names (``load_split``, ``load_images``);
- ``folder``: ``imagefolder:<folder>`` data sets (torchvision's ImageFolder layout);
- ``splits``: class subsets by index, seeded splits, the splits of a scenario;
- ``domains``: image transforms and target domains.

Classes are matched by NAME (``class_indices``), never by index: STL-10 and CIFAR-10 order their labels
differently (CIFAR-10 'automobile' is 1, STL-10 'car' is 2), and the alias table maps 'car' <-> 'automobile'.
"""

from advtransfer.data.acquisition import (
    DEBIAN_FASHION_MNIST,
    DataIntegrityError,
    dataset_entry,
    dataset_files,
    ensure_dataset,
)
from advtransfer.data.domains import DOMAINS, apply_domain, prepare_images, resize, to_channels, to_float
from advtransfer.data.reading import IMAGE_SHAPES, SPLITS, image_shape, load_images, load_split
from advtransfer.data.splits import (
    check_labelled_per_class,
    class_split,
    disjoint_pools,
    evaluation_subset,
    few_shot_sets,
    flip_labels,
    labelled_pool,
    metric_subset,
    select_classes,
    split_indices,
    subsample_per_class,
)
from advtransfer.names import CLASS_NAMES, DATASETS, canonical_dataset, class_indices, class_names
from advtransfer.registry import DATASETS as _REGISTRY

# MD5s of the uncompressed official Fashion-MNIST idx files (kept importable; the registry holds them).
FASHION_MNIST_RAW_MD5 = dict(_REGISTRY["fashion_mnist"].files)

__all__ = [
    "DATASETS",
    "CLASS_NAMES",
    "IMAGE_SHAPES",
    "DOMAINS",
    "SPLITS",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_RAW_MD5",
    "DataIntegrityError",
    "canonical_dataset",
    "class_names",
    "class_indices",
    "dataset_entry",
    "image_shape",
    "dataset_files",
    "ensure_dataset",
    "load_split",
    "load_images",
    "prepare_images",
    "select_classes",
    "split_indices",
    "subsample_per_class",
    "disjoint_pools",
    "class_split",
    "check_labelled_per_class",
    "few_shot_sets",
    "flip_labels",
    "labelled_pool",
    "evaluation_subset",
    "metric_subset",
    "to_float",
    "resize",
    "to_channels",
    "apply_domain",
]
