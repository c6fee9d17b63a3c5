"""Table helpers shared by several families: Markdown and LaTeX rendering, number formats, the correlation and
matrix rows of the transfer families, atomic writing. Each family's tables live with it
(advtransfer/families/<family>/tables.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from advtransfer.designs import few_shot_k
from advtransfer.io import atomic_path

if TYPE_CHECKING:
    pass


# (column, Markdown header, LaTeX header); Markdown keeps the summary's column names so they match the CSV
TABLE_COLUMNS = [
    ("tau1", "tau1", r"$\tau_1$"),
    ("tau2", "tau2", r"$\tau_2$"),
    ("tau1_tau2", "tau1_tau2", r"$\tau_1\tau_2$"),
    ("alpha", "alpha", r"$\alpha$"),
    ("tau1_logits", "tau1_logits", r"$\tau_1^\mathrm{logits}$"),
    ("tau2_logits", "tau2_logits", r"$\tau_2^\mathrm{logits}$"),
    ("alpha_logits", "alpha_logits", r"$\alpha^\mathrm{logits}$"),
    ("cross_adv_loss", "cross_adv_loss", r"$L_\mathrm{adv}$"),
    ("reference_adv_accuracy", "reference_adv_accuracy", r"ref.\ adv.\ acc."),
    ("source_val_accuracy", "source_val_accuracy", r"source val.\ acc."),
    ("probe_accuracy", "probe_accuracy", r"probe acc."),
    ("probe_cross_entropy", "probe_cross_entropy", r"probe CE"),
    ("finetune_accuracy", "finetune_accuracy", r"fine-tune acc."),
]


_LATEX_METRICS = {column: tex for column, _, tex in TABLE_COLUMNS}


def table_columns(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """:data:`TABLE_COLUMNS` present in ``summary``, with the k-shot probe accuracies (``probe_accuracy_k<k>``,
    by ascending k) before the all-data probe."""
    shots = sorted((c for c in summary.columns if few_shot_k(c) is not None), key=few_shot_k)
    few = [(c, c, rf"{few_shot_k(c)}-shot acc.") for c in shots]
    columns = []
    for entry in TABLE_COLUMNS:
        if entry[0] == "probe_accuracy":
            columns += few
        columns.append(entry)
    return [entry for entry in columns if entry[0] in summary.columns]


def number(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def mean_std(mean: float, std: float, latex: bool) -> str:
    if not math.isfinite(mean) or not math.isfinite(std):
        return number(mean) if not latex or not math.isfinite(mean) else f"${number(mean)}$"
    return f"${mean:.3f} \\pm {std:.3f}$" if latex else f"{mean:.3f} ± {std:.3f}"


def interval(value: float, lo: float, hi: float, latex: bool) -> str:
    if not math.isfinite(value):
        return "n/a (constant)"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"${value:+.2f}$ (no interval)" if latex else f"{value:+.2f} (no interval)"
    return f"${value:+.2f}$ [${lo:+.2f}$, ${hi:+.2f}$]" if latex else f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def column_name(text: str, latex: bool) -> str:
    """A metric's (or column's) header: its LaTeX symbol in LaTeX, else its name."""
    return _LATEX_METRICS.get(text, latex_escape(text)) if latex else text


def markdown(header: list[str], rows: list[list[str]], align: str) -> str:
    """A GitHub-flavoured Markdown table; ``align`` has one 'l' or 'r' per column; '|' in cells is escaped."""

    def cells(values):
        return "| " + " | ".join(str(v).replace("|", r"\|") for v in values) + " |"

    rule = "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"
    return "\n".join([cells(header), rule, *(cells(r) for r in rows)])


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (source names, metric names)."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip
    return "".join(special.get(ch, ch) for ch in str(text))


def latex(header: list[str], rows: list[list[str]], align: str) -> str:
    """A booktabs ``tabular``; cells must already be valid LaTeX."""
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def correlation_rows(correlations: pd.DataFrame, latex: bool) -> tuple[list[str], list[list[str]], str]:
    header = ["metric", "outcome", "n", "seeds", "Spearman [interval]", "Kendall tau-b [interval]"]
    if latex:
        header = ["metric", "outcome", "$n$", "seeds", r"Spearman $\rho$ [interval]", r"Kendall $\tau_b$ [interval]"]
    rows = []
    for _, r in correlations.iterrows():
        metric = column_name(r["metric"], latex)
        outcome = latex_escape(r["outcome"]) if latex else r["outcome"]
        rows.append([
            metric, outcome, str(int(r["n"])), str(int(r["n_clusters"])),
            interval(r["spearman"], r["spearman_lo"], r["spearman_hi"], latex),
            interval(r["kendall"], r["kendall_lo"], r["kendall_hi"], latex),
        ])  # fmt: skip
    return header, rows, "llrrll"


def matrix_rows(
    correlations: pd.DataFrame, outcomes: list[str], latex: bool
) -> tuple[list[str], list[list[str]], str]:
    """Spearman rho [interval] of every metric (rows) with every outcome (columns)."""
    cell = {(r["metric"], r["outcome"]): r for _, r in correlations.iterrows()}
    metrics = list(dict.fromkeys(correlations["metric"]))
    header = ["metric", *((latex_escape(o) if latex else o) for o in outcomes)]
    rows = []
    for metric in metrics:
        name = column_name(metric, latex)
        values = []
        for outcome in outcomes:
            r = cell.get((metric, outcome))
            values.append("" if r is None else interval(r["spearman"], r["spearman_lo"], r["spearman_hi"], latex))
        rows.append([name, *values])
    return header, rows, "l" + "l" * len(outcomes)


def captioned(captions: list[str], parts: list[list[tuple]], notes=()) -> dict[str, str]:
    """``{"md", "tex"}`` of tables each under its caption: ``parts`` holds the Markdown tables' and the LaTeX
    tables' (header, rows, align), in the order of ``captions``; then the ``notes``."""
    md = [b for caption, rows in zip(captions, parts[0]) for b in (f"**{caption}**", markdown(*rows))]
    tex = [b for caption, rows in zip(captions, parts[1])
           for b in ("% " + caption + "\n" + latex(*rows), r"\medskip")][:-1]  # fmt: skip
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}


def write_table(path_md: str | Path, path_tex: str | Path, tables: dict[str, str]):
    """Write a family table's Markdown and LaTeX (``tables``: the {"md", "tex"} its table function returns), each
    atomically."""
    for path, key in ((path_md, "md"), (path_tex, "tex")):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(tables[key], encoding="utf-8")
