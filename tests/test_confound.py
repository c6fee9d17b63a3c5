"""The confound numbers (advtransfer/confound.py) on hand-made frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from advtransfer import confound


def _summary():
    # 3 sources x 2 seeds; the outcome follows the overlap exactly, tau1 tau2 follows it across sources but runs
    # against the outcome within each source
    rows = []
    for source, outside, base in (("a", 0.0, 0.9), ("b", 0.5, 0.7), ("c", 1.0, 0.5)):
        for seed, shift in ((0, 0.0), (1, 0.01)):
            rows.append({"source": source, "seed": seed, "outside_fraction": outside, "probe_accuracy_k5": base + shift,
                         "tau1_tau2": base - shift, "cross_adv_loss": base})  # fmt: skip
    return pd.DataFrame(rows)


def test_confound_numbers_by_hand():
    got = confound.confound_numbers(_summary(), "probe_accuracy_k5")
    # overlap ranks (ties averaged) centred: -2 -2 0 0 2 2; outcome ranks centred: -2.5 -1.5 -0.5 0.5 1.5 2.5
    assert got["overlap_spearman"] == pytest.approx(16 / math.sqrt(16 * 17.5))
    assert got["tau1_tau2_within_source"] == pytest.approx(-1.0)  # every source: seed 1 up in outcome, down in tau
    assert got["n_sources"] == 3 and got["n_seeds"] == 2
    # given the overlap (one indicator per level), only the within-source differences are left: -1
    assert got["tau1_tau2_partial_given_overlap"] == pytest.approx(-1.0)


def test_the_overlap_ranks_model_selection_candidates():
    summary = _summary()
    scores = summary.assign(
        h_score=summary["probe_accuracy_k5"], candidate=summary["source"] + summary["seed"].astype(str)
    )
    got = confound.confound_numbers(summary, "probe_accuracy_k5", scores)
    assert got["h_score_weighted_kendall"] == pytest.approx(1.0)  # the outcome itself
    assert 0.8 < got["overlap_weighted_kendall"] < 1.0  # right across sources, tied within them
