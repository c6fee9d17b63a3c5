"""A robustness experiment's four-panel figure: source vs target robustness, certified accuracy curves, the RRM
time panel, tau vs target robustness."""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import ScalarFormatter

_RETRAIN_MARKERS = {"probe": "o", "finetune": "s", "adv_finetune": "^"}


def robustness_figure(summary: pd.DataFrame, *, eps: float, radii: list[float], claims: dict, title: str) -> Figure:
    """The robustness family's figure (robustness.csv), four panels: (a) does robustness transfer? source vs
    target accuracy under PGD at ``eps``, one point per (scheme, seed, retraining); (b) randomized-smoothing
    certified accuracy vs L2 radius per scheme, source task (solid) and target task after a probe (dashed),
    means over seeds; (c) the RRM panel: training CPU time vs clean (hollow) and robust (filled) source
    accuracy of the standard, robust, fast and rrm schemes; (d) tau1 tau2 (source vs target reference) vs the
    target robust accuracy after each retraining."""
    from advtransfer.families.robustness.jobs import RETRAIN_SCHEMES
    from advtransfer.families.robustness.summary import pgd_column

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
