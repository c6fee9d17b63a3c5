"""A tasks experiment's Figure 4 (Section 4.4): the task trees from adversarial and from knowledge transfer side by
side, coloured by kind, with the Figure 5 entropy curves."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

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
        ax.set_title("\n".join(textwrap.fill(line, 45) for line in name.splitlines()), fontsize=10)
        ax.set_xlabel("merge distance")
    curve = axes[-1]
    # Views whose trees cut alike draw the same curve: markers shrink and dashes vary so each stays visible.
    for i, (view, group) in enumerate(entropy.groupby("view", sort=False)):
        curve.plot(group["k"], group["entropy"], marker="osD^v"[i % 5], markersize=9 - 1.2 * (i % 5),
                   linestyle=("-", "--", ":", "-.")[i % 4], label=view)  # fmt: skip
    curve.set_xticks(sorted(entropy["k"].unique()))
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
