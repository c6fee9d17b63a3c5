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


def summarise(frame: pd.DataFrame, by: str, columns: list[str], level: float = 0.95) -> pd.DataFrame:
    """One row per value of ``by``: n and, per column, ``{col}_mean``, ``{col}_lo``, ``{col}_hi``."""
    rows = []
    for key, group in frame.groupby(by, sort=True):
        row = {by: key, "n": len(group)}
        for col in columns:
            row[f"{col}_mean"], row[f"{col}_lo"], row[f"{col}_hi"] = mean_interval(group[col], level)
        rows.append(row)
    return pd.DataFrame(rows)
