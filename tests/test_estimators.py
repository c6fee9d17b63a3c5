"""Transferability estimators (advtransfer.estimators) against hand-computed cases, direct formulas, sklearn and
scipy."""

import math
from collections import Counter

import numpy as np
import pytest
from scipy import linalg, special, stats
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

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


@pytest.mark.parametrize(
    ("name", "seed", "rel"),
    [("h_score", 3, 1e-10), ("logme", 9, 1e-8), ("transrate", 11, 1e-10), ("gbc", 12, 1e-10), ("sfda", 13, 1e-10)],
)
def test_feature_scores_permutation_invariant_and_separating_beats_noise(name, seed, rel):
    score = getattr(estimators, name)
    rng = np.random.default_rng(seed)
    F, y = blobs(rng, 20, 3, 5, 3.0)
    order = rng.permutation(len(y))
    assert score(F[order], y[order]) == pytest.approx(score(F, y), rel=rel)
    noise = rng.standard_normal(F.shape)
    assert score(F, y) > score(noise, y)


# GBC


def bhattacharyya(mu1, mu2, cov1, cov2):
    """The Bhattacharyya distance of two Gaussians, full covariance matrices."""
    cov = (cov1 + cov2) / 2
    diff = mu1 - mu2
    logdets = [np.linalg.slogdet(c)[1] for c in (cov, cov1, cov2)]
    return diff @ np.linalg.solve(cov, diff) / 8 + (logdets[0] - (logdets[1] + logdets[2]) / 2) / 2


def test_gbc_by_hand():
    F = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = [0, 0, 1, 1]  # means 1 and 5, variance 1 each: D_B = (1/8) 16 / 1 = 2, the log-determinant terms cancel
    for gaussian in ("spherical", "diagonal"):
        assert estimators.gbc(F, y, gaussian=gaussian) == pytest.approx(-2 * math.exp(-2), abs=1e-12)


def test_gbc_diagonal_equals_spherical_when_the_variances_are_equal_across_dimensions():
    H = np.array([[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], dtype=float)  # columns: mean 0, variance 1
    centres = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5], [1.0, 1.0, -2.0]])
    scales = np.array([1.0, 2.0, 0.5])  # class c has variance scales[c]^2 in every dimension
    F = np.concatenate([centres[c] + scales[c] * H for c in range(3)])
    y = np.repeat(np.arange(3), 4)
    spherical = estimators.gbc(F, y, gaussian="spherical")
    assert estimators.gbc(F, y, gaussian="diagonal") == pytest.approx(spherical, rel=1e-12)
    assert spherical < 0


@pytest.mark.parametrize("gaussian", ["spherical", "diagonal"])
def test_gbc_against_the_bhattacharyya_distance_of_full_covariance_gaussians(gaussian):
    rng = np.random.default_rng(20)
    F, y = blobs(rng, 9, 3, 3, 1.5)
    F = F * np.array([1.0, 2.0, 0.5])  # unequal per-dimension variances: spherical and diagonal differ
    means = [F[y == c].mean(0) for c in range(3)]
    variances = [np.maximum(F[y == c].var(0), 1e-4) for c in range(3)]
    if gaussian == "spherical":  # the mean variance in every one of the 3 dimensions
        variances = [np.full(3, v.mean()) for v in variances]
    covariances = [np.diag(v) for v in variances]
    expected = -sum(
        math.exp(-bhattacharyya(means[i], means[j], covariances[i], covariances[j]))
        for i in range(3)
        for j in range(3)
        if i != j
    )
    assert estimators.gbc(F, y, gaussian=gaussian) == pytest.approx(expected, rel=1e-12)
    other = "diagonal" if gaussian == "spherical" else "spherical"
    assert abs(estimators.gbc(F, y, gaussian=other) - expected) > 1e-6


