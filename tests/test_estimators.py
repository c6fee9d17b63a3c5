"""Transferability estimators (advtransfer.estimators) against hand-computed cases, direct formulas, sklearn and
scipy."""

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats
from sklearn.covariance import LedoitWolf

from advtransfer import estimators


def blobs(rng, n_per_class, classes, dim, spread):
    """Gaussian features around class centres ``spread`` apart (spread 0: pure noise), labels, shuffled."""
    centres = spread * rng.standard_normal((classes, dim))
    y = np.repeat(np.arange(classes), n_per_class)
    F = centres[y] + rng.standard_normal((len(y), dim))
    order = rng.permutation(len(y))
    return F[order], y[order]


# LEEP


def test_leep_by_hand():
    theta = [[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]
    y = [0, 1, 1]
    N = 3
    joint = {(a, z): sum(theta[i][z] for i in range(N) if y[i] == a) / N for a in (0, 1) for z in (0, 1)}
    p_z = {z: joint[0, z] + joint[1, z] for z in (0, 1)}
    cond = {(a, z): joint[a, z] / p_z[z] for a in (0, 1) for z in (0, 1)}
    expected = sum(math.log(sum(cond[y[i], z] * theta[i][z] for z in (0, 1))) for i in range(N)) / N
    # the numbers themselves: P(y, z) = [[0.7, 0.3], [0.7, 1.3]] / 3
    assert joint[0, 0] == pytest.approx(0.7 / 3) and joint[1, 1] == pytest.approx(1.3 / 3)
    assert estimators.leep(theta, y) == pytest.approx(expected, abs=1e-12)


def test_leep_at_most_zero_and_zero_when_perfectly_informative():
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(5), size=40)
    assert estimators.leep(theta, rng.integers(0, 3, 40)) <= 0
    y = rng.integers(0, 4, 30)
    permutation = np.array([2, 0, 3, 1])
    one_hot = np.eye(4)[permutation[y]]
    assert estimators.leep(one_hot, y) == pytest.approx(0.0, abs=1e-12)


# NCE


def nce_by_counting(z, y):
    N = len(z)
    joint, z_counts = Counter(zip(y, z)), Counter(z)
    return sum(n / N * math.log(n / z_counts[b]) for (_, b), n in joint.items())


def test_nce_by_counting():
    z = [0, 0, 1, 1, 1, 2, 2, 0, 1, 2]
    y = [1, 0, 1, 1, 0, 2, 2, 1, 1, 0]
    expected = nce_by_counting(z, y)
    assert expected < 0
    assert estimators.nce(z, y) == pytest.approx(expected, abs=1e-12)
    # the same from probabilities through their argmax
    theta = np.eye(3)[z] * 0.6 + 0.4 / 3
    assert estimators.nce(theta, y) == pytest.approx(expected, abs=1e-12)


def test_nce_zero_when_y_is_a_function_of_z():
    rng = np.random.default_rng(1)
    z = rng.integers(0, 6, 50)
    y = np.array([0, 1, 1, 2, 0, 2])[z]
    assert estimators.nce(z, y) == pytest.approx(0.0, abs=1e-12)


def test_nce_of_independent_z_and_y_is_minus_entropy_of_y():
    z = np.repeat([0, 1, 2], 6)  # every z sees the same label proportions
    y = np.tile([0, 0, 0, 1, 1, 2], 3)
    p = np.array([3, 2, 1]) / 6
    assert estimators.nce(z, y) == pytest.approx(float(np.sum(p * np.log(p))), abs=1e-12)


# H-score


def test_h_score_against_direct_loops():
    rng = np.random.default_rng(2)
    F, y = blobs(rng, 7, 3, 4, 1.0)
    N, D = F.shape
    mu = F.mean(0)
    covf = sum(np.outer(f - mu, f - mu) for f in F) / N
    G = np.empty_like(F)
    for c in range(3):
        G[y == c] = F[y == c].mean(0)
    covg = sum(np.outer(g - mu, g - mu) for g in G) / N
    expected = np.trace(np.linalg.pinv(covf, rcond=estimators.PINV_RCOND) @ covg)
    assert estimators.h_score(F, y) == pytest.approx(expected, rel=1e-10)


# shrinkage H-score


def test_shrinkage_h_score_against_sklearn():
    rng = np.random.default_rng(4)
    F, y = blobs(rng, 8, 3, 6, 1.0)
    lw = LedoitWolf().fit(F)
    a = lw.shrinkage_
    G = np.empty_like(F)
    for c in range(3):
        G[y == c] = F[y == c].mean(0)
    covg = np.cov(G, rowvar=False, bias=True)
    expected = np.trace(np.linalg.inv(lw.covariance_) @ ((1 - a) * covg))
    assert 0 < a < 1
    assert estimators.shrinkage_h_score(F, y) == pytest.approx(expected, rel=1e-10)


