"""Summary statistics: intervals across seeds and rank correlations with bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean over independent seeds (lo = hi = mean for n = 1)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def summarise(frame: pd.DataFrame, by: str | list[str], columns: list[str], level: float = 0.95) -> pd.DataFrame:
    """One row per value of ``by`` (a column or several): n and, per column, ``{col}_mean``, ``{col}_lo``,
    ``{col}_hi``."""
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, group in frame.groupby(keys, sort=True):
        row = {**dict(zip(keys, key)), "n": len(group)}
        for col in columns:
            row[f"{col}_mean"], row[f"{col}_lo"], row[f"{col}_hi"] = mean_interval(group[col], level)
        rows.append(row)
    return pd.DataFrame(rows)


def source_order(frame: pd.DataFrame) -> list[str]:
    """Source names ordered by ``outside_fraction`` (share of source classes outside the target task), then name."""
    first = frame.groupby("source", sort=False)["outside_fraction"].first().reset_index()
    return first.sort_values(["outside_fraction", "source"], kind="stable")["source"].tolist()


def format_interval(value: float, lo: float, hi: float) -> str:
    """``+0.12 [+0.01, +0.23]``; the value alone without an interval, ``n/a`` without a value."""
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{value:+.2f}"
    return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def finite_rows(frame: pd.DataFrame, column: str, y: np.ndarray, labels: np.ndarray):
    """``column`` of ``frame`` as floats, the outcome ``y`` and the cluster ``labels``, on the rows where both
    the column and the outcome are finite: (x, y, labels, number of those rows)."""
    x = frame[column].to_numpy(dtype=float)
    used = np.isfinite(x) & np.isfinite(y)
    return x[used], y[used], labels[used], int(used.sum())


def _is_constant(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x == x[0]))


def _point_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """scipy's Spearman rho and Kendall tau-b; NaN (never a warning or an error) when either input is constant."""
    if _is_constant(x) or _is_constant(y):
        return np.nan, np.nan
    return float(stats.spearmanr(x, y)[0]), float(stats.kendalltau(x, y)[0])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho = Pearson correlation of average ranks (equals scipy.stats.spearmanr, ties included)."""
    if _is_constant(x) or _is_constant(y):
        return np.nan
    rx = stats.rankdata(x)
    ry = stats.rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float(np.dot(rx, ry) / np.sqrt(np.dot(rx, rx) * np.dot(ry, ry)))


_KENDALL_DIRECT_MAX = 400  # above this many rows the O(n^2) pair matrix gives way to scipy


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b (equals scipy.stats.kendalltau's default), by the pair-sign matrix for small samples."""
    if _is_constant(x) or _is_constant(y):
        return np.nan
    if x.size > _KENDALL_DIRECT_MAX:
        return float(stats.kendalltau(x, y)[0])
    upper = np.triu_indices(x.size, k=1)
    sx = np.sign(x[:, None] - x[None, :])[upper]
    sy = np.sign(y[:, None] - y[None, :])[upper]
    return float(np.dot(sx, sy) / np.sqrt(np.dot(sx, sx) * np.dot(sy, sy)))


def _resampled(members: list[np.ndarray], draws: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """Row indices of every bootstrap draw: the members of each drawn cluster, concatenated. A (n_boot, n)
    array when every cluster has as many rows (one gather, no loop), else a list of index arrays."""
    if len({len(m) for m in members}) == 1:
        return np.stack(members)[draws].reshape(len(draws), -1)
    return [np.concatenate([members[c] for c in draw]) for draw in draws]


def cluster_draws(labels, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A cluster bootstrap's draws: the sorted distinct values of ``labels`` (so the draws do not depend on the
    row order) and ``n_boot`` draws of as many of them with replacement, as indices into them (numpy Generator
    from ``seed``); None instead of the draws when there are fewer than two clusters."""
    clusters = np.sort(pd.unique(np.asarray(labels)))
    if len(clusters) < 2:
        return clusters, None
    return clusters, np.random.default_rng(seed).integers(0, len(clusters), size=(n_boot, len(clusters)))


def resampled_rows(labels, clusters: np.ndarray, draws: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """Row indices (into ``labels``) of every draw of :func:`cluster_draws`: all rows of each drawn cluster."""
    labels = np.asarray(labels)
    return _resampled([np.flatnonzero(labels == c) for c in clusters], draws)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`_spearman` of every row pair of (B, n) arrays at once (NaN for a constant row)."""
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / den, np.nan)