def test_gbc_floors_the_variance_and_rejects_unknown_gaussians():
    F = np.array([[0.0, 1.0], [0.0, 3.0], [1.0, 5.0], [1.0, 7.0]])  # dimension 0 is constant within each class
    y = [0, 0, 1, 1]
    var = np.array([[1e-4, 1.0], [1e-4, 1.0]])
    distance = bhattacharyya(np.array([0.0, 2.0]), np.array([1.0, 6.0]), np.diag(var[0]), np.diag(var[1]))
    expected = -2 * math.exp(-distance)
    assert estimators.gbc(F, y, gaussian="diagonal") == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="spherical, diagonal"):
        estimators.gbc(F, y, gaussian="full")


def test_gbc_at_most_zero_and_separated_blobs_above_noise():
    rng = np.random.default_rng(21)
    F, y = blobs(rng, 30, 4, 16, 2.0)
    noise, noise_y = blobs(rng, 30, 4, 16, 0.0)
    for gaussian in ("spherical", "diagonal"):
        assert estimators.gbc(noise, noise_y, gaussian=gaussian) <= estimators.gbc(F, y, gaussian=gaussian) <= 0
        assert estimators.gbc(noise, noise_y, gaussian=gaussian) < estimators.gbc(F, y, gaussian=gaussian)


# N-LEEP


def test_nleep_is_leep_of_the_gaussian_mixture_posteriors():
    rng = np.random.default_rng(30)
    F, y = blobs(rng, 25, 3, 12, 1.0)
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(F)
    assert 1 < reduced.shape[1] < 12
    theta = GaussianMixture(n_components=15, covariance_type="full", random_state=4).fit(reduced).predict_proba(reduced)
    assert estimators.nleep(F, y, seed=4) == pytest.approx(estimators.leep(theta, y), abs=1e-12)
    # the mixture is capped at N components
    small, small_y = F[:8], y[:8]
    reduced = PCA(n_components=0.5, svd_solver="full").fit_transform(small)
    mixture = GaussianMixture(n_components=8, covariance_type="diag", random_state=0).fit(reduced)
    expected = estimators.leep(mixture.predict_proba(reduced), small_y)
    got = estimators.nleep(small, small_y, variance=0.5, covariance_type="diag", components_per_class=5)
    assert got == pytest.approx(expected, abs=1e-12)


def test_nleep_deterministic_at_most_zero_and_separated_blobs_above_noise():
    rng = np.random.default_rng(31)
    F, y = blobs(rng, 30, 3, 10, 3.0)
    noise, noise_y = blobs(rng, 30, 3, 10, 0.0)
    score = estimators.nleep(F, y, seed=2)
    assert estimators.nleep(F, y, seed=2) == score
    assert estimators.nleep(noise, noise_y) < score <= 1e-12  # near-hard posteriors: leep may round to just above 0
    with pytest.raises(ValueError, match="variance"):
        estimators.nleep(F, y, variance=1.0)


# SFDA


def test_sfda_posteriors_equal_those_of_the_top_fisher_directions():
    rng = np.random.default_rng(40)
    C, D = 4, 7
    F, y = blobs(rng, 12, C, D, 0.8)
    y = y[: len(y) - 5]  # unequal priors
    F = F[: len(y)]
    N = len(y)
    priors = np.bincount(y) / N
    means = np.array([F[y == c].mean(0) for c in range(C)])
    S_W = sum(priors[c] * np.cov(F[y == c], rowvar=False, bias=True) for c in range(C))
    lam = math.exp(-5 * np.linalg.eigvalsh(S_W).max())
    assert 1e-6 < lam < 1
    assert estimators._sfda_lambda(S_W, 5.0) == pytest.approx(lam, rel=1e-12)
    S_reg = (1 - lam) * S_W + lam * np.trace(S_W) / D * np.eye(D)
    mu = F.mean(0)
    S_B = sum(priors[c] * np.outer(means[c] - mu, means[c] - mu) for c in range(C))
    values, vectors = linalg.eigh(S_B, S_reg)
    V = vectors[:, np.argsort(values)[::-1][: C - 1]]  # the top C - 1 (the others have eigenvalue 0)
    assert np.sort(values)[-C] < 1e-10 * values.max()
    P = V @ V.T
    scores = F @ P @ means.T - 0.5 * np.einsum("cd,de,ce->c", means, P, means) + np.log(priors)
    expected = special.softmax(scores, axis=1)
    got = np.exp(estimators._fisher_log_posteriors(F, y, C, lam))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    # all the eigenvectors: V V^T = S_W'^-1
    P = vectors @ vectors.T
    np.testing.assert_allclose(P, np.linalg.inv(S_reg), rtol=1e-8, atol=1e-10)


