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
  factors alone that adding the score (its rank over the rows, in ``added_value_row``) removes
  (1 - SSE(design + score) / SSE(design)); its interval resamples sources (``loo_gain_interval``).

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


# ------------------------------------------------------------------------------------ the experiment's table

COLUMNS = ["metric", "outcome", "within_spearman", "p_value", "partial_spearman", "loo_gain", "loo_gain_lo",
           "loo_gain_hi", "n_sources", "n_seeds"]  # fmt: skip
"""results/<experiment>/added_value.csv: one row per score (``metric``) and knowledge outcome."""


def unit_matrices(frame: pd.DataFrame, columns: Sequence[str], unit: str = "source",
                  seed: str = "seed") -> tuple[list, list, dict[str, np.ndarray]]:  # fmt: skip
    """(units, seeds, {column: (U, K) matrix}) of ``frame``'s rows (one per unit and seed); NaN where a unit
    lacks a seed."""
    units, seeds = sorted(frame[unit].unique()), sorted(frame[seed].unique())
    mats = {c: frame.pivot_table(index=unit, columns=seed, values=c, aggfunc="mean", dropna=False)
            .reindex(index=units, columns=seeds).to_numpy(float) for c in columns}  # fmt: skip
    return units, seeds, mats


def complete_units(*matrices: np.ndarray) -> np.ndarray:
    """The units (rows) with a finite value at every seed in every matrix."""
    return np.all([np.isfinite(m).all(axis=1) for m in matrices], axis=0)


def within_level_interval(score: np.ndarray, outcome: np.ndarray, levels: Sequence, n_boot: int = 2000,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of ``within_level_spearman`` over sources resampled with replacement within their
    levels (each keeping all its seeds); draws where it is undefined are left out."""
    rng = np.random.default_rng(seed)
    groups = _level_groups(levels)
    draws = np.concatenate([g[rng.integers(0, len(g), size=(n_boot, len(g)))] for g in groups], axis=1)
    drawn_levels = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    score, outcome = np.asarray(score, float), np.asarray(outcome, float)
    values = np.array([within_level_spearman(score[d], outcome[d], drawn_levels) for d in draws])
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def within_level_gain_test(baseline: np.ndarray, factor: np.ndarray, outcome: np.ndarray, levels: Sequence,
                           **settings) -> TestResult:  # fmt: skip
    """Does ``factor`` add to ``baseline`` within levels? W(baseline x factor) - W(baseline), W the
    ``within_level_spearman`` with the outcome, tested by moving the factor's sources only within their levels
    (Liang et al.'s "tau1 alone is not sufficient" among sources the design cannot tell apart)."""
    alone = within_level_spearman(baseline, outcome, levels)

    def statistic(m):
        return within_level_spearman(m["baseline"][None] * m["factor"], m["outcome"], levels) - alone

    matrices = {"baseline": np.asarray(baseline, float), "factor": np.asarray(factor, float),
                "outcome": np.asarray(outcome, float)}  # fmt: skip
    keys = {k: settings[k] for k in ("n_perm", "perm_seed", "alpha") if k in settings}
    return unit_permutation_test(matrices, ["factor"], statistic, strata=list(levels), batched=True,
                                 what="sources within their levels (the factor's values)", **keys)  # fmt: skip


def within_level_by_seed(score: np.ndarray, outcome: np.ndarray, levels: Sequence) -> np.ndarray:
    """``within_level_spearman`` seed by seed: one value per seed (column), each an independent replicate of
    the design when every source seed has its own reference seed."""
    return np.array([within_level_spearman(score[:, [k]], outcome[:, [k]], levels) for k in range(score.shape[1])])


def added_value_row(frame: pd.DataFrame, metric: str, outcome: str, level: str, known: Sequence[str], *,
                    n_perm: int = 9999, perm_seed: int = 0, n_boot: int = 2000, level_ci: float = 0.95,
                    alpha: float = 0.05) -> dict:  # fmt: skip
    """One row of added_value.csv: ``metric`` against ``outcome`` over ``frame``'s (source, seed) rows, whose
    ``level`` column is the source's overlap level and ``known`` columns the design factors a user knows
    (regressed out of the partial Spearman and given to the leave-one-source-out design model); sources
    lacking a finite value at some seed are left out (``n_sources`` counts the rest)."""
    units, seeds, mats = unit_matrices(frame, [metric, outcome])
    keep = complete_units(mats[metric], mats[outcome])
    kept = [u for u, k in zip(units, keep) if k]
    levels = frame.groupby("source")[level].first().reindex(kept).to_numpy()
    row = dict.fromkeys(COLUMNS, float("nan"))
    row.update(metric=metric, outcome=outcome, n_sources=len(kept), n_seeds=len(seeds))
    if len(kept) < 3:
        return row
    score, result = mats[metric][keep], mats[outcome][keep]
    test = within_level_test(score, result, levels, n_perm=n_perm, perm_seed=perm_seed, alpha=alpha)
    rows = frame[frame["source"].isin(kept)].dropna(subset=[metric, outcome])
    factors = rows[list(known)]
    # the score enters the prediction as its rank over the rows: scale-free, as the Spearman measures are (the
    # estimators' scales are arbitrary and their relation to the outcome need not be linear)
    ranks = stats.rankdata(rows[metric].to_numpy(float))
    errors = loo_squared_errors(ranks, rows[outcome].to_numpy(float), factors, rows["source"])
    lo, hi = loo_gain_interval(errors, n_boot=n_boot, seed=perm_seed, level=level_ci)
    row.update(within_spearman=test.value, p_value=test.p_two_sided if np.isfinite(test.value) else float("nan"),
               partial_spearman=partial_spearman(rows[metric], rows[outcome], factors), loo_gain=loo_gain(errors),
               loo_gain_lo=lo, loo_gain_hi=hi)  # fmt: skip
    return row


def added_value_table(frame: pd.DataFrame, metrics: Sequence[str], outcomes: Sequence[str], level: str,
                      known: Sequence[str], **settings) -> pd.DataFrame:  # fmt: skip
    """added_value.csv (``COLUMNS``): ``added_value_row`` of every metric against every outcome."""
    rows = [added_value_row(frame, m, o, level, known, **settings) for o in outcomes for m in metrics]
    return pd.DataFrame(rows, columns=COLUMNS)
