"""Tests of advtransfer.affinity: Taskonomy's ordinal normalisation, task trees and the Mantel test (Section 4.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.cluster.hierarchy import cut_tree, fcluster, linkage

from advtransfer import affinity
from advtransfer.affinity import (
    adjusted_rand,
    affinity_matrix,
    cut_tree_labels,
    inner_category_entropy,
    kinds_entropy_curve,
    mantel,
    ordinal_normalise,
    ratio_matrix,
    task_linkage,
    tournament_matrix,
    transfer_matrix,
    tree_agreement,
)

MONOTONE = {
    "exp": np.exp,
    "cube": lambda x: x**3,
    "affine": lambda x: 2.5 * x + 7.0,
}


def random_gains(n_sources: int = 5, n_targets: int = 3, n_images: int = 200, ties: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many ties between sources
        return rng.integers(0, 6, size=(n_sources, n_targets, n_images)).astype(float)
    return rng.normal(size=(n_sources, n_targets, n_images))


def line_tasks(n: int = 8, n_images: int = 300, noise: float = 0.3, seed: int = 0):
    """Tasks on a line, two groups of n / 2 with a gap: source i hurts / helps target T the more, the closer i is
    to T (gains, losses)."""
    rng = np.random.default_rng(seed)
    pos = np.arange(n, dtype=float) + 3.0 * (np.arange(n) >= n // 2)
    closeness = -np.abs(pos[:, None] - pos[None, :])[:, :, None]  # (source, target, 1)
    gains = closeness + noise * rng.normal(size=(n, n, n_images))
    losses = 1.0 - 0.1 * closeness + noise * rng.normal(size=(n, n, n_images))
    return gains, losses


# ----------------------------------------------------------------------------------------------------------------
# tournament_matrix
# ----------------------------------------------------------------------------------------------------------------


def test_tournament_hand_example_with_ties():
    g = np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 2.0]])  # 3 sources, 2 images
    # w(0,1): image 1 tie (1/2), image 2 win (1) -> 3/4;  w(0,2): loss, tie -> 1/4;  w(1,2): loss, loss -> 0
    expected = np.array([[0.5, 0.75, 0.25],
                         [0.25, 0.5, 0.0],
                         [0.75, 1.0, 0.5]])  # fmt: skip
    np.testing.assert_array_equal(tournament_matrix(g), expected)


@pytest.mark.parametrize("ties", [False, True])
def test_tournament_is_complementary_with_half_diagonal(ties):
    w = tournament_matrix(random_gains(6, 1, 150, ties=ties)[:, 0, :])
    assert w.shape == (6, 6)
    np.testing.assert_allclose(w + w.T, 1.0, atol=1e-12)
    np.testing.assert_array_equal(np.diag(w), 0.5)
    assert ((w >= 0) & (w <= 1)).all()


def test_tournament_matches_a_loop_over_images():
    g = random_gains(4, 1, 50, ties=True, seed=3)[:, 0, :]
    loop = np.zeros((4, 4))
    for i in range(4):
        for k in range(4):
            loop[i, k] = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(g[i], g[k])])
    np.testing.assert_allclose(tournament_matrix(g), loop, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_tournament_and_column_invariant_to_monotone_transform(name, ties):
    g = random_gains(5, 3, 200, ties=ties, seed=1)
    h = MONOTONE[name](g)
    for t in range(g.shape[1]):
        np.testing.assert_array_equal(tournament_matrix(h[:, t, :]), tournament_matrix(g[:, t, :]))
    np.testing.assert_array_equal(transfer_matrix(h), transfer_matrix(g))


def test_column_invariant_to_a_different_transform_per_target():
    g = random_gains(5, 3, 200, seed=2)
    h = g.copy()
    for t, name in enumerate(sorted(MONOTONE)):
        h[:, t, :] = MONOTONE[name](g[:, t, :])
    np.testing.assert_array_equal(transfer_matrix(h), transfer_matrix(g))


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 3, 4)), np.zeros((3, 0)), np.array([[0.0, np.nan]])])
def test_tournament_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        tournament_matrix(bad)


# ----------------------------------------------------------------------------------------------------------------
# ratio_matrix / ordinal_normalise
# ----------------------------------------------------------------------------------------------------------------


def test_consistent_hand_example_from_gains():
    # A wins 3 of 4 images against B and against C; B and C win 2 each against one another.
    gains = np.array([[5.0, 5.0, 5.0, -1.0],   # A
                      [1.0, 2.0, 0.0, 3.0],    # B
                      [2.0, 1.0, 3.0, 0.0]])   # C  # fmt: skip
    w = tournament_matrix(gains)
    np.testing.assert_array_equal(w, [[0.5, 0.75, 0.75], [0.25, 0.5, 0.5], [0.25, 0.5, 0.5]])
    # W' = [[1, 3, 3], [1/3, 1, 1], [1/3, 1, 1]] has rank one: eigenvalue 3, eigenvector (1, 1/3, 1/3) ~ (3, 1, 1)
    np.testing.assert_allclose(ratio_matrix(w), [[1, 3, 3], [1 / 3, 1, 1], [1 / 3, 1, 1]], rtol=1e-12)
    np.testing.assert_allclose(ordinal_normalise(w), [3 / 5, 1 / 5, 1 / 5], rtol=1e-10)
    np.testing.assert_allclose(transfer_matrix(gains[:, None, :])[:, 0], [3 / 5, 1 / 5, 1 / 5], rtol=1e-10)


def test_hand_example_where_the_clip_matters():
    w = tournament_matrix(np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 2.0]]))  # w(1, 2) = 0: source 2 always wins
    # clip 9: eps = 1/10, so W'(1, 2) = 0.1 / 0.9 = 1/9 and W'(2, 1) = 9; with W'(0, 1) = 3, W'(0, 2) = 1/3 the
    # matrix is consistent (W'(i, k) = v_i / v_k) with v ~ (1, 1/3, 3) -> (3, 1, 9) / 13.
    r = ratio_matrix(w, clip=9)
    np.testing.assert_allclose(r, [[1, 3, 1 / 3], [1 / 3, 1, 1 / 9], [3, 9, 1]], rtol=1e-12)
    np.testing.assert_allclose(ordinal_normalise(w, clip=9), [3 / 13, 1 / 13, 9 / 13], rtol=1e-10)


def test_intransitive_cycle_gives_uniform_vector():
    w = np.array([[0.5, 0.75, 0.25], [0.25, 0.5, 0.75], [0.75, 0.25, 0.5]])  # A > B > C > A, each 3/4
    r = ratio_matrix(w)  # circulant [[1, 3, 1/3], [1/3, 1, 3], [3, 1/3, 1]]: Perron root 13/3, vector uniform
    assert np.max(np.linalg.eigvals(r).real) == pytest.approx(13 / 3)
    np.testing.assert_allclose(ordinal_normalise(w), [1 / 3] * 3, rtol=1e-10)


@pytest.mark.parametrize("clip", [9.0, 1e3, 1e6])
def test_dominating_source_against_tied_others_by_hand(clip):
    w = np.array([[0.5, 1.0, 1.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    r = ratio_matrix(w, clip)
    assert r.max() == pytest.approx(clip) and r.min() == pytest.approx(1 / clip)
    # consistent matrix with v ~ (clip, 1, 1)
    np.testing.assert_allclose(ordinal_normalise(w, clip), np.array([clip, 1, 1]) / (clip + 2), rtol=1e-8)


def test_ratio_clip_bounds_general_input():
    w = np.array([[0.5, 0.99999], [0.2, 0.5]])  # not a tournament (w + w.T != 1)
    r = ratio_matrix(w, clip=4)
    assert r.max() <= 4 and r.min() >= 0.25
    np.testing.assert_array_equal(np.diag(r), 1.0)


def test_uniform_tournament_and_single_source():
    np.testing.assert_allclose(ordinal_normalise(np.full((4, 4), 0.5)), [0.25] * 4, rtol=1e-12)
    np.testing.assert_array_equal(ordinal_normalise(np.array([[0.5]])), [1.0])


def test_vector_is_perron_vector_of_ratio_matrix():
    w = tournament_matrix(random_gains(7, 1, 40, seed=4)[:, 0, :])
    r, v = ratio_matrix(w), ordinal_normalise(w)
    lam = np.max(np.linalg.eigvals(r).real)
    assert lam >= 7 - 1e-9  # Saaty: a positive reciprocal matrix has Perron root >= N
    np.testing.assert_allclose(r @ v, lam * v, rtol=1e-9)
    x = np.ones(7)  # power iteration reaches the same vector
    for _ in range(500):
        x = r @ x
        x /= x.sum()
    np.testing.assert_allclose(v, x, rtol=1e-8)


@pytest.mark.parametrize(
    "w, clip",
    [(np.zeros((2, 3)), 1e3), (np.array([[0.5, 1.2], [-0.2, 0.5]]), 1e3), (np.full((2, 2), 0.5), 1.0),
     (np.full((2, 2), 0.5), np.inf), (np.array([[0.5, np.nan], [0.5, 0.5]]), 1e3)],
)  # fmt: skip
def test_ordinal_normalise_rejects_bad_input(w, clip):
    with pytest.raises(ValueError):
        ordinal_normalise(w, clip)


# ----------------------------------------------------------------------------------------------------------------
# transfer_matrix / affinity_matrix
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_columns_positive_and_sum_to_one(ties):
    m = transfer_matrix(random_gains(6, 4, 100, ties=ties, seed=5))
    assert m.shape == (6, 4)
    assert (m > 0).all()
    np.testing.assert_allclose(m.sum(axis=0), 1.0, rtol=1e-12)


def test_non_square_shapes():
    assert transfer_matrix(random_gains(3, 5, 20)).shape == (3, 5)
    assert affinity_matrix(random_gains(5, 2, 20)).shape == (5, 2)


def test_dominating_source_ranked_first():
    g = random_gains(6, 3, 100, seed=6)
    g[4] = g.max(axis=0) + 0.01  # source 4 raises every target's loss most on every image
    w = tournament_matrix(g[:, 0, :])
    assert (np.delete(w[4], 4) == 1).all()
    m = transfer_matrix(g)
    assert (m.argmax(axis=0) == 4).all()
    assert (m[4] > np.delete(m, 4, axis=0).max(axis=0)).all()


def test_larger_clip_gives_dominating_source_a_larger_share():
    g = random_gains(5, 1, 100, seed=7)
    g[0] = g.max(axis=0) + 1
    shares = [transfer_matrix(g, clip=c)[0, 0] for c in (10.0, 100.0, 1e3, 1e4)]
    assert np.all(np.diff(shares) > 0)


def test_identical_sources_get_identical_entries():
    g = random_gains(5, 3, 100, seed=8)
    g[3] = g[1]
    m = transfer_matrix(g)
    np.testing.assert_allclose(m[3], m[1], rtol=1e-10)


def test_permuting_sources_permutes_columns():
    g = random_gains(6, 3, 100, seed=9)
    perm = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_allclose(transfer_matrix(g[perm]), transfer_matrix(g)[perm], rtol=1e-10)


def test_columns_are_independent_of_other_targets():
    g = random_gains(4, 3, 60, seed=10)
    m = transfer_matrix(g)
    for t in range(3):
        np.testing.assert_array_equal(transfer_matrix(g[:, t : t + 1, :])[:, 0], m[:, t])


def test_affinity_prefers_lower_loss_and_reuses_the_tournament():
    rng = np.random.default_rng(11)
    losses = rng.uniform(0.5, 2.0, size=(5, 3, 80))
    losses[2] = losses.min(axis=0) - 0.1  # source 2's readout has the lowest loss on every image
    a = affinity_matrix(losses)
    np.testing.assert_array_equal(a, transfer_matrix(-losses))
    assert (a.argmax(axis=0) == 2).all()
    np.testing.assert_allclose(a.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(affinity_matrix(np.log(losses)), a)  # monotone transform of the losses


def test_matrices_reject_wrong_ndim():
    with pytest.raises(ValueError):
        transfer_matrix(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        affinity_matrix(np.zeros((3, 4)))


# ----------------------------------------------------------------------------------------------------------------
# task_linkage / cut_tree_labels
# ----------------------------------------------------------------------------------------------------------------


def two_family_matrix(seed: int = 12) -> np.ndarray:
    """6 sources x 6 targets: targets 0-2 profit from sources 0-2, targets 3-5 from sources 3-5."""
    rng = np.random.default_rng(seed)
    block = np.kron(np.eye(2), np.ones((3, 3)))
    m = 0.05 + block + 0.1 * rng.uniform(size=(6, 6))
    return m / m.sum(axis=0)


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_linkage_clusters_columns(metric):
    m = two_family_matrix()
    z = task_linkage(m, metric=metric)
    np.testing.assert_allclose(z, linkage(m.T, method="average", metric=metric))
    np.testing.assert_array_equal(cut_tree_labels(z, 2), [0, 0, 0, 1, 1, 1])


def test_linkage_uses_columns_not_rows():
    rng = np.random.default_rng(13)
    m = rng.uniform(size=(5, 4))  # 5 sources, 4 target tasks -> a tree over 4 tasks
    assert task_linkage(m).shape == (3, 4)
    assert task_linkage(m, method="ward", metric="euclidean").shape == (3, 4)


def test_linkage_rejects_constant_column_under_correlation():
    m = two_family_matrix()
    m[:, 2] = 1 / 6
    with pytest.raises(ValueError, match="euclidean"):
        task_linkage(m)
    assert task_linkage(m, metric="euclidean").shape == (5, 4)


def test_linkage_rejects_single_task_and_nan():
    with pytest.raises(ValueError):
        task_linkage(np.ones((3, 1)))
    with pytest.raises(ValueError):
        task_linkage(np.array([[0.1, np.nan], [0.9, 0.5]]))


def test_cut_gives_exactly_k_nested_canonical_clusters():
    rng = np.random.default_rng(14)
    z = linkage(rng.normal(size=(9, 3)), method="average")
    previous = None
    for k in range(1, 10):
        labels = cut_tree_labels(z, k)
        assert labels[0] == 0
        assert sorted(set(labels)) == list(range(k))
        first = [labels[i] for i in sorted({int(np.argmax(labels == c)) for c in range(k)})]
        assert first == list(range(k))  # numbered by first appearance
        if previous is not None:  # k clusters refine the k - 1 clusters
            assert all(len(set(previous[labels == c])) == 1 for c in range(k))
        previous = labels
        assert adjusted_rand(labels, cut_tree(z, n_clusters=k)[:, 0]) == pytest.approx(1.0)
        assert adjusted_rand(labels, fcluster(z, k, criterion="maxclust")) == pytest.approx(1.0)


def test_cut_with_tied_heights_still_gives_k_clusters():
    z = linkage(np.arange(6, dtype=float)[:, None], method="single")  # every merge at height 1
    assert len(set(fcluster(z, 3, criterion="maxclust"))) != 3  # what the ties do to fcluster
    for k in range(1, 7):
        assert len(set(cut_tree_labels(z, k))) == k


def test_cut_non_monotone_tree():
    rng = np.random.default_rng(15)
    z = linkage(rng.normal(size=(12, 2)), method="centroid")
    for k in range(1, 13):
        assert len(set(cut_tree_labels(z, k))) == k


@pytest.mark.parametrize("k", [0, 5])
def test_cut_rejects_k_out_of_range(k):
    z = linkage(np.arange(4, dtype=float)[:, None])
    with pytest.raises(ValueError):
        cut_tree_labels(z, k)


# ----------------------------------------------------------------------------------------------------------------
# adjusted_rand / tree_agreement
# ----------------------------------------------------------------------------------------------------------------


def test_adjusted_rand_known_values():
    assert adjusted_rand([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]) == 1.0
    assert adjusted_rand([0, 0, 1, 1, 2], [7, 7, 3, 3, 5]) == 1.0  # relabelling
    assert adjusted_rand(["a", "a", "b", "b"], [1, 1, 0, 0]) == 1.0
    assert adjusted_rand([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)
    assert adjusted_rand([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_tree_agreement():
    m = two_family_matrix()
    za, zb = task_linkage(m), task_linkage(m, metric="euclidean")
    same = tree_agreement(za, za)
    assert list(same) == [2, 3, 4, 5] and all(v == 1.0 for v in same.values())
    assert tree_agreement(za, zb, ks=(2,)) == {2: 1.0}
    rng = np.random.default_rng(16)
    other = task_linkage(rng.uniform(size=(6, 6)))
    assert min(tree_agreement(za, other, ks=(2, 3)).values()) < 1.0
    with pytest.raises(ValueError):
        tree_agreement(za, task_linkage(rng.uniform(size=(6, 5))))


# ----------------------------------------------------------------------------------------------------------------
# inner_category_entropy / kinds_entropy_curve
# ----------------------------------------------------------------------------------------------------------------


def test_entropy_pure_partition_is_zero():
    kinds = ["2d", "2d", "3d", "3d", "sem", "sem"]
    assert inner_category_entropy([0, 0, 1, 1, 2, 2], kinds) == 0.0
    assert inner_category_entropy([0, 0, 1, 2, 3, 3], kinds) == 0.0  # a finer partition is pure too
    assert inner_category_entropy(range(6), kinds) == 0.0


@pytest.mark.parametrize("n_kinds", [2, 3, 4])
def test_entropy_even_mix_is_log_kinds(n_kinds):
    kinds = np.tile(np.arange(n_kinds), 6)  # two clusters, each holding every kind three times
    pred = np.repeat([0, 1], 3 * n_kinds)
    assert inner_category_entropy(pred, kinds) == pytest.approx(math.log(n_kinds))


def test_entropy_hand_example_and_relabelling():
    pred, kinds = [0, 0, 0, 1], ["a", "a", "b", "b"]
    h = 0.75 * -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))  # cluster {a, a, b} weighs 3/4, {b} is pure
    assert inner_category_entropy(pred, kinds) == pytest.approx(h)
    assert inner_category_entropy(["x", "x", "x", "y"], [5, 5, 9, 9]) == pytest.approx(h)
    assert inner_category_entropy([0, 1, 1, 1], ["b", "a", "a", "b"]) == pytest.approx(h)  # order of tasks


def test_entropy_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        inner_category_entropy([0, 1], ["a"])
    with pytest.raises(ValueError):
        inner_category_entropy([], [])


def test_kinds_entropy_curve():
    m = two_family_matrix()
    z = task_linkage(m)
    kinds = ["2d", "2d", "2d", "3d", "3d", "3d"]
    curve = kinds_entropy_curve(z, kinds)
    assert list(curve) == [1, 2, 3, 4, 5, 6]
    assert curve[1] == pytest.approx(math.log(2))  # one cluster: entropy of the kinds' marginal
    assert curve[2] == 0.0 and curve[6] == 0.0
    assert np.all(np.diff(list(curve.values())) <= 1e-12)  # nested refinements never raise H(kind | cluster)
    assert kinds_entropy_curve(z, kinds, ks=(2, 3)) == {2: curve[2], 3: curve[3]}
    rng = np.random.default_rng(17)
    zr = task_linkage(rng.uniform(size=(6, 6)))
    assert all(np.diff(list(kinds_entropy_curve(zr, kinds).values())) <= 1e-12)
    with pytest.raises(ValueError):
        kinds_entropy_curve(z, kinds[:5])


# ----------------------------------------------------------------------------------------------------------------
# mantel
# ----------------------------------------------------------------------------------------------------------------


def off_diagonal(m: np.ndarray) -> np.ndarray:
    return m[~np.eye(m.shape[0], dtype=bool)]


def test_mantel_against_itself():
    a = np.random.default_rng(18).uniform(size=(8, 8))
    stat, p = mantel(a, a, n_perm=999, seed=0)
    assert stat == pytest.approx(1.0)
    assert p <= 0.01


def test_mantel_independent_matrices_not_significant():
    rng = np.random.default_rng(19)
    a, b = rng.uniform(size=(8, 8)), rng.uniform(size=(8, 8))
    stat, p = mantel(a, b, n_perm=999, seed=1)
    assert abs(stat) < 0.5
    assert p > 0.05


def test_mantel_is_calibrated_under_independence():
    rng = np.random.default_rng(20)
    ps = [mantel(rng.normal(size=(6, 6)), rng.normal(size=(6, 6)), n_perm=99, seed=s)[1] for s in range(100)]
    assert np.mean(np.array(ps) <= 0.05) <= 0.15
    assert 0.3 < np.mean(ps) < 0.7


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_mantel_statistic_matches_scipy_and_is_symmetric(method):
    rng = np.random.default_rng(21)
    a = rng.uniform(size=(7, 7))
    b = a + 0.5 * rng.uniform(size=(7, 7))
    np.fill_diagonal(b, 100.0)  # the diagonal is ignored
    ref = sps.spearmanr if method == "spearman" else sps.pearsonr
    stat, p = mantel(a, b, n_perm=199, seed=0, method=method)
    assert stat == pytest.approx(ref(off_diagonal(a), off_diagonal(b))[0], abs=1e-12)
    assert mantel(b, a, n_perm=199, seed=0, method=method)[0] == pytest.approx(stat, abs=1e-12)
    assert p <= 0.02


def test_mantel_permutes_rows_and_columns_together():
    rng = np.random.default_rng(22)
    a, b = rng.uniform(size=(5, 5)), rng.uniform(size=(5, 5))
    perms = np.array([rng.permutation(5) for _ in range(30)])
    for method, ref in (("spearman", sps.spearmanr), ("pearson", sps.pearsonr)):
        got = affinity._permuted_statistics(a, b, perms, method)
        expected = [ref(off_diagonal(a), off_diagonal(b[p][:, p]))[0] for p in perms]
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_mantel_p_value_form_and_reproducibility():
    rng = np.random.default_rng(23)
    a, b = rng.uniform(size=(6, 6)), rng.uniform(size=(6, 6))
    stat, p = mantel(a, b, n_perm=250, seed=5)
    count = p * 251 - 1
    assert count == pytest.approx(round(count)) and 0 <= round(count) <= 250
    assert mantel(a, b, n_perm=250, seed=5) == (stat, p)
    assert mantel(a, b, n_perm=0) == (stat, 1.0)
    assert mantel(a, -a, n_perm=199, seed=0)[1] > 0.9  # one-sided: a negative association is not significant


def test_mantel_spearman_invariant_to_monotone_transform():
    rng = np.random.default_rng(24)
    a, b = rng.uniform(size=(7, 7)), rng.uniform(0.1, 1.0, size=(7, 7))
    assert mantel(a, np.log(b) * 3 + 1, n_perm=199, seed=2) == mantel(a, b, n_perm=199, seed=2)


@pytest.mark.parametrize(
    "a, b, kwargs",
    [(np.ones((4, 3)), np.ones((4, 3)), {}), (np.eye(2), np.eye(2), {}), (np.ones((4, 4)), np.eye(4), {}),
     (np.eye(4) + np.arange(16).reshape(4, 4), np.eye(4) + np.arange(16).reshape(4, 4), {"method": "kendall"}),
     (np.arange(16.0).reshape(4, 4), np.arange(16.0).reshape(4, 4), {"n_perm": -1})],
)  # fmt: skip
def test_mantel_rejects_bad_input(a, b, kwargs):
    with pytest.raises(ValueError):
        mantel(a, b, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# end to end: tasks on a line
# ----------------------------------------------------------------------------------------------------------------


def test_pipeline_recovers_shared_task_structure():
    gains, losses = line_tasks()
    atm, aff = transfer_matrix(gains), affinity_matrix(losses)
    assert atm.shape == aff.shape == (8, 8)
    assert (atm.argmax(axis=0) == np.arange(8)).all()  # each target is hurt most by its own adversarial examples
    assert (aff.argmax(axis=0) == np.arange(8)).all()
    stat, p = mantel(atm, aff, n_perm=999, seed=0)
    assert stat > 0.5 and p <= 0.01
    za, zf = task_linkage(atm), task_linkage(aff)
    assert tree_agreement(za, zf, ks=(2,)) == {2: 1.0}
    kinds = ["near"] * 4 + ["far"] * 4
    assert kinds_entropy_curve(za, kinds, ks=(2,)) == {2: 0.0}