def test_sfda_lambda_in_unit_interval():
    rng = np.random.default_rng(41)
    for spread, scale in [(0.0, 0.1), (1.0, 0.5), (3.0, 1.0)]:
        F, y = blobs(rng, 10, 3, 6, spread)
        lam = estimators._sfda_lambda(estimators._within_scatter(F * scale, y, 3), 5.0)
        assert 0 < lam <= 1
    assert estimators._sfda_lambda(np.zeros((3, 3)), 5.0) == 1.0


def test_confmix_by_hand():
    F = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 2.0], [4.0, 4.0], [0.0, 6.0]])
    y = np.array([0, 0, 1, 1, 2])
    posteriors = np.array([[0.8, 0.1, 0.1], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.0, 0.0, 1.0]])
    means = {0: np.array([1.0, 0.0]), 1: np.array([4.0, 3.0]), 2: np.array([0.0, 6.0])}
    others = {0: (means[1] + means[2]) / 2, 1: (means[0] + means[2]) / 2, 2: (means[0] + means[1]) / 2}
    assert np.allclose(others[0], [2.0, 4.5]) and np.allclose(others[2], [2.5, 1.5])
    expected = []
    for i in range(5):
        conf = math.exp(posteriors[i, y[i]]) / sum(math.exp(p) for p in posteriors[i])  # softmax of probabilities
        expected.append(conf * F[i] + (1 - conf) * others[y[i]])
    assert math.exp(1) / (math.exp(1) + 2) == pytest.approx(
        math.exp(posteriors[4, 2]) / sum(math.exp(p) for p in posteriors[4])
    )
    np.testing.assert_allclose(estimators._confmix(F, y, posteriors), np.array(expected), rtol=1e-12)


def sfda_by_loops(F, y, a=5.0):
    """Two passes written out: per-class covariances, an explicit inverse, ConfMix sample by sample."""
    N, D = F.shape
    C = int(y.max()) + 1

    def posteriors(X, lam):
        priors = np.bincount(y) / N
        means = np.array([X[y == c].mean(0) for c in range(C)])
        S_W = sum(priors[c] * np.cov(X[y == c], rowvar=False, bias=True) for c in range(C))
        inverse = np.linalg.inv((1 - lam) * S_W + lam * np.trace(S_W) / D * np.eye(D))
        logits = np.array(
            [[x @ inverse @ m - m @ inverse @ m / 2 + np.log(p) for m, p in zip(means, priors)] for x in X]
        )
        return special.softmax(logits, axis=1), means, S_W

    _, _, S_W = posteriors(F, 0.0)
    lam = math.exp(-a * np.linalg.eigvalsh(S_W).max())
    first, means, _ = posteriors(F, lam)
    mixed = F.copy()
    for i in range(N):
        conf = special.softmax(first[i])[y[i]]
        other = np.mean([means[c] for c in range(C) if c != y[i]], axis=0)
        mixed[i] = conf * F[i] + (1 - conf) * other
    second, _, _ = posteriors(mixed, lam)
    return np.mean(np.log(second[np.arange(N), y]))


@pytest.mark.parametrize(("a", "spread"), [(5.0, 1.0), (5.0, 0.3), (0.5, 1.0), (0.0, 1.0)])
def test_sfda_against_its_two_passes_written_out(a, spread):
    rng = np.random.default_rng(42)
    F, y = blobs(rng, 15, 3, 5, spread)
    F = 0.4 * F  # a lambda well inside (0, 1) at a = 5
    assert estimators.sfda(F, y, a=a) == pytest.approx(sfda_by_loops(F, y, a), rel=1e-9)


