"""CelebA (advtransfer.data.celeba): a tiny CelebA written in the real layout and text formats, read back
through torchvision's CelebA parser; the same-identity split, the decoded-image cache, bad files named."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from advtransfer import data as D
from advtransfer.data import celeba as C
from advtransfer.registry import CELEBA_ATTRIBUTES, DATASETS

# The second line of the real list_attr_celeba.txt (it ends with a space).
REAL_HEADER = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young "
)
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
# 30 images of 6 identities; 4242 has a single image
COUNTS = {2880: 10, 17: 7, 10177: 5, 1: 4, 555: 3, 4242: 1}
SMILING = CELEBA_ATTRIBUTES.index("smiling")


def write_celeba(root: Path, seed: int = 0, keep: int | None = None) -> dict:
    """<root>/celeba as the official files (and torchvision) have it: img_align_celeba/*.jpg (178x218 RGB
    JPEGs) and the five annotation files in their exact text formats, one row per image in file order."""
    rng = np.random.default_rng(seed)
    identity = np.array([i for i, c in COUNTS.items() for _ in range(c)])[rng.permutation(sum(COUNTS.values()))]
    identity = identity[:keep]
    n = len(identity)
    attributes = rng.choice([-1, 1], size=(n, 40))
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    from PIL import Image

    pixels = np.random.default_rng(100).integers(0, 256, size=(30, 218, 178, 3), dtype=np.uint8)[:n]
    for name, image in zip(names, pixels):
        Image.fromarray(image).save(folder / "img_align_celeba" / name, quality=95)
    rows = [f"{name} " + " ".join(f"{v:>2}" for v in row) for name, row in zip(names, attributes)]
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{REAL_HEADER}\n" + "\n".join(rows) + "\n")
    (folder / "identity_CelebA.txt").write_text("".join(f"{a} {b}\n" for a, b in zip(names, identity)))
    (folder / "list_eval_partition.txt").write_text("".join(f"{a} {i * 3 // n}\n" for i, a in enumerate(names)))
    bbox = "".join(f"{a} {95:>5}{71:>4}{226:>4}{313:>4}\n" for a in names)
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height \n{bbox}")
    marks = "".join(f"{a} 69  109  106  113   77  142   73  152  108  154\n" for a in names)
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{LANDMARKS} \n{marks}")
    return {"names": names, "identity": identity, "attributes": attributes, "folder": folder}


def reference_images(folder: Path, names) -> torch.Tensor:
    """torchvision's CenterCrop(178) + Resize((64, 64)) of each JPEG: what load_split must return."""
    from PIL import Image
    from torchvision import transforms

    t = transforms.Compose([transforms.CenterCrop(178), transforms.Resize((64, 64)), transforms.PILToTensor()])
    return torch.stack([t(Image.open(folder / "img_align_celeba" / n).convert("RGB")) for n in names])


def _rows(images: torch.Tensor, reference: torch.Tensor) -> list[int]:
    """The row of ``reference`` each image is (the images are distinct noise)."""
    flat = reference.flatten(1)
    return [int((flat == x.flatten()).all(1).nonzero()[0]) for x in images]


@pytest.fixture
def celeba(tmp_path):
    written = write_celeba(tmp_path)
    written["root"] = tmp_path
    written["reference"] = reference_images(written["folder"], written["names"])
    return written


def test_registry_entries_and_md5s_are_torchvision_s():
    from torchvision.datasets import CelebA

    official = {name: md5 for _, md5, name in CelebA.file_list if not name.endswith(".zip")}
    entries = [e for name, e in DATASETS.items() if name.startswith("celeba_")]
    assert len(entries) == 41 and len(CELEBA_ATTRIBUTES) == 40
    assert CELEBA_ATTRIBUTES == tuple(REAL_HEADER.lower().split())
    for e in entries:
        assert e.files == official and e.folder == CelebA.base_folder == "celeba"
        assert set(e.split_files["train"]) == set(e.split_files["test"]) == set(official)
        assert e.images == "celeba" and (e.channels, *e.size) == (3, 64, 64)
    assert DATASETS["celeba_identity"].classes == tuple(str(i) for i in range(1, 10178))
    assert DATASETS["celeba_smiling"].classes == ("no", "yes")
    assert DATASETS["celeba_5_o_clock_shadow"].reader_args == {"labelling": "5_o_clock_shadow"}
    assert D.canonical_dataset("CelebA-Smiling") == "celeba_smiling"


def test_splits_hold_out_images_of_the_same_identities(celeba):
    ref, identity, attributes = celeba["reference"], celeba["identity"], celeba["attributes"]
    rows = {}
    for labelling in ("identity", "smiling"):
        for split in ("train", "test"):
            images, labels, classes = D.load_split(f"celeba_{labelling}", celeba["root"], split, verify=False, seed=3)
            assert images.dtype == torch.uint8 and images.shape == (len(labels), 3, 64, 64)
            assert labels.dtype == torch.int64
            idx = _rows(images, ref)
            assert idx == sorted(idx)  # file order
            expected = identity[idx] - 1 if labelling == "identity" else (attributes[idx, SMILING] + 1) // 2
            assert labels.tolist() == expected.tolist()
            assert classes == DATASETS[f"celeba_{labelling}"].classes
            rows[labelling, split] = idx
    for split in ("train", "test"):  # one split for every labelling
        assert rows["identity", split] == rows["smiling", split]
    train, test = set(rows["identity", "train"]), set(rows["identity", "test"])
    assert not train & test and train | test == set(range(30))
    assert set(identity[list(test)]) <= set(identity[list(train)])
    assert 4242 in identity[list(train)] and 4242 not in identity[list(test)]
    for ident, count in COUNTS.items():  # max(1, round(0.2 * count)) held out, none of a single image
        held = int((identity[list(test)] == ident).sum())
        assert held == (0 if count == 1 else max(1, round(0.2 * count)))


def test_split_is_deterministic_given_the_seed(celeba):
    def test_images(seed, fraction=0.2):
        return D.load_split("celeba_identity", celeba["root"], "test", verify=False, seed=seed, test_fraction=fraction)

    a, b = test_images(5), test_images(5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert any(not torch.equal(a[0], test_images(s)[0]) for s in range(6, 12))
    many = test_images(5, fraction=0.9)[1]  # every identity keeps an image in train
    assert int((many == 2879).sum()) == 9 and 4241 not in many.tolist()


def test_identity_split_counts():
    identity = torch.randint(1, 50, (2000,), generator=torch.Generator().manual_seed(0))
    identity = torch.cat([identity, torch.tensor([100, 101, 101, 102, 102, 102])])  # 1, 2 and 3 images
    train, test = C.identity_split(identity, seed=1, test_fraction=0.3)
    assert torch.equal(torch.sort(torch.cat([train, test])).values, torch.arange(len(identity)))
    ids, counts = torch.unique(identity, return_counts=True)
    for ident, count in zip(ids.tolist(), counts.tolist()):
        assert int((identity[test] == ident).sum()) == min(count - 1, max(1, round(0.3 * count)))
    again = C.identity_split(identity, seed=1, test_fraction=0.3)
    assert torch.equal(test, again[1]) and not torch.equal(test, C.identity_split(identity, 2, 0.3)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        C.identity_split(identity, 0, 1.0)


def test_decoded_images_are_cached_and_reused(celeba, monkeypatch):
    from PIL import Image

    root, cache = celeba["root"], celeba["folder"] / C.CACHE_NAME
    first = D.load_split("celeba_smiling", root, "train", verify=False)
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a JPEG although the cache holds the images")

    monkeypatch.setattr(Image, "open", no_decoding)
    again = D.load_split("celeba_smiling", root, "train", verify=False)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    other = D.load_split("celeba_identity", root, "test", verify=False)  # another labelling: same cache
    assert len(other[1]) == 30 - len(first[1]) and cache.stat().st_mtime_ns == stamp


def test_jobs_starting_together_decode_once(celeba, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    calls, real = [], C.decode_images
    monkeypatch.setattr(C, "decode_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    names = tuple(celeba["names"])
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: C.all_images(celeba["folder"], names), range(3)))
    assert len(calls) == 1 and all(torch.equal(r, celeba["reference"]) for r in results)


def test_stale_cache_is_rebuilt(celeba, monkeypatch):
    from PIL import Image

    root, cache = celeba["root"], celeba["folder"] / C.CACHE_NAME
    D.load_split("celeba_identity", root, "train", verify=False)
    write_celeba(root, keep=29)  # the partition file (and every other one) now lists 29 images
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    train, _, _ = D.load_split("celeba_identity", root, "train", verify=False)
    test, _, _ = D.load_split("celeba_identity", root, "test", verify=False)
    assert len(opened) == 29 and len(train) + len(test) == 29  # decoded once more, then cached
    assert C._read_cache(cache, C._list_digest(celeba["names"][:29]), 29) is not None
    cache.write_bytes(b"garbage")  # an unreadable cache is rebuilt too
    assert torch.equal(D.load_split("celeba_identity", root, "test", verify=False)[0], test)
    assert len(opened) == 58


def test_verify_checks_the_official_md5s_naming_the_file(celeba):
    with pytest.raises(D.DataIntegrityError, match=r"celeba/list_attr_celeba.txt: MD5 .* official"):
        D.load_split("celeba_smiling", celeba["root"], "train")
    with pytest.raises(D.DataIntegrityError, match="list_attr_celeba.txt: MD5"):
        D.ensure_dataset("celeba_smiling", celeba["root"])


@pytest.mark.parametrize(
    "file, pattern, replacement, match",
    [
        ("list_attr_celeba.txt", r"^(000003\.jpg) (-1| 1)", r"\1  0", r"list_attr_celeba.txt: line 5 .* value 0"),
        ("list_attr_celeba.txt", r"^(000003\.jpg) (-1| 1)", r"\1  x", r"list_attr_celeba.txt: not a CelebA"),
        ("list_attr_celeba.txt", r"Smiling", "Grinning", r"list_attr_celeba.txt: attribute names"),
        ("list_attr_celeba.txt", r"^30$", "31", r"list_attr_celeba.txt: the first line says '31'"),
        ("identity_CelebA.txt", r"^(000002\.jpg) \d+$", r"\1 10178", r"identity_CelebA.txt: line 2 .* 1..10177"),
        ("identity_CelebA.txt", r"^000002\.jpg", "000099.jpg", r"identity_CelebA.txt: lists other images"),
        ("list_bbox_celeba.txt", r"^(000004\.jpg) +95", r"\1", r"list_bbox_celeba.txt: not a CelebA"),
        ("list_eval_partition.txt", r"^(000001\.jpg) \d", r"\1 7", r"list_eval_partition.txt: line 1 .* value 7"),
    ],
)
def test_corrupt_annotations_name_the_file(celeba, file, pattern, replacement, match):
    path = celeba["folder"] / file
    text, changed = re.subn(pattern, replacement, path.read_text(), count=1, flags=re.M)
    assert changed == 1
    path.write_text(text)
    with pytest.raises(D.DataIntegrityError, match=match):
        D.load_split("celeba_smiling", celeba["root"], "train", verify=False)


def test_missing_or_broken_images_are_named(celeba):
    (celeba["folder"] / "img_align_celeba" / "000007.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(D.DataIntegrityError, match="img_align_celeba/000007.jpg: cannot read the image"):
        D.load_split("celeba_smiling", celeba["root"], "train", verify=False)
    (celeba["folder"] / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.raises(D.DataIntegrityError, match="img_align_celeba/000007.jpg"):
        D.load_split("celeba_smiling", celeba["root"], "test", verify=False)


def test_unknown_labelling_lists_the_choices(celeba):
    with pytest.raises(ValueError, match=r"unknown labelling 'grin'.*'identity'.*'smiling'"):
        C.read_celeba(celeba["root"], "train", verify=False, seed=0, test_fraction=0.2, labelling="grin")


def test_ensure_dataset_says_where_to_put_which_files(tmp_path):
    assert D.dataset_files("celeba_smiling", tmp_path)[0] == tmp_path / "celeba" / "list_attr_celeba.txt"
    with pytest.raises(FileNotFoundError) as err:
        D.ensure_dataset("celeba_smiling", tmp_path, verify=False, download=True)
    msg = str(err.value)
    for part in (str(tmp_path / "celeba"), "list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt",
                 "img_align_celeba/", "img_align_celeba.zip", "mmlab.ie.cuhk.edu.hk", "no download is registered"):
        assert part in msg, part
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        D.load_split("celeba_smiling", tmp_path, "train", verify=False)
    written = write_celeba(tmp_path)
    assert D.ensure_dataset("celeba_smiling", tmp_path, verify=False) == written["folder"]
    for jpg in (written["folder"] / "img_align_celeba").iterdir():
        jpg.unlink()
    (written["folder"] / "img_align_celeba").rmdir()
    with pytest.raises(FileNotFoundError, match=r"missing the folder .*celeba/img_align_celeba/"):
        D.ensure_dataset("celeba_identity", tmp_path, verify=False)
    with pytest.raises(D.DataIntegrityError, match="img_align_celeba/: missing"):
        D.load_split("celeba_identity", tmp_path, "train", verify=False)


def test_text_files_are_installed_from_a_mirror(tmp_path):
    write_celeba(tmp_path / "mirror")
    root = tmp_path / "root"
    (root / "celeba" / "img_align_celeba").mkdir(parents=True)
    folder = D.ensure_dataset("celeba_young", root, mirrors=[tmp_path / "mirror"], verify=False)
    assert sorted(p.name for p in folder.glob("*.txt")) == sorted(DATASETS["celeba_young"].files)
