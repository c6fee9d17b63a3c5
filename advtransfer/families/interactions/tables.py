"""The interactions family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import pandas as pd

from advtransfer.tables import captioned, column_name, correlation_rows, latex_escape, mean_std, number


def interaction_tables(summary: pd.DataFrame, shares: pd.DataFrame, view: pd.DataFrame, correlations: pd.DataFrame,
                       settings: dict) -> dict[str, str]:
    """The multi-order interactions family's tables as ``{"md", "tex"}``: per side and model group, the share of
    the clean strength and of the attack-induced change at the high orders (mean ± std over seeds) and the
    normalised profile at the lowest and highest order; and, for a scenario's sources, the high-order share next
    to tau1 / tau2 / alpha and the outcome with their rank correlations (findings). Ren et al.'s claims and
    their verdicts are in claims.csv and results/reproduction.md."""
    high = settings["high"]
    grouped = shares.groupby(["side", "group"], sort=False)[["high_order_share", "change_high_order_share"]]
    means, stds = grouped.mean(), grouped.std(ddof=1)
    ends = summary.sort_values("order").groupby(["side", "group"], sort=False)["profile"].agg(["first", "last"])
    view_cols = [c for c in view.columns if c not in ("source", "seed")]
    parts = []
    for latex in (False, True):
        esc = latex_escape if latex else str
        rows = [[esc(k[0]), esc(k[1]), *(mean_std(means.loc[k, c], stds.loc[k, c], latex) for c in means.columns),
                 number(ends.loc[k, "first"]), number(ends.loc[k, "last"])] for k in means.index]  # fmt: skip
        header = ["side", "model", f"high-order share (r >= {high:g})", "change high-order share",
                  "profile at lowest order", "profile at highest order"]  # fmt: skip
        by_source = view.groupby("source", sort=False)[view_cols].mean() if len(view) else pd.DataFrame()
        view_rows = [[esc(s), *(number(by_source.loc[s, c]) for c in view_cols)] for s in by_source.index]
        block = [(header, rows, "ll" + "r" * 4)]
        if len(view):  # a block with a scenario: its sources next to tau and the outcome
            header = ["source", *(column_name(c, latex) for c in view_cols)]
            block.append((header, view_rows, "l" + "r" * len(view_cols)))
            block.append(correlation_rows(correlations, latex))
        parts.append(block)
    captions = [
        "Per model group (mean ± std over seeds): the share of the clean interaction strength E|I^(m)| at the high "
        f"orders (r >= {high:g}) and the share of the attack-induced change there; the normalised profile "
        "(strength / its mean over orders) at the lowest and the highest order.",
        "The scenario's sources on its target images, mean over seeds: high-order share of the clean strength next "
        "to the adversarial-transferability metrics and the knowledge-transfer outcome.",
        "Findings: rank correlation of each column with the high-order share over (source, seed); brackets: "
        "cluster-bootstrap interval over seeds.",
    ]
    return captioned(captions, parts)
