"""The model_selection family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import math

import pandas as pd

from advtransfer.tables import captioned, interval, latex_escape, number


def selection_tables(agreement: pd.DataFrame, *, outcome: str) -> dict[str, str]:
    """The model-selection family's table as ``{"md", "tex"}``: every score ranked by its weighted Kendall with
    ``outcome`` (interval: cluster bootstrap), with Kendall, Pearson, the top-1 hit rate, the regret and its cost
    to rank all candidates. The claims and their verdicts are in claims.csv and results/reproduction.md."""
    view = agreement[agreement["outcome"] == outcome]
    parts = []
    for latex in (False, True):
        esc = latex_escape if latex else str
        rows = [[str(int(r["rank"])) if math.isfinite(r["rank"]) else "–", esc(r["score"]), r["family"],
                 interval(r["weighted_kendall"], r["weighted_kendall_lo"], r["weighted_kendall_hi"], latex),
                 number(r["kendall"], 2), number(r["pearson"], 2), number(r["top1_rate"], 2),
                 number(r["regret"]), f"{r['cpu_seconds']:.1f}"] for _, r in view.iterrows()]  # fmt: skip
        header = ["rank", "score", "family", "weighted Kendall [interval]", "Kendall", "Pearson", "top-1 rate",
                  "regret", "CPU s"]  # fmt: skip
        parts.append([(header, rows, "rll" + "r" * 6)])
    captions = [
        f"Which score ranks the candidate sources in the order of {outcome}? Weighted Kendall (scipy.stats."
        "weightedtau, hyperbolic weights: the top of the ranking counts most), Kendall tau-b and Pearson of each "
        "score with the outcome over the candidates; top-1 rate: share of bootstrap draws whose best-scored "
        "candidate has the best outcome; regret: best outcome minus that of the best-scored candidate; CPU s: "
        "what the score costs to rank all candidates (tau: the attacks, the metrics jobs and the reference model's "
        "training). Brackets: cluster-bootstrap interval (seeds; each zoo model its own cluster).",
    ]
    return captioned(captions, parts)