def _kendall_rows(x: np.ndarray, y: np.ndarray, chunk_pairs: int = 4_000_000) -> np.ndarray:
    """:func:`_kendall` (tau-b by pair signs) of every row pair of (B, n) arrays, in chunks of rows."""
    upper = np.triu_indices(x.shape[1], k=1)
    step = max(1, chunk_pairs // max(len(upper[0]), 1))
    out = []
    for start in range(0, len(x), step):
        xb, yb = x[start : start + step], y[start : start + step]
        sx = np.sign(xb[:, :, None] - xb[:, None, :])[:, upper[0], upper[1]]
        sy = np.sign(yb[:, :, None] - yb[:, None, :])[:, upper[0], upper[1]]
        den = np.sqrt((sx * sx).sum(axis=1) * (sy * sy).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 0, (sx * sy).sum(axis=1) / den, np.nan))
    return np.concatenate(out)


def _boot_correlations(x: np.ndarray, y: np.ndarray, idx, kendall: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Spearman (and Kendall tau-b, else NaN) of x, y on every draw's rows ``idx`` (see ``_resampled``)."""
    if isinstance(idx, np.ndarray) and idx.shape[1] <= _KENDALL_DIRECT_MAX:
        rho = _spearman_rows(x[idx], y[idx])
        return rho, (_kendall_rows(x[idx], y[idx]) if kendall else np.full(len(idx), np.nan))
    rho = np.array([_spearman(x[i], y[i]) for i in idx])
    tau = np.array([_kendall(x[i], y[i]) for i in idx]) if kendall else np.full(len(idx), np.nan)
    return rho, tau


def _percentile_interval(draws: list[float], level: float) -> tuple[float, float]:
    values = np.asarray(draws, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def rank_correlations(
    frame: pd.DataFrame,
    metrics: list[str],
    outcome: str = "probe_accuracy",
    cluster: str | None = "seed",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    kendall: bool = True,
) -> pd.DataFrame:
    """Rank correlation of each adversarial-transferability metric with knowledge transfer, cluster-bootstrap intervals.

    This is the question of the paper's Figure 3 (Section 4.2): across sources trained on class mixtures with more
    or fewer classes outside the target task, do the sources that are more adversarially transferable to the
    reference model (higher tau1, tau2, tau1*tau2, alpha, cross adversarial loss) also transfer knowledge better
    (higher ``outcome``, by default the linear-probe accuracy on the target task)?

    Returns one row per metric with columns ``metric, outcome, n, spearman, spearman_lo, spearman_hi, kendall,
    kendall_lo, kendall_hi, n_clusters`` (see :func:`_correlation_row`). Rows of one ``cluster`` value (one
    training seed) share their randomness, so the intervals come from a cluster bootstrap of ``n_boot`` draws
    at ``level``; ``cluster=None`` makes every row its own cluster (the ordinary row bootstrap). The draws are
    the same for every metric and are fully determined by ``seed`` (numpy Generator).

    A constant metric or outcome gives NaN correlations and NaN intervals, never an exception or a warning.
    ``kendall=False`` skips Kendall's bootstrap (its interval is then NaN; the point value is still given).
    The draws are evaluated together (one gather of all resampled rows) when the clusters are balanced.
    """
    _check_correlation_inputs(frame, metrics, outcome, cluster, level)
    labels = frame[cluster].to_numpy() if cluster else np.arange(len(frame))
    clusters, draws = cluster_draws(labels, n_boot, seed)
    y_all = frame[outcome].to_numpy(dtype=float)
    rows = [
        _correlation_row(frame, metric, outcome, y_all, labels, clusters, draws, level, kendall) for metric in metrics
    ]
    columns = ["metric", "outcome", "n", "spearman", "spearman_lo", "spearman_hi",
               "kendall", "kendall_lo", "kendall_hi", "n_clusters"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _check_correlation_inputs(
    frame: pd.DataFrame, metrics: list[str], outcome: str, cluster: str | None, level: float
) -> None:
    """Raise ValueError for a ``level`` outside (0, 1) and KeyError for metric, outcome or cluster columns
    missing from ``frame``."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    missing = [c for c in [*metrics, outcome, *([cluster] if cluster else [])] if c not in frame.columns]
    if missing:
        raise KeyError(f"rank_correlations: columns {missing} not in the frame (has {list(frame.columns)})")


def _correlation_row(
    frame: pd.DataFrame,
    metric: str,
    outcome: str,
    y_all: np.ndarray,
    labels: np.ndarray,
    clusters: np.ndarray,
    draws: np.ndarray | None,
    level: float,
    kendall: bool,
) -> dict:
    """One row of :func:`rank_correlations`, the correlations of ``metric`` with the outcome ``y_all``:

    - ``n``: rows used (rows where the metric or the outcome is NaN are dropped, per metric);
    - ``spearman`` / ``kendall``: scipy.stats.spearmanr / kendalltau (tau-b) over all those rows;
    - ``*_lo`` / ``*_hi``: percentile interval at ``level`` from a cluster bootstrap. Rows of one cluster
      value (one training seed) share their randomness, so they are not independent: each of the draws
      (:func:`cluster_draws`) resamples the cluster values with replacement (as many as there are) and takes ALL
      rows of every drawn cluster (a cluster drawn twice contributes its rows twice). Draws in which a correlation
      is undefined (a constant resampled column) are skipped; if every draw is undefined the interval is NaN.
    - ``n_clusters``: clusters with at least one used row. With a single cluster (e.g. one seed) there is nothing
      to resample and the interval is NaN (not a degenerate interval).
    """
    x, y, lab, n = finite_rows(frame, metric, y_all, labels)
    rho, tau = _point_correlations(x, y)
    n_clusters = len(pd.unique(lab))
    intervals = (np.nan, np.nan, np.nan, np.nan)
    if n_clusters > 1 and draws is not None:
        boot_rho, boot_tau = _boot_correlations(x, y, resampled_rows(lab, clusters, draws), kendall)
        intervals = (*_percentile_interval(boot_rho, level), *_percentile_interval(boot_tau, level))
    return dict(
        metric=metric, outcome=outcome, n=n,
        spearman=rho, spearman_lo=intervals[0], spearman_hi=intervals[1],
        kendall=tau, kendall_lo=intervals[2], kendall_hi=intervals[3],
        n_clusters=int(n_clusters),
    )  # fmt: skip


def _means_and_seed_sd(frame: pd.DataFrame, outcome: str, group: str) -> tuple[pd.Series, pd.Series, float]:
    """Per ``group`` value the mean of ``outcome`` and its count, and the pooled within-group standard
    deviation over seeds: the square root of the mean of the per-group variances (ddof 1) over every group
    with two or more rows (NaN if none)."""
    grouped = frame.groupby(group)[outcome]
    means, variances, counts = grouped.mean(), grouped.var(ddof=1), grouped.count()
    pooled = variances[counts > 1]
    return means, counts, float(np.sqrt(pooled.mean())) if len(pooled) else np.nan


DESIGN_COLUMNS = ["outcome", "n_units", "n_seeds", "highest", "lowest", "highest_mean", "lowest_mean", "difference",
                  "seed_sd", "separation", "anova_p"]  # fmt: skip


def outcome_separation(frame: pd.DataFrame, outcomes: list[str], unit: str = "source") -> pd.DataFrame:
    """The design check of every family (one unit: seed standard deviations), measured before any correlation:
    can the design answer its question? Per outcome, how far apart the units' (sources') means lie compared
    with the seed-to-seed noise.

    One row per outcome: ``n_units``, ``n_seeds`` (the fewest seeds of a unit), the units with the highest and
    the lowest mean over seeds and those means, ``difference`` (highest minus lowest), ``seed_sd`` (the pooled
    within-unit standard deviation over seeds: the square root of the mean of the per-unit variances, ddof 1,
    over every unit with two or more seeds), ``separation`` = difference / seed_sd (NaN without two seeds of a
    unit; inf when every seed agrees exactly and the means differ), and ``anova_p`` (scipy.stats.f_oneway over
    the units; beside the check, not deciding it).
    """
    rows = []
    for outcome in outcomes:
        means, counts, seed_sd = _means_and_seed_sd(frame, outcome, unit)
        means = means.dropna()
        if len(means) < 2:
            rows.append(dict(outcome=outcome, n_units=int(len(means)), n_seeds=int(counts.min()) if len(counts) else 0))
            continue
        order = means.sort_values(kind="stable")
        difference = float(order.iloc[-1] - order.iloc[0])
        if not np.isfinite(seed_sd):
            separation = np.nan
        elif seed_sd == 0:
            separation = np.inf if difference != 0 else np.nan
        else:
            separation = difference / seed_sd
        groups = [g.dropna().to_numpy(float) for _, g in frame.groupby(unit)[outcome]]
        p = (float(stats.f_oneway(*groups).pvalue) if np.isfinite(seed_sd) and seed_sd > 0 and all(len(g) > 1
             for g in groups) else np.nan)  # fmt: skip
        rows.append(dict(
            outcome=outcome, n_units=int(len(means)), n_seeds=int(counts.min()), highest=str(order.index[-1]),
            lowest=str(order.index[0]), highest_mean=float(order.iloc[-1]), lowest_mean=float(order.iloc[0]),
            difference=difference, seed_sd=seed_sd, separation=separation, anova_p=p,
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


