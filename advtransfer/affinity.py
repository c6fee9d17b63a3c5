"""Knowledge transfer among tasks (Section 4.4, Figure 4, Figure 5 and appendix). No torch.

The paper compares two N x N matrices over a set of tasks, both built with the ordinal normalisation of
Taskonomy (Zamir et al., 2018, Section 3.3):

* the adversarial transferability matrix (ATM): for target task T, source i beats source k on image n when
  T's loss rises more at source i's adversarial example of x_n than at source k's; the tournament of these
  wins, turned into a ratio matrix, has a principal (Perron) eigenvector which is column T of the ATM;
* the knowledge-transfer affinity matrix: the same, but source i beats source k when the readout from
  source i's frozen encoder to target T has the LOWER test loss on image n.

Columns are then clustered into task trees (``task_linkage``), trees are cut into flat clusters
(``cut_tree_labels``) and compared with the adjusted Rand index and with the inner-category entropy of
Figure 5; the two matrices are correlated with a Mantel permutation test (``mantel``).

Conventions: arrays are indexed ``[source, target, image]``; every column of ``transfer_matrix`` and
``affinity_matrix`` is positive and sums to 1; entropies use the natural logarithm (nats).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats as sps
from scipy.cluster.hierarchy import is_valid_linkage, linkage
from sklearn.metrics import adjusted_rand_score

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_CLIP = 1e3  # ratios w(i, k) / w(k, i) are kept in [1 / DEFAULT_CLIP, DEFAULT_CLIP]
_MANTEL_CHUNK = 512  # permutations evaluated at once (bounds memory at chunk * N^2 floats)
_TIE_TOL = 1e-12  # a permuted statistic within this of the observed one counts as ">=" (float noise)


# --------------------------------------------------------------------------------------------------------------
# Tournament and ordinal normalisation (Taskonomy, Sec. 3.3)
# --------------------------------------------------------------------------------------------------------------


def tournament_matrix(gains_T) -> np.ndarray:
    """Tournament w(i, k) for one target T: the share of images where source i's value exceeds source k's.

    ``gains_T`` has shape (N_sources, n_images); for the ATM its entries are the loss increases
    loss_T(x_n + delta_i(x_n)) - loss_T(x_n). w(i, k) = mean_n [g_in > g_kn] + 1/2 [g_in == g_kn], so ties
    count one half, w(i, i) = 1/2 and w(i, k) + w(k, i) = 1. Only the order of the values matters, hence w is
    unchanged by any strictly increasing transform applied to all sources alike. NaN is rejected (+-inf is
    compared as usual).
    """
    g = np.asarray(gains_T, dtype=float)
    if g.ndim != 2:
        raise ValueError(f"gains_T must have shape (n_sources, n_images), got {g.shape}")
    if g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"need at least one source and one image, got shape {g.shape}")
    if np.isnan(g).any():
        raise ValueError("gains_T contains NaN")
    a, b = g[:, None, :], g[None, :, :]  # (S, 1, n), (1, S, n): broadcast over source pairs, no loop over images
    wins = np.count_nonzero(a > b, axis=-1)
    ties = np.count_nonzero(a == b, axis=-1)
    return (wins + 0.5 * ties) / g.shape[1]


def ratio_matrix(w, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Taskonomy's ratio matrix W'(i, k) = w(i, k) / w(k, i), kept finite by clipping.

    w is first clipped to [eps, 1 - eps] with eps = 1 / (1 + clip), so w = 0 or w = 1 (one source wins on every
    image) give finite ratios; for a tournament (w(k, i) = 1 - w(i, k)) the ratios then lie exactly in
    [1 / clip, clip]. The ratios are clipped to [1 / clip, clip] as well, for general inputs. W'(i, i) = 1.
    """
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 1:
        raise ValueError(f"w must be a square (N, N) matrix, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or (w > 1).any():
        raise ValueError("w must hold shares in [0, 1]")
    if not (np.isfinite(clip) and clip > 1):
        raise ValueError(f"clip must be a finite number > 1, got {clip}")
    eps = 1.0 / (1.0 + clip)
    wc = np.clip(w, eps, 1.0 - eps)
    return np.clip(wc / wc.T, 1.0 / clip, clip)


def _perron_vector(m: np.ndarray) -> np.ndarray:
    """Principal eigenvector of a positive square matrix, made positive and normalised to sum 1."""
    values, vectors = np.linalg.eig(m)
    v = np.abs(vectors[:, int(np.argmax(values.real))].real)  # Perron root: real, simple, largest real part
    v = m @ (v / v.sum())  # one power step: strictly positive even where round-off left an entry at ~0
    return v / v.sum()


def ordinal_normalise(w, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Ordinal normalisation of a tournament (Taskonomy Sec. 3.3): the Perron vector of ``ratio_matrix(w, clip)``.

    Returns a positive (N,) vector summing to 1; entry i is source i's standing against all others (a source
    winning every pair gets the largest entry, identical sources get equal entries).
    """
    return _perron_vector(ratio_matrix(w, clip))


def _normalised_columns(values, clip: float) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 3:
        raise ValueError(f"expected shape (n_sources, n_targets, n_images), got {v.shape}")
    out = np.empty(v.shape[:2])
    for t in range(v.shape[1]):  # one tournament per target: memory S * S * n, not S * S * T * n
        out[:, t] = ordinal_normalise(tournament_matrix(v[:, t, :]), clip)
    return out


def transfer_matrix(gains, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Adversarial transferability matrix (ATM), shape (N_sources, N_targets).

    ``gains[i, T, n]`` = loss_T(x_n + delta_i(x_n)) - loss_T(x_n); column T is
    ``ordinal_normalise(tournament_matrix(gains[:, T, :]), clip)``: a larger entry means source i's adversarial
    examples hurt T more often than the other sources' do. Whatever sources are given (including T itself) take
    part in the tournament.
    """
    return _normalised_columns(gains, clip)


def affinity_matrix(losses, clip: float = DEFAULT_CLIP) -> np.ndarray:
    """Knowledge-transfer affinity matrix, shape (N_sources, N_targets).

    ``losses[i, T, n]`` is the test loss on image n of the readout from source i's frozen encoder to target T;
    source i beats source k on an image when its loss is LOWER (ties half), i.e. the tournament of ``-losses``.
    A larger entry means source i transfers knowledge to T better.
    """
    return _normalised_columns(-np.asarray(losses, dtype=float), clip)


# --------------------------------------------------------------------------------------------------------------
# Task trees and their agreement (Figure 4, Figure 5)
# --------------------------------------------------------------------------------------------------------------


def task_linkage(matrix, method: str = "average", metric: str = "correlation") -> np.ndarray:
    """Agglomerative task tree: ``scipy.cluster.hierarchy.linkage`` over the COLUMNS of ``matrix``.

    Each target task's column (its profile over sources) is its feature vector, as in Taskonomy's task
    similarity tree. Defaults: average linkage, correlation distance (1 - Pearson r of the columns). Correlation
    is undefined for a constant column (e.g. a uniform ATM column): use ``metric="euclidean"`` then. ``ward``,
    ``centroid`` and ``median`` require the euclidean metric.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError(f"matrix must be 2-D with at least two columns (tasks), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrix must be finite")
    if metric == "correlation" and np.any(np.ptp(m, axis=0) == 0):
        raise ValueError("a column is constant, its correlation distance is undefined; use metric='euclidean'")
    return linkage(m.T, method=method, metric=metric)


def cut_tree_labels(link, k: int) -> np.ndarray:
    """Flat clusters with exactly ``k`` clusters: the partition before the last k - 1 merges of the tree.

    Labels are 0..k-1, numbered by first appearance (leaf 0 is in cluster 0). Unlike ``fcluster(maxclust)``
    this always gives exactly k clusters, even with tied merge heights, and it is correct for non-monotone
    trees (centroid / median) too.
    """
    z = np.asarray(link, dtype=float)
    is_valid_linkage(z, throw=True, name="link")
    n = z.shape[0] + 1
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    parent = list(range(2 * n - 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for step in range(n - int(k)):
        ra, rb = root(int(z[step, 0])), root(int(z[step, 1]))
        parent[ra] = parent[rb] = n + step  # the merged cluster gets id n + step, as in scipy's linkage
    roots = [root(i) for i in range(n)]
    first: dict[int, int] = {}
    return np.array([first.setdefault(r, len(first)) for r in roots], dtype=int)


def adjusted_rand(labels_a, labels_b) -> float:
    """Adjusted Rand index between two flat partitions (``sklearn.metrics.adjusted_rand_score``)."""
    return float(adjusted_rand_score(np.asarray(labels_a), np.asarray(labels_b)))


def _n_leaves(link) -> int:
    return int(np.asarray(link).shape[0]) + 1


def tree_agreement(link_a, link_b, ks: Iterable[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """Adjusted Rand index between the two trees cut into k clusters, for each k in ``ks`` ({k: ARI})."""
    if _n_leaves(link_a) != _n_leaves(link_b):
        raise ValueError(f"trees have {_n_leaves(link_a)} and {_n_leaves(link_b)} leaves")
    return {int(k): adjusted_rand(cut_tree_labels(link_a, k), cut_tree_labels(link_b, k)) for k in ks}


def inner_category_entropy(pred_labels: Sequence, true_kinds: Sequence) -> float:
    """Inner-category entropy (Figure 5), in nats.

    For each predicted cluster c, H_c = -sum_kind p log p over the distribution of true kinds within c; the
    result is sum_c (|c| / n) H_c, i.e. the conditional entropy H(kind | cluster). It is 0 when every cluster is
    pure and log(K) when every cluster holds the K kinds in equal numbers; divide by log(2) for bits.
    """
    pred, kinds = np.asarray(pred_labels), np.asarray(true_kinds)
    if pred.ndim != 1 or pred.shape != kinds.shape or pred.size == 0:
        raise ValueError(f"need two non-empty 1-D label arrays of equal length, got {pred.shape} and {kinds.shape}")
    _, c = np.unique(pred, return_inverse=True)
    _, t = np.unique(kinds, return_inverse=True)
    counts = np.zeros((c.max() + 1, t.max() + 1))
    np.add.at(counts, (c, t), 1)
    sizes = counts.sum(axis=1)
    p = counts / sizes[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float(np.clip((sizes / sizes.sum()) @ h, 0.0, None))


def inner_category_entropies(pred_labels: Sequence, kinds_rows) -> np.ndarray:
    """:func:`inner_category_entropy` of one clustering against each row of ``kinds_rows`` (R, n) at once (e.g.
    the kinds relabelled by permutations)."""
    _, c = np.unique(np.asarray(pred_labels), return_inverse=True)
    rows = np.atleast_2d(np.asarray(kinds_rows))
    _, t = np.unique(rows, return_inverse=True)
    t = t.reshape(rows.shape)
    counts = np.zeros((rows.shape[0], c.max() + 1, t.max() + 1))
    np.add.at(counts, (np.arange(rows.shape[0])[:, None], c[None, :], t), 1)
    sizes = counts.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / sizes[..., None]
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=2)
    return np.clip((sizes / sizes.sum(axis=1, keepdims=True) * h).sum(axis=1), 0.0, None)


def kinds_entropy_curve(link, kinds: Sequence, ks: Iterable[int] | None = None) -> dict[int, float]:
    """Figure 5 curve: ``inner_category_entropy(cut_tree_labels(link, k), kinds)`` for each k (default 1..N)."""
    n = _n_leaves(link)
    if len(kinds) != n:
        raise ValueError(f"{len(kinds)} kinds for a tree of {n} tasks")
    ks = range(1, n + 1) if ks is None else ks
    return {int(k): inner_category_entropy(cut_tree_labels(link, k), kinds) for k in ks}


# --------------------------------------------------------------------------------------------------------------
# Mantel test
# --------------------------------------------------------------------------------------------------------------


def _off_diagonal_scores(m: np.ndarray, method: str) -> np.ndarray:
    """Matrix whose off-diagonal entries are the (ranked, for Spearman) standardised off-diagonal entries of m."""
    mask = ~np.eye(m.shape[0], dtype=bool)
    x = m[mask]
    if method == "spearman":
        x = sps.rankdata(x)
    x = x - x.mean()
    scale = np.sqrt((x**2).sum())
    if scale == 0:
        raise ValueError("off-diagonal entries are constant; the correlation is undefined")
    out = np.zeros_like(m, dtype=float)
    out[mask] = x / scale
    return out


def _permuted_statistics(a, b, perms: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Correlation of a's and b[p][:, p]'s off-diagonal entries for each permutation p (rows of ``perms``)."""
    za = _off_diagonal_scores(np.asarray(a, dtype=float), method)
    zb = _off_diagonal_scores(np.asarray(b, dtype=float), method)  # ranks commute with the relabelling
    perms = np.atleast_2d(np.asarray(perms, dtype=int))
    out = np.empty(perms.shape[0])
    for start in range(0, perms.shape[0], _MANTEL_CHUNK):
        p = perms[start : start + _MANTEL_CHUNK]
        zb_p = zb[p[:, :, None], p[:, None, :]]  # rows and columns of b permuted together; diagonal stays 0
        out[start : start + len(p)] = np.einsum("pij,ij->p", zb_p, za)
    return out


def mantel(a, b, n_perm: int = 999, seed: int | np.random.Generator | None = 0,
           method: Literal["spearman", "pearson"] = "spearman") -> tuple[float, float]:  # fmt: skip
    """Mantel test of the correlation between two N x N matrices over their off-diagonal entries.

    The statistic is the Spearman (or Pearson) correlation of the N(N - 1) off-diagonal pairs (a[i, k],
    b[i, k]), i != k (both triangles, the matrices need not be symmetric). The null distribution relabels the
    tasks of b: rows and columns of b are permuted together by the same random permutation. One-sided p-value
    p = (1 + #{permuted statistic >= observed}) / (1 + n_perm) (ties within 1e-12 count). With small N there are
    only N! relabellings, so p cannot go far below 1 / N!.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(f"need two square matrices of the same shape, got {a.shape} and {b.shape}")
    if a.shape[0] < 3:
        raise ValueError("need at least 3 tasks")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("matrices must be finite")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    if n_perm < 0:
        raise ValueError("n_perm must be >= 0")
    n = a.shape[0]
    observed = float(_permuted_statistics(a, b, np.arange(n), method)[0])
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(n), (int(n_perm), 1)), axis=1)
    null = _permuted_statistics(a, b, perms, method) if n_perm else np.empty(0)
    p_value = (1 + int(np.count_nonzero(null >= observed - _TIE_TOL))) / (1 + int(n_perm))
    return observed, float(p_value)


# --------------------------------------------------------------------------------------------------------------
# The family's comparison of the task trees (Figure 4, Figure 5)
# --------------------------------------------------------------------------------------------------------------


def square(frame, value: str, tasks: Sequence[str]) -> np.ndarray:
    """A long table (columns source, target, ``value``) as the (source x target) matrix in ``tasks`` order."""
    table = frame.pivot(index="source", columns="target", values=value)
    return table.loc[list(tasks), list(tasks)].to_numpy(dtype=float)


def safe_linkage(matrix, method: str, metric: str) -> tuple[np.ndarray, str]:
    """:func:`task_linkage`, falling back to the euclidean metric when a column is constant (correlation is
    undefined there); returns the tree and the metric used."""
    try:
        return task_linkage(matrix, method, metric), metric
    except ValueError:
        if metric == "euclidean":
            raise
        return task_linkage(matrix, method, "euclidean"), "euclidean"


def compare_trees(
    views: dict[str, np.ndarray],
    reference: np.ndarray,
    kinds: Sequence[str],
    ks: Iterable[int],
    *,
    method: str = "average",
    metric: str = "correlation",
    n_perm: int = 999,
    seed: int = 0,
) -> pd.DataFrame:
    """Does each adversarial view of the tasks (``views``: name -> N x N matrix, e.g. the ATM per eps, tau1 tau2)
    group them as knowledge transfer (``reference``: the affinity matrix) and as the known ``kinds`` do?

    One row per view and k: ``ari`` (adjusted Rand index of the two trees cut into k clusters),
    ``entropy`` / ``reference_entropy`` (inner-category entropy of each tree's k clusters against the kinds:
    0 = every cluster one kind), and, per view, ``mantel`` / ``mantel_p`` (Spearman correlation of the
    off-diagonal entries with the reference's, permutation p-value) and the metric each tree used."""
    import pandas as pd

    ref_tree, ref_metric = safe_linkage(reference, method, metric)
    rows = []
    for name, matrix in views.items():
        tree, used = safe_linkage(matrix, method, metric)
        stat, p = mantel(matrix, reference, n_perm=n_perm, seed=seed)
        agreement = tree_agreement(tree, ref_tree, ks)
        for k in ks:
            rows.append(dict(
                view=name, k=int(k), ari=agreement[int(k)],
                entropy=inner_category_entropy(cut_tree_labels(tree, k), kinds),
                reference_entropy=inner_category_entropy(cut_tree_labels(ref_tree, k), kinds),
                mantel=stat, mantel_p=p, metric=used, reference_metric=ref_metric,
            ))  # fmt: skip
    return pd.DataFrame(rows)
