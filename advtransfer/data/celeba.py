"""CelebA as registered data sets: ``celeba_identity`` and ``celeba_<attribute>`` (advtransfer/registry.py).

Files in torchvision's layout, ``<data.root>/celeba/{img_align_celeba/*.jpg, list_attr_celeba.txt,
identity_CelebA.txt, list_eval_partition.txt, list_bbox_celeba.txt, list_landmarks_align_celeba.txt}``.
The annotations are parsed by ``torchvision.datasets.CelebA(split="all", download=False)`` (its MD5 check
replaced by ``load_split``'s, which names the file) and checked here: every file lists the same images in
the same order, 40 attributes named as in the registry with values -1 / 1, identities 1..10177.

The split is NOT the official partition, whose train, valid and test identities are disjoint: the
knowledge-transfer family needs held-out images of the SAME identities. For every identity with at least
two images ``max(1, round(test_fraction * count))`` of them (at most count - 1) are drawn into 'test' by a
generator seeded with ``seed``, identity by identity in increasing order; identities with one image stay in
'train'. It depends only on the identities and the seed, so every labelling gets the same split.

Images: centre crop 178x178 of the 178x218 aligned faces, resized to 64x64 (antialiased bilinear, PIL),
uint8 (N, 3, 64, 64). Decoding the 202,599 JPEGs takes minutes, so all of them are decoded once into
``celeba/advtransfer_images_64.safetensors`` (written atomically) with a digest of the image list; a cache
for another list is rebuilt. Replace or delete it if the JPEGs themselves change.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from advtransfer.data.acquisition import DataIntegrityError
from advtransfer.io import load_tensors, save_tensors
from advtransfer.registry import CELEBA_ATTRIBUTES, CELEBA_IDENTITIES, CELEBA_LABELLINGS, DATASETS

log = logging.getLogger(__name__)

FOLDER = DATASETS["celeba_identity"].folder  # "celeba", torchvision's CelebA.base_folder
IMAGE_FOLDER = "img_align_celeba"
CACHE_NAME = "advtransfer_images_64.safetensors"
CACHE_FORMAT = "advtransfer-celeba-images/1"
CROP = 178  # centre crop of the 178x218 aligned images
SIZE = 64
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
IDENTITIES = "identity_CelebA.txt"
# annotation file -> (columns after the image name, whether its first line is the image count)
_TABLES = {
    PARTITION: (1, False),
    IDENTITIES: (1, False),
    "list_bbox_celeba.txt": (4, True),
    "list_landmarks_align_celeba.txt": (10, True),
    ATTRIBUTES: (len(CELEBA_ATTRIBUTES), True),
}


@dataclass(frozen=True)
class Annotations:
    """What the readers use of CelebA's annotations, in file order."""

    filenames: tuple[str, ...]
    identity: torch.Tensor  # int64 (N,), 1..10177
    attributes: torch.Tensor  # bool (N, 40), CELEBA_ATTRIBUTES' order


def read_celeba(
    data_root: str | os.PathLike, split: str, *, verify: bool, seed: int, test_fraction: float, labelling: str
):
    """Registry reader of ``celeba_<labelling>``: the split's uint8 images (N, 3, 64, 64) and int64 labels
    (identity - 1, or attribute -1 / 1 -> 0 / 1). ``verify`` is done by load_split (MD5s of the text files)."""
    if labelling not in CELEBA_LABELLINGS:
        raise ValueError(f"celeba: unknown labelling {labelling!r}; use one of {list(CELEBA_LABELLINGS)}")
    if split not in ("train", "test"):
        raise ValueError(f"celeba: unknown split {split!r}; use 'train' or 'test'")
    folder = Path(data_root) / FOLDER
    annotations = read_annotations(folder)
    train_idx, test_idx = identity_split(annotations.identity, seed, test_fraction)
    idx = train_idx if split == "train" else test_idx
    images = all_images(folder, annotations.filenames)[idx]
    if labelling == "identity":
        labels = annotations.identity[idx] - 1
    else:
        labels = annotations.attributes[idx, CELEBA_ATTRIBUTES.index(labelling)].long()
    return images, labels


