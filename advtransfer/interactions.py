"""Multi-order interactions between input players (Ren et al., NeurIPS 2021, "A unified game-theoretic
interpretation of adversarial robustness").

Players N = {0..n-1} are the cells of a gh x gw grid over an image (player = row * gw + col). v(S) is the
model's score of the true label on the image with only the cells of S kept, the others set to a baseline.

    Delta_ij(S) = v(S + i + j) - v(S + i) - v(S + j) + v(S)
    I^(m)(i, j) = mean of Delta_ij(S) over S subset of N \\ {i, j}, |S| = m        (m = 0..n-2)

and the identity v(N) - v({}) - sum_i (v({i}) - v({})) = sum over ordered pairs i != j and m = 0..n-2 of
(n - 1 - m) / (n (n - 1)) I^(m)(i, j) (checked by :func:`decomposition_sides`).

The Monte-Carlo estimator draws, per image, pairs (adjacent cells by default) and, per pair and order,
contexts S uniformly among the subsets of size m, from a seeded CPU generator. All 4 masked inputs of all
pairs, orders and contexts of an image are built as boolean cell masks, deduplicated (at m = 0 the empty set
and the singletons, at m = n-2 the full set, are shared) and only the unique ones are run through the model,
in batches, on its device. The exact oracle enumerates every subset (n <= 10).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from advtransfer.models import frozen_on

SCORE_KINDS = ("log_softmax", "logit_margin")
MAX_EXACT_PLAYERS = 10

SetFunction = Callable[[torch.Tensor], torch.Tensor]  # masks (K, n) bool -> v (K,)


# --------------------------------------------------------------------------------------------- players


def grid_shape(grid: int | Sequence[int]) -> tuple[int, int]:
    """(gh, gw) of a grid given as one int (square) or a pair."""
    gh, gw = (grid, grid) if isinstance(grid, int) else tuple(int(g) for g in grid)
    if gh < 1 or gw < 1:
        raise ValueError(f"grid must have at least one row and column, got {gh} x {gw}")
    return gh, gw


def orders(n_players: int, ratios: Sequence[float]) -> list[int]:
    """The orders m = round((n - 2) r) for r in ``ratios`` (halves round up), sorted and without duplicates:
    several ratios that round to the same order give it once."""
    if n_players < 2:
        raise ValueError(f"orders: need at least 2 players, got n = {n_players}")
    bad = [r for r in ratios if not 0 <= r <= 1]
    if bad or not len(ratios):
        raise ValueError(f"orders: ratios must be a non-empty list of values in [0, 1], got {list(ratios)}")
    return sorted({math.floor((n_players - 2) * r + 0.5) for r in ratios})


def adjacent_pairs(gh: int, gw: int) -> list[tuple[int, int]]:
    """All pairs (i, j), i < j, of horizontally or vertically neighbouring cells of a gh x gw grid."""
    pairs = [(r * gw + c, r * gw + c + 1) for r in range(gh) for c in range(gw - 1)]
    return pairs + [(r * gw + c, (r + 1) * gw + c) for r in range(gh - 1) for c in range(gw)]


def sample_pairs(gh: int, gw: int, count: int, generator: torch.Generator, adjacent: bool = True) -> torch.Tensor:
    """``count`` pairs (i, j), i < j, drawn independently: uniformly among the adjacent pairs, or
    (``adjacent=False``) uniformly among all pairs of distinct cells. LongTensor (count, 2), CPU."""
    n = gh * gw
    if n < 2:
        raise ValueError(f"sample_pairs: a {gh} x {gw} grid has fewer than 2 cells")
    if adjacent:
        table = torch.tensor(adjacent_pairs(gh, gw), dtype=torch.long)
        return table[torch.randint(len(table), (count,), generator=generator)]
    i = torch.randint(n, (count,), generator=generator)
    j = torch.randint(n - 1, (count,), generator=generator)
    j = j + (j >= i).long()  # uniform over the n - 1 cells other than i
    return torch.stack([torch.minimum(i, j), torch.maximum(i, j)], 1)


def _contexts(n: int, pairs: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """One context per row of ``pairs`` (R, 2): a uniform subset of size m of N minus that pair. (R, n) bool."""
    if not 0 <= m <= n - 2:
        raise ValueError(f"order m must be in 0..{n - 2} for n = {n} players, got {m}")
    rows = torch.arange(len(pairs))
    keys = torch.rand(len(pairs), n, generator=generator)
    keys[rows, pairs[:, 0]] = 2.0  # i and j sort last, so never among the first m
    keys[rows, pairs[:, 1]] = 2.0
    masks = torch.zeros(len(pairs), n, dtype=torch.bool)
    masks[rows[:, None], keys.argsort(1)[:, :m]] = True
    return masks


def sample_contexts(n: int, i: int, j: int, m: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` contexts S drawn uniformly among the subsets of N \\ {i, j} of size m. (count, n) bool, CPU."""
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"sample_contexts: need distinct players in 0..{n - 1}, got i = {i}, j = {j}")
    return _contexts(n, torch.tensor([[i, j]]).expand(count, 2), m, generator)


