"""A robustness experiment's four-panel figure: source vs target robustness, certified accuracy curves, the RRM
time panel, tau vs target robustness."""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
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
    _transfer_panel(axes[0, 0], summary, source, target, schemes, colour, eps)
    probe = summary[summary["retrain"] == RETRAIN_SCHEMES[0]]
    _certified_panel(axes[0, 1], probe, schemes, radii, colour)
    _rrm_panel(axes[1, 0], probe, schemes, claims, source, colour)
    _tau_panel(axes[1, 1], summary, target, colour, eps)
    return fig


def _scheme_scatter(ax: Axes, summary: pd.DataFrame, x: str, y: str, colour: dict) -> None:
    """Column ``y`` vs ``x`` of every row, coloured by scheme, one marker per retraining."""
    for (scheme, retrain), group in summary.groupby(["scheme", "retrain"], sort=False):
        ax.scatter(group[x], group[y], color=colour[scheme], marker=_RETRAIN_MARKERS.get(retrain, "x"),
                   s=40, alpha=0.85, edgecolors="k", linewidths=0.4)  # fmt: skip


def _transfer_panel(
    ax: Axes, summary: pd.DataFrame, source: str, target: str, schemes: list, colour: dict, eps: float
) -> None:
    """Panel (a): target vs source accuracy under PGD at ``eps``, one point per (scheme, seed, retraining)."""
    _scheme_scatter(ax, summary, source, target, colour)
    lim = [0, 1.02]
    ax.plot(lim, lim, color="0.7", lw=0.8, ls=":")
    ax.set(xlim=lim, ylim=lim, xlabel=f"source task: accuracy under PGD (L-inf eps {eps:g})",
           ylabel=f"target task: accuracy under PGD (eps {eps:g})",
           title="(a) does source robustness carry over to the target task?")  # fmt: skip
    handles = [Patch(color=colour[s], label=s) for s in schemes]
    handles += [Line2D([], [], color="k", marker=m, ls="", label=f"retrain: {r}") for r, m in _RETRAIN_MARKERS.items()]
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="upper left")


def _certified_panel(ax: Axes, probe: pd.DataFrame, schemes: list, radii: list[float], colour: dict) -> None:
    """Panel (b): mean certified accuracy over seeds vs L2 radius per scheme, source (solid) and target after a
    probe (dashed)."""
    for scheme in schemes:
        rows = probe[probe["scheme"] == scheme]
        for side, style in (("source", "-"), ("target", "--")):
            values = [rows[f"{side}_certified_accuracy_r{r:g}"].mean() for r in radii]
            ax.plot(radii, values, style, marker=".", color=colour[scheme], label=scheme if side == "source" else None)
    ax.set(xlabel="L2 radius r (pixels in [0, 1])", ylabel="certified accuracy at r", ylim=(0, 1.02),
           title="(b) certified accuracy: source (solid), target after a probe (dashed)")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)


def _rrm_panel(ax: Axes, probe: pd.DataFrame, schemes: list, claims: dict, source: str, colour: dict) -> None:
    """Panel (c): mean training CPU time vs mean clean (hollow) and PGD (filled) source accuracy of the standard,
    robust, fast and rrm schemes of ``claims``."""
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


def _tau_panel(ax: Axes, summary: pd.DataFrame, target: str, colour: dict, eps: float) -> None:
    """Panel (d): target accuracy under PGD at ``eps`` vs tau1 tau2 (source features vs target reference)."""
    _scheme_scatter(ax, summary, "tau1_tau2", target, colour)
    ax.set(xlabel="tau1 tau2 of the source's features vs the target reference (Liang et al.)",
           ylabel=f"target task: accuracy under PGD (eps {eps:g})", ylim=(0, 1.02),
           title="(d) adversarial transferability vs robustness after transfer")  # fmt: skip
