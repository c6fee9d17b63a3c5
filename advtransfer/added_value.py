"""Added value of a score over the known design factors: does a score (tau1 tau2, an estimator, a baseline) rank
sources that the design (the class-overlap level, ...) cannot tell apart? The measurements of one score against
one knowledge outcome over sources x seeds, each source's design level known (DESIGN.md, "Claims and verdicts":
a claim about added value permutes sources within each level of the known factor):

- ``within_level_spearman``: Spearman's rho across the sources of one level within one seed, averaged over the
  seeds and then over the levels; its test (``within_level_test``) moves whole sources (all their seeds) only
  among the sources of their own level.
- ``partial_spearman``: Spearman of score and outcome over every (source, seed) row after the design factors are
  regressed out of both ranks (the partial rank correlation).
- ``loo_gain``: the share of the error of a leave-one-source-out prediction of the outcome from the design
  factors alone that adding the score removes (1 - SSE(design + score) / SSE(design)); its interval resamples
  sources (``loo_gain_interval``).

Scores and outcomes are (U, K) arrays: U sources, K seeds; ``levels`` is a length-U sequence. No torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from advtransfer.claims import TestResult, spearman_over_units, unit_permutation_test


def _level_groups(levels: Sequence) -> list[np.ndarray]:
    levels = np.asarray(list(levels))
    return [np.flatnonzero(levels == level) for level in pd.unique(levels)]


def within_level_spearman(score: np.ndarray, outcome: np.ndarray, levels: Sequence) -> np.ndarray:
    """Mean over levels of the mean over seeds of Spearman across the level's sources of ``score`` (..., U, K)
    with ``outcome`` (U, K); levels with a single source, and seeds where a side is constant, are left out (NaN
    when nothing is left). Leading axes of ``score`` (e.g. arrangements) are kept."""
    score = np.asarray(score, dtype=float)
    outcome = np.asarray(outcome, dtype=float)
    per_level = [spearman_over_units(score[..., g, :], outcome[g]) for g in _level_groups(levels) if len(g) > 1]
    if not per_level:
        return np.full(score.shape[:-2], np.nan)
    stacked = np.stack(np.broadcast_arrays(*per_level), axis=-1)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(stacked).sum(-1)
        return np.where(counts > 0, np.nansum(stacked, -1) / np.maximum(counts, 1), np.nan)


def within_level_test(score: np.ndarray, outcome: np.ndarray, levels: Sequence, *, n_perm: int = 9999,
                      perm_seed: int = 0, alpha: float = 0.05) -> TestResult:  # fmt: skip
    """Permutation test of ``within_level_spearman``: sources are moved, all their seeds together, only among
    the sources of their own level (every arrangement when they are few), so the design factor cannot make it
    significant; ``min_p`` is what a perfect within-level ranking could reach in this design."""
    return unit_permutation_test(
        {"score": np.asarray(score, dtype=float), "outcome": np.asarray(outcome, dtype=float)}, ["score"],
        lambda m: within_level_spearman(m["score"], m["outcome"], levels), strata=list(levels), n_perm=n_perm,
        perm_seed=perm_seed, alpha=alpha, what="sources within their levels", batched=True,
    )  # fmt: skip


def design_matrix(factors: pd.DataFrame) -> np.ndarray:
    """An intercept and one indicator column per level of each categorical design factor but its first (rows:
    the (source, seed) rows the factors describe)."""
    dummies = pd.get_dummies(factors.astype(str), drop_first=True, dtype=float)
    return np.column_stack([np.ones(len(factors)), dummies.to_numpy()])


def _residuals(values: np.ndarray, design: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coef


def partial_spearman(score: np.ndarray, outcome: np.ndarray, factors: pd.DataFrame) -> float:
    """Partial Spearman of ``score`` and ``outcome`` (one value per (source, seed) row) given the design
    ``factors`` (one row each): the Pearson correlation of their ranks' residuals after a least-squares fit on
    ``design_matrix(factors)``; NaN when a residual is constant."""
    design = design_matrix(factors)
    rx = _residuals(stats.rankdata(np.asarray(score, dtype=float)), design)
    ry = _residuals(stats.rankdata(np.asarray(outcome, dtype=float)), design)
    den = np.sqrt((rx @ rx) * (ry @ ry))
    return float(rx @ ry / den) if den > 1e-12 * max(1.0, len(rx)) ** 2 else float("nan")


def loo_squared_errors(score: np.ndarray, outcome: np.ndarray, factors: pd.DataFrame,
                       sources: Sequence) -> pd.DataFrame:  # fmt: skip
    """Per source: the squared errors, summed over its rows, of predicting its outcomes by least squares fitted
    on every other source's rows, from the design factors alone (``design``) and with the score added
    (``with_score``). Columns: source, design, with_score."""
    sources = np.asarray(list(sources))
    outcome = np.asarray(outcome, dtype=float)
    base = design_matrix(factors)
    both = np.column_stack([base, np.asarray(score, dtype=float)])
    rows = []
    for source in pd.unique(sources):
        held = sources == source
        errors = {}
        for name, x in (("design", base), ("with_score", both)):
            coef, *_ = np.linalg.lstsq(x[~held], outcome[~held], rcond=None)
            errors[name] = float(((outcome[held] - x[held] @ coef) ** 2).sum())
        rows.append({"source": source, **errors})
    return pd.DataFrame(rows)


def loo_gain(errors: pd.DataFrame) -> float:
    """1 - SSE(design + score) / SSE(design) over the sources of ``loo_squared_errors``: 1 when the score
    predicts what the design leaves, 0 when it adds nothing, negative when it only adds noise."""
    design = errors["design"].sum()
    return float(1.0 - errors["with_score"].sum() / design) if design > 0 else float("nan")


def loo_gain_interval(errors: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of ``loo_gain`` over sources resampled with replacement (the units)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    design, with_score = errors["design"].to_numpy()[draws].sum(1), errors["with_score"].to_numpy()[draws].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = np.where(design > 0, 1.0 - with_score / design, np.nan)
    gains = gains[np.isfinite(gains)]
    if not len(gains):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    return float(np.quantile(gains, tail)), float(np.quantile(gains, 1 - tail))
