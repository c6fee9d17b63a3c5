"""Reading: one split of a data set as uint8 images, int64 labels and class names.

``load_split`` looks the data set up in the registry (advtransfer/registry.py), checks the split's files
(present, official MD5s) and calls the entry's reader. The readers here go through torchvision's dataset
classes with ``download=False`` (CIFAR-10, STL-10, Fashion-MNIST) or scikit-learn (digits). The CIFAR-10
batches are python pickles: in verify mode they are the official files (MD5 match); with ``verify=False``
they are first screened by a restricted unpickler that allows only numpy arrays, so an untrusted file can
never run code. ``imagefolder:<folder>`` data sets are read by advtransfer.data.folder.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advtransfer.data.acquisition import DataIntegrityError, _check_md5, _how_to_fix, dataset_entry
from advtransfer.data.domains import prepare_images
from advtransfer.data.splits import split_indices
from advtransfer.names import canonical_dataset, is_imagefolder
from advtransfer.registry import DATASETS, DatasetEntry, load_object

SPLITS = ("train", "test")
# torchvision (about 2 s to import) is imported only by the readers that use it: a job on digits or the
# shapes world never pays for it.

# (channels, height, width) of the images load_split returns, from the registry.
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {name: (e.channels, *e.size) for name, e in DATASETS.items()}


def image_shape(dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of the images ``load_split`` returns for a registered dataset."""
    return IMAGE_SHAPES[canonical_dataset(dataset)]


