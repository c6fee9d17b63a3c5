"""Tables of the data-distribution experiment (Section 4.2, Figure 3) as Markdown and LaTeX.

Both formats are written by the small writers below (no tabulate, no jinja2), so the output is the same in
every environment. LaTeX tables are bare ``tabular`` environments for ``\\input`` into a document that loads
``booktabs`` (for ``\\toprule``, ``\\midrule``, ``\\bottomrule``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from advtransfer.attributes import attribute_means, top_attributes
from advtransfer.io import atomic_path
from advtransfer.scenarios import few_shot_k
from advtransfer.stats import source_order

if TYPE_CHECKING:
    import numpy as np

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


def _table_columns(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
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


def per_source(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per source, ordered by outside_fraction then name: n_seeds and ``{col}_mean``, ``{col}_std``.

    The standard deviation is over seeds (ddof = 1), NaN for a single seed. Columns of :data:`TABLE_COLUMNS`
    missing from ``summary`` are left out; the k-shot probe accuracies are added.
    """
    columns = [c for c, _, _ in _table_columns(summary)]
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


def _number(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _mean_std(mean: float, std: float, latex: bool) -> str:
    if not math.isfinite(mean) or not math.isfinite(std):
        return _number(mean) if not latex or not math.isfinite(mean) else f"${_number(mean)}$"
    return f"${mean:.3f} \\pm {std:.3f}$" if latex else f"{mean:.3f} ± {std:.3f}"


def _interval(value: float, lo: float, hi: float, latex: bool) -> str:
    if not math.isfinite(value):
        return "n/a (constant)"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"${value:+.2f}$ (no interval)" if latex else f"{value:+.2f} (no interval)"
    return f"${value:+.2f}$ [${lo:+.2f}$, ${hi:+.2f}$]" if latex else f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _name(text: str, latex: bool) -> str:
    """A metric's (or column's) header: its LaTeX symbol in LaTeX, else its name."""
    return _LATEX_METRICS.get(text, latex_escape(text)) if latex else text


def _markdown(header: list[str], rows: list[list[str]], align: str) -> str:
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


def _latex(header: list[str], rows: list[list[str]], align: str) -> str:
    """A booktabs ``tabular``; cells must already be valid LaTeX."""
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def _source_rows(summary: pd.DataFrame, latex: bool) -> tuple[list[str], list[list[str]], str]:
    table = per_source(summary)
    columns = _table_columns(summary)
    if latex:
        header = ["source", r"outside (\%)", "seeds", *(tex for _, _, tex in columns)]
    else:
        header = ["source", "outside (%)", "seeds", *(md for _, md, _ in columns)]
    rows = []
    for _, r in table.iterrows():
        name = latex_escape(r["source"]) if latex else r["source"]
        row = [name, f"{100 * r['outside_fraction']:.0f}", str(r["n_seeds"])]
        row += [_mean_std(r[f"{c}_mean"], r[f"{c}_std"], latex) for c, _, _ in columns]
        rows.append(row)
    return header, rows, "lrr" + "r" * len(columns)


def _correlation_rows(correlations: pd.DataFrame, latex: bool) -> tuple[list[str], list[list[str]], str]:
    header = ["metric", "outcome", "n", "seeds", "Spearman [interval]", "Kendall tau-b [interval]"]
    if latex:
        header = ["metric", "outcome", "$n$", "seeds", r"Spearman $\rho$ [interval]", r"Kendall $\tau_b$ [interval]"]
    rows = []
    for _, r in correlations.iterrows():
        metric = _name(r["metric"], latex)
        outcome = latex_escape(r["outcome"]) if latex else r["outcome"]
        rows.append([
            metric, outcome, str(int(r["n"])), str(int(r["n_clusters"])),
            _interval(r["spearman"], r["spearman_lo"], r["spearman_hi"], latex),
            _interval(r["kendall"], r["kendall_lo"], r["kendall_hi"], latex),
        ])  # fmt: skip
    return header, rows, "llrrll"


def _matrix_rows(
    correlations: pd.DataFrame, outcomes: list[str], latex: bool
) -> tuple[list[str], list[list[str]], str]:
    """Spearman rho [interval] of every metric (rows) with every outcome (columns)."""
    cell = {(r["metric"], r["outcome"]): r for _, r in correlations.iterrows()}
    metrics = list(dict.fromkeys(correlations["metric"]))
    header = ["metric", *((latex_escape(o) if latex else o) for o in outcomes)]
    rows = []
    for metric in metrics:
        name = _name(metric, latex)
        values = []
        for outcome in outcomes:
            r = cell.get((metric, outcome))
            values.append("" if r is None else _interval(r["spearman"], r["spearman_lo"], r["spearman_hi"], latex))
        rows.append([name, *values])
    return header, rows, "l" + "l" * len(outcomes)


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
    md_parts = [f"**{source_caption}**", _markdown(*_source_rows(summary, latex=False)),
                f"**{corr_caption}**", _markdown(*_correlation_rows(chosen, latex=False))]  # fmt: skip
    tex_parts = ["% " + source_caption + "\n" + _latex(*_source_rows(summary, latex=True)), r"\medskip",
                 "% " + corr_caption + "\n" + _latex(*_correlation_rows(chosen, latex=True))]  # fmt: skip
    if len(outcomes) > 1:
        md_parts += [f"**{matrix_caption}**", _markdown(*_matrix_rows(correlations, outcomes, latex=False))]
        tex_parts += [
            r"\medskip", "% " + matrix_caption + "\n" + _latex(*_matrix_rows(correlations, outcomes, latex=True))
        ]
    md_parts += [f"Note: {note}" for note in notes]
    tex_parts += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md_parts) + "\n", "tex": "\n\n".join(tex_parts) + "\n"}


