"""An interactions experiment's figure (Ren et al. 2021): interaction strength and attack-induced change per order
ratio and training scheme, and a scenario's sources' high-order share against tau and the outcome."""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from advtransfer.plots import outcome_label


def _interaction_key(groups: list[str], colour: dict, claims: dict, level: float) -> list:
    """Legend handles: the groups' colours, the lines, the bands (two-level bootstrap, as
    :func:`advtransfer.interactions.order_summary` computes them) and the dotted order thresholds."""
    handles = [Line2D([], [], color=colour[g], marker="o", ms=3, label=g) for g in groups]
    handles += [
        Line2D([], [], color="0.3", marker="o", ms=3, label="line: mean over all images of all seeds"),
        Patch(facecolor="0.3", alpha=0.25, lw=0,
              label=f"band: {100 * level:.0f}% two-level bootstrap interval\n(seeds resampled, then images within "
                    "each seed)"),
        Line2D([], [], color="0.45", ls=":", lw=1,
               label=f"dotted: the claims' order thresholds\nlow r ≤ {claims['low']:g}, high r ≥ "
                     f"{claims['high']:g}"),
    ]  # fmt: skip
    return handles


def _interaction_panel(ax, summary: pd.DataFrame, side: str, column: str, title: str, colour: dict, claims: dict):
    """One side's ``column`` per order and group, its bootstrap band, and the claims' thresholds (dotted, named on
    a top axis)."""
    for group in colour:
        rows = summary[(summary["side"] == side) & (summary["group"] == group)].sort_values("order_ratio")
        if len(rows):
            ax.plot(rows["order_ratio"], rows[column], "-o", ms=3, color=colour[group], label=group)
            ax.fill_between(rows["order_ratio"], rows[f"{column}_lo"], rows[f"{column}_hi"], color=colour[group],
                            alpha=0.18, lw=0)  # fmt: skip
    low, high = claims["low"], claims["high"]
    for bound in (low, high):
        ax.axvline(bound, color="0.45", ls=":", lw=1)
    top = ax.secondary_xaxis("top")
    top.set_xticks([low, high], [f"low orders\nr ≤ {low:g}", f"high orders\nr ≥ {high:g}"], fontsize=7,
                   color="0.35")  # fmt: skip
    top.tick_params(length=0, pad=1)
    ylabel = (r"$E|I^{(m)}|$ / its mean over orders" + "\n(1 = the average order)" if column == "profile"
              else r"$E|I^{(m)}(x_{adv}) - I^{(m)}(x)|$" + "\n(nats of the label's log-probability)")  # fmt: skip
    ax.set(xlabel="order ratio r = m / (n - 2) (context size m, n players)", ylabel=ylabel, xlim=(0, 1))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25)
    ax.set_label(f"{side}:{column}")


def _interaction_view(ax, view: pd.DataFrame, column: str, name: str, claims: dict, letter: str):
    """A scenario's sources: high-order share of the clean strength against ``column``, one point per (source,
    seed)."""
    sources = list(dict.fromkeys(view["source"]))
    colour = {s: colormaps["viridis"](i / max(1, len(sources) - 1)) for i, s in enumerate(sources)}
    for source in sources:
        rows = view[view["source"] == source]
        ax.scatter(rows[column], rows["high_order_share"], color=colour[source], s=40, edgecolors="k",
                   linewidths=0.4, label=source)  # fmt: skip
    ax.set(xlabel=name, ylabel=f"high-order share of the clean strength\n(share at r ≥ {claims['high']:g})")
    ax.set_title(f"({letter}) scenario sources on the target images:\nhigh-order share vs {name.split(' (')[0]}",
                 fontsize=10)  # fmt: skip
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, title="source (a point per seed)", title_fontsize=7)


def interaction_figure(summary: pd.DataFrame, view: pd.DataFrame, *, claims: dict, outcome: str | None,
                       title: str, level: float = 0.95) -> Figure:  # fmt: skip
    """The multi-order interactions figure (interactions.csv), as Ren et al. plot it: (a, b) the normalised
    strength E|I^(m)| / its mean over orders vs r per model group, on the source and the target task's clean
    images; (c, d) the attack-induced change E|I^(m)(x_adv) - I^(m)(x)| vs r; lines: means over all images
    and seeds; bands: the ``level`` two-level bootstrap intervals of interactions.csv's *_lo / *_hi (seeds
    resampled, then images within each seed); dotted lines: the claims' low and high order thresholds, named on
    each panel's top axis. With a scenario, (e) and (f): each of its sources' high-order share vs tau1 tau2 and
    vs the knowledge-transfer ``outcome``."""
    groups = list(dict.fromkeys(summary.loc[summary["side"] != "scenario", "group"]))
    colour = {g: colormaps["tab10"](i % 10) for i, g in enumerate(groups)}
    with_view = len(view) > 0 and outcome is not None
    fig = Figure(figsize=(17 if with_view else 12, 10), layout="constrained")
    axes = fig.subplots(2, 3 if with_view else 2)
    fig.suptitle(title, fontsize=11)
    panels = [(0, 0, "source", "profile", "(a) source task, clean images: normalised strength"),
              (0, 1, "target", "profile", "(b) target task, clean images: normalised strength"),
              (1, 0, "source", "change", "(c) source task: change caused by PGD"),
              (1, 1, "target", "change", "(d) target task: change caused by PGD")]  # fmt: skip
    for row, col, side, column, label in panels:
        _interaction_panel(axes[row, col], summary, side, column, label, colour, claims)
    if with_view:
        _interaction_view(axes[0, 2], view, "tau1_tau2", "tau1 tau2 (source vs the target reference)", claims, "e")
        _interaction_view(axes[1, 2], view, outcome, outcome_label(outcome), claims, "f")
    key = _interaction_key(groups, colour, claims, level)
    fig.legend(handles=key, loc="outside lower center", ncols=len(groups) + 3, fontsize=8,
               title="(a)-(d): colour = training scheme", title_fontsize=8)  # fmt: skip
    return fig
