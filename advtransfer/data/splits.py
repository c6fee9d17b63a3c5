"""Class subsets, seeded splits and the splits of a scenario (source pools, train / validation / test).

Every random choice goes through a torch.Generator seeded from config, so the same seed gives the same
indices on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


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



def few_shot_sets(labels: torch.Tensor, k: int, draws: int, seed: int) -> list[torch.Tensor]:
    """``draws`` k-shot sets of a labelled pool: sorted positions into ``labels`` of ``k`` samples of every
    class, drawn one after another from one generator seeded with ``seed`` (draw d differs from draw e, and
    the same seed gives the same sets everywhere). A class with fewer than k samples raises ValueError."""
    if k < 1 or draws < 1:
        raise ValueError(f"few_shot_sets: need k >= 1 and draws >= 1, got k={k}, draws={draws}")
    gen = _generator(seed)
    try:
        return [subsample_per_class(labels, k, gen) for _ in range(draws)]
    except ValueError as err:
        raise ValueError(f"few_shot_sets: {k}-shot sets need {k} labelled samples of every class ({err})") from err


def check_labelled_per_class(split: dict[str, torch.Tensor], needed: int, classes: Sequence[str]):
    """Raise ValueError, naming the class, if a target split has fewer than ``needed`` labelled (train +
    validation) images of some class: what the k-shot probes draw from (checked when the split is made)."""
    _, labels = labelled_pool(split)
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    short = {name: n for name, n in zip(classes, counts) if n < needed}
    if short:
        raise ValueError(
            f"the k-shot probes (probe.shots, largest k = {needed}) need {needed} labelled target images per "
            f"class, but {short} have fewer (train + validation); lower probe.shots or give the target more images"
        )


def labelled_pool(split: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and labels of a target split's labelled images for knowledge transfer: its train +
    validation images (indices into the data set's TRAIN part; the test split indexes its test part)."""
    return torch.cat([split["train_idx"], split["val_idx"]]), torch.cat([split["train_y"], split["val_y"]])


def disjoint_pools(
    labels: torch.Tensor, source_fraction: float, seed: int, stratify: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split of one TRAIN split into a source pool and a target pool that share no image, stratified by
    ``labels`` (or not: then it depends on the number of images alone, so two labellings of the same
    images get the same pools).

    Used when sources and target hold the same images, so the target holds images no source saw.
    """
    parts = [source_fraction, 1.0 - source_fraction]
    source, target = split_indices(len(labels), parts, seed, stratify=labels if stratify else None)
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


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """Symmetric label noise: round(``fraction`` x n) of the labels, drawn at random (seeded), each replaced by
    one of the other ``num_classes`` - 1 classes uniformly; the rest unchanged. A source's noisy labels are a
    property of its data: every seed of its model trains on the same ones."""
    labels = torch.as_tensor(labels)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"flip_labels: fraction must lie in [0, 1], got {fraction}")
    if num_classes < 2:
        raise ValueError("flip_labels: needs at least 2 classes")
    gen = _generator(seed)
    n_flip = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=gen)[:n_flip]
    shift = torch.randint(1, num_classes, (n_flip,), generator=gen)  # never 0: another class
    out = labels.clone()
    out[chosen] = (labels[chosen] + shift) % num_classes
    return out


def metric_subset(n_train: int, n_test: int, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The images tau1 / tau2 / alpha are measured on (they need no labels): ``size`` of the target's
    ``n_train`` train (+ validation) and ``n_test`` test images, none of which a source saw, drawn
    together (all when None); returns sorted positions into the train and into the test indices."""
    n = n_train + n_test
    chosen = evaluation_subset(n, n if size is None else size, seed)
    return chosen[chosen < n_train], chosen[chosen >= n_train] - n_train


def evaluation_subset(n: int, size: int, seed: int) -> torch.Tensor:
    """Sorted random subset of ``size`` indices out of ``n`` (all when size >= n): the attacked images."""
    if size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=_generator(seed))[:size].sort().values