def identity_split(identity: torch.Tensor, seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices, each in increasing (file) order: of each identity with ``count >= 2`` images,
    ``min(count - 1, max(1, round(test_fraction * count)))`` (Python's round, half to even) drawn into test
    (torch.Generator seeded with ``seed``, identities in increasing order); the rest, and identities with one
    image, in train."""
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"celeba: test_fraction must be in (0, 1), got {test_fraction}")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.argsort(identity, stable=True)
    _, counts = torch.unique_consecutive(identity[order], return_counts=True)
    test = torch.zeros(len(identity), dtype=torch.bool)
    start = 0
    for count in counts.tolist():
        if count >= 2:
            k = min(count - 1, max(1, round(test_fraction * count)))
            test[order[start + torch.randperm(count, generator=generator)[:k]]] = True
        start += count
    return (~test).nonzero().flatten(), test.nonzero().flatten()


# ------------------------------------------------------------------------------------------ annotations
def read_annotations(folder: Path) -> Annotations:
    """The annotations under ``folder`` (``<root>/celeba``), parsed once per process for given file contents
    (torchvision's parser takes about 15 s for the full set)."""
    digest = hashlib.sha256()
    for name in _TABLES:
        path = folder / name
        if not path.is_file():
            raise DataIntegrityError(f"{path}: missing (CelebA's annotation files belong in {folder}/)")
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return _parse_annotations(str(folder), digest.hexdigest())


@functools.lru_cache(maxsize=1)
def _parse_annotations(folder: str, digest: str) -> Annotations:
    """Parse with torchvision's CelebA and check the tables (``digest``: of the files' contents, the key)."""
    folder = Path(folder)
    dataset = _celeba_class()(str(folder.parent), split="all", target_type=["attr", "identity"], download=False)
    tables = dataset.tables
    filenames = list(tables[PARTITION].index)
    n = len(filenames)
    if n == 0:
        raise DataIntegrityError(f"{folder / PARTITION}: lists no images")
    for name, (width, counted) in _TABLES.items():
        path, table = folder / name, tables[name]
        if table.index != filenames:
            pairs = enumerate(zip(table.index, filenames))
            first = next((i for i, (a, b) in pairs if a != b), min(len(table.index), n))
            got = table.index[first] if first < len(table.index) else "the end of the file"
            want = filenames[first] if first < n else "the end of the file"
            raise DataIntegrityError(
                f"{path}: lists other images than {folder / PARTITION} ({len(table.index)} vs {n} images; "
                f"entry {first + 1} is {got!r}, not {want!r})"
            )
        if tuple(table.data.shape) != (n, width):
            shape = tuple(table.data.shape)
            raise DataIntegrityError(f"{path}: {width} values per image expected, read a table of {shape}")
        if counted:
            with open(path) as fh:
                head = fh.readline().strip()
            if head != str(n):
                raise DataIntegrityError(f"{path}: the first line says {head!r} images, the file lists {n}")
    _check_values(folder / PARTITION, tables[PARTITION].data[:, 0], (0, 1, 2), first_line=1)
    names = tuple(h.lower() for h in tables[ATTRIBUTES].header if h)
    if names != CELEBA_ATTRIBUTES:
        raise DataIntegrityError(
            f"{folder / ATTRIBUTES}: attribute names {list(names)} differ from {list(CELEBA_ATTRIBUTES)}"
        )
    raw = tables[ATTRIBUTES].data
    _check_values(folder / ATTRIBUTES, raw, (-1, 1), first_line=3)
    identity = tables[IDENTITIES].data[:, 0].to(torch.int64)
    _check_values(folder / IDENTITIES, identity, range(1, CELEBA_IDENTITIES + 1), first_line=1)
    return Annotations(tuple(filenames), identity, raw > 0)


def _check_values(path: Path, values: torch.Tensor, allowed, first_line: int) -> None:
    """DataIntegrityError naming ``path`` and the first line with a value outside ``allowed``."""
    if isinstance(allowed, range):
        bad = (values < allowed.start) | (values >= allowed.stop)
        what = f"{allowed.start}..{allowed.stop - 1}"
    else:
        bad = ~torch.isin(values, torch.tensor(allowed, dtype=values.dtype))
        what = " or ".join(str(a) for a in allowed)
    if bool(bad.any()):
        row = int(bad.reshape(len(values), -1).any(1).nonzero()[0])
        found = values[row][bad[row]].reshape(-1)[0] if values.ndim > 1 else values[row]
        raise DataIntegrityError(f"{path}: line {row + first_line} holds the value {int(found)}, expected {what}")


@functools.cache
def _celeba_class():
    """torchvision's CelebA, checking only that the files and img_align_celeba/ exist (load_split checks
    the MD5s, naming the file), keeping the parsed tables and naming the file a parse error comes from."""
    from torchvision.datasets import CelebA as TorchvisionCelebA

    class CelebA(TorchvisionCelebA):
        def __init__(self, *args, **kwargs):
            self.tables = {}
            super().__init__(*args, **kwargs)

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            for _, _, name in self.file_list:
                if not name.endswith((".zip", ".7z")) and not (folder / name).is_file():
                    raise DataIntegrityError(f"{folder / name}: missing (CelebA's annotation files go in {folder}/)")
            if not (folder / IMAGE_FOLDER).is_dir():
                raise DataIntegrityError(
                    f"{folder / IMAGE_FOLDER}/: missing; unzip CelebA's img_align_celeba.zip in {folder}/"
                )
            return True

        def _load_csv(self, filename: str, header: int | None = None):
            path = Path(self.root) / self.base_folder / filename
            try:
                table = super()._load_csv(filename, header)
            except Exception as exc:  # noqa: BLE001 (int() of a bad value, ragged rows, a missing header)
                raise DataIntegrityError(f"{path}: not a CelebA annotation file ({type(exc).__name__}: {exc})") from exc
            self.tables[filename] = table
            return table

    return CelebA


# ---------------------------------------------------------------------------------------------- images
def all_images(folder: Path, filenames: tuple[str, ...]) -> torch.Tensor:
    """uint8 (N, 3, 64, 64) of all ``filenames`` in order: from the cache when it holds this list, else
    decoded and cached (a cache that cannot be written is only logged). Jobs starting together decode once:
    the decoding holds an advisory lock on ``<cache>.lock`` and the others then read the cache."""
    cache = folder / CACHE_NAME
    key = _list_digest(filenames)
    images = _read_cache(cache, key, len(filenames))
    if images is not None:
        return images
    with _locked(cache.with_name(cache.name + ".lock")):
        images = _read_cache(cache, key, len(filenames))  # another job may have written it meanwhile
        return images if images is not None else _decode_and_cache(folder, filenames, cache, key)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock (fcntl.flock) on ``path`` for the block; none where it cannot be taken."""
    try:
        import fcntl

        handle = open(path, "a")
    except (ImportError, OSError):  # no fcntl, or a read-only data root
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass
        yield


def _decode_and_cache(folder: Path, filenames, cache: Path, key: str) -> torch.Tensor:
    """Decode all images and write the cache (atomically, with the list's digest in its metadata)."""
    started = time.perf_counter()
    log.info("celeba: decoding %d images from %s (once; cached in %s)", len(filenames), folder / IMAGE_FOLDER, cache)
    images = decode_images(folder / IMAGE_FOLDER, filenames)
    meta = {"format": CACHE_FORMAT, "filenames_sha256": key, "count": len(filenames), "crop": CROP, "size": SIZE}
    try:
        save_tensors(cache, {"images": images}, metadata=meta)
    except OSError as exc:
        log.warning("celeba: cannot write the image cache %s (%s); the images will be decoded again", cache, exc)
    log.info("celeba: decoded %d images in %.0f s", len(filenames), time.perf_counter() - started)
    return images


def _list_digest(filenames) -> str:
    return hashlib.sha256("\n".join(filenames).encode()).hexdigest()


def _read_cache(cache: Path, key: str, count: int) -> torch.Tensor | None:
    """The cached images if ``cache`` is a readable cache of this image list, else None (logged)."""
    if not cache.is_file():
        return None
    try:
        with safe_open(str(cache), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})["json"])
        wanted = {"format": CACHE_FORMAT, "filenames_sha256": key, "count": count, "crop": CROP, "size": SIZE}
        if any(meta.get(k) != v for k, v in wanted.items()):
            log.info("celeba: %s holds another image list or format; rebuilding it", cache)
            return None
        images = load_tensors(cache, required=("images",))["images"]
    except Exception as exc:  # noqa: BLE001 (truncated, not safetensors, no metadata)
        log.warning("celeba: unreadable image cache %s (%s); rebuilding it", cache, exc)
        return None
    if images.dtype != torch.uint8 or tuple(images.shape) != (count, 3, SIZE, SIZE):
        log.warning("celeba: %s holds %s %s images; rebuilding it", cache, images.dtype, tuple(images.shape))
        return None
    return images


def decode_images(image_folder: Path, filenames, workers: int | None = None) -> torch.Tensor:
    """Decode, centre-crop and resize ``filenames`` in ``image_folder`` on a thread pool (PIL releases
    the GIL): uint8 (N, 3, 64, 64). A missing or undecodable file raises DataIntegrityError naming it."""
    n = len(filenames)
    out = np.empty((n, 3, SIZE, SIZE), dtype=np.uint8)
    if workers is None:
        workers = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    def work(chunk: range) -> None:
        for i in chunk:
            out[i] = decode_image(image_folder / filenames[i]).transpose(2, 0, 1)

    step = max(1, min(1024, -(-n // max(1, workers))))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(work, [range(s, min(n, s + step)) for s in range(0, n, step)]))
    return torch.from_numpy(out)


def decode_image(path: Path) -> np.ndarray:
    """One aligned face: RGB, centre crop 178x178 (torchvision's CenterCrop offsets), resized to 64x64 with
    PIL's antialiased bilinear filter (what torchvision's Resize does to a PIL image); uint8 (64, 64, 3)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            if width < CROP or height < CROP:
                raise DataIntegrityError(f"{path}: a {width}x{height} image, smaller than the {CROP}x{CROP} crop")
            left, top = int(round((width - CROP) / 2.0)), int(round((height - CROP) / 2.0))
            face = image.crop((left, top, left + CROP, top + CROP)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
            return np.asarray(face, dtype=np.uint8)
    except DataIntegrityError:
        raise
    except Exception as exc:  # noqa: BLE001 (missing, truncated, not an image)
        raise DataIntegrityError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from exc
