"""An attributes experiment's figure (Section 4.3): the chosen metric against identity knowledge per attribute,
and whether each measure ranks the identity-defining attributes first."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from advtransfer.plots import correlation_title, label_points, outcome_label

# Table 1's figure (Section 4.3): attributes' adversarial transferability to the identity reference vs their
# knowledge transfer to identity, with the identity-defining attributes (known by construction) marked.
_DEFINING_COLOURS = {True: "tab:red", False: "tab:blue"}


def per_seed_aucs(summary: pd.DataFrame, metric: str) -> np.ndarray:
    """The AUC of the identity-defining over the nuisance attributes by ``metric`` on each seed alone (in seed
    order; oriented as :func:`summary.defining_rank_check` orients it, whose auc_seed_min /
    auc_seed_max are these values' min and max)."""
    from advtransfer.designs import direction
    from advtransfer.families.attributes.summary import auc_above

    values = direction(metric) * summary[metric].astype(float)
    defining = summary["defines_identity"].astype(bool)
    return np.array([auc_above(values.loc[rows][defining.loc[rows]], values.loc[rows][~defining.loc[rows]])
                     for rows in summary.groupby("seed").groups.values()])  # fmt: skip


def _attribute_scatter(ax, summary, correlations, *, rank_by: str, outcome: str, n_classes: int | None):
    """Per attribute: seed means of ``rank_by`` (x) and ``outcome`` (y), whiskers min..max over seeds, the
    chance accuracy 1 / ``n_classes``. Returns the points (x, y, name) to be labelled once the layout is done."""
    grouped = summary.groupby("source")
    stats_x, stats_y = grouped[rank_by].agg(["mean", "min", "max"]), grouped[outcome].agg(["mean", "min", "max"])
    defining = grouped["defines_identity"].first().astype(bool)
    for source in stats_x.index:
        colour = _DEFINING_COLOURS[bool(defining[source])]
        x, y = stats_x.loc[source], stats_y.loc[source]
        ax.errorbar(  # max(0, .): a mean equals its min or max up to rounding when the seeds agree
            x["mean"], y["mean"], xerr=[[max(0.0, x["mean"] - x["min"])], [max(0.0, x["max"] - x["mean"])]],
            yerr=[[max(0.0, y["mean"] - y["min"])], [max(0.0, y["max"] - y["mean"])]], fmt="o", color=colour,
            ecolor=colour, elinewidth=0.8, capsize=2, mec="black", mew=0.4, zorder=3,
        )  # fmt: skip
    n_seeds = int(summary["seed"].nunique())
    what = outcome_label(outcome)
    handles = [Patch(color=_DEFINING_COLOURS[True], label="defines identity"),
               Patch(color=_DEFINING_COLOURS[False], label="nuisance for identity"),
               Line2D([], [], color="0.3", marker="o", mec="black", mew=0.4, ls="none",
                      label=f"dot: mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}")]  # fmt: skip
    if n_seeds > 1:
        handles.append(Line2D([], [], color="0.3", marker="|", ms=8, lw=0.8, label="whiskers: min to max over seeds"))
    if n_classes:
        ax.axhline(1 / n_classes, color="0.3", ls="--", lw=1)
        ax.annotate(f"chance (1/{n_classes})", (1, 1 / n_classes), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8, color="0.3")  # fmt: skip
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1,
                              label=f"chance: 1 / {n_classes} identities = {1 / n_classes:.3f}"))  # fmt: skip
    else:
        handles.append(Line2D([], [], ls="none", label="chance level: number of identities not given"))
    ax.legend(handles=handles, loc="best", fontsize=8.5)
    ax.set_title(f"(a) {rank_by} vs identity {what}, per attribute\n"
                 + correlation_title(correlations, rank_by, outcome), fontsize=10)  # fmt: skip
    ax.set(xlabel=f"{rank_by} of the attribute model against the identity reference",
           ylabel=f"identity {what}\n(probe on the frozen attribute model, held-out images)")  # fmt: skip
    ax.grid(alpha=0.3)
    return stats_x["mean"].to_numpy(), stats_y["mean"].to_numpy(), list(stats_x.index)


