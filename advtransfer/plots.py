"""Figure helpers shared by several families: saving PNG and PDF, placing point labels without overlap, naming
outcomes and correlations. Each family's figures live with it (advtransfer/families/<family>/figures.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from advtransfer.designs import few_shot_k
from advtransfer.io import atomic_path


def save_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int = 150):
    """Write a figure as PNG and PDF (each atomically)."""
    for path in (png, pdf):
        with atomic_path(path, digest=False) as tmp:
            fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:])


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


def label_points(
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


def outcome_label(outcome: str) -> str:
    """A reader's name for a knowledge outcome column (the families' knowledge_outcomes)."""
    k = few_shot_k(outcome)
    if k is not None:
        return f"{k}-shot probe accuracy"
    return {"probe_accuracy": "probe accuracy (all labelled images)", "finetune_accuracy": "fine-tuned accuracy"}.get(
        outcome, outcome
    )


def fmt_interval(value: float, lo: float, hi: float, n_clusters: int) -> str:
    if not math.isfinite(value):
        return "undefined (constant values)"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{value:+.2f} (no interval: {n_clusters} seed{'s' if n_clusters != 1 else ''})"
    return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def correlation_title(correlations: pd.DataFrame, metric: str, outcome: str) -> str:
    """Two lines: Spearman rho and Kendall tau-b (called "Kendall" so it is not mistaken for tau1/tau2) over all
    the (source, seed) rows pooled, which the title says: the claims' measurement is a different one (the mean of
    within-seed correlations, docs/claims.md), and a reader comparing the two must see why they differ."""
    rows = correlations[(correlations["metric"] == metric) & (correlations["outcome"] == outcome)]
    if rows.empty:
        return "rank correlation not computed"
    row = rows.iloc[0]
    k = int(row.n_clusters)
    return (
        rf"Spearman $\rho$ = {fmt_interval(row.spearman, row.spearman_lo, row.spearman_hi, k)}"
        "\n"
        f"Kendall = {fmt_interval(row.kendall, row.kendall_lo, row.kendall_hi, k)}, {int(row.n)} rows pooled"
    )
