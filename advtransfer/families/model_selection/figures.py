"""A model-selection experiment's figures: each score against the outcome per candidate, and each score's
weighted Kendall with its interval and against its cost."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from advtransfer.plots import label_points, outcome_label
from advtransfer.stats import format_interval

# Model selection: which score ranks the candidate sources by their knowledge transfer?
_FAMILY_COLOURS = {"estimator": "tab:blue", "adversarial": "tab:red", "baseline": "0.5"}


def constant_scores(candidates: pd.DataFrame, scores: list[str]) -> list[str]:
    """The ``scores`` with one value for every candidate that has one: they rank nothing (no correlation)."""
    return [s for s in scores if candidates[s].nunique(dropna=True) <= 1]


def _selection_score_panel(ax, candidates: pd.DataFrame, score: str, outcome: str, row: pd.Series, colour: dict):
    """One score (x) against the outcome (y): scenario sources coloured by source, zoo models black squares; the
    title gives the weighted Kendall and its interval, coloured by the score's family."""
    scenario = candidates[candidates["kind"] == "scenario"]
    for source, c in colour.items():
        rows = scenario[scenario["source"] == source]
        ax.scatter(rows[score], rows[outcome], s=18, color=c, edgecolors="k", linewidths=0.3, label=source)
    zoo = candidates[candidates["kind"] == "zoo"]
    if len(zoo):
        ax.scatter(zoo[score], zoo[outcome], s=24, marker="s", color="k", label="zoo model")
    agreement_text = format_interval(row["weighted_kendall"], row["weighted_kendall_lo"], row["weighted_kendall_hi"])
    ax.set_title(f"{score}\nwKendall {agreement_text}", fontsize=8, color=_FAMILY_COLOURS[row["family"]])
    ax.set_xlabel(f"{score} (score value)", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.grid(alpha=0.25)
    ax.set_label(f"score:{score}")


def _constant_scores_panel(ax, candidates: pd.DataFrame, scores: list[str]):
    """A text panel in place of the constant scores' scatters: they say nothing about the candidates."""
    ax.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)
    for spine in ax.spines.values():
        spine.set(linestyle="--", color="0.6")
    values = "\n".join(f"{s} = {candidates[s].dropna().iloc[0]:g}" if candidates[s].notna().any() else f"{s}: none"
                       for s in scores)  # fmt: skip
    ax.text(0.5, 0.5, f"constant: not informative\nevery candidate has the same value\n\n{values}\n\n"
            "(no ranking, no weighted Kendall)", transform=ax.transAxes, ha="center", va="center", fontsize=8,
            color="0.3")  # fmt: skip
    ax.set_title("constant scores (not plotted)", fontsize=8, color="0.4")
    ax.set_label("constant")