def _defining_auc_panel(ax, summary: pd.DataFrame, check: pd.DataFrame):
    """Per metric (and knowledge outcome): bar from 0.5 to the mean of the per-seed AUCs, dots the per-seed AUCs
    (from ``summary``, or the check's min and max when its column is missing; the bar is the claim's measurement,
    docs/claims.md), diamond the AUC of the seed means (the check's ``auc``)."""
    y = np.arange(len(check))
    seeds = [per_seed_aucs(summary, m) if m in summary else np.array([lo, hi])
             for m, lo, hi in zip(check["metric"], check["auc_seed_min"], check["auc_seed_max"])]  # fmt: skip
    means = np.array([np.nanmean(s) if np.isfinite(s).any() else np.nan for s in seeds])
    colours = ["0.35" if m.startswith(("probe", "finetune")) else "tab:green" for m in check["metric"]]
    ax.barh(y, means - 0.5, left=0.5, color=colours, height=0.6, alpha=0.85)
    for i, values in enumerate(seeds):
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        ax.plot(values, i + jitter, "o", color="black", ms=3.5, zorder=3)
    ax.plot(check["auc"], y, "D", mfc="white", mec="black", ms=6, zorder=4)
    ax.axvline(0.5, color="black", lw=1, ls="--")
    ax.set_yticks(y, list(check["metric"]))
    ax.invert_yaxis()
    ax.set(xlim=(-0.02, 1.02), xlabel="AUC: share of (defining, nuisance) attribute pairs ranked defining first")
    n_seeds = int(summary["seed"].nunique())
    handles = [Patch(color="tab:green", label=f"adversarial metric: mean of the {n_seeds} per-seed AUCs (the claim's)"),
               Patch(color="0.35", label=f"knowledge outcome: mean of the {n_seeds} per-seed AUCs"),
               Line2D([], [], color="black", marker="o", ms=3.5, ls="none", label="AUC on one seed alone"),
               Line2D([], [], mfc="white", mec="black", marker="D", ms=6, ls="none",
                      label="AUC of the attributes' seed means"),
               Line2D([], [], color="black", ls="--", lw=1, label="0.5 = chance: no separation")]  # fmt: skip
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, fontsize=8)
    ax.set_title("(b) Does each measure rank the identity-defining attributes first?\n"
                 "1 = every defining attribute above every nuisance one", fontsize=10)  # fmt: skip
    ax.grid(axis="x", alpha=0.3)


def attribute_figure(
    summary: pd.DataFrame, correlations: pd.DataFrame, check: pd.DataFrame, *, rank_by: str, outcome: str,
    title: str, n_classes: int | None = None,
) -> Figure:  # fmt: skip
    """(a) per attribute (seed means, whiskers min..max over seeds): ``rank_by`` against ``outcome``, the
    identity-defining attributes in red, with the rank correlation over all (attribute, seed) rows and the
    chance accuracy 1 / ``n_classes`` (the reference's identity classes; else a ``reference_n_classes`` column of
    ``summary``; no line when neither is given); (b) per metric (and knowledge outcome), the AUC of
    identity-defining over nuisance attributes (summary.defining_rank_check): dots on each seed
    alone, the bar their mean, a diamond the AUC of the seed means. Above 0.5, the metric ranks the attributes
    that define identity first."""
    if not n_classes and "reference_n_classes" in summary:
        n_classes = int(summary["reference_n_classes"].iloc[0])
    fig = Figure(figsize=(15.5, 7.5), layout="constrained")
    scatter, bars = fig.subplots(1, 2, width_ratios=[1.2, 1])
    points = _attribute_scatter(scatter, summary, correlations, rank_by=rank_by, outcome=outcome, n_classes=n_classes)
    _defining_auc_panel(bars, summary, check)
    fig.suptitle(title, fontsize=11)
    label_points(scatter, *points, fontsize=8.5)
    return fig
