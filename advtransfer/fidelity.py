"""The fidelity table (results/reproduction.md): per experiment, each aspect of its design next to the paper's
setting, whether they differ, and the number of the ablation that measures the difference where one exists.
Families declare their paper's settings and build the rows from their config block. No torch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

FIDELITY_COLUMNS = ["experiment", "aspect", "paper", "ours", "differs", "ablation"]


def aspect(name: str, paper: str, ours: str, ablation: str = "", differs: bool | None = None) -> dict[str, Any]:
    """One row: ``differs`` defaults to whether the two descriptions differ."""
    return dict(aspect=name, paper=str(paper), ours=str(ours), ablation=ablation,
                differs=(str(paper) != str(ours)) if differs is None else bool(differs))  # fmt: skip


def fidelity_frame(experiment: str, aspects: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": experiment, **a} for a in aspects], columns=FIDELITY_COLUMNS)


def view_result(claims: pd.DataFrame, claim_id: str, **view: Any) -> str:
    """'<value> (p <p>, <verdict>)' of the claims.csv row of ``claim_id`` whose view has every ``key=value`` of
    ``view`` (the ablation that measures a difference), '' when there is none."""
    rows = claims[claims["claim_id"] == claim_id]
    for _, r in rows.iterrows():
        parts = dict(p.split("=", 1) for p in str(r["view"]).split(", ") if "=" in p)
        if all(parts.get(k) == str(v) for k, v in view.items()):
            p = r["p_adjusted"] if r["role"] == "secondary" else r["p_value"]
            value = f"{r['value']:+.2f}" if math.isfinite(r["value"]) else "n/a"
            label = "Holm-adjusted p" if r["role"] == "secondary" else "p"
            return f"{value} ({label} {p:.2g}, {r['verdict']})" if math.isfinite(p) else f"{value} ({r['verdict']})"
    return ""
