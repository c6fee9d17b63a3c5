"""The lines a successful workflow run ends with (the Snakefile's ``onsuccess``): which experiments ran, where
their figures and tables are, the verdict counts of results/reproduction.md and how to build the HTML report.
Plain Python (no torch, no pandas): it runs in Snakemake's own process."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from advtransfer.digests import check_digest

FIGURES = (".png",)
TABLES = (".md", ".csv")
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "underpowered")  # advtransfer.claims.VERDICTS
REPORT_COMMAND = "make report   (or: snakemake --report results/report.html)"


def verdict_counts(reproduction_csv: str | Path) -> dict[str, int] | None:
    """Verdict -> number of claims (their primary views) in results/reproduction.csv, None when it does not exist;
    ValueError when its content is not what its job wrote (advtransfer.digests)."""
    path = Path(reproduction_csv)
    if not path.is_file():
        return None
    check_digest(path)  # the claims job's file, not one changed since
    with path.open(newline="", encoding="utf-8") as f:
        counts = Counter(row["verdict"] for row in csv.DictReader(f) if row.get("role", "primary") == "primary")
    return {v: counts.get(v, 0) for v in VERDICTS}


def _files(paths: Sequence[str], suffixes: tuple[str, ...], root: Path) -> list[str]:
    return [Path(p).name for p in paths if Path(p).suffix in suffixes and (root / p).is_file()]


def run_summary(
    experiments: Sequence[str],
    outputs: Mapping[str, Sequence[str]],
    reproduction_csv: str | Path = "results/reproduction.csv",
    root: str | Path = ".",
) -> str:
    """The summary text: one line per experiment of the run with its folder, figures and tables (those that
    exist under ``root``), then the claims' verdict counts and the report command."""
    root = Path(root)
    lines = ["", "advtransfer: the run finished. Figures and tables per experiment:"]
    for name in experiments:
        paths = outputs.get(name, ())
        folder = str(Path(paths[0]).parent) + "/" if paths else f"results/{name}/"
        figures, tables = _files(paths, FIGURES, root), _files(paths, TABLES, root)
        lines.append(f"  {name:<22} {folder}")
        if figures:
            lines.append(f"  {'':<22}   figures: {', '.join(figures)}")
        if tables:
            lines.append(f"  {'':<22}   tables:  {', '.join(tables)}")
    try:
        counts = verdict_counts(root / reproduction_csv)
    except ValueError as err:
        counts = None
        lines.append(f"Claims vs findings: not counted: {err}")
    if counts is not None:
        verdicts = ", ".join(f"{n} {v}" for v, n in counts.items())
        lines.append(f"Claims vs findings: results/reproduction.md ({verdicts}).")
    lines.append(f"The HTML report with every figure and table and its caption: {REPORT_COMMAND}")
    return "\n".join(lines)
