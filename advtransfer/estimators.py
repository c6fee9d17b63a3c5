"""Transferability estimators: scores of how well a source model should transfer to a labelled target task,
computed from the source model's target features F (N x D), its softmax theta (N x Z) over its Z source classes,
and the target labels y (N,) in 0..C-1. Pure numpy (sklearn's Ledoit-Wolf for the shrinkage H-score, its PCA and
Gaussian mixture for N-LEEP), as the project defines them; where a paper's public code differs, the definition
here wins and a comment says so.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

PINV_RCOND = 1e-15
"""Cutoff of ``numpy.linalg.pinv`` in the H-score: singular values below rcond x the largest are treated as 0."""

TRANSRATE_EPS = 1e-2
"""Distortion eps of TransRate's coding rate (eps^2 = 1e-4)."""


def _labels(y, n: int | None = None) -> tuple[np.ndarray, int]:
    """Integer labels mapped onto 0..C-1 by their sorted distinct values, and C."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if n is not None and len(y) != n:
        raise ValueError(f"{len(y)} labels for {n} samples")
    if len(y) == 0:
        raise ValueError("no samples")
    classes, index = np.unique(y, return_inverse=True)
    return index.reshape(-1), len(classes)


def _features(F) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {F.shape}")
    return F


def leep(theta, y) -> float:
    """LEEP (Nguyen, Hassner, Seeger and Archambeau, ICML 2020): the mean log-likelihood of the dummy classifier
    x -> sum_z P(y | z) theta_z(x), with P(y, z) = (1/N) sum_{i: y_i = y} theta_z(x_i). At most 0."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2:
        raise ValueError(f"theta must be 2-D (N, Z), got shape {theta.shape}")
    y, C = _labels(y, len(theta))
    joint = np.zeros((C, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= len(theta)
    marginal = joint.sum(0)
    # a source class no sample puts any mass on carries no weight: its (undefined) column is left at 0
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    eep = np.einsum("iz,iz->i", theta, conditional[y])
    return float(np.mean(np.log(eep)))


def nce(source, y) -> float:
    """NCE (Tran, Nguyen and Hassner, ICCV 2019): -H(Y | Z) from the empirical joint counts of the target label Y
    and the source label Z, 0 log 0 = 0. ``source`` is Z itself, ints (N,), or the source softmax (N, Z_classes),
    whose argmax is taken. At most 0; 0 iff Y is a function of Z."""
    source = np.asarray(source)
    if source.ndim == 2:
        source = source.argmax(1)
    elif source.ndim != 1:
        raise ValueError(f"source must be labels (N,) or probabilities (N, Z), got shape {source.shape}")
    z, Z = _labels(source)
    y, C = _labels(y, len(z))
    counts = np.zeros((C, Z))
    np.add.at(counts, (y, z), 1.0)
    joint = counts / len(z)
    conditional = counts / counts.sum(0)  # every column holds at least one sample
    terms = np.where(counts > 0, joint * np.log(np.where(counts > 0, conditional, 1.0)), 0.0)
    return float(terms.sum())


def _means(F: np.ndarray, y: np.ndarray, C: int) -> np.ndarray:
    """The class means mu_c, one row per class (C x D)."""
    sums = np.zeros((C, F.shape[1]))
    np.add.at(sums, y, F)
    return sums / np.bincount(y, minlength=C)[:, None]


def _class_means(F: np.ndarray, y: np.ndarray, C: int) -> np.ndarray:
    """G: each row of F replaced by the mean of its class."""
    return _means(F, y, C)[y]


def _covariance(X: np.ndarray) -> np.ndarray:
    X = X - X.mean(0)
    return X.T @ X / len(X)


def h_score(F, y, *, rcond: float = PINV_RCOND) -> float:
    """H-score (Bao, Li, Huang, Zhang, Zheng, Zamir and Guibas, ICIP 2019): tr(cov(F)^+ cov(G)), G the class-mean
    features, covariances normalised by N, the pseudo-inverse numpy's with cutoff ``rcond`` (see PINV_RCOND)."""
    F = _features(F)
    y, C = _labels(y, len(F))
    G = _class_means(F, y, C)
    return float(np.trace(np.linalg.pinv(_covariance(F), rcond=rcond) @ _covariance(G)))


def shrinkage_h_score(F, y) -> float:
    """Shrinkage H-score (Ibrahim, Ponomareva and Mazumder, ECML PKDD 2022): tr(cov_LW(F)^-1 (1 - a) cov(G)),
    cov_LW the Ledoit-Wolf estimate with shrinkage a (sklearn's), G the class-mean features, cov(G) normalised by N
    as sklearn's empirical covariance is."""
    F = _features(F)
    y, C = _labels(y, len(F))
    lw = LedoitWolf().fit(F)
    a = float(lw.shrinkage_)
    covg = (1.0 - a) * _covariance(_class_means(F, y, C))
    # a true inverse (a linear solve), as defined; positive definite whenever a > 0 or cov(F) is
    return float(np.trace(np.linalg.solve(lw.covariance_, covg)))


def _evidence(U, s, D: int, t: np.ndarray, a: float, b: float) -> tuple[float, float, float]:
    """(log evidence, m^T m, ||F m - t||^2) at (a, b) in the eigenbasis of F^T F (F = U diag(s) V^T, thin SVD).

    Along eigenvector i, m_i = b s_i x_i / (a + b sigma_i) and (F m - t)_i = -a x_i / (a + b sigma_i), x = U^T t,
    plus the part of t outside F's column space; m is 0 along the null space of F. Written this way the terms stay
    accurate when b is huge (N < D lets F m fit t exactly, and the evidence then keeps growing with b)."""
    N = len(t)
    sigma = s**2  # the k = min(N, D) eigenvalues that may be nonzero; the other D - k are 0
    x = U.T @ t
    outside = t - U @ x
    denominator = a + b * sigma
    mm = float(np.sum((b * s * x / denominator) ** 2))
    residual = float(np.sum((a * x / denominator) ** 2) + outside @ outside)
    logdet = float(np.sum(np.log(denominator))) + (D - len(s)) * np.log(a)  # the D - k zero eigenvalues count too
    evidence = D / 2 * np.log(a) + N / 2 * np.log(b) - logdet / 2 - b / 2 * residual - a / 2 * mm
    return float(evidence - N / 2 * np.log(2 * np.pi)), mm, residual


def logme_evidence(F, t, a: float, b: float) -> float:
    """The log evidence log p(t | F, a, b) of the Bayesian linear model t ~ N(F m, b^-1 I), m ~ N(0, a^-1 I)
    (You, Liu, Wang and Long, ICML 2021), by the closed form: A = a I + b F^T F, m = b A^-1 F^T t and
    (D/2) log a + (N/2) log b - (1/2) log det A - (b/2) ||F m - t||^2 - (a/2) m^T m - (N/2) log 2 pi,
    log det A being the sum of log(a + b sigma_i) over all D eigenvalues sigma_i of F^T F, zeros included
    (evaluated through the SVD of F)."""
    F = _features(F)
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    return _evidence(U, s, F.shape[1], np.asarray(t, dtype=np.float64), float(a), float(b))[0]


def _logme_class(U, s, D: int, t: np.ndarray, tol: float, max_iter: int) -> tuple[float, float, float]:
    """MacKay's fixed point for one target column t: (a, b, evidence at (a, b))."""
    N, sigma = len(t), s**2
    a = b = 1.0
    for _ in range(max_iter):
        _, mm, residual = _evidence(U, s, D, t, a, b)
        g = float(np.sum(b * sigma / (a + b * sigma)))
        # the public code adds a tiny epsilon to both denominators and stops after 11 steps at 1% change of a / b
        new_a, new_b = g / mm, (N - g) / residual
        if not (np.isfinite(new_a) and np.isfinite(new_b)):
            break  # a or b on its way to infinity, where the evidence has a finite limit (say N < D, F m = t)
        change = max(abs(new_a - a) / a, abs(new_b - b) / b)
        a, b = new_a, new_b
        if change < tol:
            break
    # the evidence at the final (a, b), with m recomputed there (the public code reuses the previous step's m)
    return a, b, _evidence(U, s, D, t, a, b)[0]


def logme_fixed_point(F, t, *, tol: float = 1e-5, max_iter: int = 100) -> tuple[float, float]:
    """The (a, b) LogME's fixed-point iteration converges to for the target column t (N,)."""
    F = _features(F)
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    a, b, _ = _logme_class(U, s, F.shape[1], np.asarray(t, dtype=np.float64), tol, max_iter)
    return a, b


def logme(F, y, *, tol: float = 1e-5, max_iter: int = 100) -> float:
    """LogME (You, Liu, Wang and Long, ICML 2021): the mean over classes c of the maximised log evidence per sample
    of the Bayesian linear model of the one-hot column t_c on F, (a, b) by MacKay's fixed point from a = b = 1
    (relative change of both under ``tol``, at most ``max_iter`` steps), one SVD of F shared by all classes.
    log det(a I + b F^T F) counts all D eigenvalues, the D - k zero ones too when N < D, which the widely copied
    implementation drops (k = min(N, D)). Where the evidence is largest at a or b = infinity (often when N < D)
    the iteration runs its ``max_iter`` steps towards it and the evidence there is close to its finite limit."""
    F = _features(F)
    y, C = _labels(y, len(F))
    N, D = F.shape
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    # classes are the distinct labels present; the public code takes y.max() + 1 of them
    evidences = [_logme_class(U, s, D, (y == c).astype(np.float64), tol, max_iter)[2] for c in range(C)]
    return float(np.mean(evidences) / N)


def coding_rate(Z, eps: float = TRANSRATE_EPS) -> float:
    """R(Z, eps) = (1/2) log det(I + D / (N eps^2) Z^T Z), the rate of coding the rows of Z (N x D) to distortion
    eps (Ma, Derksen, Hong and Wright, TPAMI 2007)."""
    Z = _features(Z)
    N, D = Z.shape
    _, logdet = np.linalg.slogdet(np.eye(D) + D / (N * eps**2) * Z.T @ Z)
    return float(logdet / 2)


def transrate(F, y, *, eps: float = TRANSRATE_EPS) -> float:
    """TransRate (Huang, Huang, Rong, Yang and Wei, ICML 2022): R(Z, eps) - R(Z, eps | Y), Z the centred
    features and R(Z, eps | Y) = sum_c (N_c / N) R(Z_c, eps) over the rows Z_c of class c (MCR^2's form).

    The public code (read in its published copies; the paper's text was not available offline) differs: it scales
    Z^T Z by 1 / (N eps) (no D, eps not squared, eps = 1e-4) and averages the class rates (their sum over C)
    instead of weighting them by N_c / N; the MCR^2 definition here is followed."""
    Z = _features(F)
    y, C = _labels(y, len(Z))
    Z = Z - Z.mean(0)
    conditional = sum(np.mean(y == c) * coding_rate(Z[y == c], eps) for c in range(C))
    return coding_rate(Z, eps) - float(conditional)


def nleep(
    F, y, *, variance: float = 0.8, components_per_class: int = 5, covariance_type: str = "full", seed: int = 0
) -> float:
    """N-LEEP (Li, Jia, Sang, Zhu, Green, Wang and Gong, "Ranking neural checkpoints", CVPR 2021): LEEP with the
    source softmax replaced by the posteriors of a Gaussian mixture fitted to the features. F is reduced by PCA to the
    leading components that explain the fraction ``variance`` of its variance (sklearn's, full SVD), then a mixture of
    ``components_per_class`` x C Gaussians (at most N) with ``covariance_type`` covariances (sklearn's, k-means
    initialisation with random_state ``seed``) is fitted; its ``predict_proba`` is theta of ``leep``. At most 0.
    Deterministic for a given seed, but the fit depends on the order of the samples."""
    F = _features(F)
    y, C = _labels(y, len(F))
    if not 0 < variance < 1:
        raise ValueError(f"variance is the fraction of the variance PCA keeps, in (0, 1), got {variance}")
    if components_per_class < 1:
        raise ValueError(f"components_per_class must be at least 1, got {components_per_class}")
    reduced = PCA(n_components=variance, svd_solver="full").fit_transform(F)
    mixture = GaussianMixture(
        n_components=min(components_per_class * C, len(F)), covariance_type=covariance_type, random_state=seed
    )
    theta = mixture.fit(reduced).predict_proba(reduced)
    # several public LEEP / N-LEEP copies average the expected empirical prediction without its log; leep keeps it
    return leep(theta, y)


GBC_GAUSSIANS = ("spherical", "diagonal")
"""GBC's per-class Gaussians: one variance per class (the mean of its per-dimension ones) or one per dimension."""

GBC_MIN_VARIANCE = 1e-4
"""Floor of GBC's per-class, per-dimension variances (as the public code has it: no zero variance)."""


def gbc(F, y, *, gaussian: str = "spherical") -> float:
    """GBC (Pandy, Agostinelli, Uijlings, Ferrari and Mensink, "Transferability estimation using Bhattacharyya
    class separability", CVPR 2022): -sum over ordered pairs of classes i != j of the Bhattacharyya coefficient
    exp(-D_B(i, j)) of the classes' Gaussians. Class c has mean mu_c and per-dimension variances sigma_c (numpy's,
    normalised by N_c) floored at GBC_MIN_VARIANCE; ``gaussian`` "spherical" replaces them by their mean, "diagonal"
    keeps them. With sigma = (sigma_i + sigma_j) / 2,
    D_B = (1/8) sum_d (mu_i - mu_j)_d^2 / sigma_d + (1/2) (sum_d log sigma_d - (1/2) sum_d log sigma_i,d
    - (1/2) sum_d log sigma_j,d). At most 0; closer to 0 means better separated classes."""
    if gaussian not in GBC_GAUSSIANS:
        raise ValueError(f"unknown gaussian {gaussian!r}; the choices are {', '.join(GBC_GAUSSIANS)}")
    F = _features(F)
    y, C = _labels(y, len(F))
    mu = _means(F, y, C)
    var = np.maximum(_means((F - mu[y]) ** 2, y, C), GBC_MIN_VARIANCE)  # numpy's var (ddof 0) per class
    if gaussian == "spherical":
        # the scalar stands for all D dimensions, so its log counts D times in the log-determinants below; the
        # public code sums the log of the scalar once, which is not the distance between spherical D-dim Gaussians
        var = np.broadcast_to(var.mean(1, keepdims=True), var.shape)
    average = (var[:, None] + var[None]) / 2  # C x C x D
    mahalanobis = np.sum((mu[:, None] - mu[None]) ** 2 / average, axis=2) / 8
    logdet = np.log(var).sum(1)
    distance = mahalanobis + (np.log(average).sum(2) - logdet[:, None] / 2 - logdet[None] / 2) / 2
    coefficient = np.exp(-distance)
    np.fill_diagonal(coefficient, 0.0)
    return -float(coefficient.sum())


SFDA_A = 5.0
"""SFDA's regularisation rate a: lambda = exp(-a x the largest eigenvalue of the within-class scatter)."""


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _within_scatter(F: np.ndarray, y: np.ndarray, C: int) -> np.ndarray:
    """S_W = sum_c p_c cov_c, p_c = N_c / N, cov_c normalised by N_c: the covariance of F less its class means."""
    return _covariance(F - _class_means(F, y, C))


def _sfda_lambda(S_W: np.ndarray, a: float) -> float:
    """lambda = exp(-a x the largest eigenvalue of S_W), in (0, 1] (exact: the public code runs 3 power
    iterations)."""
    return float(np.exp(-a * np.linalg.eigvalsh(S_W)[-1]))


def _regularised_scatter(S_W: np.ndarray, lam: float) -> np.ndarray:
    """(1 - lambda) S_W + lambda (tr(S_W) / D) I, the public code's form (shrinkage towards the mean eigenvalue)."""
    D = len(S_W)
    return (1.0 - lam) * S_W + lam * np.trace(S_W) / D * np.eye(D)


def _fisher_log_posteriors(F: np.ndarray, y: np.ndarray, C: int, lam: float) -> np.ndarray:
    """log p(c | x) (N x C) of Gaussian classes with means mu_c, priors p_c and the shared covariance S_W' (S_W
    regularised with ``lam``), all fitted to (F, y): the softmax of x^T S_W'^-1 mu_c - (1/2) mu_c^T S_W'^-1 mu_c
    + log p_c. The public code projects on the generalised eigenvectors of (S_B, S_W'), all of them, whose
    V V^T is S_W'^-1; the top C - 1 alone give the same posteriors, as the others carry the same value for every
    class."""
    mu = _means(F, y, C)
    priors = np.bincount(y, minlength=C) / len(F)
    W = np.linalg.solve(_regularised_scatter(_within_scatter(F, y, C), lam), mu.T)  # S_W'^-1 mu_c as columns
    logits = F @ W - np.einsum("cd,dc->c", mu, W) / 2 + np.log(priors)
    return _log_softmax(logits)


def _confmix(F: np.ndarray, y: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
    """SFDA's self-challenging ConfMix: x_i' = conf_i x_i + (1 - conf_i) m_{-y_i}, conf_i the softmax of the row of
    ``posteriors`` (N x C) at y_i (a softmax of probabilities, as the public code "softens" them) and m_{-c} the
    unweighted mean of the other C - 1 class means."""
    C = posteriors.shape[1]
    mu = _means(F, y, C)
    others = (mu.sum(0) - mu) / (C - 1)
    confidence = np.exp(_log_softmax(posteriors)[np.arange(len(F)), y])[:, None]
    return confidence * F + (1.0 - confidence) * others[y]


def sfda(F, y, *, a: float = SFDA_A) -> float:
    """SFDA (Shao, Zhao, Ge, Zhang, Yang, Wang, Shan and Luo, "Not all models are equal: predicting model
    transferability in a self-challenging Fisher space", ECCV 2022): the mean log-likelihood (1/N) sum_i
    log p(y_i | x_i') of the labels under Fisher-space Gaussian classes fitted to ConfMix's mixed features x_i'.

    - Fisher space: class means mu_c, priors p_c = N_c / N, within-class scatter S_W = sum_c p_c cov_c (cov_c
      normalised by N_c), regularised to S_W' = (1 - lambda) S_W + lambda (tr(S_W) / D) I (the public code's form;
      the paper's text was not available offline to check whether it writes lambda I), lambda = exp(-a x the largest
      eigenvalue of S_W) by numpy's eigvalsh (the public code estimates it by 3 power iterations); the posteriors
      are those of Gaussian classes with the shared covariance S_W' (see _fisher_log_posteriors).
    - ConfMix (see _confmix) with the first pass's posteriors, softened by a softmax as in the public code.
    - Second pass: means, priors and S_W refitted to the mixed features, lambda kept from the first pass.
    The public code returns the mean probability, its log "ignored in case of instability"; the score here is the
    log-likelihood, as LEEP's. At most 0. Needs at least 2 classes."""
    F = _features(F)
    y, C = _labels(y, len(F))
    if C < 2:
        raise ValueError(f"SFDA needs at least 2 classes, got {C}")
    if a < 0:
        raise ValueError(f"the regularisation rate a must be non-negative, got {a}")
    lam = _sfda_lambda(_within_scatter(F, y, C), a)
    mixed = _confmix(F, y, np.exp(_fisher_log_posteriors(F, y, C, lam)))
    return float(np.mean(_fisher_log_posteriors(mixed, y, C, lam)[np.arange(len(F)), y]))
