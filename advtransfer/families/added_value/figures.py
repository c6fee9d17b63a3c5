"""The added-value figure: the outcome against each leading score, coloured by overlap level with each level's
trend, and each score's leave-one-source-out gain over the design with its interval, next to its cost."""

from __future__ import annotations

import numpy as np
import pandas as pd

from advtransfer.families.added_value.jobs import LEVEL
from advtransfer.selection import score_family

FAMILY_COLOURS = {"adversarial": "tab:red", "estimator": "tab:blue", "baseline": "tab:gray"}


def leading_scores(estimator: str | None) -> list[str]:
    """The scatter panels: tau1 tau2, the cross adversarial loss, the declared estimator, the source's own
    validation accuracy (the naive baseline a user has for free)."""
    return ["tau1_tau2", "cross_adv_loss", *([estimator] if estimator else []), "source_val_accuracy"]


def added_value_figure(sources: pd.DataFrame, added: pd.DataFrame, costs: pd.DataFrame, outcome: str,
                       estimator: str | None, title: str):  # fmt: skip
    """Top row: ``outcome`` against each leading score over every (source, seed), coloured by overlap level, with
    each level's least-squares line; bottom: loo_gain (interval) of every score, its within-level Spearman, and
    its CPU seconds to score every candidate."""
    import matplotlib.pyplot as plt

    scores = leading_scores(estimator)
    levels = sorted(sources[LEVEL].unique())
    cmap = plt.get_cmap("viridis")
    fig = plt.figure(figsize=(3.2 * len(scores), 7.6), layout="constrained")
    grid = fig.add_gridspec(2, len(scores), height_ratios=[1, 1.15])
    for i, score in enumerate(scores):
        ax = fig.add_subplot(grid[0, i])
        for j, level in enumerate(levels):
            g = sources[sources[LEVEL] == level].dropna(subset=[score, outcome])
            colour = cmap(j / max(1, len(levels) - 1))
            ax.scatter(g[score], g[outcome], s=14, color=colour, alpha=0.8, label=f"overlap {level:g}")
            if len(g) >= 2 and np.ptp(g[score]) > 0:
                slope, intercept = np.polyfit(g[score], g[outcome], 1)
                xs = np.linspace(g[score].min(), g[score].max(), 2)
                ax.plot(xs, slope * xs + intercept, color=colour, lw=1.5)
        row = added[(added["metric"] == score) & (added["outcome"] == outcome)]
        rho = float(row["within_spearman"].iloc[0]) if len(row) else float("nan")
        p = float(row["p_value"].iloc[0]) if len(row) else float("nan")
        ax.set_title(f"{score}\nwithin-level rho {rho:+.2f} (p {p:.3g})", fontsize=9)
        ax.set_xlabel(score)
        if i == 0:
            ax.set_ylabel(outcome)
            ax.legend(fontsize=7, loc="best")
    _gain_panel(fig.add_subplot(grid[1, :]), added[added["outcome"] == outcome], costs)
    fig.suptitle(f"{title}: added value over the class overlap ({outcome})")
    return fig


def _gain_panel(ax, added: pd.DataFrame, costs: pd.DataFrame) -> None:
    """Every score's leave-one-source-out gain with its interval, sorted, coloured by kind; its within-level
    Spearman and CPU seconds written beside it."""
    added = added.sort_values("loo_gain", ascending=False, na_position="last", ignore_index=True)
    cost = costs.drop_duplicates("score").set_index("score")["cpu_seconds"] if len(costs) else pd.Series(dtype=float)
    y = np.arange(len(added))
    for i, r in added.iterrows():
        colour = FAMILY_COLOURS[score_family(r["metric"])]
        lo, hi = r["loo_gain_lo"], r["loo_gain_hi"]
        ax.errorbar(r["loo_gain"], i, xerr=[[max(0.0, r["loo_gain"] - lo)], [max(0.0, hi - r["loo_gain"])]]
                    if np.isfinite(lo) and np.isfinite(hi) else None, fmt="o", color=colour, capsize=2)  # fmt: skip
        seconds = cost.get(r["metric"], np.nan)
        ax.annotate(f"rho_w {r['within_spearman']:+.2f}   {seconds:.3g} CPU s", (1.0, i), xycoords=("axes fraction",
                    "data"), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)  # fmt: skip
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, added["metric"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("leave-one-source-out gain over the design factors (1 - SSE(design + score) / SSE(design))")
    handles = [ax.scatter([], [], color=c, label=k) for k, c in FAMILY_COLOURS.items()]
    ax.legend(handles=handles, fontsize=7, loc="lower right")

