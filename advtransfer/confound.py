"""How much of a data-distribution scenario the class overlap alone explains (docs/added_value.md, "The
confound"): the share of a source's classes inside the target task against the knowledge outcome, beside tau1
tau2 and the cross adversarial loss; tau1 tau2 within a source across seeds and given the overlap; and, in model
selection, the overlap's own ranking of the candidates.

    python -m advtransfer.confound results/digits/summary.csv results/digits_selection/scores.csv probe_accuracy_k5
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from advtransfer.added_value import partial_spearman
from advtransfer.selection import agreement_values
from advtransfer.stats import _spearman  # Spearman rho, NaN when a side is constant

SCORES = ("tau1_tau2", "cross_adv_loss")


def overlap(frame: pd.DataFrame) -> pd.Series:
    """The share of a source's classes inside the target task: 1 - ``outside_fraction`` (the scenario summary's)."""
    return 1.0 - frame["outside_fraction"].astype(float)


def within_source_spearman(frame: pd.DataFrame, score: str, outcome: str) -> float:
    """Mean over sources of the Spearman of ``score`` with ``outcome`` across the source's seeds (sources where
    either is constant left out; NaN when none is left)."""
    values = [_spearman(g[score].to_numpy(float), g[outcome].to_numpy(float)) for _, g in frame.groupby("source")]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def confound_numbers(summary: pd.DataFrame, outcome: str, scores: pd.DataFrame | None = None) -> dict[str, float]:
    """The confound in numbers, over the (source, seed) rows of a scenario ``summary``: Spearman of the overlap
    and of each of SCORES with ``outcome``; tau1 tau2 within sources across seeds, and its partial Spearman given
    the overlap; with a model-selection ``scores`` table of the same scenario, the weighted Kendall of the
    overlap's ranking of the candidates (and of tau1 tau2 and the H-score beside it)."""
    frame = summary.assign(overlap=overlap(summary))
    y = frame[outcome].to_numpy(float)
    out = {"overlap_spearman": _spearman(frame["overlap"].to_numpy(float), y)}
    out.update({f"{s}_spearman": _spearman(frame[s].to_numpy(float), y) for s in SCORES})
    out["tau1_tau2_within_source"] = within_source_spearman(frame, "tau1_tau2", outcome)
    out["tau1_tau2_partial_given_overlap"] = partial_spearman(frame["tau1_tau2"], y, frame[["overlap"]])
    out["n_sources"], out["n_seeds"] = frame["source"].nunique(), frame["seed"].nunique()
    if scores is not None:
        by_source = frame.drop_duplicates("source").set_index("source")["overlap"]
        ranked = scores[scores["source"].isin(by_source.index)]
        truth = ranked[outcome].to_numpy(float)
        out["overlap_weighted_kendall"] = agreement_values(ranked["source"].map(by_source), truth)["weighted_kendall"]
        for s in ("h_score", "tau1_tau2"):
            out[f"{s}_weighted_kendall"] = agreement_values(ranked[s].to_numpy(float), truth)["weighted_kendall"]
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    summary, scores, outcome = pd.read_csv(args[0]), pd.read_csv(args[1]), args[2]
    for key, value in confound_numbers(summary, outcome, scores).items():
        print(f"{key:36s} {value:+.2f}" if isinstance(value, float) else f"{key:36s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
