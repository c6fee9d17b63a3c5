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


# Shared helpers of the figures below: point labels that do not overlap, and the key to what marks mean.


def _text_size(ax, text: str, fontsize: float, renderer) -> tuple[float, float]:
    """(width, height) in pixels of ``text`` drawn at ``fontsize`` (measured, then removed)."""
    probe = ax.text(0, 0, text, fontsize=fontsize)
    box = probe.get_window_extent(renderer)
    probe.remove()
    return box.width, box.height


def _free_position(want: float, height: float, blocks: list, pad: float, upward: bool) -> float:
    """The centre nearest ``want``, going up (or down), where a label of ``height`` clears every block (centre,
    height) by ``pad``."""
    forbidden = [(c - (height + bh) / 2 - pad, c + (height + bh) / 2 + pad) for c, bh in blocks]
    pos = want
    while hits := [(lo, hi) for lo, hi in forbidden if lo < pos < hi]:
        pos = max(hi for _, hi in hits) if upward else min(lo for lo, _ in hits)
    return pos


def _stack(x0, x1, py, h, points, marker: float, pad: float, upward: bool) -> np.ndarray:
    """Label centres placed one at a time from the lowest point up (or the highest down), each as near its point
    as the labels placed before it and the other points' markers allow: labels that share height keep their
    points' order."""
    cy = np.full(len(py), np.nan)
    for i in np.argsort(py if upward else -py, kind="stable"):
        blocks = [(cy[j], h[j]) for j in np.flatnonzero(np.isfinite(cy)) if x0[i] < x1[j] and x0[j] < x1[i]]
        blocks += [(qy, 2 * marker) for k, (qx, qy) in enumerate(points)
                   if k != i and x0[i] < qx + marker and x1[i] > qx - marker]  # fmt: skip
        cy[i] = _free_position(py[i], h[i], blocks, pad, upward)
    return cy


def _spread(x0, x1, py, h, points, marker: float, bounds: tuple[float, float], pad: float) -> np.ndarray:
    """Label centres (pixels) near their points' heights ``py`` such that no two labels whose spans [x0, x1]
    overlap share height and no label covers another point's marker (a square of half side ``marker`` around
    ``points``): stacked upwards or downwards, whichever stays inside ``bounds`` (the axes) and moves the labels
    less."""
    low, high = bounds
    tries = []
    for upward in (True, False):
        cy = _stack(x0, x1, np.asarray(py, dtype=float), h, points, marker, pad, upward)
        outside = bool(np.any(cy - h / 2 < low) or np.any(cy + h / 2 > high))
        tries.append((outside, float(np.abs(cy - py).sum()), cy))
    cy = min(tries, key=lambda t: t[:2])[2]
    return np.clip(cy, low + h / 2, high - h / 2)


def _label_sides(xy: np.ndarray, width: np.ndarray, box, offset: float, reach: float, height: float) -> np.ndarray:
    """Per point, True to name it on its right: the side with fewer points nearby (within ``reach`` across and
    ``height`` up or down); on a tie, the right unless the point is in the axes' right third; never a side
    where the name would leave the axes ``box``."""
    right = xy[:, 0] < box.x0 + 2 / 3 * box.width
    for i, (px, py) in enumerate(xy):
        dx, dy = xy[:, 0] - px, np.abs(xy[:, 1] - py)
        near = (np.abs(dx) < reach) & (dy < height)
        n_left, n_right = int(np.sum(near & (dx < 0))), int(np.sum(near & (dx > 0)))
        if n_left != n_right:
            right[i] = n_right < n_left
        if right[i] and px + offset + width[i] > box.x1:
            right[i] = False
        elif not right[i] and px - offset - width[i] < box.x0:
            right[i] = True
    return right


