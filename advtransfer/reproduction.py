"""results/reproduction.md: the run's claims, checks, design checks and fidelity tables, gathered from each
experiment's claims.csv, checks.csv and fidelity.csv (written by its family through the one claims protocol,
advtransfer/claims.py). This module judges nothing: it only gathers and formats. No torch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from advtransfer.claims import CHECK_RESULTS, VERDICTS
from advtransfer.stats import format_interval


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims (their primary rows) got each verdict, every verdict present (zero included)."""
    primary = claims[claims["role"] == "primary"] if "role" in claims.columns else claims
    return {v: int((primary["verdict"] == v).sum()) for v in VERDICTS}


def check_counts(checks: pd.DataFrame) -> dict[str, int]:
    return {r: int((checks["result"] == r).sum()) for r in CHECK_RESULTS}


def _cell(value: Any) -> str:
    return str(value).replace("|", r"\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(":---" for _ in header) + "|",
            *("| " + " | ".join(_cell(x) for x in row) + " |" for row in rows)]  # fmt: skip


def _p(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def _value(r: Mapping[str, Any]) -> str:
    return format_interval(float(r["value"]), float(r["lo"]), float(r["hi"]))


def _protocol(p: Mapping[str, Any]) -> str:
    return (
        "Protocol (docs/claims.md), declared in config before the run (`reproduction`, `claims`): every claim has ONE "
        "primary view, which alone decides its verdict, tested with the models as units (the units a claim "
        "compares relabelled whole, seeds nested in them; images are never units) by an exact or Monte-Carlo "
        f"permutation or sign-flip test ({p['n_perm']} random arrangements when there are more than 10,000). "
        f"Verdicts at the two-sided level {p['alpha']:g}: *reproduced* when the claimed direction's p <= "
        f"{p['alpha'] / 2:g} and the "
        f"effect is at least the declared minimum; *not reproduced* when the other direction's is; *underpowered* "
        f"when even a perfect effect could not reach {p['alpha'] / 2:g} in this design (the note says what size "
        f"could); *inconclusive* otherwise, or when a knowledge claim's design check failed (its outcome must span "
        f"{p['min_separation']:g} seed SDs across the sources). Intervals ({100 * p['level']:.0f}%, bootstrap over "
        "seeds) are reported beside the verdicts, never as them. Secondary views are Holm-adjusted across each "
        "claim's secondary views. Checks (identities, bounds, ranges) can only fail through a bug: they are "
        "counted apart. The tests' false-positive rates are measured, not assumed: `make calibration` "
        "(results/calibration.csv)."
    )


def report_markdown(claims: pd.DataFrame, checks: pd.DataFrame, fidelity: pd.DataFrame, protocol: Mapping[str, Any],
                    not_run: Sequence[str] = ()) -> str:  # fmt: skip
    """results/reproduction.md from the run's gathered claims (primary and secondary rows), checks and fidelity
    rows; ``not_run``: families with no experiment in the run (their claims were not measured)."""
    counts, primary = verdict_counts(claims), claims[claims["role"] == "primary"]
    lines = [
        "# Reproduction: the papers' claims against this run's measurements", "",
        "Written by the workflow's `reproduction` rule from this run's results; nothing here is typed by hand.",
        _protocol(protocol), "",
        "**Claims** (primary views): " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS) + ".  ",
        "**Checks**: " + ", ".join(f"{n} {r}" for r, n in check_counts(checks).items()) + ".", "",
        "## Claims", "",
    ]  # fmt: skip
    lines += _table(
        ["experiment", "claim", "paper", "primary measurement", "value [interval]", "p", "min p", "test", "verdict",
         "notes"],
        [[r["experiment"], r["claim"], r["paper"], r["measurement"], _value(r), _p(r["p_value"]), _p(r["min_p"]),
          r["test"], f"**{r['verdict']}**", "; ".join(x for x in (r["design"], r["note"]) if isinstance(x, str) and x)]
         for _, r in primary.iterrows()],
    )  # fmt: skip
    secondary = claims[claims["role"] == "secondary"]
    if len(secondary):
        lines += ["", "### Secondary views (Holm-adjusted across each claim's secondary views; never deciding)", ""]
        lines += _table(["experiment", "claim", "view", "measurement", "value [interval]", "Holm p", "verdict"],
                        [[r["experiment"], r["claim_id"], r["view"], r["measurement"], _value(r), _p(r["p_adjusted"]),
                          r["verdict"]] for _, r in secondary.iterrows()])  # fmt: skip
    lines += ["", "## Checks (identities, bounds and ranges: they can only fail through a bug)", ""]
    lines += _table(["experiment", "check", "paper", "measurement", "value", "bound", "rows", "violations", "result"],
                    [[r["experiment"], r["check"], r["paper"], r["measurement"], f"{r['value']:.4g}", r["bound"],
                      r["rows"], r["violations"], f"**{r['result']}**"] for _, r in checks.iterrows()]
                    if len(checks) else [["(none in this run)", "", "", "", "", "", "", "", ""]])  # fmt: skip
    differs = fidelity[fidelity["differs"].astype(str).str.lower() == "true"] if len(fidelity) else fidelity
    lines += ["", "## Fidelity: where each experiment's design differs from the paper's", "",
              "Every aspect, the same or not, is in results/<experiment>/fidelity.csv; the ablation is the secondary "
              "view that measures the difference, where there is one.", ""]  # fmt: skip
    lines += _table(["experiment", "aspect", "paper", "ours", "ablation"],
                    [[r["experiment"], r["aspect"], r["paper"], r["ours"], r["ablation"] if isinstance(r["ablation"],
                      str) else ""] for _, r in differs.iterrows()])  # fmt: skip
    if not_run:
        lines += ["", "Not measured in this run (no experiment of these families in `experiments`): "
                  + ", ".join(not_run) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"