def delta_masks(
    pairs: torch.Tensor, orders: Sequence[int], n_contexts: int, n: int, generator: torch.Generator
) -> torch.Tensor:
    """The masks of Delta_ij(S) for ``n_contexts`` sampled contexts per pair and order: (P, M, C, 4, n) bool, the
    last-but-one axis being S + i + j, S + i, S + j, S. Contexts are drawn order by order (one draw of P x C
    per order), so the same generator state gives the same masks."""
    pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
    rows = pairs.repeat_interleave(n_contexts, 0)  # (P * C, 2), pair-major
    s = torch.stack([_contexts(n, rows, m, generator) for m in orders], 0)  # (M, P * C, n)
    s = s.reshape(len(orders), len(pairs), n_contexts, n).transpose(0, 1)  # (P, M, C, n)
    i = torch.nn.functional.one_hot(pairs[:, 0], n).bool()[:, None, None]
    j = torch.nn.functional.one_hot(pairs[:, 1], n).bool()[:, None, None]
    return torch.stack([s | i | j, s | i, s | j, s], 3)


def deltas_from_values(values: torch.Tensor) -> torch.Tensor:
    """Delta = v(S + i + j) - v(S + i) - v(S + j) + v(S) from values (..., 4) in :func:`delta_masks`' order."""
    return values[..., 0] - values[..., 1] - values[..., 2] + values[..., 3]


# --------------------------------------------------------------------------------------------- masking


