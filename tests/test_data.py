"""Tests of advtransfer.data: small files written in the real on-disk formats, read back through torchvision."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from advtransfer import data as D

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
CIFAR = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
STL = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


# ------------------------------------------------------------------------------ format writers
def write_cifar10(root: Path, n_per_batch: int = 3, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-batches-py as torchvision reads it: pickled dicts with 'data' (N, 3072) uint8 rows in
    channel-major order (R plane, G plane, B plane, each 32x32 row-major) and 'labels', plus batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        entry = {"batch_label": f"fake {name}", "labels": labels, "data": data, "filenames": ["x.png"] * n_per_batch}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = (data, labels)
    meta = {"num_cases_per_batch": n_per_batch, "label_names": list(CIFAR), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def write_cifar100(root: Path, n_train: int = 7, n_test: int = 4, seed: int = 0):
    """cifar-100-python as torchvision reads it: pickled dicts 'train' and 'test' with 'data' (N, 3072) uint8
    rows (channel-major, as CIFAR-10), 'fine_labels' 0..99 and 'coarse_labels' 0..19, plus 'meta' holding
    'fine_label_names' and 'coarse_label_names'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        entry = {"filenames": ["x.png"] * n, "batch_label": f"fake {name}", "fine_labels": fine,
                 "coarse_labels": [f // 5 for f in fine], "data": data}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = (data, fine)
    meta = {"fine_label_names": list(D.class_names("cifar100")), "coarse_label_names": [f"c{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def write_stl10(root: Path, n_train: int = 4, n_test: int = 3, seed: int = 0):
    """stl10_binary as torchvision reads it: *_X.bin are uint8 images, each 3 x 96 x 96 stored channel by
    channel in COLUMN-major order; *_y.bin are uint8 labels 1..10; class_names.txt one name a line."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)
        labels0 = rng.integers(0, 10, size=n).astype(np.uint8)
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels0 + 1).tobytes())
        out[split] = (images, labels0.astype(np.int64))
    (folder / "class_names.txt").write_text("\n".join(STL) + "\n")
    return out


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx ubyte file: magic 0x0000 0x08 (ubyte) ndim, then big-endian int32 dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_fashion_gz(folder: Path, n_train: int = 5, n_test: int = 4, seed: int = 0):
    """Fashion-MNIST as the official site / Debian ship it: four gzipped idx files in one flat folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        out["train" if prefix == "train" else "test"] = (images, labels.astype(np.int64))
    return out


# --------------------------------------------------------------------------------- class names
def test_car_and_automobile_resolve_across_cifar10_and_stl10():
    assert D.class_indices("cifar10", ["car"]) == [1]
    assert D.class_indices("cifar10", ["automobile"]) == [1]
    assert D.class_indices("stl10", ["automobile"]) == [2]
    assert D.class_indices("stl10", ["car"]) == [2]
    assert D.class_names("cifar10") == CIFAR and D.class_names("stl10") == STL


def test_labels_are_matched_by_name_not_index():
    names = ["truck", "car", "ship", "bird"]
    ci, si = D.class_indices("cifar10", names), D.class_indices("stl10", names)
    assert ci == [9, 1, 8, 2] and si == [9, 2, 8, 1]
    # remapped label j is the j-th NAME in both datasets, whatever the original label indices
    same = {"automobile": "car"}
    for j in range(len(names)):
        assert same.get(CIFAR[ci[j]], CIFAR[ci[j]]) == STL[si[j]]
    labels = torch.tensor([9, 1, 3, 2, 8, 9])  # CIFAR-10 labels: truck, automobile, cat, bird, ship, truck
    idx, new = D.select_classes(labels, ci)
    assert idx.tolist() == [0, 1, 3, 4, 5] and new.tolist() == [0, 1, 3, 2, 0]


def test_fashion_mnist_names_case_and_slugs():
    assert D.class_names("fashion_mnist")[0] == "T-shirt/top"
    assert D.class_indices("fashion_mnist", ["t-shirt/top", "ankle boot"]) == [0, 9]
    assert D.class_indices("fashion_mnist", ["T-SHIRT/TOP"]) == D.class_indices("fashion_mnist", ["tshirt"]) == [0]
    assert D.class_indices("FashionMNIST", ["ankle_boot", "Trouser", "bag"]) == [9, 1, 8]
    assert D.class_indices("digits", ["3", "0"]) == [3, 0]


def test_unknown_class_lists_dataset_name_and_available_names():
    with pytest.raises(ValueError) as err:
        D.class_indices("stl10", ["frog"])
    msg = str(err.value)
    assert "stl10" in msg and "'frog'" in msg and "monkey" in msg and "airplane" in msg
    with pytest.raises(ValueError, match="twice"):
        D.class_indices("cifar10", ["car", "automobile"])
    with pytest.raises(ValueError, match="unknown dataset"):
        D.class_names("imagenet")


# ---------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_files_read_through_torchvision(tmp_path):
    written = write_cifar10(tmp_path)
    images, labels, names = D.load_split("cifar10", tmp_path, "train", verify=False)
    assert images.dtype == torch.uint8 and images.shape == (15, 3, 32, 32)
    assert labels.dtype == torch.int64 and names == CIFAR
    data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert torch.equal(images, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert labels.tolist() == expected_labels
    timages, tlabels, _ = D.load_split("cifar10", tmp_path, "test", verify=False)
    assert torch.equal(timages, torch.from_numpy(written["test_batch"][0].reshape(-1, 3, 32, 32)))
    assert tlabels.tolist() == written["test_batch"][1]


def test_cifar10_checksum_mismatch_names_the_file(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(D.DataIntegrityError, match=r"cifar-10-batches-py/data_batch_1: MD5 .* official"):
        D.load_split("cifar10", tmp_path, "train")
    with pytest.raises(D.DataIntegrityError, match="data_batch_1"):
        D.ensure_dataset("cifar10", tmp_path)
    assert D.ensure_dataset("cifar10", tmp_path, verify=False) == tmp_path / "cifar-10-batches-py"


def test_cifar10_truncated_or_malicious_pickle_is_refused_naming_the_file(tmp_path):
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(D.DataIntegrityError, match="data_batch_3"):
        D.load_split("cifar10", tmp_path, "train", verify=False)

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(tmp_path / "pwned"),))

    batch.write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(D.DataIntegrityError, match="data_batch_3.*refusing"):
        D.load_split("cifar10", tmp_path, "train", verify=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("dataset", "writer", "archive", "folder", "test_file", "files"),
    [("cifar10", write_cifar10, "cifar-10-python.tar.gz", "cifar-10-batches-py", "test_batch", None),
     ("cifar100", write_cifar100, "cifar-100-python.tar.gz", "cifar-100-python", "test", ["meta", "test", "train"])],
)  # fmt: skip
def test_cifar_installed_from_official_archive_in_mirror(tmp_path, dataset, writer, archive, folder, test_file, files):
    src = tmp_path / "src"
    written = writer(src)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / archive, "w:gz") as tar:
        tar.add(src / folder, arcname=folder)
    root = tmp_path / "root"
    # default verify: the archive is not the official one
    with pytest.raises(D.DataIntegrityError, match=f"{archive}: MD5"):
        D.ensure_dataset(dataset, root, mirrors=[mirror])
    installed = D.ensure_dataset(dataset, root, mirrors=[mirror], verify=False)
    names = sorted(p.name for p in installed.iterdir())
    assert names == sorted(p.name for p in D.dataset_files(dataset, root))
    assert files is None or names == files
    _, labels, _ = D.load_split(dataset, root, "test", verify=False)
    assert labels.tolist() == written[test_file][1]


# ---------------------------------------------------------------------------------- CIFAR-100
def test_cifar100_files_read_through_torchvision_with_fine_labels(tmp_path):
    written = write_cifar100(tmp_path)
    names = D.class_names("cifar100")
    assert len(names) == 100 and names[0] == "apple" and names[-1] == "worm" and list(names) == sorted(names)
    for split in ("train", "test"):
        images, labels, got = D.load_split("cifar100", tmp_path, split, verify=False)
        data, fine = written[split]
        assert images.dtype == torch.uint8 and torch.equal(images, torch.from_numpy(data.reshape(-1, 3, 32, 32)))
        assert labels.tolist() == fine and got == names
    assert D.class_indices("CIFAR-100", ["worm", "maple tree", "apple"]) == [99, 47, 0]


def test_cifar100_wrong_names_malicious_pickle_and_checksums_name_the_file(tmp_path):
    write_cifar100(tmp_path)
    folder = tmp_path / "cifar-100-python"
    with pytest.raises(D.DataIntegrityError, match=r"cifar-100-python/train: MD5 .* official"):
        D.load_split("cifar100", tmp_path, "train")
    meta = pickle.loads((folder / "meta").read_bytes())
    meta["fine_label_names"] = meta["fine_label_names"][::-1]
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    with pytest.raises(D.DataIntegrityError, match=r"cifar-100-python/meta: class names"):
        D.load_split("cifar100", tmp_path, "test", verify=False)

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(tmp_path / "pwned"),))

    (folder / "test").write_bytes(pickle.dumps({"data": Evil(), "fine_labels": []}, protocol=2))
    with pytest.raises(D.DataIntegrityError, match="cifar-100-python/test.*refusing"):
        D.load_split("cifar100", tmp_path, "test", verify=False)
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------------------- STL-10
def test_stl10_column_major_binaries_read_through_torchvision(tmp_path):
    written = write_stl10(tmp_path)
    for split in ("train", "test"):
        images, labels, names = D.load_split("stl10", tmp_path, split, verify=False)
        ref_images, ref_labels = written[split]
        assert images.dtype == torch.uint8 and images.shape == (len(ref_labels), 3, 96, 96)
        assert torch.equal(images, torch.from_numpy(ref_images))  # column-major storage undone
        assert labels.tolist() == ref_labels.tolist()  # 1-based on disk, 0-based here
        assert names == STL
    small = D.resize(images, 32)
    assert small.shape == (len(ref_labels), 3, 32, 32) and small.dtype == torch.uint8


def test_stl10_bad_files_are_named(tmp_path):
    write_stl10(tmp_path)
    with pytest.raises(D.DataIntegrityError, match="test_X.bin: MD5"):
        D.load_split("stl10", tmp_path, "test")
    x = tmp_path / "stl10_binary" / "train_X.bin"
    x.write_bytes(x.read_bytes()[:-10])
    with pytest.raises(D.DataIntegrityError, match="train_X.bin.*truncated"):
        D.load_split("stl10", tmp_path, "train", verify=False)
    y = tmp_path / "stl10_binary" / "test_y.bin"
    y.write_bytes(bytes([0]) + y.read_bytes()[1:])  # label 0 is invalid in the 1-based file
    with pytest.raises(D.DataIntegrityError, match="test_y.bin.*labels outside"):
        D.load_split("stl10", tmp_path, "test", verify=False)


# ------------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_mnist_gz_mirror_is_decompressed_into_torchvision_layout(tmp_path):
    mirror = tmp_path / "mirror"
    written = write_fashion_gz(mirror)
    root = tmp_path / "root"
    folder = D.ensure_dataset("fashion_mnist", root, mirrors=[tmp_path / "nowhere", mirror], verify=False)
    assert folder == root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in folder.iterdir()) == sorted(D.FASHION_MNIST_RAW_MD5)
    assert all(oct(p.stat().st_mode)[-3:] == "644" for p in folder.iterdir())
    for split in ("train", "test"):
        images, labels, names = D.load_split("fashion_mnist", root, split, verify=False)
        assert images.shape == (len(written[split][1]), 1, 28, 28) and images.dtype == torch.uint8
        assert torch.equal(images[:, 0], torch.from_numpy(written[split][0]))
        assert labels.tolist() == written[split][1].tolist()
        assert names[9] == "Ankle boot"
    with pytest.raises(D.DataIntegrityError, match="train-images-idx3-ubyte: MD5"):
        D.load_split("fashion_mnist", root, "train")