def _top_rows(top: pd.DataFrame, rank_by: str, outcome: str, n_attributes: int, latex: bool):
    header = ["rank", "attribute", "defines identity", _name(rank_by, latex), _name(outcome, latex),
              f"{_name(outcome, latex)} rank (of {n_attributes})"]  # fmt: skip
    rows = [
        [str(int(r["metric_rank"])), latex_escape(r["source"]) if latex else r["source"],
         "yes" if r["defines_identity"] else "no",
         _mean_std(r[f"{rank_by}_mean"], r[f"{rank_by}_std"], latex),
         _mean_std(r[f"{outcome}_mean"], r[f"{outcome}_std"], latex), str(int(r["outcome_rank"]))]
        for _, r in top.iterrows()
    ]  # fmt: skip
    return header, rows, "rllrrr"


def _attribute_rows(means: pd.DataFrame, columns: list[str], latex: bool):
    header = ["attribute", "defines identity", "seeds", *(_name(c, latex) for c in columns)]
    rows = [
        [latex_escape(r["source"]) if latex else r["source"], "yes" if r["defines_identity"] else "no",
         str(int(r["n_seeds"])), *(_mean_std(r[f"{c}_mean"], r[f"{c}_std"], latex) for c in columns)]
        for _, r in means.iterrows()
    ]  # fmt: skip
    return header, rows, "llr" + "r" * len(columns)