def load_split(
    name: str,
    data_root: str | os.PathLike,
    split: str,
    *,
    verify: bool = True,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Read one split ('train' or 'test') of a dataset already under ``data_root`` (see ``ensure_dataset``).

    Returns ``(images, labels, class_names)``: uint8 ``(N, C, H, W)``, int64 ``(N,)``, names in label order.
    CIFAR-10, STL-10 (split 'train' = the 5000 labelled training images) and Fashion-MNIST are read through
    torchvision's dataset classes with ``download=False``. ``verify`` checks the split's files against the
    official MD5s first; a mismatch or an unparsable file raises DataIntegrityError naming the file.

    Data sets without an official split (digits: scikit-learn's 1797 8x8 images; an image folder without
    train/ and test/ sub-folders) get a stratified random split with ``test_fraction`` of each class in
    'test', deterministic for a given ``seed`` (``split_indices``); ``seed`` and ``test_fraction`` only
    apply to them. digits' pixel values 0..16 are rescaled to 0..255 (``round(v * 255 / 16)``).
    """
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; use one of {SPLITS}")
    if is_imagefolder(name):
        from advtransfer.data.folder import read_imagefolder

        return read_imagefolder(name, split, seed=seed, test_fraction=test_fraction)
    spec = dataset_entry(name)
    data_root = Path(data_root)
    files = _checked_split_files(spec, data_root, split, verify)
    images, labels = _read_split(spec, data_root, split, files, verify=verify, seed=seed, test_fraction=test_fraction)
    _check_split_arrays(spec, data_root / spec.folder, files, images, labels)
    return images, labels, spec.classes


def _checked_split_files(spec: DatasetEntry, data_root: Path, split: str, verify: bool) -> tuple[str, ...]:
    """The files of ``split`` (names in the entry's folder), after checking they are all there and, when
    ``verify``, that each has its official MD5 (FileNotFoundError / DataIntegrityError naming the file)."""
    folder = data_root / spec.folder
    files = spec.split_files.get(split, ())
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{spec.name} {split} split: missing {[str(folder / f) for f in missing]}\n"
            f"{_how_to_fix(spec, data_root)}\n(or run ensure_dataset first)"
        )
    if verify:
        for f in files:
            err = _check_md5(folder / f, spec.files[f])
            if err is not None:
                raise DataIntegrityError(f"{err}; delete it and run ensure_dataset again (or check the mirror)")
    return files


def _read_split(
    spec: DatasetEntry,
    data_root: Path,
    split: str,
    files: Sequence[str],
    *,
    verify: bool,
    seed: int,
    test_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) from the entry's reader; any error but a DataIntegrityError becomes one naming the files."""
    reader = load_object(spec.reader)
    try:
        images, labels = reader(
            data_root, split, verify=verify, seed=seed, test_fraction=test_fraction, **spec.reader_args
        )
    except DataIntegrityError:
        raise
    except Exception as exc:  # noqa: BLE001 (torchvision's errors do not name the file)
        folder = data_root / spec.folder
        raise DataIntegrityError(
            f"{spec.name}: cannot read the {split} split from {[str(folder / f) for f in files]} "
            f"({type(exc).__name__}: {exc}); delete the files and run ensure_dataset again"
        ) from exc
    return images, labels


def _check_split_arrays(
    spec: DatasetEntry, folder: Path, files: Sequence[str], images: torch.Tensor, labels: torch.Tensor
) -> None:
    """Raise DataIntegrityError unless every label lies in 0..k-1 (k classes) and the images have the entry's
    (C, H, W)."""
    k = len(spec.classes)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise DataIntegrityError(
            f"{folder}/{{{', '.join(files)}}}: labels outside 0..{k - 1} "
            f"(found {int(labels.min())}..{int(labels.max())})"
        )
    if images.shape[1:] != IMAGE_SHAPES[spec.name]:
        raise DataIntegrityError(
            f"{folder}: images of shape {tuple(images.shape[1:])}, expected {IMAGE_SHAPES[spec.name]}"
        )


def _check_names(names_file: Path, names: Sequence[str], dataset: str) -> None:
    expected = DATASETS[dataset].classes
    if tuple(names) != expected:
        raise DataIntegrityError(f"{names_file}: class names {list(names)} differ from {dataset}'s {list(expected)}")


# ------------------------------------------------------------------------------- readers (registry)
# reader(data_root, split, *, verify, seed, test_fraction, **entry.reader_args)
#     -> (uint8 images (N, C, H, W), int64 labels)


def read_cifar10(data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float):
    """CIFAR-10's python batches through torchvision (unverified pickles screened first)."""
    return _read_cifar("cifar10", data_root, split, verify, labels_key="labels")


def read_cifar100(data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float):
    """CIFAR-100's python files through torchvision, with the 100 fine labels (unverified pickles screened)."""
    return _read_cifar("cifar100", data_root, split, verify, labels_key="fine_labels")


def _read_cifar(dataset: str, data_root: Path, split: str, verify: bool, *, labels_key: str):
    readers = _torchvision_readers()
    tv_class = readers[dataset]
    folder = data_root / DATASETS[dataset].folder
    meta = tv_class.meta
    if not verify:  # unverified pickles: screen them before torchvision unpickles them
        _check_cifar(folder, DATASETS[dataset].split_files[split], meta["filename"], labels_key, meta["key"])
    ds = tv_class(str(data_root), train=split == "train", download=False)
    _check_names(folder / meta["filename"], ds.classes, dataset)
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(ds.targets, dtype=torch.int64)


def read_stl10(data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float):
    """STL-10's labelled binary files through torchvision (class_names.txt checked when present)."""
    readers = _torchvision_readers()
    tvd, stl10 = readers["datasets"], readers["stl10"]
    folder = data_root / DATASETS["stl10"].folder
    _check_stl(folder, *DATASETS["stl10"].split_files[split])
    ds = stl10(str(data_root), split=split, download=False)
    if hasattr(ds, "classes"):
        _check_names(folder / tvd.STL10.class_names_file, ds.classes, "stl10")
    return torch.from_numpy(np.ascontiguousarray(ds.data)), torch.from_numpy(ds.labels.astype(np.int64))


def read_fashion_mnist(data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float):
    """Fashion-MNIST's raw idx files through torchvision (headers and sizes checked first)."""
    folder = data_root / DATASETS["fashion_mnist"].folder
    images_file, labels_file = DATASETS["fashion_mnist"].split_files[split]
    n_img = _check_idx(folder / images_file, 3, (28, 28))
    n_lab = _check_idx(folder / labels_file, 1, ())
    if n_img != n_lab:
        raise DataIntegrityError(f"{folder / images_file}: {n_img} images but {folder / labels_file} {n_lab} labels")
    tvd = _torchvision_readers()["datasets"]
    ds = tvd.FashionMNIST(str(data_root), train=split == "train", download=False)
    _check_names(folder, ds.classes, "fashion_mnist")
    return ds.data.unsqueeze(1).contiguous(), ds.targets.to(torch.int64)


def read_digits(data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float):
    """scikit-learn's bundled 8x8 digits, 0..16 rescaled to 0..255, a seeded stratified split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = torch.from_numpy(pixels).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, test_idx = split_indices(len(labels), [1.0 - test_fraction, test_fraction], seed, stratify=labels)
    idx = train_idx if split == "train" else test_idx
    return images[idx].contiguous(), labels[idx].contiguous()


@functools.cache
def _torchvision_readers() -> dict[str, Any]:
    """torchvision's CIFAR-10, CIFAR-100 and STL-10 readers without their MD5 re-checks (``load_split``
    verifies, naming files; STL-10 without requiring unlabeled_X.bin), and its datasets module."""
    from torchvision import datasets as tvd

    class CIFAR10(tvd.CIFAR10):
        train_list = [[f, None] for f, _ in tvd.CIFAR10.train_list]
        test_list = [[f, None] for f, _ in tvd.CIFAR10.test_list]
        meta = {**tvd.CIFAR10.meta, "md5": None}

    class CIFAR100(tvd.CIFAR100):
        train_list = [[f, None] for f, _ in tvd.CIFAR100.train_list]
        test_list = [[f, None] for f, _ in tvd.CIFAR100.test_list]
        meta = {**tvd.CIFAR100.meta, "md5": None}

    class STL10(tvd.STL10):
        train_list = [[f, None] for f, _ in tvd.STL10.train_list[:2]]
        test_list = [[f, None] for f, _ in tvd.STL10.test_list]

    return {"datasets": tvd, "cifar10": CIFAR10, "cifar100": CIFAR100, "stl10": STL10}


_SAFE_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _SAFE_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} (only numpy arrays are allowed)")


def _screen_pickle(path: Path) -> dict:
    """Load a CIFAR pickle with a numpy-only unpickler (no code can run); errors name the file."""
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 (truncation, garbage, forbidden globals)
        raise DataIntegrityError(f"{path}: not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataIntegrityError(f"{path}: not a CIFAR pickle (a {type(obj).__name__}, expected a dict)")
    return obj


def _check_cifar(folder: Path, files: Sequence[str], meta: str, labels_key: str, names_key: str):
    for f in files:
        obj = _screen_pickle(folder / f)
        if f == meta:
            if names_key not in obj:
                raise DataIntegrityError(f"{folder / f}: no {names_key!r} entry (keys {sorted(obj)})")
            continue
        if "data" not in obj or labels_key not in obj:
            raise DataIntegrityError(f"{folder / f}: needs 'data' and {labels_key!r} entries (has {sorted(obj)})")
        data = np.asarray(obj["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataIntegrityError(f"{folder / f}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
        if len(obj[labels_key]) != data.shape[0]:
            raise DataIntegrityError(f"{folder / f}: {data.shape[0]} images but {len(obj[labels_key])} labels")


def _check_stl(folder: Path, x_file: str, y_file: str):
    per_image = 3 * 96 * 96
    xs, ys = (folder / x_file).stat().st_size, (folder / y_file).stat().st_size
    if xs % per_image:
        raise DataIntegrityError(f"{folder / x_file}: size {xs} is not a multiple of 3*96*96 (truncated?)")
    if xs // per_image != ys:
        raise DataIntegrityError(f"{folder / x_file} holds {xs // per_image} images but {folder / y_file} {ys} labels")


def _check_idx(path: Path, ndim: int, shape_tail: tuple[int, ...]):
    with open(path, "rb") as fh:
        head = fh.read(4 + 4 * ndim)
    size = path.stat().st_size
    if len(head) < 4 + 4 * ndim or head[:2] != b"\0\0" or head[2] != 0x08 or head[3] != ndim:
        raise DataIntegrityError(f"{path}: not an idx{ndim} ubyte file (header {head[:4].hex()})")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != shape_tail:
        raise DataIntegrityError(f"{path}: item shape {dims[1:]}, expected {shape_tail}")
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise DataIntegrityError(f"{path}: {size} bytes, expected {expected} for shape {dims} (truncated?)")
    return dims[0]


def load_images(
    name: str,
    data_root: str | os.PathLike,
    split: str,
    indices: torch.Tensor,
    *,
    channels: int,
    size: int,
    domain: str = "identity",
    seed: int = 0,
) -> torch.Tensor:
    """The model inputs (float, [0, 1]) of ``indices`` of one split: load_split + prepare_images."""
    images, _, _ = load_split(name, data_root, split)
    return prepare_images(images[indices], channels=channels, size=size, domain=domain, seed=seed)