def test_fashion_mnist_fake_mirror_fails_checksum_by_default(tmp_path):
    mirror = tmp_path / "mirror"
    write_fashion_gz(mirror)
    root = tmp_path / "root"
    with pytest.raises(D.DataIntegrityError) as err:
        D.ensure_dataset("fashion_mnist", root, mirrors=[mirror])
    assert str(mirror / "train-images-idx3-ubyte.gz") in str(err.value)
    assert not any((root / "FashionMNIST" / "raw").glob("*"))  # nothing half-installed


def test_fashion_mnist_truncated_idx_is_named(tmp_path):
    mirror = tmp_path / "mirror"
    write_fashion_gz(mirror)
    D.ensure_dataset("fashion_mnist", tmp_path, mirrors=[mirror], verify=False)
    f = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(D.DataIntegrityError, match="t10k-images-idx3-ubyte.*truncated"):
        D.load_split("fashion_mnist", tmp_path, "test", verify=False)


def test_download_goes_through_torchvision_into_a_staging_folder(tmp_path, monkeypatch):
    from torchvision.datasets import utils as tvu

    served = tmp_path / "served"
    written = write_fashion_gz(served)
    calls = []

    def fake_download(url, root, filename=None, md5=None, **kw):
        calls.append(url)
        shutil.copyfile(served / filename, Path(root) / filename)

    monkeypatch.setattr(tvu, "download_url", fake_download)
    root = tmp_path / "root"
    D.ensure_dataset("fashion_mnist", root, download=True, verify=False)
    assert len(calls) == 4 and all(u.startswith("http") for u in calls)
    assert not (root / ".download-fashion_mnist").exists()
    _, labels, _ = D.load_split("fashion_mnist", root, "test", verify=False)
    assert labels.tolist() == written["test"][1].tolist()

    def offline(url, root, filename=None, md5=None, **kw):
        raise URLError("no network")

    monkeypatch.setattr(tvu, "download_url", offline)
    with pytest.raises(FileNotFoundError, match="download failed.*no network"):
        D.ensure_dataset("cifar10", tmp_path / "other", download=True)


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason=f"{DEBIAN_FMNIST} absent: apt-get install dataset-fashion-mnist")
def test_real_debian_fashion_mnist_passes_checksums(tmp_path):
    root = tmp_path / "root"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"corrupt")  # replaced from the mirror in verify mode
    folder = D.ensure_dataset("fashion_mnist", root, mirrors=[DEBIAN_FMNIST])
    assert folder == raw
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels, names = D.load_split("fashion_mnist", root, split)
        assert images.shape == (n, 1, 28, 28) and images.dtype == torch.uint8
        assert len(names) == 10 and torch.equal(labels.bincount(), torch.full((10,), n // 10))
    (raw / "train-labels-idx1-ubyte").write_bytes(b"corrupt")
    with pytest.raises(D.DataIntegrityError, match="train-labels-idx1-ubyte: MD5"):
        D.ensure_dataset("fashion_mnist", root)  # no mirror to repair it from


# -------------------------------------------------------------------------------- missing data
@pytest.mark.parametrize(
    "name, folder, first",
    [
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
        ("stl10", "stl10_binary", "train_X.bin"),
        ("fashion_mnist", "FashionMNIST/raw", "train-images-idx3-ubyte"),
    ],
)
def test_missing_dataset_names_expected_path_and_fix(tmp_path, name, folder, first):
    with pytest.raises(FileNotFoundError) as err:
        D.ensure_dataset(name, tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / folder) in msg and first in msg
    assert "mirror" in msg and "download: true" in msg
    with pytest.raises(FileNotFoundError, match=str(tmp_path / folder)):
        D.load_split(name, tmp_path, "train")


# -------------------------------------------------------------------------------------- digits
def test_digits_offline_deterministic_disjoint_split(tmp_path):
    assert D.ensure_dataset("digits", tmp_path) == tmp_path
    xtr, ytr, names = D.load_split("digits", tmp_path, "train", seed=3)
    xte, yte, _ = D.load_split("digits", tmp_path, "test", seed=3)
    assert names == tuple("0123456789")
    assert xtr.shape[1:] == (1, 8, 8) and xtr.dtype == torch.uint8 and int(xtr.max()) == 255
    assert len(ytr) + len(yte) == 1797 and abs(len(yte) - 0.2 * 1797) <= 10
    xtr2, ytr2, _ = D.load_split("digits", tmp_path, "train", seed=3)
    assert torch.equal(xtr, xtr2) and torch.equal(ytr, ytr2)
    xtr3, _, _ = D.load_split("digits", tmp_path, "train", seed=4)
    assert not torch.equal(xtr, xtr3)
    # the split is split_indices(stratified, seed) over load_digits order: disjoint, covering, reproducible
    from sklearn.datasets import load_digits

    ref = torch.from_numpy(np.rint(load_digits().images * 255 / 16).astype(np.uint8)).flatten(1)
    tr_idx, te_idx = D.split_indices(1797, [0.8, 0.2], 3, stratify=torch.from_numpy(load_digits().target))
    assert torch.equal(ref[tr_idx], xtr.flatten(1)) and torch.equal(ref[te_idx], xte.flatten(1))
    assert not set(tr_idx.tolist()) & set(te_idx.tolist())
    assert (yte.bincount() >= 30).all()  # stratified: every class in the test split


# ------------------------------------------------------------------------------ subsets, splits
def test_select_classes_remaps_in_given_order():
    labels = torch.tensor([0, 5, 3, 5, 7, 3, 0])
    idx, new = D.select_classes(labels, [5, 0])
    assert idx.tolist() == [0, 1, 3, 6] and new.tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError):
        D.select_classes(labels, [5, 5])


def test_split_indices_disjoint_and_seeded():
    a = D.split_indices(100, [0.7, 0.2, 0.1], seed=1)
    assert [len(p) for p in a] == [70, 20, 10]
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    b = D.split_indices(100, [0.7, 0.2, 0.1], seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = D.split_indices(100, [10, 5], seed=2)
    assert [len(p) for p in c] == [10, 5] and not set(c[0].tolist()) & set(c[1].tolist())
    with pytest.raises(ValueError):
        D.split_indices(10, [8, 5])
    with pytest.raises(ValueError):
        D.split_indices(10, [0.8, 0.5])
    labels = torch.arange(4).repeat_interleave(25)
    tr, va = D.split_indices(100, [0.8, 0.2], seed=0, stratify=labels)
    assert labels[va].bincount().tolist() == [5, 5, 5, 5]


def test_subsample_per_class():
    labels = torch.tensor([0] * 10 + [1] * 4 + [2] * 7)
    idx = D.subsample_per_class(labels, 3, seed=0)
    assert labels[idx].bincount().tolist() == [3, 3, 3]
    assert torch.equal(idx, D.subsample_per_class(labels, 3, seed=0))
    with pytest.raises(ValueError, match="class 1 has only 4"):
        D.subsample_per_class(labels, 5)
    assert labels[D.subsample_per_class(labels, 5, allow_fewer=True)].bincount().tolist() == [5, 4, 5]


# ---------------------------------------------------------------------------------- transforms
def test_transforms():
    x = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    f = D.to_float(x)
    assert f.dtype == torch.float32 and 0.0 <= float(f.min()) and float(f.max()) <= 1.0
    assert torch.allclose(f * 255, x.float())
    flat = torch.full((1, 3, 96, 96), 77, dtype=torch.uint8)
    assert torch.equal(D.resize(flat, 32), torch.full((1, 3, 32, 32), 77, dtype=torch.uint8))
    gray = D.to_channels(x, 1)
    assert gray.shape == (2, 1, 96, 96)
    rgb = D.to_channels(gray, 3)
    assert rgb.shape == (2, 3, 96, 96) and torch.equal(rgb[:, 0], rgb[:, 2])


def test_apply_domain():
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(D.apply_domain(x, "invert"), 255 - x)
    assert torch.equal(D.apply_domain(x, "identity"), x)
    c = D.apply_domain(x, "contrast")
    assert c.dtype == torch.uint8 and int(c.min()) >= 63 and int(c.max()) <= 192
    b = D.apply_domain(x, "blur")
    assert b.shape == x.shape and b.float().std() < x.float().std()
    n1, n2, n3 = (D.apply_domain(x, "noise", seed=s) for s in (1, 1, 2))
    assert torch.equal(n1, n2) and not torch.equal(n1, n3)
    both = D.apply_domain(D.to_float(x), "invert+blur")
    assert both.dtype == torch.float32 and torch.allclose(both, D.apply_domain(1 - D.to_float(x), "blur"))
    with pytest.raises(ValueError, match="available"):
        D.apply_domain(x, "sepia")


def test_names_module_agrees_with_torchvision_and_domains_without_importing_torch():
    """advtransfer.names (what the workflow checks configs against at every start) holds torchvision's
    Fashion-MNIST class names and data.DOMAINS' names, and imports no torch."""
    import subprocess
    import sys

    from torchvision import datasets as tvd

    from advtransfer import names

    assert names.CLASS_NAMES["fashion_mnist"] == tuple(tvd.FashionMNIST.classes)
    assert names.DOMAIN_NAMES == tuple(D.DOMAINS)
    assert D.class_indices is names.class_indices and D.CLASS_NAMES is names.CLASS_NAMES
    code = "import sys, advtransfer.names; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(names.__file__).parents[1]).returncode == 0


# ------------------------------------------------------------------------------------ the registry
def test_registry_checksums_and_archives_are_torchvision_s():
    """The MD5s, archives and class names of the registry entries are torchvision's own lists."""
    from torchvision import datasets as tvd

    from advtransfer.registry import DATASETS

    cifar, stl, fashion = (DATASETS[n] for n in ("cifar10", "stl10", "fashion_mnist"))
    c = tvd.CIFAR10
    assert cifar.files == dict(c.train_list + c.test_list + [[c.meta["filename"], c.meta["md5"]]])
    assert cifar.archive == (c.filename, c.tgz_md5, c.url) and cifar.folder == c.base_folder
    listed = dict(tvd.STL10.train_list + tvd.STL10.test_list)
    assert stl.files == {f: listed[f] for f in stl.files} and len(stl.files) == 4
    assert stl.archive == (tvd.STL10.filename, tvd.STL10.tgz_md5, tvd.STL10.url)
    assert fashion.gz == {f.removesuffix(".gz"): md5 for f, md5 in tvd.FashionMNIST.resources}
    assert fashion.gz_urls == tuple(tvd.FashionMNIST.mirrors)
    assert fashion.classes == tuple(tvd.FashionMNIST.classes)
    for name, entry in DATASETS.items():
        assert D.image_shape(name) == (entry.channels, *entry.size)
        assert set(entry.split_files) <= set(entry.splits) and all(
            f in entry.files for fs in entry.split_files.values() for f in fs
        )


def test_registry_and_names_import_no_torch():
    """What the Snakefile imports to build the DAG (registries, names, the family table and every family's job
    hooks) loads without torch, so a dry run or `snakemake --lint` stays fast."""
    import subprocess
    import sys

    code = (
        "import sys, advtransfer.registry, advtransfer.names, advtransfer.designs, advtransfer.paths; "
        "from advtransfer import families; [f.load('jobs') for f in families.BUILTIN]; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(D.__file__).parents[2]).returncode == 0


# ----------------------------------------------------------------------------------- image folders
def _write_folder(root: Path, layout: dict[str, int], size=(6, 5), gray=False) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in layout.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if gray else "RGB")
            image.save(root / cls / f"{i:03d}.png")


def test_imagefolder_with_train_and_test_folders(tmp_path):
    _write_folder(tmp_path / "train", {"zebra": 3, "ant": 2})
    _write_folder(tmp_path / "test", {"ant": 1, "zebra": 2}, gray=True)
    (tmp_path / "train" / "notes").mkdir()  # a folder without images is no class
    name = f"imagefolder:{tmp_path}"
    assert D.class_names(name) == ("ant", "zebra")  # sorted, as torchvision's ImageFolder
    assert D.class_indices(name, ["zebra"]) == [1]
    images, labels, classes = D.load_split(name, "unused", "train")
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 6, 5)
    assert labels.tolist() == [0, 0, 1, 1, 1] and classes == ("ant", "zebra")
    images, labels, _ = D.load_split(name, "unused", "test")
    assert images.shape == (3, 3, 6, 5) and labels.tolist() == [0, 1, 1]  # grey files read as RGB
    assert torch.equal(images[:, 0], images[:, 1])
    assert D.ensure_dataset(name, "unused") == tmp_path
    assert len(D.dataset_files(name, "unused")) == 8


def test_imagefolder_flat_layout_is_split_by_seed_and_stratified(tmp_path):
    _write_folder(tmp_path, {"a": 10, "b": 10})
    name = f"imagefolder:{tmp_path}"
    train = D.load_split(name, "", "train", seed=1, test_fraction=0.2)
    test = D.load_split(name, "", "test", seed=1, test_fraction=0.2)
    assert len(train[1]) == 16 and test[1].tolist() == [0, 0, 1, 1]
    again = D.load_split(name, "", "test", seed=1, test_fraction=0.2)
    assert torch.equal(test[0], again[0])
    pixels = {tuple(x.flatten().tolist()) for x in torch.cat([train[0], test[0]])}
    assert len(pixels) == 20  # disjoint and complete


def test_imagefolder_problems_name_the_folder_or_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        D.class_names(f"imagefolder:{tmp_path / 'nothing'}")
    _write_folder(tmp_path / "one", {"only": 2})
    with pytest.raises(ValueError, match="at least 2 class"):
        D.class_names(f"imagefolder:{tmp_path / 'one'}")
    _write_folder(tmp_path / "split" / "train", {"a": 2, "b": 2})
    _write_folder(tmp_path / "split" / "test", {"a": 1, "c": 1})
    with pytest.raises(D.DataIntegrityError, match=r"class folders \['c'\]"):
        D.load_split(f"imagefolder:{tmp_path / 'split'}", "", "test")
    _write_folder(tmp_path / "bad", {"a": 2, "b": 2})
    (tmp_path / "bad" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(D.DataIntegrityError, match="broken.png"):
        D.load_split(f"imagefolder:{tmp_path / 'bad'}", "", "train")


def test_metric_subset_draws_from_train_and_test_without_repeats():
    train, test = D.metric_subset(30, 20, 25, seed=3)
    assert len(train) + len(test) == 25 and len(train) > 0 and len(test) > 0
    assert train.max() < 30 and test.max() < 20 and len(set(train.tolist())) == len(train)
    again = D.metric_subset(30, 20, 25, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    every = D.metric_subset(30, 20, None, seed=3)
    assert every[0].tolist() == list(range(30)) and every[1].tolist() == list(range(20))
