"""Model selection: which source model should I transfer? Every candidate source gets a score (a
transferability estimator from one forward pass over the labelled target images, an adversarial-transferability
metric against the target's reference model, or a naive baseline); a score is judged by how well its ranking of
the candidates agrees with their knowledge-transfer outcome (probe or fine-tuning accuracy on the target task).

Candidates are a data-distribution scenario's sources (every source x seed) and / or a zoo, all evaluated on the
scenario's target task against its reference model. A zoo is a list of models the user brings, each entry {name,
model, weights} plus the keys its family needs, built by one loader (advtransfer.zoo.load_zoo_model). Here each
entry adds ``num_classes``, ``features`` and ``seed`` and is built through the model registry
(``torchvision:<arch>``, ``timm:<name>``, ``package.module:function``, with local weights). No torch here (the
job names and config checks are in advtransfer.families.model_selection.jobs); the estimators take numpy arrays
(advtransfer.estimators).

Every score is oriented so that higher means "predicted to transfer better": the estimators as their papers
define them, tau1 / tau2 / tau1 tau2 / alpha and the cross adversarial loss as Liang et al. claim (more
adversarially transferable sources transfer knowledge better), and the baselines (the source's validation
accuracy on its own task, its parameter count, its feature width) as a practitioner's "bigger / better is
better".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sstats

from advtransfer.stats import (
    _is_constant,
    _kendall_rows,
    _percentile_interval,
    cluster_draws,
    finite_rows,
    resampled_rows,
)

ESTIMATORS = ("leep", "nce", "h_score", "shrinkage_h_score", "logme", "nleep", "transrate", "gbc", "sfda")
"""The transferability estimators, in the order the tables list them."""

ADVERSARIAL_SCORES = (
    "tau1_tau2", "tau1", "tau2", "alpha",
    "tau1_tau2_logits", "tau1_logits", "tau2_logits", "alpha_logits",
    "cross_adv_loss",
)  # fmt: skip
"""Liang et al.'s metrics at the source's features and at its logits, and the cross adversarial loss."""

BASELINES = ("source_val_accuracy", "parameter_count", "feature_dim")
"""Naive scores: the source's accuracy on its own validation split, its parameter count, its feature width."""

SCORES = ESTIMATORS + ADVERSARIAL_SCORES + BASELINES


def score_family(score: str) -> str:
    """'estimator', 'adversarial' or 'baseline'."""
    if score in ESTIMATORS:
        return "estimator"
    if score in ADVERSARIAL_SCORES:
        return "adversarial"
    if score in BASELINES:
        return "baseline"
    raise ValueError(f"unknown score {score!r}; the scores are {', '.join(SCORES)}")


# ------------------------------------------------------------------------------------------ estimators


def _estimator_calls(settings: Mapping[str, Any]) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]]:
    """name -> f(F, theta, y) for every estimator, with the block's settings."""
    from advtransfer import estimators  # sklearn: imported when scores are computed, not with the job names

    nleep, gbc, sfda, logme = settings["nleep"], settings["gbc"], settings["sfda"], settings["logme"]
    return {
        "leep": lambda F, theta, y: estimators.leep(theta, y),
        "nce": lambda F, theta, y: estimators.nce(theta, y),
        "h_score": lambda F, theta, y: estimators.h_score(F, y),
        "shrinkage_h_score": lambda F, theta, y: estimators.shrinkage_h_score(F, y),
        "logme": lambda F, theta, y: estimators.logme(F, y, tol=logme["tol"], max_iter=logme["max_iter"]),
        "nleep": lambda F, theta, y: estimators.nleep(
            F, y, variance=nleep["variance"], components_per_class=nleep["components_per_class"],
            covariance_type=nleep["covariance"], seed=nleep["seed"],
        ),  # fmt: skip
        "transrate": lambda F, theta, y: estimators.transrate(F, y),
        "gbc": lambda F, theta, y: estimators.gbc(F, y, gaussian=gbc["gaussian"]),
        "sfda": lambda F, theta, y: estimators.sfda(F, y, a=sfda["a"]),
    }