def test_shrinkage_h_score_finite_when_fewer_samples_than_dimensions():
    rng = np.random.default_rng(5)
    F, y = blobs(rng, 3, 3, 20, 2.0)
    assert np.linalg.matrix_rank(np.cov(F, rowvar=False)) < F.shape[1]
    assert np.isfinite(estimators.shrinkage_h_score(F, y))


# LogME


def direct_log_evidence(F, t, a, b):
    """log N(t; 0, a^-1 F F^T + b^-1 I), the marginal likelihood itself (an N x N covariance)."""
    cov = F @ F.T / a + np.eye(len(t)) / b
    return stats.multivariate_normal(mean=np.zeros(len(t)), cov=cov).logpdf(t)


def dropped_term_evidence(F, t, a, b):
    """The widely copied closed form: log(a + b sigma_i) summed over the k = min(N, D) eigenvalues only (here in
    the eigenbasis, so that it stays accurate for huge b)."""
    N, D = F.shape
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    sigma, x = s**2, U.T @ t
    mm = np.sum((b * s * x / (a + b * sigma)) ** 2)
    outside = t - U @ x
    residual = np.sum((a * x / (a + b * sigma)) ** 2) + outside @ outside
    return (
        D / 2 * np.log(a)
        + N / 2 * np.log(b)
        - np.sum(np.log(a + b * sigma)) / 2
        - b / 2 * residual
        - a / 2 * mm
        - N / 2 * np.log(2 * np.pi)
    )


# N < D: seed 0 stops inside, seed 6 runs off to b -> infinity (F m fits t exactly), seed 1 to a -> infinity (m -> 0);
# the evidence has a finite limit there and the formula must hold along the way
@pytest.mark.parametrize("N, D, seed", [(5, 8, 0), (5, 8, 6), (5, 8, 1), (12, 3, 0), (12, 3, 6)])
def test_logme_evidence_at_fixed_point_is_the_marginal_likelihood(N, D, seed):
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((N, D))
    t = (rng.random(N) < 0.5).astype(float)
    t[:2] = [0.0, 1.0]
    a, b = estimators.logme_fixed_point(F, t)
    assert np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0
    direct = direct_log_evidence(F, t, a, b)
    assert estimators.logme_evidence(F, t, a, b) == pytest.approx(direct, rel=1e-8)
    dropped = dropped_term_evidence(F, t, a, b)
    if N < D:
        assert abs(dropped - direct) > 1e-3
    else:
        assert dropped == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize("N, D", [(5, 8), (12, 3), (30, 6)])
def test_logme_is_the_mean_fixed_point_evidence_per_sample(N, D):
    rng = np.random.default_rng(7)
    F = rng.standard_normal((N, D))
    y = np.arange(N) % 3
    expected = np.mean(
        [estimators.logme_evidence(F, t, *estimators.logme_fixed_point(F, t)) for t in np.eye(3)[y].T]
    ) / N
    assert estimators.logme(F, y) == pytest.approx(expected, rel=1e-8)


def test_logme_fixed_point_is_stationary():
    rng = np.random.default_rng(8)
    F, y = blobs(rng, 10, 2, 4, 1.0)
    t = (y == 0).astype(float)
    assert stationary(F, t)
    rng = np.random.default_rng(0)  # N < D, a fixed point inside (see above)
    F = rng.standard_normal((5, 8))
    t = (rng.random(5) < 0.5).astype(float)
    t[:2] = [0.0, 1.0]
    assert stationary(F, t)


def stationary(F, t):
    a, b = estimators.logme_fixed_point(F, t)
    at = estimators.logme_evidence(F, t, a, b)
    steps = [(1.01, 1), (0.99, 1), (1, 1.01), (1, 0.99)]
    return all(estimators.logme_evidence(F, t, a * da, b * db) <= at + 1e-9 for da, db in steps)


# TransRate


def test_transrate_against_its_formula():
    rng = np.random.default_rng(10)
    F, y = blobs(rng, 6, 2, 3, 1.0)
    eps = estimators.TRANSRATE_EPS
    Z = F - F.mean(0)

    def rate(X):
        n, d = X.shape
        return np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * X.T @ X)[1] / 2

    expected = rate(Z) - sum(np.mean(y == c) * rate(Z[y == c]) for c in (0, 1))
    assert estimators.transrate(F, y) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("name", "seed", "rel"), [("h_score", 3, 1e-10), ("logme", 9, 1e-8), ("transrate", 11, 1e-10)])
def test_feature_scores_permutation_invariant_and_separating_beats_noise(name, seed, rel):
    score = getattr(estimators, name)
    rng = np.random.default_rng(seed)
    F, y = blobs(rng, 20, 3, 5, 3.0)
    order = rng.permutation(len(y))
    assert score(F[order], y[order]) == pytest.approx(score(F, y), rel=rel)
    noise = rng.standard_normal(F.shape)
    assert score(F, y) > score(noise, y)
