"""Figures of the paper, made readable on their own (matplotlib, object API: no global state, no display)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from advtransfer.io import atomic_path

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
}


def _band(ax, summary: pd.DataFrame, x: str, column: str, label: str, style: str = "-o"):
    """Mean across seeds with its 95% interval as a shaded band."""
    colour = _COLOURS.get(column)
    ax.plot(summary[x], summary[f"{column}_mean"], style, color=colour, label=label, markersize=3)
    ax.fill_between(summary[x], summary[f"{column}_lo"], summary[f"{column}_hi"], color=colour, alpha=0.2, lw=0)


def figure2(summary: pd.DataFrame) -> Figure:
    """Figure 2 (Section 4.1): metrics against the source's distance t from the target, six panels."""
    n_seeds = int(summary["n"].min())
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True)
    a, b, c, d, e, f = axes.ravel()

    for col, label in [("tau1", r"$\tau_1$"), ("tau2", r"$\tau_2$ (S$\to$T)"), ("alpha", r"$\alpha$")]:
        _band(a, summary, "t", col, label)
    a.set(title="(a) Adversarial transferability", ylabel="value in [0, 1]", ylim=(-0.02, 1.02))

    _band(b, summary, "t", "transfer_loss_lastlayer", "last layer refit on $f_S$ (paper)")
    _band(b, summary, "t", "target_loss", "reference $f_T$ itself", style="--")
    b.set(title="(b) Knowledge transfer: held-out loss", ylabel=r"$\|h - y\|_D^2$ (lower is better)")

    _band(c, summary, "t", "cross_adv_loss", r"$f_T$ at PGD examples of $f_S$")
    c.set(title="(c) Cross adversarial loss (Def. 6)", ylabel="squared error")

    _band(d, summary, "t", "grad_diff", r"true $\|J_T - A J_S\|_{D,2}^2$")
    _band(d, summary, "t", "thm2_bound", "Theorem 2 bound (expectation)")
    _band(d, summary, "t", "thm2_bound_lipschitz", "Theorem 2 bound (Lipschitz)", style="--")
    d.set(title="(d) Theorem 2: gradient matching", yscale="symlog", ylabel="squared norm (symlog)")

    _band(e, summary, "t", "transfer_loss_affine", r"true $\|g\circ f_S - y\|_D^2$")
    _band(e, summary, "t", "thm3_bound", "Theorem 3 bound")
    e.set(title="(e) Theorem 3: affine transfer", yscale="log", ylabel="squared error (log)")

    _band(f, summary, "t", "lambda_s", r"$\lambda_S$ (max over D)")
    _band(f, summary, "t", "lambda_t", r"$\lambda_T$ (max over D)", style="--")
    f.set(title=r"(f) Singular-value ratios $\sigma_2/\sigma_1$", ylabel="ratio", ylim=(-0.02, 1.02))

    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel(r"$t$: source = target parameters + $t\,V$")
    fig.suptitle(
        "Synthetic regression (Section 4.1): adversarial transferability and knowledge transfer as the source "
        f"moves away from the reference model\nmean and 95% interval over {n_seeds} draws of V; every "
        "quantity on the held-out split D",
        fontsize=11,
    )
    return fig


def save_figure(fig: Figure, png: str | Path, pdf: str | Path, dpi: int = 150):
    """Write a figure as PNG and PDF (each atomically)."""
    for path in (png, pdf):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:])
