"""A scenario's Figure 3 (Section 4.2): per source, each adversarial metric and the knowledge outcome on its own
axis, and each metric against the outcome per (source, seed) with its rank correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from advtransfer.plots import correlation_title, outcome_label
from advtransfer.stats import source_order


def _marks_key(n_seeds: int, *, what: str = "bar") -> list:
    """Legend handles saying what a mean-over-seeds mark, its whiskers and the single seeds' dots are."""
    if n_seeds <= 1:
        return [Patch(facecolor="0.6", label=f"{what}: the single seed's value (no spread: one seed)")]
    return [
        Patch(facecolor="0.6", label=f"{what}: mean over {n_seeds} seeds"),
        Line2D([], [], color="black", marker="|", ms=8, lw=1, label="whiskers: min to max over seeds"),
        Line2D([], [], color="black", marker=".", ls="none", ms=5, label="dots: single seeds"),
    ]


# Figure 3 (Section 4.2): adversarial transferability vs knowledge transfer across source class mixtures.
FIGURE3_BAR_METRICS = ["tau1", "tau2", "tau1_tau2", "alpha", "cross_adv_loss"]


FIGURE3_SCATTER_METRICS = ["tau1", "tau2", "tau1_tau2", "alpha", "cross_adv_loss"]


_FIGURE3_LABELS = {
    "tau1": r"$\tau_1$",
    "tau2": r"$\tau_2$ (S$\to$T)",
    "tau1_tau2": r"$\tau_1\tau_2$",
    "alpha": r"$\alpha$",
    "cross_adv_loss": "cross adversarial loss",
}


_FIGURE3_XLABELS = {
    "tau1": r"$\tau_1$: alignment of attack directions (Def. 2)",
    "tau2": r"$\tau_2$: alignment of deviations (Def. 3)",
    "tau1_tau2": r"$\tau_1\tau_2$ (Theorem 1)",
    "alpha": r"$\alpha$: normalised cross adversarial loss",
    "cross_adv_loss": "reference cross-entropy at source's PGD\nexamples (nats, Def. 6)",
}


_FIGURE3_BAR_TITLES = {
    "tau1": r"$\tau_1$: alignment of attack directions",
    "tau2": r"$\tau_2$ (S$\to$T): alignment of deviations",
    "tau1_tau2": r"$\tau_1\tau_2$ (Theorem 1; a product, so small)",
    "alpha": r"$\alpha$: normalised cross adversarial loss",
    "cross_adv_loss": "cross adversarial loss (Def. 6)",
}


_SEED_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _figure3_look(summary: pd.DataFrame) -> dict:
    """Sources in outside-fraction order with their colours and share outside; seeds with their markers."""
    order = source_order(summary)
    seeds = sorted(summary["seed"].unique())
    many_seeds = len(seeds) > len(_SEED_MARKERS)  # then one marker for all, rather than markers that repeat
    return {
        "order": order,
        "seeds": seeds,
        "many_seeds": many_seeds,
        "colours": {s: colormaps["viridis"](0.9 * i / max(len(order) - 1, 1)) for i, s in enumerate(order)},
        "markers": {seed: "o" if many_seeds else _SEED_MARKERS[i] for i, seed in enumerate(seeds)},
        "outside": summary.groupby("source")["outside_fraction"].first(),
    }