def selection_scores_figure(candidates: pd.DataFrame, agreement: pd.DataFrame, *, outcome: str, title: str,
                            level: float = 0.95) -> Figure:  # fmt: skip
    """One panel per informative score: each candidate's score (x) against its ``outcome`` (y), scenario sources
    coloured by source (seeds share a colour), zoo models as black squares; the panel title gives the weighted
    Kendall with its ``level`` cluster-bootstrap interval, coloured by the score's family. Scores with one value
    for every candidate are listed in a text panel (constant: not informative) rather than drawn."""
    view = agreement[agreement["outcome"] == outcome].set_index("score")
    present = [s for s in view.index if s in candidates and candidates[s].notna().any()]
    constant = constant_scores(candidates, present)
    scores = [s for s in present if s not in constant]
    cols = 6
    rows = max(1, math.ceil((len(scores) + bool(constant)) / cols))
    fig = Figure(figsize=(3.0 * cols, 2.8 * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    what = outcome_label(outcome)
    fig.suptitle(f"{title}: does each score rank the candidate sources as their {what} does? One point per candidate."
                 f"\nPanel title: weighted Kendall rank correlation of the score with the {what} "
                 f"[{100 * level:.0f}% cluster-bootstrap interval]", fontsize=11)  # fmt: skip
    sources = list(dict.fromkeys(candidates.loc[candidates["kind"] == "scenario", "source"]))
    colour = {s: colormaps["viridis"](i / max(1, len(sources) - 1)) for i, s in enumerate(sources)}
    values = candidates[outcome].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    pad = 0.05 * (np.ptp(values) if values.size and np.ptp(values) > 0 else 1.0)
    for ax, score in zip(axes.flat, scores):
        _selection_score_panel(ax, candidates, score, outcome, view.loc[score], colour)
        if values.size:  # one outcome: one y range in every panel
            ax.set_ylim(values.min() - pad, values.max() + pad)
    if constant:
        _constant_scores_panel(axes.flat[len(scores)], candidates, constant)
    for ax in list(axes.flat)[len(scores) + bool(constant) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{what}\n(knowledge transfer)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels() if scores else ([], [])
    handles += [Patch(color=c, label=f"title colour: {f}") for f, c in _FAMILY_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(9, len(handles)), fontsize=8,
               title="point colour: scenario source (its seeds share the colour)", title_fontsize=8)  # fmt: skip
    return fig


def selection_agreement_figure(agreement: pd.DataFrame, *, outcome: str, title: str, level: float = 0.95) -> Figure:
    """(a) Each score's weighted Kendall with ``outcome`` and its ``level`` cluster-bootstrap interval, best first,
    coloured by family (estimator, adversarial, baseline); (b) the same against what the score costs to rank all
    the candidates (CPU seconds, log scale), each point named (names staggered so that none overlap)."""
    view = agreement[(agreement["outcome"] == outcome) & agreement["weighted_kendall"].notna()]
    view = view.sort_values("weighted_kendall", ascending=True)
    fig = Figure(figsize=(14, max(5.5, 0.3 * len(view) + 2)), layout="constrained")
    ax, cost = fig.subplots(1, 2, width_ratios=(1, 1.15))
    fig.suptitle(f"{title}: which score ranks the candidates by {outcome_label(outcome)}?\n(weighted Kendall: "
                 "+1 = the score's ranking is the outcome's, 0 = unrelated, -1 = reversed; top ranks weigh more)",
                 fontsize=11)  # fmt: skip
    y = np.arange(len(view))
    colours = [_FAMILY_COLOURS[f] for f in view["family"]]
    err = np.vstack([view["weighted_kendall"] - view["weighted_kendall_lo"],
                     view["weighted_kendall_hi"] - view["weighted_kendall"]])  # fmt: skip
    ax.errorbar(view["weighted_kendall"], y, xerr=np.nan_to_num(err), fmt="none", ecolor="0.4", elinewidth=1, capsize=2)
    ax.scatter(view["weighted_kendall"], y, c=colours, s=36, zorder=3, edgecolors="k", linewidths=0.4)
    ax.axvline(0, color="0.5", lw=0.8, ls=":")
    ax.set_yticks(y, view["score"], fontsize=8)
    ax.set(xlabel="weighted Kendall with the outcome", xlim=(-1.05, 1.05),
           title="(a) agreement of each score's ranking with the outcome's")  # fmt: skip
    handles = [Patch(color=c, label=f"{f} score") for f, c in _FAMILY_COLOURS.items()]
    handles.append(Line2D([], [], color="0.4", marker="|", ms=8, lw=1,
                          label=f"whiskers: {100 * level:.0f}% cluster-bootstrap interval"))  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    seconds = view["cpu_seconds"].clip(lower=1e-3)
    cost.scatter(seconds, view["weighted_kendall"], c=colours, s=36, edgecolors="k", linewidths=0.4, zorder=3)
    cost.set_xscale("log")
    cost.axhline(0, color="0.5", lw=0.8, ls=":")
    low, high = min(0.0, float(view["weighted_kendall"].min())), max(0.0, float(view["weighted_kendall"].max()))
    cost.set(xlabel="CPU seconds to score every candidate (log scale; baselines cost 0, drawn at 1 ms)",
             ylabel="weighted Kendall with the outcome (axis: the scores' range)",
             ylim=(max(-1.05, low - 0.12), min(1.05, high + 0.12)),
             title="(b) agreement against cost (a thin line leads from each name to its point)")  # fmt: skip
    cost.grid(alpha=0.25)
    label_points(cost, seconds.to_numpy(), view["weighted_kendall"].to_numpy(), list(view["score"]), fontsize=7.5,
                  gap=14, marker=4.5, leaders=True)  # fmt: skip
    return fig