def test_sfda_at_most_zero_and_separated_blobs_above_noise():
    rng = np.random.default_rng(43)
    F, y = blobs(rng, 30, 5, 20, 2.0)
    noise, noise_y = blobs(rng, 30, 5, 20, 0.0)
    assert estimators.sfda(noise, noise_y) < estimators.sfda(F, y) <= 0
    with pytest.raises(ValueError, match="2 classes"):
        estimators.sfda(F, np.zeros(len(F), dtype=int))


# scipy's weighted tau (the agreement statistic the model-selection tables use), pinned


def weighted_tau_reference(x, y):
    """Vigna's additive hyperbolic tau for rankings without ties, O(n^2): with r the 0-based rank by decreasing
    ranking variable and w_ij = 1 / (r_i + 1) + 1 / (r_j + 1), sum_{i<j} w_ij sign(x_i - x_j) sign(y_i - y_j) /
    sqrt(sum_{i<j} w_ij [x_i != x_j] sum_{i<j} w_ij [y_i != y_j]), averaged over ranking by x and by y."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)

    def tau(ranking):
        r = np.empty(n, dtype=int)
        r[np.argsort(-ranking)] = np.arange(n)
        pairs = [(i, j, 1 / (r[i] + 1) + 1 / (r[j] + 1)) for i in range(n) for j in range(i + 1, n)]
        numerator = sum(w * np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j, w in pairs)
        x_norm = sum(w for i, j, w in pairs if x[i] != x[j])
        y_norm = sum(w for i, j, w in pairs if y[i] != y[j])
        return numerator / math.sqrt(x_norm * y_norm)

    return (tau(x) + tau(y)) / 2


def test_scipy_weightedtau_pinned():
    x = [5, 4, 3, 2, 1]
    assert stats.weightedtau(x, x).statistic == pytest.approx(1.0, abs=1e-12)
    assert stats.weightedtau(x, x[::-1]).statistic == pytest.approx(-1.0, abs=1e-12)
    # by hand: x = [4, 3, 2, 1], y = [1, 4, 3, 2]. Ranked by x, the weights are 1, 1/2, 1/3, 1/4; pairs (0, 1),
    # (0, 2), (0, 3) are discordant with weights 3/2, 4/3, 5/4, pairs (1, 2), (1, 3), (2, 3) concordant with 5/6,
    # 3/4, 7/12: (-18 - 16 - 15 + 10 + 9 + 7) / 75 = -23/75 (no ties: both norms are the total weight 75/12).
    # Ranked by y, elements 1, 2, 3, 0 have weights 1, 1/2, 1/3, 1/4: discordant 5/4, 3/4, 7/12, concordant 3/2,
    # 4/3, 5/6: (-15 - 9 - 7 + 18 + 16 + 10) / 75 = 13/75. scipy averages the two: -1/15.
    x, y = [4, 3, 2, 1], [1, 4, 3, 2]
    by_x = (-(3 / 2 + 4 / 3 + 5 / 4) + 5 / 6 + 3 / 4 + 7 / 12) / (75 / 12)
    by_y = (-(5 / 4 + 3 / 4 + 7 / 12) + 3 / 2 + 4 / 3 + 5 / 6) / (75 / 12)
    assert by_x == pytest.approx(-23 / 75) and by_y == pytest.approx(13 / 75)
    assert stats.weightedtau(x, y).statistic == pytest.approx((by_x + by_y) / 2, abs=1e-12)
    assert weighted_tau_reference(x, y) == pytest.approx(-1 / 15, abs=1e-12)
    rng = np.random.default_rng(50)
    for n in (3, 6, 10, 25):
        x, y = rng.permutation(n), rng.permutation(n)
        assert stats.weightedtau(x, y).statistic == pytest.approx(weighted_tau_reference(x, y), abs=1e-12)