def _label_columns(xy: np.ndarray, right: np.ndarray, reach: float, height: float) -> np.ndarray:
    """Per point, the x (pixels) its label hangs from: points on the same side within ``reach`` across and
    ``height`` up or down (chained) share one column, beside the outermost of them, so that their labels stack
    in the points' order rather than cross."""
    parent = list(range(len(xy)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(xy)):
        for j in range(i + 1, len(xy)):
            near = abs(xy[i, 0] - xy[j, 0]) < reach and abs(xy[i, 1] - xy[j, 1]) < height
            if right[i] == right[j] and near:
                parent[root(j)] = root(i)
    roots = np.array([root(i) for i in range(len(xy))])
    anchor = xy[:, 0].copy()
    for r in set(roots):
        members = roots == r
        anchor[members] = xy[members, 0].max() if right[r] else xy[members, 0].min()
    return anchor


def _label_points(
    ax, xs, ys, names, *, fontsize: float = 8, gap: float = 5.0, marker: float = 4.0, leaders: bool = False
) -> list:
    """Name each point (data ``xs``, ``ys``) beside it so that no two names overlap: a name starts ``gap`` points
    beside its point, on the side with fewer points nearby (points close together share one column), then
    names that collide, or cover another point's marker (half side ``marker`` points), are pushed apart
    vertically; a name moved off its point (every name, with ``leaders``) gets a thin leader line to it. Lays the
    figure out first and then freezes that layout (so the names are placed on the geometry that is saved): call
    it after everything else is on the figure. Returns the annotations."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # a canvas that can measure text
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    points = np.column_stack([xs, ys]).astype(float)
    xy = np.asarray(ax.transData.transform(points), dtype=float)
    box = ax.get_window_extent(renderer)
    sizes = np.array([_text_size(ax, str(name), fontsize, renderer) for name in names]).reshape(-1, 2)
    w, h = sizes[:, 0], sizes[:, 1]
    offset, tall = gap * px_per_pt, 2 * float(h.max(initial=0))
    right = _label_sides(xy, w, box, offset, 10 * marker * px_per_pt, tall)
    anchor = _label_columns(xy, right, 4 * marker * px_per_pt, tall)
    x0 = np.where(right, anchor + offset, anchor - offset - w)
    cy = _spread(x0, x0 + w, xy[:, 1], h, xy, marker * px_per_pt, (box.y0, box.y1), 2.5 * px_per_pt)
    labels = []
    for (x, y), (px, py), a, c, name, r, height in zip(points, xy, anchor, cy, names, right, h):
        dx, dy = (a - px) / px_per_pt + (gap if r else -gap), (c - py) / px_per_pt
        lead = leaders or abs(c - py) > height / 2 or abs(a - px) > 1
        leader = (dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=1, shrinkB=marker, relpos=(0 if r else 1, 0.5))
                  if lead else None)  # fmt: skip
        label = ax.annotate(str(name), (x, y), xytext=(dx, dy), textcoords="offset points",
                            ha="left" if r else "right", va="center", fontsize=fontsize, arrowprops=leader,
                            annotation_clip=False, bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none",
                                                             alpha=0.75))  # fmt: skip
        label.set_in_layout(False)
        labels.append(label)
    return labels


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
    ax.set_title(head + "\n" + _correlation_title(correlations, metric, outcome), fontsize=9)
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


# Table 1's figure (Section 4.3): attributes' adversarial transferability to the identity reference vs their
# knowledge transfer to identity, with the identity-defining attributes (known by construction) marked.
_DEFINING_COLOURS = {True: "tab:red", False: "tab:blue"}


def per_seed_aucs(summary: pd.DataFrame, metric: str) -> np.ndarray:
    """The AUC of the identity-defining over the nuisance attributes by ``metric`` on each seed alone (in seed
    order; oriented as :func:`advtransfer.attributes.defining_rank_check` orients it, whose auc_seed_min /
    auc_seed_max are these values' min and max)."""
    from advtransfer.attributes import auc_above, direction

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
                 + _correlation_title(correlations, rank_by, outcome), fontsize=10)  # fmt: skip
    ax.set(xlabel=f"{rank_by} of the attribute model against the identity reference",
           ylabel=f"identity {what}\n(probe on the frozen attribute model, held-out images)")  # fmt: skip
    ax.grid(alpha=0.3)
    return stats_x["mean"].to_numpy(), stats_y["mean"].to_numpy(), list(stats_x.index)


def _defining_auc_panel(ax, summary: pd.DataFrame, check: pd.DataFrame):
    """Per metric (and knowledge outcome): bar from 0.5 to the mean of the per-seed AUCs, dots the per-seed AUCs
    (from ``summary``, or the check's min and max when its column is missing), diamond the AUC of the seed means
    (the check's ``auc``, the table's value)."""
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
    handles = [Patch(color="tab:green", label=f"adversarial metric: mean of the {n_seeds} per-seed AUCs"),
               Patch(color="0.35", label=f"knowledge outcome: mean of the {n_seeds} per-seed AUCs"),
               Line2D([], [], color="black", marker="o", ms=3.5, ls="none", label="AUC on one seed alone"),
               Line2D([], [], mfc="white", mec="black", marker="D", ms=6, ls="none",
                      label="AUC of the attributes' seed means (the table's value)"),
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
    identity-defining over nuisance attributes (advtransfer.attributes.defining_rank_check): dots on each seed
    alone, the bar their mean, a diamond the AUC of the seed means. Above 0.5, the metric ranks the attributes
    that define identity first."""
    if not n_classes and "reference_n_classes" in summary:
        n_classes = int(summary["reference_n_classes"].iloc[0])
    fig = Figure(figsize=(15.5, 7.5), layout="constrained")
    scatter, bars = fig.subplots(1, 2, width_ratios=[1.2, 1])
    points = _attribute_scatter(scatter, summary, correlations, rank_by=rank_by, outcome=outcome, n_classes=n_classes)
    _defining_auc_panel(bars, summary, check)
    fig.suptitle(title, fontsize=11)
    _label_points(scatter, *points, fontsize=8.5)
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
    _label_points(cost, seconds.to_numpy(), view["weighted_kendall"].to_numpy(), list(view["score"]), fontsize=7.5,
                  gap=14, marker=4.5, leaders=True)  # fmt: skip
    return fig
