"""Datasets: acquisition, loading through torchvision, class subsets by NAME, splits, transforms, target domains.

Datasets (``DATASETS``) and where their files live under ``data_root`` (torchvision's own on-disk layout, so
a folder prepared by torchvision works here and vice versa):

- ``cifar10``:        ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` (python pickles)
- ``stl10``:          ``stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin}`` (+ optional
                      ``class_names.txt``; the 2.6 GB ``unlabeled_X.bin`` is never needed)
- ``fashion_mnist``:  ``FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed idx files)
- ``digits``:         nothing: scikit-learn's bundled 8x8 digits (``sklearn.datasets.load_digits``)

``ensure_dataset`` fills ``data_root`` from the files already there, then from mirror folders (a copy of
the torchvision layout, the flat files, ``.gz`` idx files as shipped by the Fashion-MNIST site or by
Debian's ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist``, or the official
``.tar.gz`` archives), then, only if asked, by downloading with torchvision. Every file is written under a
temporary name and renamed into place (``advtransfer.io.atomic_path``) and, in the default ``verify`` mode,
checked against the official MD5 checksums: torchvision's own lists (``CIFAR10.train_list``/``test_list``/
``meta``/``tgz_md5``, ``STL10.train_list``/``test_list``/``tgz_md5``, ``FashionMNIST.resources``) and, for the
uncompressed Fashion-MNIST idx files (torchvision only lists checksums of the ``.gz`` archives, which Debian
re-compresses), ``FASHION_MNIST_RAW_MD5`` below: the MD5s of the content of the official archives.

``load_split`` reads a split through torchvision's dataset classes (``download=False``) and returns uint8
images ``(N, C, H, W)``, int64 labels and the class names. Checksums are verified first (naming the bad file);
torchvision's own, silent re-check is switched off in subclasses so that each file is hashed once.
The CIFAR-10 batches are python pickles: in verify mode they are the official files (MD5 match); with
``verify=False`` they are first screened by a restricted unpickler that allows only numpy arrays, so an
untrusted file can never run code.

Classes are matched by NAME (``class_indices``), never by index: STL-10 and CIFAR-10 order their labels
differently (CIFAR-10 'automobile' is 1, STL-10 'car' is 2), and the alias table maps 'car' <-> 'automobile'.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torchvision import datasets as tvd
from torchvision.datasets.utils import calculate_md5
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from advtransfer.io import atomic_path
from advtransfer.names import CLASS_NAMES, DATASETS, canonical_dataset, class_indices, class_names

log = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "CLASS_NAMES",
    "IMAGE_SHAPES",
    "DOMAINS",
    "FASHION_MNIST_RAW_MD5",
    "DataIntegrityError",
    "canonical_dataset",
    "class_names",
    "class_indices",
    "image_shape",
    "dataset_files",
    "ensure_dataset",
    "load_split",
    "select_classes",
    "split_indices",
    "subsample_per_class",
    "to_float",
    "resize",
    "to_channels",
    "apply_domain",
]

# (channels, height, width) of the images load_split returns.
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "cifar10": (3, 32, 32),
    "stl10": (3, 96, 96),
    "fashion_mnist": (1, 28, 28),
    "digits": (1, 8, 8),
}

# MD5 of the UNCOMPRESSED official Fashion-MNIST idx files, i.e. of the content of the archives whose MD5s
# torchvision lists in FashionMNIST.resources (and the Fashion-MNIST README). Debian's package ships the same
# content re-compressed, so its .gz files have other MD5s; the content is what is checked.
FASHION_MNIST_RAW_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

SPLITS = ("train", "test")

_FILE_MODE = 0o644  # installed data files are world-readable (atomic_path's temp files start as 0600)


class DataIntegrityError(ValueError):
    """A dataset file exists but is not the official one (checksum mismatch) or cannot be parsed."""


# --------------------------------------------------------------------------------------------- names
def image_shape(dataset: str) -> tuple[int, int, int]:
    """(C, H, W) of the images ``load_split`` returns for the dataset."""
    return IMAGE_SHAPES[canonical_dataset(dataset)]


# ------------------------------------------------------------------------------------- file specs
@dataclass(frozen=True)
class _Spec:
    name: str
    folder: str  # relative to data_root, torchvision's layout
    files: dict[str, str | None]  # required file -> official md5
    split_files: dict[str, tuple[str, ...]]
    optional: tuple[str, ...] = ()  # copied when a mirror has them, never required
    archive: tuple[str, str, str] | None = None  # (filename, md5, url) of the official tarball
    archive_prefix: str = ""  # folder of the files inside the archive
    gz: dict[str, str] = field(default_factory=dict)  # raw file -> md5 of the official .gz (torchvision)
    gz_urls: tuple[str, ...] = ()


def _spec(name: str) -> _Spec:
    name = canonical_dataset(name)
    if name == "cifar10":
        c = tvd.CIFAR10
        files = {f: md5 for f, md5 in c.train_list + c.test_list}
        files[c.meta["filename"]] = c.meta["md5"]
        meta = c.meta["filename"]
        return _Spec(
            name,
            c.base_folder,
            files,
            {"train": tuple(f for f, _ in c.train_list) + (meta,), "test": tuple(f for f, _ in c.test_list) + (meta,)},
            archive=(c.filename, c.tgz_md5, c.url),
            archive_prefix=c.base_folder,
        )
    if name == "stl10":
        s = tvd.STL10
        listed = dict(s.train_list + s.test_list)
        needed = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")
        return _Spec(
            name,
            s.base_folder,
            {f: listed[f] for f in needed},
            {"train": needed[:2], "test": needed[2:]},
            optional=(s.class_names_file,),
            archive=(s.filename, s.tgz_md5, s.url),
            archive_prefix=s.base_folder,
        )
    if name == "fashion_mnist":
        f = tvd.FashionMNIST
        return _Spec(
            name,
            "FashionMNIST/raw",
            dict(FASHION_MNIST_RAW_MD5),
            {
                "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
            },
            gz={fn.removesuffix(".gz"): md5 for fn, md5 in f.resources},
            gz_urls=tuple(f.mirrors),
        )
    return _Spec(name, "", {}, {"train": (), "test": ()})


def dataset_files(name: str, data_root: str | os.PathLike) -> list[Path]:
    """The files ``ensure_dataset`` guarantees under ``data_root`` (empty for digits): Snakemake outputs."""
    spec = _spec(name)
    root = Path(data_root) / spec.folder
    return [root / f for f in spec.files]


def _how_to_fix(spec: _Spec, data_root: Path) -> str:
    folder = data_root / spec.folder
    lines = [f"expected in {folder}/: {', '.join(spec.files)}", "fix it by one of:"]
    lines.append(f"  - put those files there (torchvision's layout '{spec.folder}/' under data_root {data_root})")
    hint = "  - add a mirror folder holding them (flat, in the same layout"
    if spec.archive:
        hint += f", or the official archive {spec.archive[0]}"
    if spec.gz:
        hint += ", or the .gz files as the Fashion-MNIST site ships them, e.g. Debian's package "
        hint += f"dataset-fashion-mnist: {DEBIAN_FASHION_MNIST}"
    lines.append(hint + ")")
    lines.append("  - or set download: true (needs internet access to the official site)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- ensure
def ensure_dataset(
    name: str,
    data_root: str | os.PathLike,
    mirrors: Sequence[str | os.PathLike] = (),
    download: bool = False,
    verify: bool = True,
) -> Path:
    """Make the dataset's files present (and, with ``verify``, checksum-correct) under ``data_root`` in
    torchvision's layout; return their folder (``data_root`` for digits, which needs no files).

    Order: files already in ``data_root``; each mirror folder in turn (plain files, ``.gz`` idx files or the
    official tarball; copied/decompressed/extracted atomically); a torchvision download when ``download``.
    A file in ``data_root`` with a wrong checksum is replaced from a mirror when one has a good copy.
    Raises FileNotFoundError (saying which files are expected where and how to fix it) when files are
    missing, DataIntegrityError (a ValueError naming the file and both checksums) when the only
    candidates are corrupt.
    """
    spec = _spec(name)
    data_root = Path(data_root)
    if isinstance(mirrors, (str, os.PathLike)):
        mirrors = [mirrors]
    if not spec.files:
        return data_root
    folder = data_root / spec.folder
    problems: dict[str, list[str]] = {f: [] for f in spec.files}
    todo = []
    for fname, md5 in spec.files.items():
        dest = folder / fname
        if dest.is_file():
            err = _check_md5(dest, md5) if verify else None
            if err is None:
                continue
            problems[fname].append(err)
        todo.append(fname)

    for mirror in mirrors:
        if not todo:
            break
        todo = _install_from_mirror(spec, Path(mirror), folder, todo, verify, problems)
    if todo and download:
        todo = _download(spec, data_root, folder, todo, verify, problems)
    if todo:
        _raise_unresolved(spec, data_root, todo, problems, mirrors, download)
    return folder


def _check_md5(path: Path, md5: str | None) -> str | None:
    """None if ``path`` has checksum ``md5``, else a message naming it."""
    if md5 is None:
        return None
    actual = calculate_md5(path)
    if actual == md5:
        return None
    return f"{path}: MD5 {actual} differs from the official {md5} (corrupt, truncated or not the official file)"


def _write_verified(dest: Path, write: Callable[[Path], object], md5: str | None, origin: str) -> None:
    """Write ``dest`` atomically through ``write(tmp)`` with mode 0644 and check its MD5 (None: skip).

    A mismatch raises DataIntegrityError naming ``origin`` and leaves ``dest`` as it was.
    """
    with atomic_path(dest) as tmp:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)
        err = _check_md5(tmp, md5)
        if err is not None:
            raise DataIntegrityError(err.replace(str(tmp), origin))


def _gunzip_to(src: Path, dest: Path) -> None:
    with gzip.open(src, "rb") as stream:
        _copy_stream(stream, dest)


def _copy_stream(stream, dest: Path) -> None:
    with open(dest, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)


def _install_from_mirror(spec, mirror: Path, folder: Path, todo, verify, problems) -> list[str]:
    if not mirror.is_dir():
        for f in todo:
            problems[f].append(f"mirror {mirror} is not a directory")
        return todo
    left = []
    for fname in todo:
        if not _install_one(spec, mirror, folder, fname, verify, problems):
            left.append(fname)
    if left and spec.archive and (mirror / spec.archive[0]).is_file():
        left = _install_from_archive(spec, mirror / spec.archive[0], folder, left, verify, problems)
    for opt in spec.optional:
        if not (folder / opt).is_file():
            for cand in (mirror / spec.folder / opt, mirror / opt):
                if cand.is_file():
                    _write_verified(folder / opt, lambda tmp, cand=cand: shutil.copyfile(cand, tmp), None, str(cand))
                    break
    return left


def _install_one(spec, mirror: Path, folder: Path, fname: str, verify: bool, problems) -> bool:
    dest = folder / fname
    sub = mirror / spec.folder
    candidates = [sub / fname, mirror / fname]
    if spec.gz:
        candidates += [sub / f"{fname}.gz", mirror / f"{fname}.gz"]
    seen = set()
    for cand in candidates:
        if cand in seen or not cand.is_file():
            continue
        seen.add(cand)
        try:
            write = _gunzip_to if cand.suffix == ".gz" else shutil.copyfile
            md5 = spec.files[fname] if verify else None
            _write_verified(dest, lambda tmp, cand=cand: write(cand, tmp), md5, f"{cand} (as {fname})")
        except DataIntegrityError as exc:
            problems[fname].append(str(exc))
            continue
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            problems[fname].append(f"{cand}: unreadable ({exc})")
            continue
        log.info("%s: installed %s from %s", spec.name, dest, cand)
        return True
    return False


def _install_from_archive(spec, archive: Path, folder: Path, todo, verify, problems) -> list[str]:
    fname_a, md5_a, _ = spec.archive
    if verify:
        err = _check_md5(archive, md5_a)
        if err is not None:
            for f in todo:
                problems[f].append(err)
            return todo
    wanted = {f"{spec.archive_prefix}/{f}": f for f in todo}
    done = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                fname = wanted.get(member.name.removeprefix("./"))
                if fname is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                md5 = spec.files[fname] if verify else None
                try:
                    _write_verified(folder / fname, lambda tmp: _copy_stream(src, tmp), md5, f"{archive}:{member.name}")
                except DataIntegrityError as exc:
                    problems[fname].append(str(exc))
                    continue
                log.info("%s: extracted %s from %s", spec.name, folder / fname, archive)
                done.add(fname)
                if len(done) == len(wanted):
                    break
    except (OSError, EOFError, tarfile.TarError) as exc:
        for f in todo:
            if f not in done:
                problems[f].append(f"{archive}: unreadable archive ({exc})")
    for f in todo:
        if f not in done and not any(str(archive) in p for p in problems[f]):
            problems[f].append(f"{archive}: has no member {spec.archive_prefix}/{f}")
    return [f for f in todo if f not in done]


def _download(spec, data_root: Path, folder: Path, todo, verify, problems) -> list[str]:
    """Download the official files with torchvision into a staging folder, then install from it."""
    from torchvision.datasets import utils as tvu

    staging = data_root / f".download-{spec.name}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        try:
            if spec.archive:
                fname, md5, url = spec.archive
                tvu.download_url(url, str(staging), filename=fname, md5=md5)
            else:
                for raw in todo:
                    gz = f"{raw}.gz"
                    errors = []
                    for base in spec.gz_urls:
                        try:
                            tvu.download_url(f"{base}{gz}", str(staging), filename=gz, md5=spec.gz.get(raw))
                            break
                        except Exception as exc:  # noqa: BLE001 (URLError, HTTPError, RuntimeError on md5 ...)
                            errors.append(f"{base}{gz}: {exc}")
                    else:
                        raise RuntimeError("; ".join(errors))
        except Exception as exc:  # noqa: BLE001
            for f in todo:
                problems[f].append(f"download failed: {exc}")
            return todo
        return _install_from_mirror(spec, staging, folder, todo, verify, problems)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _raise_unresolved(spec, data_root, todo, problems, mirrors, download):
    details = []
    for f in todo:
        for p in problems[f]:
            details.append(f"  {f}: {p}")
    tried = f"looked in {data_root / spec.folder}"
    tried += f" and mirrors {[str(m) for m in mirrors]}" if mirrors else " (no mirrors given)"
    tried += "; downloading was tried" if download else "; download is off"
    corrupt = [f for f in todo if any("MD5" in p for p in problems[f])]
    head = f"{spec.name}: {'corrupt' if corrupt else 'missing'} files {todo}; {tried}"
    msg = "\n".join([head, *details, _how_to_fix(spec, data_root)])
    if corrupt:
        raise DataIntegrityError(msg)
    raise FileNotFoundError(msg)


# ----------------------------------------------------------------------------------------- load
class _CIFAR10(tvd.CIFAR10):
    """torchvision's CIFAR-10 reader with its MD5 re-check off (``load_split`` verifies, naming files)."""

    train_list = [[f, None] for f, _ in tvd.CIFAR10.train_list]
    test_list = [[f, None] for f, _ in tvd.CIFAR10.test_list]
    meta = {**tvd.CIFAR10.meta, "md5": None}