def estimator_scores(F, theta, y, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every estimator of ``F`` (N x D target features of the source), ``theta`` (N x Z source softmax) and the
    target labels ``y``: one row {score, value, wall_seconds, cpu_seconds} each, timed one at a time."""
    F, theta = np.asarray(F, dtype=np.float64), np.asarray(theta, dtype=np.float64)
    rows = []
    for name, call in _estimator_calls(settings).items():
        wall, cpu = time.perf_counter(), time.process_time()
        value = call(F, theta, y)
        rows.append(dict(score=name, value=float(value), wall_seconds=time.perf_counter() - wall,
                         cpu_seconds=time.process_time() - cpu))  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------- agreement


def top1_hit(score, outcome) -> float:
    """Does the best-scored candidate have the best outcome? 1 or 0; with several candidates tied for the best
    score, the share of them that have the best outcome (the chance a pick among them does)."""
    score, outcome = np.asarray(score, dtype=float), np.asarray(outcome, dtype=float)
    picked = outcome[score == score.max()]
    return float(np.mean(picked == outcome.max()))


def regret(score, outcome) -> float:
    """The best outcome minus the outcome of the best-scored candidate (averaged over candidates tied for the
    best score): what trusting the score costs, in the outcome's units (0 = it picks the best)."""
    score, outcome = np.asarray(score, dtype=float), np.asarray(outcome, dtype=float)
    return float(outcome.max() - outcome[score == score.max()].mean())


def _weighted_tau_by(x: np.ndarray, y: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Vigna's weighted tau of each row pair of x, y (P, n), the candidates ranked by decreasing (first, second)
    lexicographically, hyperbolic weights 1 / (rank + 1), additive over a pair."""
    n = x.shape[1]
    order = np.lexsort((-second, -first), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), order.shape), axis=-1)
    w = 1.0 / (rank + 1.0)
    i, j = np.triu_indices(n, 1)
    pair = w[:, i] + w[:, j]
    sx, sy = np.sign(x[:, i] - x[:, j]), np.sign(y[:, i] - y[:, j])
    den = np.sqrt((pair * (sx != 0)).sum(1) * (pair * (sy != 0)).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (pair * sx * sy).sum(1) / den, np.nan)


def weighted_tau_rows(x, y) -> np.ndarray:
    """scipy.stats.weightedtau (its defaults: rank=True, the hyperbolic weigher, additive) of every row of x
    (P, n) with y (n,) or (P, n) at once: the mean of the weighted taus ranked by (x, y) and by (y, x). Equals
    scipy's to float precision, ties included (tests/test_selection.py); finite inputs only."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.broadcast_to(np.atleast_2d(np.asarray(y, dtype=float)), x.shape)
    return (_weighted_tau_by(x, y, x, y) + _weighted_tau_by(y, x, y, x)) / 2


def agreement_values(score, outcome) -> dict[str, float]:
    """Agreement of a score's ranking with the outcome's: weighted Kendall (scipy.stats.weightedtau with its
    default hyperbolic weigher, which weighs agreement among the top candidates most: the field's standard),
    Kendall tau-b, Pearson, the top-1 hit and the regret. Correlations are NaN when either input is constant."""
    score, outcome = np.asarray(score, dtype=float), np.asarray(outcome, dtype=float)
    out = dict(top1=top1_hit(score, outcome), regret=regret(score, outcome))
    if _is_constant(score) or _is_constant(outcome):
        return dict(weighted_kendall=math.nan, kendall=math.nan, pearson=math.nan, **out)
    return dict(
        weighted_kendall=float(sstats.weightedtau(score, outcome).statistic),
        kendall=float(sstats.kendalltau(score, outcome).statistic),
        pearson=float(sstats.pearsonr(score, outcome).statistic),
        **out,
    )


AGREEMENT_STATISTICS = ("weighted_kendall", "kendall", "pearson", "regret")
AGREEMENT_COLUMNS = [
    "score", "family", "outcome", "n", "n_clusters",
    *[f"{s}{suffix}" for s in AGREEMENT_STATISTICS for suffix in ("", "_lo", "_hi")],
    "top1", "top1_rate",
]  # fmt: skip


def _bootstrap(x: np.ndarray, y: np.ndarray, idx) -> dict[str, np.ndarray]:
    """:func:`agreement_values` on every bootstrap draw's rows ``idx`` (advtransfer.stats.resampled_rows): Kendall,
    Pearson, the top-1 hit and the regret of all draws at once when the clusters are balanced, the weighted
    Kendall one draw at a time (scipy.stats.weightedtau)."""
    if not isinstance(idx, np.ndarray):  # unbalanced clusters: one draw at a time
        values = [agreement_values(x[i], y[i]) for i in idx if len(i)]
        return {s: np.array([v[s] for v in values]) for s in (*AGREEMENT_STATISTICS, "top1")}
    X, Y = x[idx], y[idx]
    best = X == X.max(axis=1, keepdims=True)
    picked = (Y * best).sum(axis=1) / best.sum(axis=1)
    Xc, Yc = X - X.mean(axis=1, keepdims=True), Y - Y.mean(axis=1, keepdims=True)
    den = np.sqrt((Xc * Xc).sum(axis=1) * (Yc * Yc).sum(axis=1))
    constant = (X == X[:, :1]).all(axis=1) | (Y == Y[:, :1]).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = np.where(den > 0, (Xc * Yc).sum(axis=1) / den, np.nan)
    return dict(
        weighted_kendall=np.array([math.nan if c else sstats.weightedtau(a, b).statistic
                                   for a, b, c in zip(X, Y, constant)]),  # fmt: skip
        kendall=_kendall_rows(X, Y),
        pearson=np.where(constant, np.nan, pearson),
        top1=(best & (Y == Y.max(axis=1, keepdims=True))).sum(axis=1) / best.sum(axis=1),
        regret=Y.max(axis=1) - picked,
    )


def agreement(
    frame: pd.DataFrame,
    scores: Sequence[str],
    outcome: str,
    cluster: str = "cluster",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per score: its agreement with ``outcome`` over the candidates (rows where either is NaN
    dropped) and percentile intervals at ``level`` from a cluster bootstrap: each draw resamples the values of
    ``cluster`` with replacement (a scenario's training seed: its sources share that randomness; a zoo model is
    a cluster of its own) and takes every row of every drawn cluster. ``top1_rate`` is the share of draws whose
    best-scored candidate has the draw's best outcome. The draws are the same for every score (``seed``)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    missing = [c for c in [*scores, outcome, cluster] if c not in frame.columns]
    if missing:
        raise KeyError(f"agreement: columns {missing} not in the frame (has {list(frame.columns)})")
    labels = frame[cluster].astype(str).to_numpy()
    clusters, draws = cluster_draws(labels, n_boot, seed)
    y_all = frame[outcome].to_numpy(dtype=float)
    rows = []
    for score in scores:
        x, y, lab, n = finite_rows(frame, score, y_all, labels)
        row = dict(score=score, family=score_family(score), outcome=outcome, n=n)
        row["n_clusters"] = len(pd.unique(lab))
        if row["n"] == 0:
            rows.append(row)
            continue
        row.update(agreement_values(x, y))
        boot = _bootstrap(x, y, resampled_rows(lab, clusters, draws)) if row["n_clusters"] > 1 else {}
        for s in AGREEMENT_STATISTICS:
            row[f"{s}_lo"], row[f"{s}_hi"] = _percentile_interval(boot.get(s, []), level)
        row["top1_rate"] = float(np.mean(boot["top1"])) if len(boot.get("top1", [])) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


# ------------------------------------------------------------------------------------------- costs


def score_costs(candidates: pd.DataFrame, references: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """Wall and CPU seconds each score costs to rank all the candidates, from the per-candidate timings in
    ``candidates``: an estimator, the forward pass that gives F and theta (``features_*``) plus its own
    computation (``{score}_*``); tau1 / tau2 / tau1 tau2 / alpha, the PGD attack on the source (``attack_*``)
    plus the metrics job (``metrics_*``, which computes all eight together, so each costs the whole job) plus,
    once each, training the target's reference models (``references``: {wall_seconds, cpu_seconds} each; one per
    seed with paired references), which no estimator needs; the cross adversarial loss, the attack and the
    references; the baselines, nothing (known at training time). One row per score: score, family,
    wall_seconds, cpu_seconds, n (candidates timed)."""
    rows = []
    for score in SCORES:
        family = score_family(score)
        if family == "estimator":
            parts = ["features", score]
        elif score == "cross_adv_loss":
            parts = ["attack"]
        elif family == "adversarial":
            parts = ["attack", "metrics"]
        else:
            parts = []
        row = dict(score=score, family=family, n=len(candidates))
        for unit in ("wall", "cpu"):
            total = sum(candidates[f"{part}_{unit}_seconds"].sum(min_count=1) for part in parts) if parts else 0.0
            if family == "adversarial":
                total += sum(reference[f"{unit}_seconds"] for reference in references)
            row[f"{unit}_seconds"] = float(total)
        rows.append(row)
    return pd.DataFrame(rows, columns=["score", "family", "wall_seconds", "cpu_seconds", "n"])


