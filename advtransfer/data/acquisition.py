"""Acquisition: make a registered data set's files present under ``data.root``, checksums verified.

``ensure_dataset`` fills ``data_root`` (torchvision's on-disk layout, the entry's ``folder``) from the files
already there, then from mirror folders (a copy of the torchvision layout, the flat files, ``.gz`` idx files
as shipped by the Fashion-MNIST site or by Debian's ``dataset-fashion-mnist`` package in
``/usr/share/datasets/fashion-mnist``, or the official ``.tar.gz`` archives), then, only if asked, by
downloading with torchvision. Every file is written under a temporary name and renamed into place
(``advtransfer.io.atomic_path``) and, in the default ``verify`` mode, checked against the official MD5s of
the registry entry (advtransfer/registry.py; tests/test_data.py checks them against torchvision's lists).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

from advtransfer.io import atomic_path
from advtransfer.names import (
    canonical_dataset,
    imagefolder_classes,
    imagefolder_images,
    imagefolder_root,
    imagefolder_splits,
    is_imagefolder,
)
from advtransfer.registry import DATASETS, DatasetEntry

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

_FILE_MODE = 0o644  # installed data files are world-readable (atomic_path's temp files start as 0600)

# Folders of images that the readers of some entries need besides their checksummed files (entry folder ->
# (sub-folder, where to get it)); ensure_dataset checks they exist but neither copies nor downloads them.
IMAGE_FOLDERS = {
    "celeba": (
        "img_align_celeba",
        "unzip CelebA's img_align_celeba.zip (the aligned and cropped JPEGs) from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html there (or let torchvision.datasets.CelebA(root, "
        "download=True) fetch everything from Google Drive; it needs the gdown package)",
    ),
}


class DataIntegrityError(ValueError):
    """A dataset file exists but is not the official one (checksum mismatch) or cannot be parsed."""


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of a data set (any accepted spelling of its name)."""
    return DATASETS[canonical_dataset(name)]


def dataset_files(name: str, data_root: str | os.PathLike) -> list[Path]:
    """The files ``ensure_dataset`` guarantees under ``data_root`` (empty for digits; for a folder, its
    images)."""
    if is_imagefolder(name):
        return imagefolder_images(name)
    spec = dataset_entry(name)
    root = Path(data_root) / spec.folder
    return [root / f for f in spec.files]


def _how_to_fix(spec: DatasetEntry, data_root: Path) -> str:
    folder = data_root / spec.folder
    images = IMAGE_FOLDERS.get(spec.folder)
    expected = f"expected in {folder}/: {', '.join(spec.files)}"
    if images:
        expected += f", and the folder {images[0]}/ of images ({images[1]})"
    lines = [expected, "fix it by one of:"]
    lines.append(f"  - put those files there (torchvision's layout '{spec.folder}/' under data_root {data_root})")
    hint = "  - add a mirror folder holding them (flat, in the same layout"
    if spec.archive:
        hint += f", or the official archive {spec.archive[0]}"
    if spec.gz:
        hint += ", or the .gz files as the Fashion-MNIST site ships them, e.g. Debian's package "
        hint += f"dataset-fashion-mnist: {DEBIAN_FASHION_MNIST}"
    lines.append(hint + ")")
    if spec.archive or spec.gz_urls:
        lines.append("  - or set download: true (needs internet access to the official site)")
    else:
        lines.append(f"  (download: true cannot fetch {spec.name}: no download is registered for it)")
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

    ``imagefolder:<folder>`` is only checked (it exists, has class folders with images) and returned.
    Order: files already in ``data_root``; each mirror folder in turn (plain files, ``.gz`` idx files or the
    official tarball; copied/decompressed/extracted atomically); a torchvision download when ``download``.
    A file in ``data_root`` with a wrong checksum is replaced from a mirror when one has a good copy.
    Raises FileNotFoundError (saying which files are expected where and how to fix it) when files are
    missing, or an entry's folder of images (``IMAGE_FOLDERS``: CelebA's img_align_celeba/, never copied
    or downloaded, its JPEGs not checksummed), DataIntegrityError (a ValueError naming the file and both
    checksums) when the only candidates are corrupt.
    """
    if is_imagefolder(name):  # the user's own folder: nothing to fetch, only to check
        splits = imagefolder_splits(name)
        for folder in splits.values():
            imagefolder_classes(folder)
        return imagefolder_root(name)
    spec = dataset_entry(name)
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
    images = IMAGE_FOLDERS.get(spec.folder)
    if images and not (folder / images[0]).is_dir():
        missing = f"{spec.name}: missing the folder {folder / images[0]}/"
        raise FileNotFoundError(f"{missing}\n{_how_to_fix(spec, data_root)}")
    return folder


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks (what torchvision's calculate_md5 computes, without its import)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_md5(path: Path, md5: str | None) -> str | None:
    """None if ``path`` has checksum ``md5``, else a message naming it."""
    if md5 is None:
        return None
    actual = md5_of(path)
    if actual == md5:
        return None
    return f"{path}: MD5 {actual} differs from the official {md5} (corrupt, truncated or not the official file)"


def _write_verified(dest: Path, write: Callable[[Path], object], md5: str | None, origin: str) -> None:
    """Write ``dest`` atomically through ``write(tmp)`` with mode 0644 and check its MD5 (None: skip).

    A mismatch raises DataIntegrityError naming ``origin`` and leaves ``dest`` as it was.
    """
    with atomic_path(dest, digest=False) as tmp:
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
            _write_verified(dest, lambda tmp, cand=cand, write=write: write(cand, tmp), md5, f"{cand} (as {fname})")
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
                    _write_verified(
                        folder / fname, lambda tmp, src=src: _copy_stream(src, tmp), md5, f"{archive}:{member.name}"
                    )
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
    if not (spec.archive or spec.gz_urls):
        for f in todo:
            problems[f].append(f"no download is registered for {spec.name}")
        return todo
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

