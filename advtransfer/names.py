"""Names of data sets, classes, domains, models and training objectives, without torch.

Everything here is derived from ``advtransfer.registry`` (no second list): the workflow checks a config
against it at every start (rules/common.smk), so Snakemake's start (and every cluster job's) stays free of
the torch / torchvision import. advtransfer.data re-exports the data-set names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from advtransfer.registry import DATASETS as _REGISTRY
from advtransfer.registry import IMAGEFOLDER, MODEL_PREFIXES, MODELS, OBJECTIVES

DATASETS = tuple(_REGISTRY)
CLASS_NAMES: dict[str, tuple[str, ...]] = {name: entry.classes for name, entry in _REGISTRY.items()}

# Groups of slugs naming the same class across datasets; a requested name that is not a class of the
# dataset is looked up here (so 'car' finds CIFAR-10's 'automobile' and 'automobile' finds STL-10's 'car').
CLASS_ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"automobile", "car"}),
    frozenset({"airplane", "aeroplane", "plane"}),
    frozenset({"t_shirt_top", "t_shirt", "tshirt"}),
)

# The target domains of advtransfer.data.DOMAINS (tests/test_data.py checks the two agree).
DOMAIN_NAMES = ("identity", "invert", "blur", "contrast", "noise")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_LOOKUP = {_key(alias): name for name, e in _REGISTRY.items() for alias in (name, *e.aliases)}


def is_imagefolder(name: str) -> bool:
    """True for ``imagefolder:<path>``, a data set given as a folder of images."""
    return str(name).startswith(IMAGEFOLDER)


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name ('CIFAR-10', 'FashionMNIST', 'fashion-mnist' ...) to a key of the registry;
    ``imagefolder:<path>`` is returned as given."""
    if is_imagefolder(name):
        if not str(name)[len(IMAGEFOLDER) :]:
            raise ValueError(f"{name!r}: give the folder, as in 'imagefolder:/path/to/images'")
        return str(name)
    found = _LOOKUP.get(_key(name))
    if found is None:
        raise ValueError(
            f"unknown dataset {name!r}; available datasets: {', '.join(DATASETS)}, or 'imagefolder:<folder>'"
        )
    return found


def image_set(name: str) -> str:
    """Which images a data set holds: data sets that label the same images differently (the shapes world's
    labellings) share it; any other data set is its own (its canonical name)."""
    canonical = canonical_dataset(name)
    return canonical if is_imagefolder(canonical) else (_REGISTRY[canonical].images or canonical)


def imagefolder_root(name: str) -> Path:
    """The folder of ``imagefolder:<folder>`` (``~`` expanded)."""
    return Path(str(name)[len(IMAGEFOLDER) :]).expanduser()


def imagefolder_splits(name: str) -> dict[str, Path]:
    """The split folders of ``imagefolder:<root>``: {'train': root/train, 'test': root/test} when both exist,
    else {'all': root} (one folder of class folders, split by ``data.load_split``)."""
    root = imagefolder_root(name)
    if not root.is_dir():
        raise ValueError(f"{name!r}: folder {root} does not exist")
    if (root / "train").is_dir() and (root / "test").is_dir():
        return {"train": root / "train", "test": root / "test"}
    return {"all": root}


def imagefolder_images(name: str) -> list[Path]:
    """Every image file of ``imagefolder:<folder>``, split folder by split folder, sorted: the files its data set
    is made of (the `dataset` job's inputs, so adding, removing or changing one reruns what reads them)."""
    return [
        path
        for folder in imagefolder_splits(name).values()
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    ]


def class_folders(folder: str | os.PathLike) -> list[str]:
    """The sub-folders of ``folder`` holding at least one image file, sorted (torchvision's ImageFolder
    order)."""
    return [
        entry.name
        for entry in sorted(os.scandir(folder), key=lambda e: e.name)
        if entry.is_dir() and any(f.name.lower().endswith(IMAGE_SUFFIXES) for f in os.scandir(entry.path))
    ]


def imagefolder_classes(folder: str | os.PathLike) -> tuple[str, ...]:
    """Class names of an ImageFolder-layout folder (``class_folders``); at least two."""
    classes = class_folders(folder)
    if len(classes) < 2:
        raise ValueError(f"{folder}: an image folder needs at least 2 class sub-folders with images, found {classes}")
    return tuple(classes)


def class_names(dataset: str) -> tuple[str, ...]:
    """The dataset's class names in label order (torchvision's names; digits: '0'..'9'; a folder: its
    class folders)."""
    dataset = canonical_dataset(dataset)
    if is_imagefolder(dataset):
        splits = imagefolder_splits(dataset)
        return imagefolder_classes(splits.get("train", splits.get("all")))
    return CLASS_NAMES[dataset]


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
    available = class_names(dataset)
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


def check_model_name(name: str) -> None:
    """ValueError unless ``name`` is a registered model, ``torchvision:<arch>``, ``timm:<name>`` or
    ``package.module:function`` (whether such an architecture exists is checked when it is built)."""
    if name in MODELS:
        return
    prefix, sep, rest = str(name).partition(":")
    if sep and rest and (f"{prefix}:" in MODEL_PREFIXES or re.fullmatch(r"[A-Za-z_][\w.]*", prefix)):
        return
    raise ValueError(
        f"unknown model {name!r}; use one of {', '.join(sorted(MODELS))}, or 'torchvision:<architecture>', "
        "'timm:<model name>' or 'package.module:function'"
    )


def check_objective_name(name: str) -> None:
    """ValueError unless ``name`` is a registered training objective."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown training objective {name!r}; use one of {', '.join(sorted(OBJECTIVES))}")


OBJECTIVE_CONTEXT = ("generator", "state", "teacher")  # what the training loop passes (advtransfer/train.py)


def objective_keywords(name: str) -> tuple[list[str], list[str]] | None:
    """(required, optional) keyword parameters a config may give the registered objective ``name``, read from
    its function's source without importing it (no torch at start-up); the ones the training loop supplies
    (OBJECTIVE_CONTEXT) left out. None when the source cannot be read (a function taking ``**kwargs``, a module
    outside a source file)."""
    import ast
    import importlib.util

    module, _, function = OBJECTIVES[name].partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text())
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not found or found[0].args.kwarg is not None:
        return None
    args = found[0].args
    named = [(a.arg, d is None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    named += [(a.arg, not has_default) for a, has_default in list(zip(positional, defaults))[3:]]  # after model, x, y
    named = [(n, required) for n, required in named if n not in OBJECTIVE_CONTEXT]
    return [n for n, required in named if required], [n for n, required in named if not required]


def objective_params_problem(name: str, params: dict) -> str | None:
    """What is wrong with the keyword arguments ``params`` of objective ``name`` (unknown or missing ones), or
    None; None also when its parameters cannot be read without importing it."""
    keywords = objective_keywords(name) if name in OBJECTIVES else None
    if keywords is None:
        return None
    required, optional = keywords
    unknown = sorted(set(params) - set(required) - set(optional))
    missing = [k for k in required if k not in params]
    takes = ", ".join(required + optional) or "nothing"
    if unknown:
        return f"{', '.join(map(repr, unknown))} is not a parameter of objective {name!r}; it takes {takes}"
    if missing:
        return f"objective {name!r} needs {', '.join(missing)} (it takes {takes})"
    return None


def check_task_names(tasks: Sequence[str]) -> None:
    """ValueError naming the unknown ones unless every name is a task of the registry (TASKS)."""
    from advtransfer.registry import TASKS

    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; use some of {list(TASKS)}")
