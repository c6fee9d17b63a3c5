"""The attributes family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import pandas as pd

from advtransfer.families.attributes.summary import attribute_means, top_attributes
from advtransfer.tables import (
    column_name,
    correlation_rows,
    latex,
    latex_escape,
    markdown,
    matrix_rows,
    mean_std,
    number,
    table_columns,
)


def _top_rows(top: pd.DataFrame, rank_by: str, outcome: str, n_attributes: int, latex: bool):
    header = ["rank", "attribute", "defines identity", column_name(rank_by, latex), column_name(outcome, latex),
              f"{column_name(outcome, latex)} rank (of {n_attributes})"]  # fmt: skip
    rows = [
        [str(int(r["metric_rank"])), latex_escape(r["source"]) if latex else r["source"],
         "yes" if r["defines_identity"] else "no",
         mean_std(r[f"{rank_by}_mean"], r[f"{rank_by}_std"], latex),
         mean_std(r[f"{outcome}_mean"], r[f"{outcome}_std"], latex), str(int(r["outcome_rank"]))]
        for _, r in top.iterrows()
    ]  # fmt: skip
    return header, rows, "rllrrr"


def _attribute_rows(means: pd.DataFrame, columns: list[str], latex: bool):
    header = ["attribute", "defines identity", "seeds", *(column_name(c, latex) for c in columns)]
    rows = [
        [latex_escape(r["source"]) if latex else r["source"], "yes" if r["defines_identity"] else "no",
         str(int(r["n_seeds"])), *(mean_std(r[f"{c}_mean"], r[f"{c}_std"], latex) for c in columns)]
        for _, r in means.iterrows()
    ]  # fmt: skip
    return header, rows, "llr" + "r" * len(columns)


def _check_rows(check: pd.DataFrame, latex: bool):
    header = ["metric", "AUC defining > nuisance", "per-seed AUC range", "mean rank defining", "mean rank nuisance",
              "defining among the top n_defining"]  # fmt: skip
    rows = [
        [column_name(r["metric"], latex), number(r["auc"], 2),
         f"{number(r['auc_seed_min'], 2)} to {number(r['auc_seed_max'], 2)}",
         number(r["defining_mean_rank"], 1), number(r["nuisance_mean_rank"], 1),
         f"{int(r['top_hits'])} of {int(r['n_defining'])}"]
        for _, r in check.iterrows()
    ]  # fmt: skip
    return header, rows, "lrrrrr"


def attribute_table(
    summary: pd.DataFrame,
    correlations: pd.DataFrame,
    check: pd.DataFrame,
    *,
    rank_by: str,
    outcome: str,
    outcomes: list[str],
    top: int = 5,
    level: float = 0.95,
    notes: list[str] | tuple = (),
) -> dict[str, str]:
    """The attributes family's tables as ``{"md", "tex"}`` (Section 4.3, Table 1): the ``top`` attributes
    by ``rank_by`` with their ``outcome`` and its rank among ALL attributes; the rank correlation of every
    metric with ``outcome`` over all (attribute, seed) rows; the Spearman matrix of every metric with every
    outcome; whether the identity-defining attributes rank above the nuisance ones by each metric
    (``check``, summary.defining_rank_check); every attribute's means; then ``notes``."""
    experiment = str(summary["experiment"].iloc[0]) if "experiment" in summary.columns and len(summary) else ""
    pct = f"{100 * level:.0f}%"
    n_attributes = int(summary["source"].nunique())
    columns = [c for c, _, _ in table_columns(summary) if c not in ("probe_cross_entropy", "finetune_accuracy")]
    top_rows, means = top_attributes(summary, rank_by, outcome, top), attribute_means(summary, columns)
    chosen = correlations[correlations["outcome"] == outcome]
    parts = [
        (f"Table 1 analog{f' ({experiment})' if experiment else ''}: the {top} attributes whose models are most "
         f"adversarially transferable to the identity reference by {rank_by} (mean ± std over seeds), with their "
         f"knowledge transfer to identity ({outcome}) and its rank among all {n_attributes} attributes.",
         _top_rows(top_rows, rank_by, outcome, n_attributes, False),
         _top_rows(top_rows, rank_by, outcome, n_attributes, True)),
        (f"Rank correlation of each metric with {outcome} over ALL (attribute, seed) rows; brackets: {pct} "
         "cluster-bootstrap interval, seeds resampled with replacement.",
         correlation_rows(chosen, False), correlation_rows(chosen, True)),
        (f"Spearman rho [{pct} interval] of each metric with each knowledge outcome.",
         matrix_rows(correlations, outcomes, False), matrix_rows(correlations, outcomes, True)),
        ("Truth known by construction: do the identity-defining attributes rank above the nuisance ones? AUC = "
         "share of (defining, nuisance) pairs ordered defining first on the seed means (0.5: no separation; "
         "1: every defining attribute first); ranks: 1 = most transferable.",
         _check_rows(check, False), _check_rows(check, True)),
        ("Every attribute: mean ± std over seeds.",
         _attribute_rows(means, columns, False), _attribute_rows(means, columns, True)),
    ]  # fmt: skip
    md = [block for caption, rows, _ in parts for block in (f"**{caption}**", markdown(*rows))]
    tex = [block for caption, _, rows in parts for block in ("% " + caption + "\n" + latex(*rows), r"\medskip")][:-1]
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}