def _figure3_bars(ax, summary: pd.DataFrame, column: str, look: dict, *, title: str, ylabel: str, knowledge=False):
    """One quantity per source on its own y axis: bar = mean over seeds (source's colour), whiskers = min..max,
    dots = the seeds (their markers); y from 0 to 15% above the largest seed, or to 1.05 for the ``knowledge``
    outcome (an accuracy, hatched)."""
    order, x = look["order"], np.arange(len(look["order"]))
    stats_ = summary.groupby("source")[column].agg(["mean", "min", "max"]).reindex(order)
    ax.bar(x, stats_["mean"], 0.7, color=[look["colours"][s] for s in order], hatch="//" if knowledge else None,
           edgecolor="white" if knowledge else None, linewidth=0)  # fmt: skip
    if len(look["seeds"]) > 1:
        ax.errorbar(x, stats_["mean"], yerr=[(stats_["mean"] - stats_["min"]).clip(lower=0),
                                             (stats_["max"] - stats_["mean"]).clip(lower=0)],
                    fmt="none", ecolor="black", elinewidth=1, capsize=3)  # fmt: skip
        for (source, seed), value in summary.set_index(["source", "seed"])[column].items():  # beside the whisker
            ax.plot(order.index(source) + 0.2, value, look["markers"][seed], color="black", ms=3, alpha=0.75)
    values = summary[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    largest = float(values.max()) if values.size else 0.0
    ax.set_ylim(0, 1.05 if knowledge else (1.15 * largest if largest > 0 else 1.0))
    ax.set_xticks(x, [f"{s} ({100 * look['outside'][s]:.0f}%)" for s in order], rotation=35, ha="right",
                  rotation_mode="anchor", fontsize=8)  # fmt: skip
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_label(f"bars:{column}")


def _figure3_scatter(ax, summary, correlations, metric: str, outcome: str, look: dict, letter: str):
    """``metric`` against ``outcome``, one point per (source, seed), the rank correlations in the title."""
    for (source, seed), row in summary.set_index(["source", "seed"]).iterrows():
        ax.scatter(row[metric], row[outcome], color=look["colours"][source], marker=look["markers"][seed],
                   s=36, edgecolors="black", linewidths=0.4, zorder=3)  # fmt: skip
    head = f"({letter}) {_FIGURE3_LABELS[metric]} vs {outcome_label(outcome)}"
    ax.set_title(head + "\n" + correlation_title(correlations, metric, outcome), fontsize=9)
    ax.set_xlabel(_FIGURE3_XLABELS[metric], fontsize=9)
    ax.grid(alpha=0.3)
    ax.set_label(f"scatter:{metric}")
    values = summary[metric].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        pad = max(0.06 * (hi - lo), 0.02 * max(abs(lo), abs(hi), 1.0))
        lo, hi = lo - pad, hi + pad
        if metric != "cross_adv_loss":  # tau1, tau2, tau1*tau2 and alpha lie in [0, 1]
            lo, hi = max(lo, -0.02), min(hi, 1.02)
        ax.set_xlim(lo, hi)
        # fixed ticks, so that the layout made for them is the layout drawn (no label past the edge)
        ticks = MaxNLocator(nbins=5, steps=[1, 2, 5, 10]).tick_values(lo, hi)
        ax.set_xticks(ticks[(ticks >= lo) & (ticks <= hi)])


def _figure3_key(key, look: dict, what: str, level: float):
    """Colours = sources, markers = seeds, what the bars' marks are, and what the quantities are."""
    key.axis("off")
    key.set_label("key")
    order, outside = look["order"], look["outside"]
    handles = [Patch(color=look["colours"][s], label=f"{s} ({100 * outside[s]:.0f}% outside)") for s in order]
    if not look["many_seeds"]:
        handles += [Line2D([], [], ls="none", marker=look["markers"][s], color="0.5", mec="black", mew=0.4,
                           label=f"seed {s}") for s in look["seeds"]]  # fmt: skip
    handles += _marks_key(len(look["seeds"]), what="(a) bar")
    key.legend(handles=handles, title="colour: source (% of its classes outside\nthe target task); marker: seed",
               loc="upper left", fontsize=7.5, title_fontsize=8, frameon=False, borderaxespad=0)  # fmt: skip
    key.text(
        0.0, 0.0,
        "Metrics: against a reference model trained\non the target task. Probe: linear classifier\n"
        "on the frozen source's features (k-shot:\nk labelled images per class, mean over\ndraws). "
        r"Spearman $\rho$, Kendall ($\tau_b$): rank"
        f"\ncorrelations with the {what}\nover all points; [ ]: {100 * level:.0f}% cluster-bootstrap\n"
        "interval (seeds resampled with replacement).",
        transform=key.transAxes, fontsize=7.5, va="bottom", ha="left",
    )  # fmt: skip


def figure3(
    summary: pd.DataFrame, correlations: pd.DataFrame, title: str, level: float = 0.95, outcome: str = "probe_accuracy"
) -> Figure:
    """Figure 3 (Section 4.2): are more adversarially transferable sources better at knowledge transfer?

    ``title`` names the scenario; the figure adds the question and what the marks are. ``summary`` has one row
    per (source, seed) (columns source, seed, outside_fraction, the metrics and the knowledge ``outcome``);
    ``correlations`` is :func:`advtransfer.stats.rank_correlations` with that outcome among its rows (``level``
    only labels its intervals). Top row (a): per source, ordered by outside_fraction, one small panel per
    quantity on its own y axis (tau1, tau2, tau1*tau2, alpha, the cross adversarial loss, then the outcome,
    hatched): bars the mean over seeds, whiskers min..max, dots the seeds. Bottom row (b): each metric against
    the outcome, one point per (source, seed), with the rank correlations and their cluster-bootstrap intervals
    in the titles. Works for any number of seeds (one seed: no whiskers, no interval) and NaN correlations."""
    look = _figure3_look(summary)
    what = outcome_label(outcome)
    fig = Figure(figsize=(20, 10.5), layout="constrained")
    grid = fig.add_gridspec(2, 6, height_ratios=[1, 1.25])
    for i, column in enumerate(FIGURE3_BAR_METRICS):
        unit = "nats" if column == "cross_adv_loss" else "value in [0, 1]"
        _figure3_bars(fig.add_subplot(grid[0, i]), summary, column, look, title=f"(a) {_FIGURE3_BAR_TITLES[column]}",
                      ylabel=f"{unit} (own y scale)")  # fmt: skip
    _figure3_bars(fig.add_subplot(grid[0, 5]), summary, outcome, look, title=f"(a) knowledge transfer:\n{what}",
                  ylabel="accuracy on the target test split", knowledge=True)  # fmt: skip
    scatters = [fig.add_subplot(grid[1, 0])]
    scatters += [fig.add_subplot(grid[1, i], sharey=scatters[0]) for i in range(1, len(FIGURE3_SCATTER_METRICS))]
    for ax, metric in zip(scatters, FIGURE3_SCATTER_METRICS):
        _figure3_scatter(ax, summary, correlations, metric, outcome, look, "b")
    scatters[0].set_ylabel(f"{what}\non the target test split", fontsize=9)
    for ax in scatters[1:]:
        ax.tick_params(labelleft=False)
    _figure3_key(fig.add_subplot(grid[1, 5]), look, what, level)
    n_seeds = len(look["seeds"])
    spread = (f"bars: mean over {n_seeds} seeds, whiskers min to max, dots single seeds" if n_seeds > 1
              else "one seed (no spread shown)")  # fmt: skip
    fig.suptitle(
        f"{title}: do sources that are more adversarially transferable to the target task's reference model "
        f"transfer knowledge better?\n(a) per source, each quantity on its own y scale ({spread}); "
        "(b) each point is one source model trained with one seed",
        fontsize=11,
    )
    return fig
