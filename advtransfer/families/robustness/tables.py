"""The robustness family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import pandas as pd

from advtransfer.tables import captioned, column_name, correlation_rows, latex_escape, mean_std


def robustness_tables(summary: pd.DataFrame, correlations: pd.DataFrame, *, columns: list[str],
                      notes: list[str] | tuple = ()) -> dict[str, str]:
    """The robustness family's tables as ``{"md", "tex"}``: ``columns`` of robustness.csv per (source scheme,
    retraining scheme), mean ± std over seeds; the rank correlations of the adversarial transferability metrics
    with target robustness (``correlations``, findings); then ``notes``. The claims and their verdicts are in
    claims.csv and results/reproduction.md."""
    grouped = summary.groupby(["scheme", "retrain"], sort=False)[columns]
    means, stds = grouped.mean(), grouped.std(ddof=1)
    parts = []
    for latex in (False, True):
        header = ["scheme", "retraining", *(column_name(c, latex) for c in columns)]
        rows = [[latex_escape(k[0]) if latex else k[0], latex_escape(k[1]) if latex else k[1],
                 *(mean_std(means.loc[k, c], stds.loc[k, c], latex) for c in columns)]
                for k in means.index]  # fmt: skip
        head = ["metric", "outcome", "n", "seeds", "Spearman [interval]", "Kendall tau-b [interval]"]
        parts.append([
            (header, rows, "ll" + "r" * len(columns)),
            correlation_rows(correlations, latex) if len(correlations) else (head, [], "llrrrr"),
        ])  # fmt: skip
    captions = [
        "Robustness on the source task (source_*) and, after each retraining scheme, on the target task (target_*): "
        "mean ± std over seeds. pgd / apgd: accuracy under the attack at that L-inf eps; certified: randomized-"
        "smoothing certified accuracy at that L2 radius; cpu_seconds: training CPU time.",
        "Findings: rank correlation of each adversarial transferability metric (source vs the target reference) "
        "with the target robust accuracy, per retraining scheme; brackets: cluster-bootstrap interval.",
    ]
    return captioned(captions, parts, notes)