def _check_rows(check: pd.DataFrame, latex: bool):
    header = ["metric", "AUC defining > nuisance", "per-seed AUC range", "mean rank defining", "mean rank nuisance",
              "defining among the top n_defining"]  # fmt: skip
    rows = [
        [_name(r["metric"], latex), _number(r["auc"], 2),
         f"{_number(r['auc_seed_min'], 2)} to {_number(r['auc_seed_max'], 2)}",
         _number(r["defining_mean_rank"], 1), _number(r["nuisance_mean_rank"], 1),
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
    (``check``, advtransfer.attributes.defining_rank_check); every attribute's means; then ``notes``."""
    experiment = str(summary["experiment"].iloc[0]) if "experiment" in summary.columns and len(summary) else ""
    pct = f"{100 * level:.0f}%"
    n_attributes = int(summary["source"].nunique())
    columns = [c for c, _, _ in _table_columns(summary) if c not in ("probe_cross_entropy", "finetune_accuracy")]
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
         _correlation_rows(chosen, False), _correlation_rows(chosen, True)),
        (f"Spearman rho [{pct} interval] of each metric with each knowledge outcome.",
         _matrix_rows(correlations, outcomes, False), _matrix_rows(correlations, outcomes, True)),
        ("Truth known by construction: do the identity-defining attributes rank above the nuisance ones? AUC = "
         "share of (defining, nuisance) pairs ordered defining first on the seed means (0.5: no separation; "
         "1: every defining attribute first); ranks: 1 = most transferable.",
         _check_rows(check, False), _check_rows(check, True)),
        ("Every attribute: mean ± std over seeds.",
         _attribute_rows(means, columns, False), _attribute_rows(means, columns, True)),
    ]  # fmt: skip
    md = [block for caption, rows, _ in parts for block in (f"**{caption}**", _markdown(*rows))]
    tex = [block for caption, _, rows in parts for block in ("% " + caption + "\n" + _latex(*rows), r"\medskip")][:-1]
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}


def task_tables(matrices: dict[str, np.ndarray], tasks: list[str], kinds: dict[str, str], trees: pd.DataFrame,
                notes: list[str] | tuple = (), reference: str = "knowledge-transfer affinity") -> dict[str, str]:
    """The tasks family's tables as ``{"md", "tex"}`` (Section 4.4): each N x N matrix (rows: source task,
    columns: target task; ``matrices``: caption -> matrix), then the agreement of each adversarial view's
    tree with the ``reference`` tree (``trees``, advtransfer.affinity.compare_trees), then ``notes``."""
    header = ["source \\ target", *tasks]
    md, tex = [], []
    for caption, matrix in matrices.items():
        rows = [[f"{s} ({kinds[s]})", *(f"{v:.3f}" for v in row)] for s, row in zip(tasks, matrix)]
        md += [f"**{caption}**", _markdown(header, rows, "l" + "r" * len(tasks))]
        tex_rows = [[latex_escape(r[0]), *r[1:]] for r in rows]
        tex += ["% " + caption + "\n" + _latex([latex_escape(h) for h in header], tex_rows, "l" + "r" * len(tasks)),
                r"\medskip"]  # fmt: skip
    caption = (f"Agreement with the tree of the {reference}: adjusted Rand index of the two trees cut into k clusters; "
               "inner-category entropy of each tree's clusters against the known kinds (nats; 0 = pure); Mantel: "
               f"Spearman correlation of the off-diagonal entries with the {reference} matrix, "
               "permutation p-value.")  # fmt: skip
    head = ["view", "k", "ARI vs reference tree", "entropy (view)", "entropy (reference)", "Mantel rho", "Mantel p"]
    rows = [[r["view"], str(int(r["k"])), _number(r["ari"], 2), _number(r["entropy"], 2),
             _number(r["reference_entropy"], 2), _number(r["mantel"], 2), _number(r["mantel_p"], 3)]
            for _, r in trees.iterrows()]  # fmt: skip
    md += [f"**{caption}**", _markdown(head, rows, "lrrrrrr")]
    tex += ["% " + caption + "\n" + _latex(head, [[latex_escape(c) for c in r] for r in rows], "lrrrrrr")]
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}


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
        header = ["scheme", "retraining", *(_name(c, latex) for c in columns)]
        rows = [[latex_escape(k[0]) if latex else k[0], latex_escape(k[1]) if latex else k[1],
                 *(_mean_std(means.loc[k, c], stds.loc[k, c], latex) for c in columns)]
                for k in means.index]  # fmt: skip
        head = ["metric", "outcome", "n", "seeds", "Spearman [interval]", "Kendall tau-b [interval]"]
        parts.append([
            (header, rows, "ll" + "r" * len(columns)),
            _correlation_rows(correlations, latex) if len(correlations) else (head, [], "llrrrr"),
        ])  # fmt: skip
    captions = [
        "Robustness on the source task (source_*) and, after each retraining scheme, on the target task (target_*): "
        "mean ± std over seeds. pgd / apgd: accuracy under the attack at that L-inf eps; certified: randomized-"
        "smoothing certified accuracy at that L2 radius; cpu_seconds: training CPU time.",
        "Findings: rank correlation of each adversarial transferability metric (source vs the target reference) "
        "with the target robust accuracy, per retraining scheme; brackets: cluster-bootstrap interval.",
    ]
    return _captioned(captions, parts, notes)


