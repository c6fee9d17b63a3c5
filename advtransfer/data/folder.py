"""Data sets given as a folder of images: ``imagefolder:<folder>`` in torchvision's ImageFolder layout.

``<folder>/<class>/<image>`` (one folder of class folders: a stratified ``test_fraction`` split, seeded,
as for digits) or ``<folder>/train/<class>/...`` and ``<folder>/test/<class>/...`` (the user's own split;
the test classes must be among the train classes). Class names are the folder names in sorted order
(torchvision's ImageFolder). Images are read with torchvision's ImageFolder and PIL, converted to RGB, and
all resized to the size of the first image (sorted order) with antialiased bilinear interpolation when
sizes differ; the scenario's ``image_size`` and ``channels`` then apply as for any data set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torchvision.datasets import ImageFolder
from torchvision.transforms.v2 import functional as TF

from advtransfer.data.acquisition import DataIntegrityError
from advtransfer.data.domains import resize
from advtransfer.data.splits import split_indices
from advtransfer.digests import file_digest
from advtransfer.names import (
    IMAGE_SUFFIXES,
    class_folders,
    imagefolder_classes,
    imagefolder_images,
    imagefolder_root,
    imagefolder_splits,
)


class _ImageFolder(ImageFolder):
    """torchvision's ImageFolder whose classes are the sub-folders holding images (names.class_folders),
    so a folder of notes beside the class folders is no class, as at start-up."""

    def find_classes(self, directory):
        classes = class_folders(directory)
        return classes, {name: i for i, name in enumerate(classes)}


def imagefolder_manifest(name: str) -> str:
    """SHA-256 of what ``imagefolder:<folder>`` is made of: its class names and every image's path (relative to
    the folder) and content. Recorded in the `dataset` job's marker, so a changed folder changes the marker."""
    root = imagefolder_root(name)
    sha = hashlib.sha256()
    for split, folder in sorted(imagefolder_splits(name).items()):
        sha.update(f"{split}:{','.join(imagefolder_classes(folder))}\n".encode())
    for path in imagefolder_images(name):
        sha.update(f"{path.relative_to(root).as_posix()}\t{file_digest(path)}\n".encode())
    return sha.hexdigest()


def _read(folder: Path, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        ds = _ImageFolder(str(folder), loader=_rgb, is_valid_file=lambda p: p.lower().endswith(IMAGE_SUFFIXES))
    except (FileNotFoundError, OSError) as err:
        raise DataIntegrityError(f"{folder}: not an image folder ({err})") from err
    unknown = sorted(set(ds.classes) - set(classes))
    if unknown:
        raise DataIntegrityError(f"{folder}: class folders {unknown} are not among the train classes {list(classes)}")
    remap = [classes.index(c) for c in ds.classes]
    images, labels = [], []
    for path, label in ds.samples:
        try:
            images.append(TF.pil_to_tensor(ds.loader(path)))
        except OSError as err:
            raise DataIntegrityError(f"{path}: not a readable image ({err})") from err
        labels.append(remap[label])
    size = images[0].shape[-2:]
    images = [img if img.shape[-2:] == size else resize(img, list(size)) for img in images]
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _rgb(path: str):
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


def read_imagefolder(
    name: str, split: str, *, seed: int = 0, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """One split of ``imagefolder:<folder>``: uint8 RGB images (N, 3, H, W), int64 labels, class names."""
    folders = imagefolder_splits(name)
    if "all" not in folders:
        classes = imagefolder_classes(folders["train"])
        images, labels = _read(folders[split], classes)
        return images, labels, classes
    classes = imagefolder_classes(folders["all"])
    images, labels = _read(folders["all"], classes)
    train_idx, test_idx = split_indices(len(labels), [1.0 - test_fraction, test_fraction], seed, stratify=labels)
    idx = train_idx if split == "train" else test_idx
    return images[idx].contiguous(), labels[idx].contiguous(), classes