class _STL10(tvd.STL10):
    """torchvision's STL-10 reader without its MD5 re-check and without requiring unlabeled_X.bin."""

    train_list = [[f, None] for f, _ in tvd.STL10.train_list[:2]]
    test_list = [[f, None] for f, _ in tvd.STL10.test_list]


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
        raise DataIntegrityError(f"{path}: not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataIntegrityError(f"{path}: not a CIFAR-10 pickle (a {type(obj).__name__}, expected a dict)")
    return obj


def _check_cifar(folder: Path, files: Sequence[str], meta: str):
    for f in files:
        obj = _screen_pickle(folder / f)
        if f == meta:
            if "label_names" not in obj:
                raise DataIntegrityError(f"{folder / f}: no 'label_names' entry (keys {sorted(obj)})")
            continue
        if "data" not in obj or "labels" not in obj:
            raise DataIntegrityError(f"{folder / f}: needs 'data' and 'labels' entries (has {sorted(obj)})")
        data = np.asarray(obj["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataIntegrityError(f"{folder / f}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
        if len(obj["labels"]) != data.shape[0]:
            raise DataIntegrityError(f"{folder / f}: {data.shape[0]} images but {len(obj['labels'])} labels")


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

    digits (scikit-learn's 1797 8x8 images, no official split): pixel values 0..16 are rescaled to 0..255
    (``round(v * 255 / 16)``), and the split is a stratified random split with ``test_fraction`` of each
    class in 'test', deterministic for a given ``seed`` (``split_indices``). ``seed`` and ``test_fraction``
    only apply to digits.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise ValueError(f"{spec.name}: unknown split {split!r}; use one of {SPLITS}")
    if spec.name == "digits":
        return _load_digits(split, seed, test_fraction)

    data_root = Path(data_root)
    folder = data_root / spec.folder
    files = spec.split_files[split]
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

    train = split == "train"
    try:
        if spec.name == "cifar10":
            if not verify:  # unverified pickles: screen them before torchvision unpickles them
                _check_cifar(folder, files, tvd.CIFAR10.meta["filename"])
            ds = _CIFAR10(str(data_root), train=train, download=False)
            images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
            labels = torch.as_tensor(ds.targets, dtype=torch.int64)
            names, names_file = tuple(ds.classes), folder / tvd.CIFAR10.meta["filename"]
        elif spec.name == "stl10":
            _check_stl(folder, *files)
            ds = _STL10(str(data_root), split=split, download=False)
            images = torch.from_numpy(np.ascontiguousarray(ds.data))
            labels = torch.from_numpy(ds.labels.astype(np.int64))
            names_file = folder / tvd.STL10.class_names_file
            names = tuple(ds.classes) if hasattr(ds, "classes") else CLASS_NAMES["stl10"]
        else:
            n_img = _check_idx(folder / files[0], 3, (28, 28))
            n_lab = _check_idx(folder / files[1], 1, ())
            if n_img != n_lab:
                raise DataIntegrityError(f"{folder / files[0]}: {n_img} images but {folder / files[1]} {n_lab} labels")
            ds = tvd.FashionMNIST(str(data_root), train=train, download=False)
            images = ds.data.unsqueeze(1).contiguous()
            labels = ds.targets.to(torch.int64)
            names, names_file = tuple(ds.classes), None
    except DataIntegrityError:
        raise
    except Exception as exc:  # noqa: BLE001 (torchvision's errors do not name the file)
        raise DataIntegrityError(
            f"{spec.name}: cannot read the {split} split from {[str(folder / f) for f in files]} "
            f"({type(exc).__name__}: {exc}); delete the files and run ensure_dataset again"
        ) from exc

    expected = CLASS_NAMES[spec.name]
    if names != expected:
        raise DataIntegrityError(f"{names_file}: class names {list(names)} differ from {spec.name}'s {list(expected)}")
    k = len(expected)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        bad = files[1] if spec.name != "cifar10" else ", ".join(files[:-1])
        raise DataIntegrityError(
            f"{folder / bad}: labels outside 0..{k - 1} (found {int(labels.min())}..{int(labels.max())})"
        )
    if images.shape[1:] != IMAGE_SHAPES[spec.name]:
        raise DataIntegrityError(f"{folder}: images of shape {tuple(images.shape[1:])}, expected {IMAGE_SHAPES[spec.name]}")
    return images, labels, names


def _load_digits(split: str, seed: int, test_fraction: float):
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = torch.from_numpy(pixels).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, test_idx = split_indices(len(labels), [1.0 - test_fraction, test_fraction], seed, stratify=labels)
    idx = train_idx if split == "train" else test_idx
    return images[idx].contiguous(), labels[idx].contiguous(), CLASS_NAMES["digits"]


# ---------------------------------------------------------------------------- subsets and splits
def select_classes(labels: torch.Tensor, class_idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the samples whose label is in ``class_idx`` and their labels remapped to 0..k-1 in the
    ORDER of ``class_idx`` (``class_idx[j]`` becomes ``j``)."""
    labels = torch.as_tensor(labels)
    class_idx = [int(c) for c in class_idx]
    if len(set(class_idx)) != len(class_idx):
        raise ValueError(f"select_classes: repeated class index in {class_idx}")
    if not class_idx:
        raise ValueError("select_classes: no classes given")
    wanted = torch.tensor(class_idx, dtype=labels.dtype)
    idx = torch.nonzero(torch.isin(labels, wanted), as_tuple=False).flatten()
    remap = {c: j for j, c in enumerate(class_idx)}
    new = torch.tensor([remap[int(v)] for v in labels[idx].tolist()], dtype=torch.int64)
    return idx, new


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def _sizes(n: int, parts: Sequence[float | int]) -> list[int]:
    parts = list(parts)
    if not parts or any(p < 0 for p in parts):
        raise ValueError(f"split sizes/fractions must be non-negative and non-empty, got {parts}")
    if all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in parts):
        sizes = [int(p) for p in parts]
        if sum(sizes) > n:
            raise ValueError(f"split sizes {sizes} add up to {sum(sizes)} > {n} samples")
        return sizes
    fr = [float(p) for p in parts]
    total = sum(fr)
    if total > 1.0 + 1e-9:
        raise ValueError(f"split fractions {fr} add up to {total} > 1")
    exact = [f * n for f in fr]
    sizes = [int(np.floor(e + 1e-9)) for e in exact]
    # largest remainder: fractions adding up to 1 cover all n samples
    target = int(round(total * n)) if abs(total - 1.0) < 1e-9 else sum(sizes)
    order = sorted(range(len(fr)), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in order[: max(0, target - sum(sizes))]:
        sizes[i] += 1
    return sizes


def split_indices(
    n: int,
    parts: Sequence[float | int],
    seed: int | torch.Generator = 0,
    *,
    stratify: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Disjoint random index sets of ``range(n)``, one per entry of ``parts``, each sorted.

    ``parts`` are sizes (all ints, summing to at most n) or fractions (floats, summing to at most 1;
    fractions summing to 1 cover every index). With ``stratify`` (labels of length n) each class is split
    by the same fractions, so every part keeps the class proportions. Deterministic for a given seed
    (an int or a torch.Generator). Use it to carve a validation set out of a TRAIN split.
    """
    gen = _generator(seed)
    if stratify is None:
        sizes = _sizes(n, parts)
        perm = torch.randperm(n, generator=gen)
        out, start = [], 0
        for s in sizes:
            out.append(perm[start : start + s].sort().values)
            start += s
        return out
    labels = torch.as_tensor(stratify)
    if labels.shape != (n,):
        raise ValueError(f"stratify must hold n={n} labels, got shape {tuple(labels.shape)}")
    if any(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p > 1 for p in parts):
        raise ValueError(f"stratified splits take fractions, got {list(parts)}")
    chunks: list[list[torch.Tensor]] = [[] for _ in parts]
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c, as_tuple=False).flatten()
        sub = split_indices(len(members), [float(p) for p in parts], gen)
        for k, s in enumerate(sub):
            chunks[k].append(members[s])
    return [torch.cat(ch).sort().values if ch else torch.empty(0, dtype=torch.int64) for ch in chunks]


def subsample_per_class(
    labels: torch.Tensor,
    n_per_class: int | None,
    seed: int | torch.Generator = 0,
    *,
    allow_fewer: bool = False,
) -> torch.Tensor:
    """Sorted indices of ``n_per_class`` random samples of each class present in ``labels`` (all when None).

    A class with fewer samples raises ValueError unless ``allow_fewer`` (then all of its samples are kept).
    """
    labels = torch.as_tensor(labels)
    if n_per_class is None:
        return torch.arange(len(labels))
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    gen = _generator(seed)
    picked = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c, as_tuple=False).flatten()
        if len(members) < n_per_class and not allow_fewer:
            raise ValueError(f"class {c} has only {len(members)} samples, fewer than n_per_class={n_per_class}")
        perm = torch.randperm(len(members), generator=gen)[:n_per_class]
        picked.append(members[perm])
    if not picked:
        return torch.empty(0, dtype=torch.int64)
    return torch.cat(picked).sort().values


# ------------------------------------------------------------------------------------ transforms
def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 -> float32 in [0, 1]; floating images are returned as float32 unchanged."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    if images.is_floating_point():
        return images.to(torch.float32)
    raise TypeError(f"to_float expects uint8 or floating images, got {images.dtype}")


def resize(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Resize (N, C, H, W) images to ``size`` (int: square) with antialiased bilinear interpolation
    (e.g. STL-10 96x96 -> 32x32); keeps the dtype (uint8 stays uint8)."""
    hw = [int(size), int(size)] if isinstance(size, (int, np.integer)) else [int(s) for s in size]
    if list(images.shape[-2:]) == hw:
        return images
    return TF.resize(images, hw, interpolation=InterpolationMode.BILINEAR, antialias=True)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (N, C, H, W) images to ``channels`` (1 or 3): gray -> RGB repeats the channel, RGB -> gray
    uses the ITU-R 601-2 luma weights (torchvision's rgb_to_grayscale)."""
    c = images.shape[-3]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.repeat_interleave(3, dim=-3)
    if c == 3 and channels == 1:
        return TF.rgb_to_grayscale(images, num_output_channels=1)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def _blur(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return TF.gaussian_blur(x, kernel_size=[5, 5], sigma=[1.0, 1.0])


def _noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


DOMAINS: dict[str, tuple[str, object]] = {
    "identity": ("unchanged", lambda x, g: x),
    "invert": ("negative image: 1 - x (255 - x on uint8)", lambda x, g: 1.0 - x),
    "blur": ("Gaussian blur, 5x5 kernel, sigma 1 pixel", _blur),
    "contrast": ("contrast halved around mid-grey: 0.5 * x + 0.25", lambda x, g: 0.5 * x + 0.25),
    "noise": ("additive Gaussian noise, std 0.1 of the range, clipped; drawn from `seed`", _noise),
}


def apply_domain(images: torch.Tensor, domain: str, seed: int = 0) -> torch.Tensor:
    """Shift images into a target domain (deterministic for a given ``seed``); keeps shape and dtype.

    ``domain`` is one of ``DOMAINS`` (identity, invert, blur, contrast, noise) or several joined with '+'
    ('invert+blur'), applied left to right. Works on uint8 (0..255, rounded back) or float ([0, 1]) images.
    """
    steps = [s.strip() for s in str(domain).split("+")]
    unknown = [s for s in steps if s not in DOMAINS]
    if unknown:
        raise ValueError(f"unknown domain {unknown} in {domain!r}; available: {', '.join(DOMAINS)}")
    if steps == ["identity"]:
        return images
    gen = torch.Generator().manual_seed(int(seed))
    x = to_float(images)
    for s in steps:
        x = DOMAINS[s][1](x, gen)
    x = x.clamp(0.0, 1.0)
    if images.dtype == torch.uint8:
        return (x * 255.0).round().to(torch.uint8)
    return x.to(images.dtype)


# ------------------------------------------------------------------------------ scenario splits
def disjoint_pools(labels: torch.Tensor, source_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified split of one TRAIN split into a source pool and a target pool that share no image.

    Used when sources and target come from the same data set, so the target holds images no source saw.
    """
    source, target = split_indices(len(labels), [source_fraction, 1.0 - source_fraction], seed, stratify=labels)
    return source, target


def class_split(
    labels: torch.Tensor,
    class_idx: Sequence[int],
    *,
    pool: torch.Tensor | None = None,
    max_per_class: int | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Train / validation indices of the samples of ``class_idx`` (optionally within ``pool``).

    Labels are remapped to 0..k-1 in the order of ``class_idx``; ``max_per_class`` subsamples each class
    (seeded); ``val_fraction`` of each class goes to the validation split used for checkpoint selection.
    Returns {"train_idx", "train_y", "val_idx", "val_y"} with indices into ``labels``.
    """
    labels = torch.as_tensor(labels)
    candidates = torch.arange(len(labels)) if pool is None else torch.as_tensor(pool)
    within, remapped = select_classes(labels[candidates], class_idx)
    missing = sorted(set(range(len(class_idx))) - set(remapped.unique().tolist()))
    if missing:
        raise ValueError(f"class_split: no samples of classes {[class_idx[m] for m in missing]} in the pool")
    gen = _generator(seed)
    keep = subsample_per_class(remapped, max_per_class, gen, allow_fewer=True)
    idx, y = candidates[within[keep]], remapped[keep]
    train, val = split_indices(len(idx), [1.0 - val_fraction, val_fraction], gen, stratify=y)
    return {"train_idx": idx[train], "train_y": y[train], "val_idx": idx[val], "val_y": y[val]}


def evaluation_subset(n: int, size: int, seed: int) -> torch.Tensor:
    """Sorted random subset of ``size`` indices out of ``n`` (all when size >= n): the attacked images."""
    if size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=_generator(seed))[:size].sort().values


def prepare_images(images: torch.Tensor, *, channels: int, size: int, domain: str = "identity", seed: int = 0):
    """uint8 images -> model inputs: channels, resize to size x size, domain shift, float in [0, 1]."""
    x = to_channels(images, channels)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = resize(x, size)
    return to_float(apply_domain(x, domain, seed))


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
