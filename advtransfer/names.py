"""Dataset, class and domain NAMES, without torch: what the workflow checks a config against at every start.

advtransfer.data re-exports these; importing this module alone keeps Snakemake's start (and every cluster
job's) free of the torch / torchvision import.
"""

from __future__ import annotations

import re
from typing import Sequence

DATASETS = ("cifar10", "stl10", "fashion_mnist", "digits")

# torchvision's class names (CIFAR-10's from its batches.meta, STL-10's from class_names.txt, Fashion-MNIST's
# FashionMNIST.classes; tests/test_data.py checks them against torchvision).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "stl10": ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),  # fmt: skip
    "digits": tuple(str(d) for d in range(10)),
}

# Groups of slugs naming the same class across datasets; a requested name that is not a class of the
# dataset is looked up here (so 'car' finds CIFAR-10's 'automobile' and 'automobile' finds STL-10's 'car').
CLASS_ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"automobile", "car"}),
    frozenset({"airplane", "aeroplane", "plane"}),
    frozenset({"t_shirt_top", "t_shirt", "tshirt"}),
)

# The target domains of advtransfer.data.DOMAINS (tests/test_data.py checks the two agree).
DOMAIN_NAMES = ("identity", "invert", "blur", "contrast", "noise")


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name ('CIFAR-10', 'FashionMNIST', 'fashion-mnist' ...) to one of ``DATASETS``."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    table = {"cifar10": "cifar10", "stl10": "stl10", "fashionmnist": "fashion_mnist", "digits": "digits"}
    if key not in table:
        raise ValueError(f"unknown dataset {name!r}; available datasets: {', '.join(DATASETS)}")
    return table[key]


def class_names(dataset: str) -> tuple[str, ...]:
    """The dataset's class names in label order (torchvision's names; digits: '0'..'9')."""
    return CLASS_NAMES[canonical_dataset(dataset)]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def class_indices(dataset: str, names: Sequence[str]) -> list[int]:
    """Label indices of the classes ``names`` in ``dataset``, matched by name (case-insensitive, slugs
    like 'ankle_boot' accepted, aliases such as 'car' <-> 'automobile'), in the order given.

    An unknown or repeated name raises ValueError naming the dataset, the name and the available names.
    """
    dataset = canonical_dataset(dataset)
    if isinstance(names, str):
        names = [names]
    available = CLASS_NAMES[dataset]
    by_slug = {_slug(c): i for i, c in enumerate(available)}
    out: list[int] = []
    for name in names:
        slug = _slug(name)
        idx = by_slug.get(slug)
        if idx is None:
            for group in CLASS_ALIASES:
                if slug in group:
                    hits = [by_slug[s] for s in group if s in by_slug]
                    if hits:
                        idx = hits[0]
                        break
        if idx is None:
            raise ValueError(
                f"dataset {dataset!r} has no class {name!r}; available classes: {', '.join(map(repr, available))}"
            )
        if idx in out:
            raise ValueError(
                f"dataset {dataset!r}: class {name!r} ({available[idx]!r}) is listed twice in {list(names)}"
            )
        out.append(idx)
    return out
