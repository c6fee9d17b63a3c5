"""An attributes experiment's summary statistics (Section 4.3): per-attribute means, Table 1's top attributes and
whether the identity-defining attributes rank first. No torch."""

from __future__ import annotations

import numpy as np
import pandas as pd

from advtransfer.designs import direction


def attribute_means(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per attribute (``source``): ``defines_identity``, ``n_seeds`` and the mean and std (ddof 1) over seeds
    of each of ``columns`` (``{c}_mean``, ``{c}_std``)."""
    grouped = summary.groupby("source", sort=True)
    out = pd.DataFrame({"defines_identity": grouped["defines_identity"].first(), "n_seeds": grouped["seed"].nunique()})
    for c in columns:
        out[f"{c}_mean"] = grouped[c].mean()
        out[f"{c}_std"] = grouped[c].std(ddof=1)
    return out.reset_index()


def top_attributes(summary: pd.DataFrame, rank_by: str, outcome: str, k: int = 5) -> pd.DataFrame:
    """Table 1: the ``k`` attributes most adversarially transferable by ``rank_by`` (seed means), with their
    knowledge transfer ``outcome`` and its rank among ALL attributes (1 = best)."""
    means = attribute_means(summary, [rank_by, outcome])
    means["metric_rank"] = (direction(rank_by) * means[f"{rank_by}_mean"]).rank(ascending=False, method="min")
    means["outcome_rank"] = means[f"{outcome}_mean"].rank(ascending=False, method="min")
    return means.sort_values(["metric_rank", "source"]).head(k).reset_index(drop=True)


def auc_above(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random ``positive`` score > a random ``negative`` one), ties counting one half (the Mann-Whitney U
    statistic over n_pos n_neg); 1: every positive above every negative, 0.5: no separation. NaN if empty."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        return float("nan")
    diff = positive[:, None] - negative[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def defining_rank_check(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Do the identity-defining attributes rank above the nuisance ones, by each of ``columns``?

    Per column, on the seed means of each attribute, oriented so that larger = more transferable
    (:func:`direction`): ``auc`` = :func:`auc_above` (defining vs nuisance), ``auc_seed_min`` /
    ``auc_seed_max`` over the seeds taken one at a time, ``defining_mean_rank`` / ``nuisance_mean_rank``
    (1 = most transferable), and ``top_hits``: how many of the n_defining top-ranked attributes define
    identity (n_defining when the ranking puts every defining attribute first).
    """
    defining = summary["defines_identity"].astype(bool)
    n_def = int(summary.loc[defining, "source"].nunique())
    rows = []
    for c in columns:
        oriented = summary.assign(_v=direction(c) * summary[c].astype(float))
        means = oriented.groupby("source").agg(v=("_v", "mean"), d=("defines_identity", "first"))
        ranks = means["v"].rank(ascending=False, method="average")
        per_seed = [
            auc_above(g.loc[g["defines_identity"].astype(bool), "_v"], g.loc[~g["defines_identity"].astype(bool), "_v"])
            for _, g in oriented.groupby("seed")
        ]
        top = means["v"].sort_values(ascending=False, kind="stable").index[:n_def]
        rows.append(dict(
            metric=c,
            auc=auc_above(means.loc[means["d"].astype(bool), "v"], means.loc[~means["d"].astype(bool), "v"]),
            auc_seed_min=float(np.nanmin(per_seed)) if per_seed else np.nan,
            auc_seed_max=float(np.nanmax(per_seed)) if per_seed else np.nan,
            defining_mean_rank=float(ranks[means["d"].astype(bool)].mean()),
            nuisance_mean_rank=float(ranks[~means["d"].astype(bool)].mean()),
            top_hits=int(means.loc[top, "d"].astype(bool).sum()),
            n_defining=n_def,
            n_attributes=int(len(means)),
        ))  # fmt: skip
    return pd.DataFrame(rows)