def _bounds(size: int, cells: int) -> torch.Tensor:
    """The cell of each of ``size`` pixels along one axis: cell k covers [k size // cells, (k+1) size // cells)."""
    if cells > size:
        raise ValueError(f"grid larger than the image: {cells} cells along an axis of {size} pixels")
    widths = [(k + 1) * size // cells - k * size // cells for k in range(cells)]
    return torch.repeat_interleave(torch.arange(cells), torch.tensor(widths))


def cell_index(gh: int, gw: int, H: int, W: int) -> torch.Tensor:
    """The player (row * gw + col) of every pixel: LongTensor (H, W)."""
    return _bounds(H, gh)[:, None] * gw + _bounds(W, gw)[None, :]


def cell_masks_to_pixels(masks: torch.Tensor, gh: int, gw: int, H: int, W: int) -> torch.Tensor:
    """Cell masks (K, n) bool -> pixel masks (K, 1, H, W) float, 1 where the pixel's cell is present."""
    return _pixel_masks(masks, gh, gw, H, W).float()


def _pixel_masks(masks: torch.Tensor, gh: int, gw: int, H: int, W: int) -> torch.Tensor:
    if masks.ndim != 2 or masks.shape[1] != gh * gw:
        raise ValueError(f"cell masks must be (K, {gh * gw}) for a {gh} x {gw} grid, got {tuple(masks.shape)}")
    return masks[:, cell_index(gh, gw, H, W).to(masks.device)][:, None]


def _baseline(baseline, x: torch.Tensor) -> torch.Tensor:
    """The baseline as a tensor broadcastable to x (C, H, W): a scalar, per-channel values (C,) or an image."""
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.ndim == 1:
        if len(base) != x.shape[0]:
            raise ValueError(f"baseline has {len(base)} channel values, the image {x.shape[0]} channels")
        return base[:, None, None]
    if base.ndim not in (0, 3) or (base.ndim == 3 and torch.broadcast_shapes(base.shape, x.shape) != x.shape):
        raise ValueError(f"baseline must be a scalar, (C,) or (C, H, W) = {tuple(x.shape)}, got {tuple(base.shape)}")
    return base


def masked_inputs(x: torch.Tensor, masks: torch.Tensor, gh: int, gw: int, baseline) -> torch.Tensor:
    """x (C, H, W) with, per mask (K, n), the pixels of absent cells set to the baseline: (K, C, H, W)."""
    if x.ndim != 3:
        raise ValueError(f"masked_inputs: x must be one image (C, H, W), got {tuple(x.shape)}")
    keep = _pixel_masks(masks.to(x.device), gh, gw, *x.shape[1:])
    return torch.where(keep, x, _baseline(baseline, x))


def scores(logits: torch.Tensor, label, kind: str = "log_softmax") -> torch.Tensor:
    """v of each row of logits (K, classes) for ``label`` (int or (K,)): "log_softmax" (log p(label)) or
    "logit_margin" (logit of the label minus the largest other logit). (K,)"""
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown score kind {kind!r}; choose from {', '.join(SCORE_KINDS)}")
    if kind == "logit_margin" and logits.shape[1] < 2:
        raise ValueError(f"logit_margin needs at least 2 classes, got {logits.shape[1]}")
    label = torch.as_tensor(label, device=logits.device).expand(len(logits))[:, None]
    if kind == "log_softmax":
        return logits.log_softmax(1).gather(1, label)[:, 0]
    own = logits.gather(1, label)[:, 0]
    others = logits.scatter(1, label, float("-inf")).amax(1)
    return own - others


def model_device(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """``device`` if given, else the device of the model's first parameter (CPU for a model without any)."""
    if device is not None:
        return torch.device(device)
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


class ModelSetFunction:
    """v(masks (K, n) bool) -> (K,) scores of one image's masked inputs. Identical masks are run once
    (``torch.unique``), the unique ones in batches of ``batch_size`` under no_grad on ``device``;
    ``forwards_run`` counts the masked inputs run through the model, ``forwards_needed`` those asked for."""

    def __init__(self, model, x, label, grid, baseline, kind="log_softmax", batch_size=512, device=None):
        if kind not in SCORE_KINDS:
            raise ValueError(f"unknown score kind {kind!r}; choose from {', '.join(SCORE_KINDS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = model_device(model, device)
        self.gh, self.gw = grid_shape(grid)
        first = next(model.parameters(), None)
        dtype = first.dtype if first is not None and x.is_floating_point() else x.dtype
        self.x = x.to(self.device, dtype)
        cell_index(self.gh, self.gw, *self.x.shape[1:])  # a grid larger than the image fails here
        self.model, self.label, self.kind, self.batch_size = model, int(label), kind, batch_size
        self.baseline = _baseline(baseline, self.x)
        self.forwards_run = self.forwards_needed = 0

    @property
    def n(self) -> int:
        return self.gh * self.gw

    @torch.no_grad()
    def __call__(self, masks: torch.Tensor) -> torch.Tensor:
        masks = masks.to(self.device, torch.bool)
        if not len(masks):
            return torch.zeros(0, device=self.device, dtype=self.x.dtype)
        unique, inverse = torch.unique(masks, dim=0, return_inverse=True)
        out = []
        with frozen_on(self.model, self.device) as net:
            for start in range(0, len(unique), self.batch_size):
                batch = masked_inputs(self.x, unique[start : start + self.batch_size], self.gh, self.gw, self.baseline)
                out.append(scores(net(batch), self.label, self.kind))
        self.forwards_run += len(unique)
        self.forwards_needed += len(masks)
        return torch.cat(out)[inverse]


def model_set_function(model, x, label, grid, baseline, kind="log_softmax", batch_size=512, device=None):
    """The set function v of one image x (C, H, W) with its label: see :class:`ModelSetFunction`."""
    return ModelSetFunction(model, x, label, grid, baseline, kind, batch_size, device)


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device=None) -> torch.Tensor:
    """The model's predicted class of each image, in batches on ``device``: LongTensor (N,), CPU."""
    device = model_device(model, device)
    with frozen_on(model, device) as net:
        return torch.cat([net(x[s : s + batch_size].to(device)).argmax(1).cpu() for s in range(0, len(x), batch_size)])


def correctly_classified(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256, device=None):
    """Which images the model classifies correctly (the estimator's images): bool (N,), CPU."""
    return predictions(model, x, batch_size, device) == torch.as_tensor(y).cpu()


# --------------------------------------------------------------------------------------------- estimator


def interaction_deltas(
    v: SetFunction, pairs: torch.Tensor, orders: Sequence[int], n_contexts: int, n: int, generator: torch.Generator
) -> torch.Tensor:
    """Delta_ij(S) for ``n_contexts`` uniform contexts S per pair (P, 2) and order: (P, M, C). All 4 P M C masks
    (:func:`delta_masks`) go to v in ONE call, so a deduplicating v runs each distinct mask once."""
    masks = delta_masks(pairs, orders, n_contexts, n, generator)
    values = v(masks.reshape(-1, n))
    return deltas_from_values(values.reshape(*masks.shape[:-1]))


@dataclass(frozen=True)
class Interactions:
    """Monte-Carlo multi-order interactions of a set of images (Ren et al. 2021).

    ``interactions[b, p, k]`` estimates I^(orders[k])(pairs[b, p]) on image b as the mean of ``deltas[b, p, k]``
    (its contexts); ``std`` is their sample standard deviation (NaN with one context), ``ratios`` = r = m / (n - 2),
    the order's ratio as the config names it (m = round((n - 2) r))."""

    orders: list[int]
    ratios: torch.Tensor  # (M,) float64, r = m / (n - 2)
    interactions: torch.Tensor  # (n_images, P, M)
    std: torch.Tensor  # (n_images, P, M)
    deltas: torch.Tensor  # (n_images, P, M, C)
    pairs: torch.Tensor  # (n_images, P, 2)
    forwards_run: int
    forwards_needed: int

    @property
    def stderr(self) -> torch.Tensor:
        """Standard error of each estimate: std / sqrt(contexts)."""
        return self.std / math.sqrt(self.deltas.shape[-1])


def estimate_interactions(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    grid: int | Sequence[int],
    ratios: Sequence[float],
    n_pairs: int,
    n_contexts: int,
    baseline,
    generator: torch.Generator,
    kind: str = "log_softmax",
    adjacent: bool = True,
    batch_size: int = 512,
    device=None,
) -> Interactions:
    """I^(m)(i, j | x) for each image (N, C, H, W) (the caller passes correctly classified ones), ``n_pairs``
    sampled pairs per image and each order of :func:`orders`, from ``n_contexts`` contexts each.

    Per image, in turn: the pairs (:func:`sample_pairs`), then the contexts (:func:`delta_masks`), drawn from
    the CPU ``generator``; the model runs on ``device`` (default: its own) in eval mode, left as it was."""
    if n_pairs < 1 or n_contexts < 1:
        raise ValueError(f"n_pairs ({n_pairs}) and n_contexts ({n_contexts}) must be >= 1")
    gh, gw = grid_shape(grid)
    n = gh * gw
    ms = orders(n, ratios)
    device = model_device(model, device)
    all_deltas, all_pairs, run, needed = [], [], 0, 0
    with frozen_on(model, device) as net:
        for x, y in zip(images, torch.as_tensor(labels).tolist()):
            v = model_set_function(net, x, y, (gh, gw), baseline, kind, batch_size, device)
            pairs = sample_pairs(gh, gw, n_pairs, generator, adjacent)
            all_deltas.append(interaction_deltas(v, pairs, ms, n_contexts, n, generator).cpu())
            all_pairs.append(pairs)
            run, needed = run + v.forwards_run, needed + v.forwards_needed
    deltas = torch.stack(all_deltas) if all_deltas else torch.zeros(0, n_pairs, len(ms), n_contexts)
    if n_contexts > 1:
        std = deltas.std(-1, correction=1)
    else:
        std = torch.full(deltas.shape[:-1], float("nan"), dtype=deltas.dtype)
    return Interactions(
        orders=ms,
        ratios=torch.tensor(ms, dtype=torch.float64) / (n - 2),
        interactions=deltas.mean(-1),
        std=std,
        deltas=deltas,
        pairs=torch.stack(all_pairs) if all_pairs else torch.zeros(0, n_pairs, 2, dtype=torch.long),
        forwards_run=run,
        forwards_needed=needed,
    )


# --------------------------------------------------------------------------------------------- exact oracle


def _check_exact(n: int) -> None:
    if not 2 <= n <= MAX_EXACT_PLAYERS:
        raise ValueError(f"exact interactions enumerate all 2^n subsets: need 2 <= n <= {MAX_EXACT_PLAYERS}, "
                         f"got n = {n}")  # fmt: skip


def _all_values(v: SetFunction, n: int) -> torch.Tensor:
    """v of every subset, indexed by its bit mask (bit k = player k): float64 (2^n,), CPU."""
    codes = torch.arange(2**n)
    masks = (codes[:, None] >> torch.arange(n)) & 1 == 1
    return v(masks).detach().double().cpu()


def interaction_exact(v: SetFunction, n: int, i: int, j: int, m: int) -> float:
    """I^(m)(i, j): the mean of Delta_ij(S) over every S subset of N \\ {i, j} with |S| = m (n <= 10)."""
    _check_exact(n)
    if i == j or not (0 <= i < n and 0 <= j < n) or not 0 <= m <= n - 2:
        raise ValueError(f"interaction_exact: need distinct i, j in 0..{n - 1} and m in 0..{n - 2}, got {i}, {j}, {m}")
    rest = [k for k in range(n) if k not in (i, j)]
    s = torch.zeros(math.comb(n - 2, m), n, dtype=torch.bool)
    for row, subset in enumerate(itertools.combinations(rest, m)):
        s[row, list(subset)] = True
    pi, pj = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    pi[i], pj[j] = True, True
    values = v(torch.stack([s | pi | pj, s | pi, s | pj, s], 1).reshape(-1, n)).detach().double().cpu()
    return float(deltas_from_values(values.reshape(-1, 4)).mean())


def interactions_exact(v: SetFunction, n: int) -> torch.Tensor:
    """I^(m)(i, j) for m = 0..n-2 and all i, j: float64 (n - 1, n, n), symmetric, 0 on the diagonal
    (undefined there). v is called once, on all 2^n subsets (n <= 10)."""
    _check_exact(n)
    table = _all_values(v, n)
    out = torch.zeros(n - 1, n, n, dtype=torch.float64)
    for i, j in itertools.combinations(range(n), 2):
        rest = [k for k in range(n) if k not in (i, j)]
        bi, bj = 1 << i, 1 << j
        for m in range(n - 1):
            codes = torch.tensor([sum(1 << k for k in c) for c in itertools.combinations(rest, m)])
            delta = table[codes | bi | bj] - table[codes | bi] - table[codes | bj] + table[codes]
            out[m, i, j] = out[m, j, i] = delta.mean()
    return out


def decomposition_sides(v: SetFunction, n: int) -> tuple[float, float]:
    """Both sides of the identity v(N) - v({}) - sum_i (v({i}) - v({})) = sum over ordered pairs i != j and
    m = 0..n-2 of (n - 1 - m) / (n (n - 1)) I^(m)(i, j), from the exact interactions (n <= 10)."""
    _check_exact(n)
    table = _all_values(v, n)
    singles = table[1 << torch.arange(n)]
    lhs = table[-1] - table[0] - (singles - table[0]).sum()
    weights = (n - 1 - torch.arange(n - 1, dtype=torch.float64)) / (n * (n - 1))
    rhs = (weights[:, None, None] * interactions_exact(lambda masks: table[_codes(masks)], n)).sum()
    return float(lhs), float(rhs)


def _codes(masks: torch.Tensor) -> torch.Tensor:
    return (masks.long() << torch.arange(masks.shape[1])).sum(1)


# --------------------------------------------------------------------------------------------- summaries


def interaction_strength(interactions: torch.Tensor) -> torch.Tensor:
    """Ren et al.'s strength of order m: the mean of |I^(m)(i, j | x)| over images and pairs. (N, P, M) -> (M,)"""
    return interactions.abs().flatten(0, -2).mean(0)


def normalised_profile(strength):
    """The strength divided by its mean over orders, the last axis (a profile comparable across models); a
    tensor or an array (e.g. bootstrap draws x orders)."""
    return strength / strength.mean(-1, keepdims=True)


def high_order_share(strength: torch.Tensor, ratios, threshold: float = 0.7) -> float:
    """The share of the total strength (summed over the orders given) carried by orders with ratio >= threshold,
    ``ratios`` being the orders' ratios as given (e.g. :class:`Interactions`' r)."""
    return float(high_order_shares(np.asarray(strength, dtype=np.float64), ratios, threshold))


# --------------------------------------------------------------------------------------------- one model


PROFILE_COLUMNS = ["image", "order", "order_ratio", "clean", "adversarial", "change"]


def clean_and_adversarial_profile(
    model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor, grid, ratios: Sequence[float],
    n_pairs: int, n_contexts: int, baseline, seed: int, kind: str = "log_softmax", batch_size: int = 512, device=None,
) -> list[dict]:
    """Per image and order: the strength mean_pairs |I^(m)(i, j | x)| on the clean images (``clean``), on their
    adversarial examples (``adversarial``) and the attack-induced change mean_pairs |I^(m)(x_adv) - I^(m)(x)|
    (``change``). Both use the same label, baseline, pairs and contexts (one seed), so the change is paired."""
    common = dict(grid=grid, ratios=ratios, n_pairs=n_pairs, n_contexts=n_contexts, baseline=baseline, kind=kind,
                  batch_size=batch_size, device=device)  # fmt: skip
    clean = estimate_interactions(model, x, labels, generator=torch.Generator().manual_seed(seed), **common)
    adv = estimate_interactions(model, x_adv, labels, generator=torch.Generator().manual_seed(seed), **common)
    assert torch.equal(clean.pairs, adv.pairs)  # the same draws
    strength_clean = clean.interactions.abs().mean(1)  # (N, M)
    strength_adv = adv.interactions.abs().mean(1)
    change = (adv.interactions - clean.interactions).abs().mean(1)
    return [
        {"image": b, "order": m, "order_ratio": float(clean.ratios[k]), "clean": float(strength_clean[b, k]),
         "adversarial": float(strength_adv[b, k]), "change": float(change[b, k])}
        for b in range(len(x)) for k, m in enumerate(clean.orders)
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------- summaries
# Frames of profile rows (PROFILE_COLUMNS) with a ``seed`` column, one model kind (e.g. a scheme on one side)
# at a time. Intervals: a two-level bootstrap, seeds with replacement, then each drawn seed's images with
# replacement (images of one model share its training; the seeds are the independent units).


def per_image_matrix(frame, column: str):
    """{seed: (images, orders) array of ``column``} and the orders' r, from profile rows."""
    table = frame.pivot_table(index=["seed", "image"], columns="order_ratio", values=column, aggfunc="first")
    table = table.sort_index(axis=1)
    groups = {s: np.asarray(part.to_numpy(dtype=float)) for s, part in table.groupby(level="seed")}
    return groups, np.asarray(table.columns, dtype=float)


def bootstrap_order_means(groups: dict, n_boot: int, seed: int):
    """Draws (n_boot, orders) of the mean over images of each order under the two-level bootstrap of
    ``groups`` ({seed: (images, orders)}). With one seed only its images are resampled."""
    rng = np.random.default_rng(seed)
    arrays = [groups[s] for s in sorted(groups)]
    n_seeds, n_orders = len(arrays), arrays[0].shape[1]
    picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    sums, counts = np.zeros((n_boot, n_orders)), np.zeros(n_boot)
    for k in range(n_seeds):  # k-th drawn seed of every draw
        for s, values in enumerate(arrays):
            rows = np.flatnonzero(picks[:, k] == s)
            if len(rows):
                idx = rng.integers(0, len(values), size=(len(rows), len(values)))
                sums[rows] += values[idx].sum(1)
                counts[rows] += len(values)
    return sums / counts[:, None]


def order_means(groups: dict):
    """The mean over all images (every seed) of each order: (orders,)."""
    return np.concatenate([groups[s] for s in sorted(groups)]).mean(0)


def high_order_shares(strength_means, order_ratio, high: float):
    """The share of the summed strength over orders (the last axis) carried by the orders with r >= ``high``
    (up to float rounding of r), for every leading index (e.g. bootstrap draws)."""
    hi = np.asarray(order_ratio) >= high - 1e-12
    return strength_means[..., hi].sum(-1) / strength_means.sum(-1)


def percentile_interval(draws, level: float) -> tuple[float, float]:
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return math.nan, math.nan
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def order_summary(profiles, n_boot: int, level: float, seed: int):
    """interactions.csv: per (side, group) and order, over all images and seeds of the group's models: the
    mean strength on clean images (``clean``) and on adversarial ones (``adversarial``), the normalised clean
    profile (strength / its mean over orders, ``profile``), the attack-induced change (``change``) and the
    change over the clean strength (``relative_change``); ``*_lo`` / ``*_hi``: the two-level bootstrap interval
    (seeds, then images). ``profiles``: profile rows with side, group, seed columns."""
    out = []
    for (side, group), frame in profiles.groupby(["side", "group"], sort=False):
        matrices = {c: per_image_matrix(frame, c) for c in ("clean", "adversarial", "change")}
        groups, order_ratio = {c: g for c, (g, _) in matrices.items()}, matrices["clean"][1]
        orders_ = frame.drop_duplicates("order_ratio").sort_values("order_ratio")["order"].to_numpy()
        point = {c: order_means(g) for c, g in groups.items()}
        draws = {c: bootstrap_order_means(g, n_boot, seed) for c, g in groups.items()}  # same seed: same draws
        point["profile"], draws["profile"] = normalised_profile(point["clean"]), normalised_profile(draws["clean"])
        point["relative_change"] = point["change"] / point["clean"]
        draws["relative_change"] = draws["change"] / draws["clean"]
        counts = {
            "n_seeds": int(frame["seed"].nunique()),
            "n_images": int(frame.groupby("seed")["image"].nunique().sum()),
        }
        for k, m in enumerate(orders_):
            row = {"side": side, "group": group, "order": int(m), "order_ratio": float(order_ratio[k]), **counts}
            for c in ("clean", "adversarial", "profile", "change", "relative_change"):
                row[c] = float(point[c][k])
                row[f"{c}_lo"], row[f"{c}_hi"] = percentile_interval(draws[c][:, k], level)
            out.append(row)
    return pd.DataFrame(out)


def model_shares(profiles, high: float):
    """Per model (side, group, seed): the high-order share of its clean strength, and of the attack-induced
    change (the share of the change at r >= ``high``)."""
    rows = []
    for (side, group, seed), frame in profiles.groupby(["side", "group", "seed"], sort=False):
        means = frame.groupby("order_ratio")[["clean", "change"]].mean().sort_index()
        order_ratio = means.index.to_numpy()
        rows.append({"side": side, "group": group, "seed": seed,
                     "high_order_share": float(high_order_shares(means["clean"].to_numpy(), order_ratio, high)),
                     "change_high_order_share":
                         float(high_order_shares(means["change"].to_numpy(), order_ratio, high))})  # fmt: skip
    return pd.DataFrame(rows)
