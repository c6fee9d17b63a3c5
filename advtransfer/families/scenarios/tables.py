"""The scenarios family's tables as Markdown and LaTeX (no torch)."""

from __future__ import annotations

import math

import pandas as pd

from advtransfer.stats import source_order
from advtransfer.tables import (
    correlation_rows,
    latex,
    latex_escape,
    markdown,
    matrix_rows,
    mean_std,
    table_columns,
)


def per_source(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per source, ordered by outside_fraction then name: n_seeds and ``{col}_mean``, ``{col}_std``.

    The standard deviation is over seeds (ddof = 1), NaN for a single seed. Columns of :data:`TABLE_COLUMNS`
    missing from ``summary`` are left out; the k-shot probe accuracies are added.
    """
    columns = [c for c, _, _ in table_columns(summary)]
    rows = []
    for source in source_order(summary):
        group = summary[summary["source"] == source]
        row = {"source": source, "outside_fraction": float(group["outside_fraction"].iloc[0]),
               "n_seeds": int(group["seed"].nunique())}  # fmt: skip
        for c in columns:
            values = group[c].astype(float)
            row[f"{c}_mean"] = float(values.mean())
            row[f"{c}_std"] = float(values.std(ddof=1)) if values.count() > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _source_rows(summary: pd.DataFrame, latex: bool) -> tuple[list[str], list[list[str]], str]:
    table = per_source(summary)
    columns = table_columns(summary)
    if latex:
        header = ["source", r"outside (\%)", "seeds", *(tex for _, _, tex in columns)]
    else:
        header = ["source", "outside (%)", "seeds", *(md for _, md, _ in columns)]
    rows = []
    for _, r in table.iterrows():
        name = latex_escape(r["source"]) if latex else r["source"]
        row = [name, f"{100 * r['outside_fraction']:.0f}", str(r["n_seeds"])]
        row += [mean_std(r[f"{c}_mean"], r[f"{c}_std"], latex) for c, _, _ in columns]
        rows.append(row)
    return header, rows, "lrr" + "r" * len(columns)


def scenario_table(
    summary: pd.DataFrame,
    correlations: pd.DataFrame,
    level: float = 0.95,
    notes: list[str] | tuple = (),
    outcome: str = "probe_accuracy",
    outcomes: list[str] | None = None,
) -> dict[str, str]:
    """The scenario's tables as ``{"md": Markdown, "tex": LaTeX}``.

    First a per-source table (mean ± std over seeds of every metric and every knowledge outcome, sources
    ordered by the share of their classes outside the target task), then the rank-correlation table of
    :func:`advtransfer.stats.rank_correlations` with ``outcome`` (Spearman and Kendall tau-b with their
    cluster-bootstrap intervals at ``level``; a single value where there is no interval, "n/a" for a
    constant column), then, when ``outcomes`` has more than one entry, the Spearman matrix of every metric
    with every outcome, then each of ``notes`` as a paragraph.
    """
    scenario = str(summary["scenario"].iloc[0]) if "scenario" in summary.columns and len(summary) else ""
    pct = f"{100 * level:.0f}%"
    outcomes = list(outcomes) if outcomes else [outcome]
    chosen = correlations[correlations["outcome"] == outcome]
    source_caption = (f"Per-source summary{f' ({scenario})' if scenario else ''}: mean ± std over seeds; sources "
                      "ordered by the share of their classes outside the target task.")  # fmt: skip
    corr_caption = (f"Rank correlation of each metric with {outcome} over all (source, seed) rows; brackets: "
                    f"{pct} cluster-bootstrap interval, seeds resampled with replacement.")  # fmt: skip
    matrix_caption = f"Spearman rho [{pct} interval] of each metric with each knowledge outcome."
    md_parts = [f"**{source_caption}**", markdown(*_source_rows(summary, latex=False)),
                f"**{corr_caption}**", markdown(*correlation_rows(chosen, latex=False))]  # fmt: skip
    tex_parts = ["% " + source_caption + "\n" + latex(*_source_rows(summary, latex=True)), r"\medskip",
                 "% " + corr_caption + "\n" + latex(*correlation_rows(chosen, latex=True))]  # fmt: skip
    if len(outcomes) > 1:
        md_parts += [f"**{matrix_caption}**", markdown(*matrix_rows(correlations, outcomes, latex=False))]
        tex_parts += [
            r"\medskip", "% " + matrix_caption + "\n" + latex(*matrix_rows(correlations, outcomes, latex=True))
        ]
    md_parts += [f"Note: {note}" for note in notes]
    tex_parts += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md_parts) + "\n", "tex": "\n\n".join(tex_parts) + "\n"}
