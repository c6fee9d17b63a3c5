"""Figures of the paper, made readable on their own (matplotlib, object API: no global state, no display)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from advtransfer.io import atomic_path
from advtransfer.scenarios import few_shot_k
from advtransfer.stats import format_interval, source_order

_COLOURS = {
    "tau1": "tab:blue",
    "tau2": "tab:orange",
    "alpha": "tab:green",
    "transfer_loss_lastlayer": "tab:red",
    "transfer_loss_affine": "tab:purple",
    "target_loss": "0.4",
    "cross_adv_loss": "tab:brown",
    "grad_diff": "tab:red",
    "thm2_bound": "tab:blue",
    "thm2_bound_lipschitz": "tab:cyan",
    "thm3_bound": "tab:blue",
    "lambda_s": "tab:olive",
    "lambda_t": "tab:gray",
    "tau1_tau2": "tab:cyan",
    "outcome": "0.25",
}


def _band(ax, summary: pd.DataFrame, x: str, column: str, label: str, style: str = "-o"):
    """Mean across seeds with its 95% interval as a shaded band."""
    colour = _COLOURS.get(column)
    ax.plot(summary[x], summary[f"{column}_mean"], style, color=colour, label=label, markersize=3)
    ax.fill_between(summary[x], summary[f"{column}_lo"], summary[f"{column}_hi"], color=colour, alpha=0.2, lw=0)


def figure2(summary: pd.DataFrame) -> Figure:
    """Figure 2 (Section 4.1): metrics against the source's distance t from the target. Panels (a)-(g) on
    the training sample D (what the theory and the paper's code use); (h) the held-out view of the
    transferred loss. ``summary`` has a ``split`` column ('train', 'heldout')."""
    train, heldout = (summary[summary["split"] == name] for name in ("train", "heldout"))
    n_seeds = int(summary["n"].min())
    fig = Figure(figsize=(17, 7.5), layout="constrained")
    axes = fig.subplots(2, 4, sharex=True)
    a, b, c, d = axes[0]
    e, f, g, h = axes[1]

    for col, label in [("tau1", r"$\tau_1$"), ("tau2", r"$\tau_2$ (S$\to$T)"), ("alpha", r"$\alpha$")]:
        _band(a, train, "t", col, label)
    a.set(title="(a) Adversarial transferability", ylabel="value in [0, 1]", ylim=(-0.02, 1.02))

    _band(b, train, "t", "transfer_loss_lastlayer", "last layer refit on $f_S$ (paper)")
    _band(b, train, "t", "target_loss", "reference $f_T$ itself", style="--")
    b.set(title="(b) Knowledge transfer: loss on the training sample", ylabel=r"$\|h - y\|_D^2$ (lower is better)")

    _band(c, train, "t", "cross_adv_loss", r"$f_T$ at PGD examples of $f_S$")
    c.set(title="(c) Cross adversarial loss (Def. 6)", ylabel="squared error")

    _band(d, train, "t", "tau2", r"$\tau_2$ from S to T (Def. 3, used here)")
    _band(d, train, "t", "tau2_reverse", r"$\tau_2$ from T to S (the paper's code)", style="--")
    d.set(title=r"(d) Ablation: direction of $\tau_2$", ylabel="value in [0, 1]", ylim=(-0.02, 1.02))

    _band(e, train, "t", "grad_diff", r"true $\|J_T - A J_S\|_{D,2}^2$")
    _band(e, train, "t", "thm2_bound", "Theorem 2 bound (expectation)")
    _band(e, train, "t", "thm2_bound_lipschitz", "Theorem 2 bound (Lipschitz)", style="--")
    e.set(title="(e) Theorem 2: gradient matching", yscale="symlog", ylabel="squared norm (symlog)")

    _band(f, train, "t", "transfer_loss_affine", r"true $\|g\circ f_S - y\|_D^2$")
    _band(f, train, "t", "thm3_bound", "Theorem 3 bound")
    f.set(title="(f) Theorem 3: affine transfer", yscale="log", ylabel="squared error (log)")

    _band(g, train, "t", "lambda_s", r"$\lambda_S$ (max over D)")
    _band(g, train, "t", "lambda_t", r"$\lambda_T$ (max over D)", style="--")
    g.set(title=r"(g) Singular-value ratios $\sigma_2/\sigma_1$", ylabel="ratio", ylim=(-0.02, 1.02))

    _band(h, heldout, "t", "transfer_loss_lastlayer", "last layer refit on $f_S$ (paper)")
    _band(h, heldout, "t", "target_loss", "reference $f_T$ itself", style="--")
    h.set(title="(h) Held-out view: loss on the held-out split", ylabel=r"$\|h - y\|^2$ (lower is better)")

    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel(r"$t$: source = target parameters + $t\,V$")
    fig.suptitle(
        "Synthetic regression (Section 4.1): adversarial transferability and knowledge transfer as the source "
        f"moves away from the reference model\nmean and 95% interval over {n_seeds} draws of V; (a)-(g) on "
        "the training sample D (the theory's and the paper's code's), (h) on the held-out split",
        fontsize=11,
    )
    return fig


def save_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int = 150):
    """Write a figure as PNG and PDF (each atomically)."""
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:])


# Figure 3 (Section 4.2): adversarial transferability vs knowledge transfer across source class mixtures.
FIGURE3_BAR_METRICS = ["tau1", "tau2", "tau1_tau2", "alpha"]
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
_SEED_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def outcome_label(outcome: str) -> str:
    """A reader's name for a knowledge outcome column (advtransfer.scenarios.knowledge_outcomes)."""
    k = few_shot_k(outcome)
    if k is not None:
        return f"{k}-shot probe accuracy"
    return {"probe_accuracy": "probe accuracy (all labelled images)", "finetune_accuracy": "fine-tuned accuracy"}.get(
        outcome, outcome
    )


def _fmt_interval(value: float, lo: float, hi: float, n_clusters: int) -> str:
    if not math.isfinite(value):
        return "undefined (constant values)"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{value:+.2f} (no interval: {n_clusters} seed{'s' if n_clusters != 1 else ''})"
    return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _correlation_title(correlations: pd.DataFrame, metric: str, outcome: str) -> str:
    """Two lines: Spearman rho and Kendall tau-b (called "Kendall" so it is not mistaken for tau1/tau2)."""
    rows = correlations[(correlations["metric"] == metric) & (correlations["outcome"] == outcome)]
    if rows.empty:
        return "rank correlation not computed"
    row = rows.iloc[0]
    k = int(row.n_clusters)
    return (
        rf"Spearman $\rho$ = {_fmt_interval(row.spearman, row.spearman_lo, row.spearman_hi, k)}"
        "\n"
        f"Kendall = {_fmt_interval(row.kendall, row.kendall_lo, row.kendall_hi, k)}"
    )


def figure3(
    summary: pd.DataFrame, correlations: pd.DataFrame, title: str, level: float = 0.95, outcome: str = "probe_accuracy"
) -> Figure:
    """Figure 3 (Section 4.2): are more adversarially transferable sources better at knowledge transfer?

    ``title`` names the scenario (e.g. "cifar10_stl10: CIFAR-10 sources, STL-10 vehicles target"); the figure
    adds the question and what the marks are, so the title need not. ``summary`` has one row per (source,
    seed) (columns source, seed, outside_fraction, the metrics and the knowledge ``outcome``, e.g. a k-shot
    probe's accuracy); ``correlations`` is :func:`advtransfer.stats.rank_correlations` with that outcome
    among its rows (``level`` only labels its intervals). Panel (a): per source, ordered by outside_fraction,
    bars of the mean over seeds of tau1, tau2, tau1*tau2, alpha and the outcome, whiskers min..max over
    seeds, dots the seeds. Panels (b)-(f): each metric (and the cross adversarial loss) against the outcome, one point
    per (source, seed), with the rank correlations and their cluster-bootstrap intervals in the titles.
    Works for any number of seeds (one seed: no whiskers, intervals reported as absent) and NaN correlations.
    """
    order = source_order(summary)
    seeds = sorted(summary["seed"].unique())
    n_seeds = len(seeds)
    cmap = colormaps["viridis"]
    colours = {s: cmap(0.9 * i / max(len(order) - 1, 1)) for i, s in enumerate(order)}
    many_seeds = n_seeds > len(_SEED_MARKERS)  # then one marker for all, rather than markers that repeat
    markers = {seed: "o" if many_seeds else _SEED_MARKERS[i] for i, seed in enumerate(seeds)}
    outside = summary.groupby("source")["outside_fraction"].first()

    fig = Figure(figsize=(18, 9), layout="constrained")
    grid = fig.add_gridspec(2, 5, width_ratios=[1.25, 1.25, 1, 1, 1])
    bars = fig.add_subplot(grid[:, :2])
    cells = [grid[0, 2], grid[0, 3], grid[0, 4], grid[1, 2], grid[1, 3]]
    scatters = [fig.add_subplot(cells[0])]
    scatters += [fig.add_subplot(cell, sharey=scatters[0]) for cell in cells[1:]]
    key = fig.add_subplot(grid[1, 4])

    # (a) grouped bars: four metrics, a gap, then the knowledge outcome
    columns = [*FIGURE3_BAR_METRICS, outcome]
    what = outcome_label(outcome)
    labels = {**_FIGURE3_LABELS, outcome: f"{what} (knowledge transfer)"}
    width = 0.15
    offsets = np.array([0, 1, 2, 3, 4.35]) * width
    offsets -= offsets.mean()
    x = np.arange(len(order))
    grouped = summary.groupby("source")
    for column, offset in zip(columns, offsets):
        stats_ = grouped[column].agg(["mean", "min", "max"]).reindex(order)
        is_probe = column == outcome
        bars.bar(
            x + offset, stats_["mean"], width, color=_COLOURS["outcome" if is_probe else column], label=labels[column],
            hatch="//" if is_probe else None, edgecolor="white" if is_probe else None, linewidth=0,
        )  # fmt: skip
        if n_seeds > 1:
            bars.errorbar(
                x + offset, stats_["mean"],
                yerr=[stats_["mean"] - stats_["min"], stats_["max"] - stats_["mean"]],
                fmt="none", ecolor="black", elinewidth=1, capsize=2,
            )  # fmt: skip
            for i, source in enumerate(order):
                values = grouped.get_group(source)[column].to_numpy(dtype=float)
                bars.plot(np.full(values.size, x[i] + offset), values, ".", color="black", ms=3, alpha=0.6)
    bars.set_xticks(x, [f"{s}\n{100 * outside[s]:.0f}% outside" for s in order])
    bars.set(
        xlabel="source model (share of its classes outside the target task)",
        ylabel="value (all quantities lie in [0, 1])",
        ylim=(0, 1.12),
        title="(a) Per source: adversarial transferability (colours) and knowledge transfer (hatched)",
    )
    bars.set_title(bars.get_title(), fontsize=10)
    bars.grid(axis="y", alpha=0.3)
    bars.legend(loc="upper center", ncol=5, fontsize=9, frameon=True)

    # (b)-(f) each metric against the outcome, one point per (source, seed)
    for ax, metric, letter in zip(scatters, FIGURE3_SCATTER_METRICS, "bcdef"):
        for (source, seed), row in summary.set_index(["source", "seed"]).iterrows():
            ax.scatter(
                row[metric], row[outcome], color=colours[source], marker=markers[seed],
                s=36, edgecolors="black", linewidths=0.4, zorder=3,
            )  # fmt: skip
        head = f"({letter}) {_FIGURE3_LABELS[metric]} vs {what}"
        ax.set_title(head + "\n" + _correlation_title(correlations, metric, outcome), fontsize=9)
        ax.set_xlabel(_FIGURE3_XLABELS[metric], fontsize=9)
        ax.grid(alpha=0.3)
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
    for ax in (scatters[0], scatters[3]):
        ax.set_ylabel(f"{what}\non the target test split", fontsize=9)
    for ax in (scatters[1], scatters[2], scatters[4]):
        ax.tick_params(labelleft=False)

    # key: colours = sources, markers = seeds, and what the quantities are
    key.axis("off")
    handles = [Patch(color=colours[s], label=f"{s} ({100 * outside[s]:.0f}% outside)") for s in order]
    source_legend = key.legend(handles=handles, title="source (colour)", loc="upper left", fontsize=8,
                               title_fontsize=9, frameon=False)  # fmt: skip
    key.add_artist(source_legend)
    if not many_seeds:
        seed_handles = [
            Line2D([], [], ls="none", marker=markers[s], color="0.5", mec="black", mew=0.4, label=f"seed {s}")
            for s in seeds
        ]
        key.legend(handles=seed_handles, title="seed (marker)", loc="upper right", fontsize=8,
                   title_fontsize=9, frameon=False)  # fmt: skip
    key.text(
        0.0, 0.0,
        "Metrics are measured against a reference\nmodel trained on the target task.\n"
        "Probe: linear classifier on the frozen\nsource's features, trained on the target\n"
        "(k-shot: k labelled images per class,\nmean over draws). Fine-tuned: the whole\nsource network "
        "retrained on the target.\n"
        r"Spearman $\rho$, Kendall ($\tau_b$): rank correlations"
        f"\nwith the {what} over all points;\n[ ]: {100 * level:.0f}% cluster-bootstrap interval\n"
        "(seeds resampled with replacement).",
        transform=key.transAxes, fontsize=8, va="bottom", ha="left",
    )  # fmt: skip

    if n_seeds > 1:
        bars_text = f"mean over {n_seeds} seeds, whiskers min to max, dots single seeds"
    else:
        bars_text = "one seed (no spread shown)"
    fig.suptitle(
        f"{title}: do sources that are more adversarially transferable to the target task's reference model "
        f"transfer knowledge better?\n(a) bars: {bars_text}; (b)-(f) each point is one source model trained "
        "with one seed",
        fontsize=11,
    )
    return fig


# Table 1's figure (Section 4.3): attributes' adversarial transferability to the identity reference vs their
# knowledge transfer to identity, with the identity-defining attributes (known by construction) marked.
_DEFINING_COLOURS = {True: "tab:red", False: "tab:blue"}


def attribute_figure(
    summary: pd.DataFrame, correlations: pd.DataFrame, check: pd.DataFrame, *, rank_by: str, outcome: str, title: str
) -> Figure:
    """(a) per attribute (seed means, whiskers min..max over seeds): ``rank_by`` against ``outcome``, the
    identity-defining attributes in red, with the rank correlation over all (attribute, seed) rows; (b) per
    metric (and knowledge outcome), the AUC of identity-defining over nuisance attributes
    (advtransfer.attributes.defining_rank_check) with the per-seed range: above 0.5, the metric ranks the
    attributes that define identity first."""
    fig = Figure(figsize=(15, 6.5), layout="constrained")
    scatter, bars = fig.subplots(1, 2, width_ratios=[1.2, 1])
    grouped = summary.groupby("source")
    stats_x = grouped[rank_by].agg(["mean", "min", "max"])
    stats_y = grouped[outcome].agg(["mean", "min", "max"])
    defining = grouped["defines_identity"].first().astype(bool)
    for source in stats_x.index:
        colour = _DEFINING_COLOURS[bool(defining[source])]
        x, y = stats_x.loc[source], stats_y.loc[source]
        scatter.errorbar(  # max(0, .): a mean equals its min or max up to rounding when the seeds agree
            x["mean"], y["mean"], xerr=[[max(0.0, x["mean"] - x["min"])], [max(0.0, x["max"] - x["mean"])]],
            yerr=[[max(0.0, y["mean"] - y["min"])], [max(0.0, y["max"] - y["mean"])]], fmt="o", color=colour,
            ecolor=colour,
            elinewidth=0.8, capsize=2, mec="black", mew=0.4, zorder=3,
        )  # fmt: skip
        scatter.annotate(source, (x["mean"], y["mean"]), xytext=(4, 3), textcoords="offset points", fontsize=8)
    what = outcome_label(outcome)
    scatter.set_title(
        f"(a) {rank_by} vs identity {what}, per attribute\n" + _correlation_title(correlations, rank_by, outcome),
        fontsize=10,
    )
    scatter.set(
        xlabel=f"{rank_by} of the attribute model against the identity reference",
        ylabel=f"identity {what}\n(probe on the frozen attribute model, held-out images)",
    )
    scatter.grid(alpha=0.3)
    scatter.legend(
        handles=[Patch(color=_DEFINING_COLOURS[True], label="defines identity"),
                 Patch(color=_DEFINING_COLOURS[False], label="nuisance for identity")],
        loc="best", fontsize=9,
    )  # fmt: skip

    y = np.arange(len(check))
    colours = ["0.3" if m.startswith("probe") else "tab:green" for m in check["metric"]]
    bars.barh(y, check["auc"] - 0.5, left=0.5, color=colours, height=0.6)
    # the per-seed range as its own segment: the AUC of the seed means need not lie inside it
    bars.hlines(y, check["auc_seed_min"], check["auc_seed_max"], color="black", lw=1.2)
    bars.plot(check["auc_seed_min"], y, "|", color="black", ms=8)
    bars.plot(check["auc_seed_max"], y, "|", color="black", ms=8)
    bars.axvline(0.5, color="black", lw=1, ls="--")
    bars.set_yticks(y, list(check["metric"]))
    bars.invert_yaxis()
    bars.set(xlim=(-0.02, 1.02), xlabel="AUC: share of (defining, nuisance) attribute pairs ranked defining first")
    bars.set_title(
        "(b) Does each measure rank the identity-defining attributes first?\nbars: AUC on the seed means "
        "(0.5 = no separation); black segment:\nrange over single seeds; green: adversarial metrics, grey: knowledge",
        fontsize=10,
    )
    bars.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return fig


# Figure 4 (Section 4.4): task trees from adversarial transferability and from knowledge transfer.
_KIND_COLOURS = {"semantic": "tab:red", "2d": "tab:blue", "geometric": "tab:green"}


def figure4(
    trees: dict[str, np.ndarray], tasks: list[str], kinds: dict[str, str], entropy: pd.DataFrame, title: str
) -> Figure:
    """Dendrograms side by side (``trees``: panel title -> scipy linkage over the tasks' columns), leaf labels
    coloured by the task's known kind, and the inner-category entropy of each tree against the kinds for
    each number of clusters k (``entropy``: columns view, k, entropy; Figure 5)."""
    from scipy.cluster.hierarchy import dendrogram

    fig = Figure(figsize=(5 * len(trees) + 5, 5.5), layout="constrained")
    axes = fig.subplots(1, len(trees) + 1)
    for ax, (name, link) in zip(axes, trees.items()):
        dendrogram(link, labels=tasks, ax=ax, orientation="left", color_threshold=0, above_threshold_color="0.3")
        for label in ax.get_yticklabels():
            label.set_color(_KIND_COLOURS.get(kinds[label.get_text()], "black"))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("merge distance")
    curve = axes[-1]
    for view, group in entropy.groupby("view", sort=False):
        curve.plot(group["k"], group["entropy"], "-o", label=view)
    curve.set(xlabel="number of clusters k", ylabel="inner-category entropy (nats)\n0 = every cluster one kind",
              title="Figure 5 analog: clusters against the known kinds")  # fmt: skip
    curve.set_title(curve.get_title(), fontsize=10)
    curve.grid(alpha=0.3)
    handles = [Patch(color=c, label=k) for k, c in _KIND_COLOURS.items() if k in set(kinds.values())]
    first = curve.legend(loc="upper right", fontsize=8)
    curve.add_artist(first)
    curve.legend(handles=handles, title="label colour: kind", loc="lower left", fontsize=8, title_fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


_RETRAIN_MARKERS = {"probe": "o", "finetune": "s", "adv_finetune": "^"}


def robustness_figure(summary: pd.DataFrame, *, eps: float, radii: list[float], claims: dict, title: str) -> Figure:
    """The robustness family's figure (robustness.csv), four panels: (a) does robustness transfer? source vs
    target accuracy under PGD at ``eps``, one point per (scheme, seed, retraining); (b) randomized-smoothing
    certified accuracy vs L2 radius per scheme, source task (solid) and target task after a probe (dashed),
    means over seeds; (c) the RRM panel: training CPU time vs clean (hollow) and robust (filled) source
    accuracy of the standard, robust, fast and rrm schemes; (d) tau1 tau2 (source vs target reference) vs the
    target robust accuracy after each retraining."""
    from advtransfer.robustness import RETRAIN_SCHEMES, pgd_column

    source, target = pgd_column("source", eps), pgd_column("target", eps)
    schemes = list(dict.fromkeys(summary["scheme"]))
    cmap = colormaps["tab10"]
    colour = {s: cmap(i % 10) for i, s in enumerate(schemes)}
    fig = Figure(figsize=(13, 10.5), layout="constrained")
    axes = fig.subplots(2, 2)
    fig.suptitle(title, fontsize=11)

    ax = axes[0, 0]
    for (scheme, retrain), group in summary.groupby(["scheme", "retrain"], sort=False):
        ax.scatter(group[source], group[target], color=colour[scheme], marker=_RETRAIN_MARKERS.get(retrain, "x"),
                   s=40, alpha=0.85, edgecolors="k", linewidths=0.4)  # fmt: skip
    lim = [0, 1.02]
    ax.plot(lim, lim, color="0.7", lw=0.8, ls=":")
    ax.set(xlim=lim, ylim=lim, xlabel=f"source task: accuracy under PGD (L-inf eps {eps:g})",
           ylabel=f"target task: accuracy under PGD (eps {eps:g})",
           title="(a) does source robustness carry over to the target task?")  # fmt: skip
    handles = [Patch(color=colour[s], label=s) for s in schemes]
    handles += [Line2D([], [], color="k", marker=m, ls="", label=f"retrain: {r}") for r, m in _RETRAIN_MARKERS.items()]
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="upper left")

    ax = axes[0, 1]
    probe = summary[summary["retrain"] == RETRAIN_SCHEMES[0]]
    for scheme in schemes:
        rows = probe[probe["scheme"] == scheme]
        for side, style in (("source", "-"), ("target", "--")):
            values = [rows[f"{side}_certified_accuracy_r{r:g}"].mean() for r in radii]
            ax.plot(radii, values, style, marker=".", color=colour[scheme], label=scheme if side == "source" else None)
    ax.set(xlabel="L2 radius r (pixels in [0, 1])", ylabel="certified accuracy at r", ylim=(0, 1.02),
           title="(b) certified accuracy: source (solid), target after a probe (dashed)")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1, 0]
    chosen = [s for s in (claims["standard"], claims["robust"], *claims["fast"], claims["rrm"]) if s in schemes]
    per = probe.groupby("scheme")[["train_cpu_seconds", "source_clean_accuracy", source]].mean()
    for scheme in chosen:
        t = per.loc[scheme, "train_cpu_seconds"]
        ax.scatter([t], [per.loc[scheme, "source_clean_accuracy"]], facecolors="none", edgecolors=colour[scheme], s=70)
        ax.scatter([t], [per.loc[scheme, source]], color=colour[scheme], s=70)
        ax.annotate(scheme, (t, per.loc[scheme, source]), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set(xlabel="source training CPU time (s, log scale; rrm without its teacher's)", ylabel="source task accuracy",
           ylim=(0, 1.02), title="(c) RRM: accuracy vs training time (hollow: clean, filled: PGD)")  # fmt: skip

    ax = axes[1, 1]
    for (scheme, retrain), group in summary.groupby(["scheme", "retrain"], sort=False):
        ax.scatter(group["tau1_tau2"], group[target], color=colour[scheme], marker=_RETRAIN_MARKERS.get(retrain, "x"),
                   s=40, alpha=0.85, edgecolors="k", linewidths=0.4)  # fmt: skip
    ax.set(xlabel="tau1 tau2 of the source's features vs the target reference (Liang et al.)",
           ylabel=f"target task: accuracy under PGD (eps {eps:g})", ylim=(0, 1.02),
           title="(d) adversarial transferability vs robustness after transfer")  # fmt: skip
    return fig


def interaction_figure(summary: pd.DataFrame, view: pd.DataFrame, *, claims: dict, outcome: str | None,
                       title: str) -> Figure:
    """The multi-order interactions figure (interactions.csv), as Ren et al. plot it: (a, b) the normalised
    strength E|I^(m)| / its mean over orders vs m / n per model group, on the source and the target task's clean
    images; (c, d) the attack-induced change E|I^(m)(x_adv) - I^(m)(x)| vs m / n; bands: two-level bootstrap
    intervals (seeds, then images); dotted lines: the claims' low and high order ranges. With a scenario, (e)
    and (f): each of its sources' high-order share vs tau1 tau2 and vs the knowledge-transfer ``outcome``."""
    groups = list(dict.fromkeys(summary.loc[summary["side"] != "scenario", "group"]))
    cmap = colormaps["tab10"]
    colour = {g: cmap(i % 10) for i, g in enumerate(groups)}
    with_view = len(view) > 0 and outcome is not None
    fig = Figure(figsize=(17 if with_view else 12, 9), layout="constrained")
    axes = fig.subplots(2, 3 if with_view else 2)
    fig.suptitle(title, fontsize=11)
    panels = [(0, 0, "source", "profile", "(a) source task, clean: normalised strength"),
              (0, 1, "target", "profile", "(b) target task, clean: normalised strength"),
              (1, 0, "source", "change", "(c) source task: change caused by PGD"),
              (1, 1, "target", "change", "(d) target task: change caused by PGD")]  # fmt: skip
    for row, col, side, column, label in panels:
        ax = axes[row, col]
        for group in groups:
            rows = summary[(summary["side"] == side) & (summary["group"] == group)].sort_values("m_over_n")
            if len(rows):
                ax.plot(rows["m_over_n"], rows[column], "-o", ms=3, color=colour[group], label=group)
                ax.fill_between(rows["m_over_n"], rows[f"{column}_lo"], rows[f"{column}_hi"], color=colour[group],
                                alpha=0.18, lw=0)  # fmt: skip
        for bound in (claims["low"], claims["high"]):
            ax.axvline(bound, color="0.6", ls=":", lw=0.8)
        ylabel = ("E|I^(m)| / mean over m" if column == "profile" else "E|I^(m)(x_adv) - I^(m)(x)|")
        ax.set(xlabel="order m / n", ylabel=ylabel, title=label, xlim=(0, 1))
        ax.legend(fontsize=7, title="training scheme", title_fontsize=7)
    if with_view:
        sources = list(dict.fromkeys(view["source"]))
        vcolour = {s: colormaps["viridis"](i / max(1, len(sources) - 1)) for i, s in enumerate(sources)}
        for ax, column, label in ((axes[0, 2], "tau1_tau2", "tau1 tau2 (source vs the target reference)"),
                                  (axes[1, 2], outcome, outcome_label(outcome))):  # fmt: skip
            for source in sources:
                rows = view[view["source"] == source]
                ax.scatter(rows[column], rows["high_order_share"], color=vcolour[source], s=40, edgecolors="k",
                           linewidths=0.4, label=source)  # fmt: skip
            ax.set(xlabel=label, ylabel=f"high-order share of the strength (m/n >= {claims['high']:g})",
                   title=f"({'e' if column == 'tau1_tau2' else 'f'}) scenario sources on the target "
                         "images")  # fmt: skip
            ax.legend(fontsize=7)
    return fig


# Model selection: which score ranks the candidate sources by their knowledge transfer?
_FAMILY_COLOURS = {"estimator": "tab:blue", "adversarial": "tab:red", "baseline": "0.5"}


def selection_scores_figure(candidates: pd.DataFrame, agreement: pd.DataFrame, *, outcome: str, title: str) -> Figure:
    """One panel per score: each candidate's score (x) against its ``outcome`` (y), scenario sources coloured by
    source (seeds share a colour), zoo models as black squares; the panel title gives the weighted Kendall with
    its cluster-bootstrap interval."""
    view = agreement[agreement["outcome"] == outcome].set_index("score")
    scores = [s for s in view.index if candidates[s].notna().any()]
    cols = 6
    rows = max(1, math.ceil(len(scores) / cols))
    fig = Figure(figsize=(3.0 * cols, 2.6 * rows + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    fig.suptitle(f"{title}: each score (x) against {outcome_label(outcome)} (y), one point per candidate", fontsize=11)
    scenario = candidates[candidates["kind"] == "scenario"]
    sources = list(dict.fromkeys(scenario["source"]))
    colour = {s: colormaps["viridis"](i / max(1, len(sources) - 1)) for i, s in enumerate(sources)}
    for ax, score in zip(axes.flat, scores):
        for source in sources:
            rows_ = scenario[scenario["source"] == source]
            ax.scatter(rows_[score], rows_[outcome], s=18, color=colour[source], edgecolors="k", linewidths=0.3,
                       label=source)  # fmt: skip
        zoo = candidates[candidates["kind"] == "zoo"]
        if len(zoo):
            ax.scatter(zoo[score], zoo[outcome], s=24, marker="s", color="k", label="zoo")
        r = view.loc[score]
        agreement_text = format_interval(r["weighted_kendall"], r["weighted_kendall_lo"], r["weighted_kendall_hi"])
        ax.set_title(f"{score}\nwKendall {agreement_text}", fontsize=8, color=_FAMILY_COLOURS[r["family"]])
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in list(axes.flat)[len(scores):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(8, len(labels)), fontsize=8)
    return fig


def selection_agreement_figure(agreement: pd.DataFrame, *, outcome: str, title: str) -> Figure:
    """(a) Each score's weighted Kendall with ``outcome`` and its cluster-bootstrap interval, best first, coloured
    by family (estimator, adversarial, baseline); (b) the same against what the score costs to rank all the
    candidates (CPU seconds, log scale)."""
    view = agreement[(agreement["outcome"] == outcome) & agreement["weighted_kendall"].notna()]
    view = view.sort_values("weighted_kendall", ascending=True)
    fig = Figure(figsize=(13, max(4.5, 0.28 * len(view) + 1.5)), layout="constrained")
    ax, cost = fig.subplots(1, 2, width_ratios=(1.1, 1))
    fig.suptitle(f"{title}: which score ranks the candidates by {outcome_label(outcome)}?", fontsize=11)
    y = np.arange(len(view))
    colours = [_FAMILY_COLOURS[f] for f in view["family"]]
    err = np.vstack([view["weighted_kendall"] - view["weighted_kendall_lo"],
                     view["weighted_kendall_hi"] - view["weighted_kendall"]])  # fmt: skip
    ax.errorbar(view["weighted_kendall"], y, xerr=np.nan_to_num(err), fmt="none", ecolor="0.4", elinewidth=1, capsize=2)
    ax.scatter(view["weighted_kendall"], y, c=colours, s=36, zorder=3, edgecolors="k", linewidths=0.4)
    ax.axvline(0, color="0.5", lw=0.8, ls=":")
    ax.set_yticks(y, view["score"], fontsize=8)
    ax.set(xlabel="weighted Kendall with the outcome (95% cluster-bootstrap interval)", xlim=(-1.05, 1.05),
           title="(a) agreement of each score's ranking with the outcome's")  # fmt: skip
    handles = [Patch(color=c, label=f) for f, c in _FAMILY_COLOURS.items()]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    seconds = view["cpu_seconds"].clip(lower=1e-3)
    cost.scatter(seconds, view["weighted_kendall"], c=colours, s=36, edgecolors="k", linewidths=0.4)
    for s, w, name in zip(seconds, view["weighted_kendall"], view["score"]):
        cost.annotate(name, (s, w), fontsize=7, xytext=(3, 2), textcoords="offset points")
    cost.set_xscale("log")
    cost.axhline(0, color="0.5", lw=0.8, ls=":")
    cost.set(xlabel="CPU seconds to score every candidate (log; baselines: 0, drawn at 1 ms)",
             ylabel="weighted Kendall", ylim=(-1.05, 1.05), title="(b) agreement against cost")  # fmt: skip
    return fig
