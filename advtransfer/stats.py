"""Summary statistics: intervals across seeds and rank correlations with bootstrap intervals."""

from __future__ import annotations

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
) -> pd.DataFrame:
    """Rank correlation of each adversarial-transferability metric with knowledge transfer, cluster-bootstrap intervals.

    This is the question of the paper's Figure 3 (Section 4.2): across sources trained on class mixtures with more
    or fewer classes outside the target task, do the sources that are more adversarially transferable to the
    reference model (higher tau1, tau2, tau1*tau2, alpha, cross adversarial loss) also transfer knowledge better
    (higher ``outcome``, by default the linear-probe accuracy on the target task)?

    Returns one row per metric with columns ``metric, outcome, n, spearman, spearman_lo, spearman_hi, kendall,
    kendall_lo, kendall_hi, n_clusters``:

    - ``n``: rows used (rows where the metric or the outcome is NaN are dropped, per metric);
    - ``spearman`` / ``kendall``: scipy.stats.spearmanr / kendalltau (tau-b) over all those rows;
    - ``*_lo`` / ``*_hi``: percentile interval at ``level`` from a cluster bootstrap. Rows of one ``cluster``
      value (one training seed) share their randomness, so they are not independent: each of the ``n_boot``
      draws resamples the cluster values with replacement (as many as there are) and takes ALL rows of every
      drawn cluster (a cluster drawn twice contributes its rows twice). Draws in which a correlation is undefined
      (a constant resampled column) are skipped; if every draw is undefined the interval is NaN. The draws are
      the same for every metric and are fully determined by ``seed`` (numpy Generator).
    - ``n_clusters``: clusters with at least one used row. With a single cluster (e.g. one seed) there is nothing
      to resample and the interval is NaN (not a degenerate interval). ``cluster=None`` makes every row its own
      cluster (the ordinary row bootstrap).

    A constant metric or outcome gives NaN correlations and NaN intervals, never an exception or a warning.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    missing = [c for c in [*metrics, outcome, *([cluster] if cluster else [])] if c not in frame.columns]
    if missing:
        raise KeyError(f"rank_correlations: columns {missing} not in the frame (has {list(frame.columns)})")

    labels = frame[cluster].to_numpy() if cluster else np.arange(len(frame))
    clusters = np.sort(pd.unique(labels))  # sorted, so the draws do not depend on the row order
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(clusters), size=(n_boot, len(clusters))) if len(clusters) > 1 else None
    y_all = frame[outcome].to_numpy(dtype=float)

    rows = []
    for metric in metrics:
        x_all = frame[metric].to_numpy(dtype=float)
        used = np.isfinite(x_all) & np.isfinite(y_all)
        x, y, lab = x_all[used], y_all[used], labels[used]
        members = [np.flatnonzero(lab == c) for c in clusters]
        rho, tau = _point_correlations(x, y)
        n_clusters = sum(len(m) > 0 for m in members)
        intervals = (np.nan, np.nan, np.nan, np.nan)
        if n_clusters > 1 and draws is not None:
            boot_rho, boot_tau = [], []
            for draw in draws:
                idx = np.concatenate([members[c] for c in draw])
                bx, by = x[idx], y[idx]
                boot_rho.append(_spearman(bx, by))
                boot_tau.append(_kendall(bx, by))
            intervals = (*_percentile_interval(boot_rho, level), *_percentile_interval(boot_tau, level))
        rows.append(
            dict(
                metric=metric, outcome=outcome, n=int(used.sum()),
                spearman=rho, spearman_lo=intervals[0], spearman_hi=intervals[1],
                kendall=tau, kendall_lo=intervals[2], kendall_hi=intervals[3],
                n_clusters=int(n_clusters),
            )  # fmt: skip
        )
    columns = ["metric", "outcome", "n", "spearman", "spearman_lo", "spearman_hi",
               "kendall", "kendall_lo", "kendall_hi", "n_clusters"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