def _captioned(captions: list[str], parts: list[list[tuple]], notes=()) -> dict[str, str]:
    """``{"md", "tex"}`` of tables each under its caption: ``parts`` holds the Markdown tables' and the LaTeX
    tables' (header, rows, align), in the order of ``captions``; then the ``notes``."""
    md = [b for caption, rows in zip(captions, parts[0]) for b in (f"**{caption}**", _markdown(*rows))]
    tex = [b for caption, rows in zip(captions, parts[1])
           for b in ("% " + caption + "\n" + _latex(*rows), r"\medskip")][:-1]  # fmt: skip
    md += [f"Note: {note}" for note in notes]
    tex += [f"Note: {latex_escape(note)}" for note in notes]
    return {"md": "\n\n".join(md) + "\n", "tex": "\n\n".join(tex) + "\n"}


def write_table(path_md: str | Path, path_tex: str | Path, tables: dict[str, str]):
    """Write the Markdown and LaTeX of :func:`scenario_table` or :func:`attribute_table` (each atomically)."""
    for path, key in ((path_md, "md"), (path_tex, "tex")):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(tables[key], encoding="utf-8")


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
        rows = [[esc(k[0]), esc(k[1]), *(_mean_std(means.loc[k, c], stds.loc[k, c], latex) for c in means.columns),
                 _number(ends.loc[k, "first"]), _number(ends.loc[k, "last"])] for k in means.index]  # fmt: skip
        header = ["side", "model", f"high-order share (r >= {high:g})", "change high-order share",
                  "profile at lowest order", "profile at highest order"]  # fmt: skip
        by_source = view.groupby("source", sort=False)[view_cols].mean() if len(view) else pd.DataFrame()
        view_rows = [[esc(s), *(_number(by_source.loc[s, c]) for c in view_cols)] for s in by_source.index]
        block = [(header, rows, "ll" + "r" * 4)]
        if len(view):  # a block with a scenario: its sources next to tau and the outcome
            block.append((["source", *(_name(c, latex) for c in view_cols)], view_rows, "l" + "r" * len(view_cols)))
            block.append(_correlation_rows(correlations, latex))
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
    return _captioned(captions, parts)


def selection_tables(agreement: pd.DataFrame, *, outcome: str) -> dict[str, str]:
    """The model-selection family's table as ``{"md", "tex"}``: every score ranked by its weighted Kendall with
    ``outcome`` (interval: cluster bootstrap), with Kendall, Pearson, the top-1 hit rate, the regret and its cost
    to rank all candidates. The claims and their verdicts are in claims.csv and results/reproduction.md."""
    view = agreement[agreement["outcome"] == outcome]
    parts = []
    for latex in (False, True):
        esc = latex_escape if latex else str
        rows = [[str(int(r["rank"])) if math.isfinite(r["rank"]) else "–", esc(r["score"]), r["family"],
                 _interval(r["weighted_kendall"], r["weighted_kendall_lo"], r["weighted_kendall_hi"], latex),
                 _number(r["kendall"], 2), _number(r["pearson"], 2), _number(r["top1_rate"], 2),
                 _number(r["regret"]), f"{r['cpu_seconds']:.1f}"] for _, r in view.iterrows()]  # fmt: skip
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
    return _captioned(captions, parts)
