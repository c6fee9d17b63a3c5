"""The synthetic experiment's Figure 2 (Section 4.1): every quantity against t, mean and interval over draws of V."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

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
