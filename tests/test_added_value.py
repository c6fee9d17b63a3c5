"""Added value over the design factors (advtransfer.added_value): hand-computed cases, agreement with scipy,
invariances, and the within-level test's false-positive rate when the score only knows the design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advtransfer import added_value as av

LEVELS = ["a", "a", "a", "b", "b", "b"]


def test_within_level_spearman_by_hand():
    # level a: score 1, 2, 3 vs outcome 3, 2, 1 (rho -1); level b: 1, 2, 3 vs 1, 2, 3 (rho +1); one seed
    score = np.array([[1.0], [2.0], [3.0], [1.0], [2.0], [3.0]])
    outcome = np.array([[3.0], [2.0], [1.0], [1.0], [2.0], [3.0]])
    assert av.within_level_spearman(score, outcome, LEVELS) == pytest.approx(0.0)
    assert av.within_level_spearman(score, score, LEVELS) == pytest.approx(1.0)


def test_within_level_spearman_ignores_what_separates_the_levels():
    """A score that is the level itself plus a constant within it carries no within-level information: NaN
    (constant within every level), and the level shift of the outcome does not enter the statistic."""
    rng = np.random.default_rng(0)
    within = rng.normal(size=(6, 3))
    level_shift = np.repeat([[0.0], [10.0]], 3, axis=0)
    outcome = within + level_shift
    assert av.within_level_spearman(within, outcome, LEVELS) == pytest.approx(1.0)
    assert np.isnan(av.within_level_spearman(np.broadcast_to(level_shift, (6, 3)), outcome, LEVELS))
    # the pooled Spearman of the level alone is high: exactly the confound the within-level view removes
    assert stats.spearmanr(np.broadcast_to(level_shift, (6, 3)).ravel(), outcome.ravel())[0] > 0.8


def test_within_level_spearman_matches_scipy_per_level_and_seed():
    rng = np.random.default_rng(1)
    score, outcome = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    levels = [0, 0, 0, 0, 1, 1, 1, 1]
    expected = np.mean([np.mean([stats.spearmanr(score[g, k], outcome[g, k])[0] for k in range(4)])
                        for g in (slice(0, 4), slice(4, 8))])  # fmt: skip
    assert av.within_level_spearman(score, outcome, levels) == pytest.approx(expected, abs=1e-12)
    stacked = np.stack([score, score[::-1]])  # leading axes (arrangements) are kept
    assert av.within_level_spearman(stacked, outcome, levels).shape == (2,)


def test_within_level_test_is_exact_and_reaches_its_smallest_p_for_a_perfect_ranking():
    score = np.arange(6.0)[:, None] + np.zeros((6, 2))
    result = av.within_level_test(score, score.copy(), LEVELS)
    assert result.value == pytest.approx(1.0)
    assert result.min_p == pytest.approx(1 / 36) and result.p_greater == pytest.approx(1 / 36)  # 3! x 3! arrangements
    assert "all 36 arrangements" in result.test


def test_within_level_test_keeps_its_level_when_the_score_only_knows_the_design_and_finds_a_real_signal():
    """Null: the outcome differs between levels (the design factor) and the score follows the level, but within
    a level the score is unrelated to the outcome: the test at 0.05 fires about 5% of the time, no more. With a
    within-level signal in the score it fires most of the time (12 sources in 3 levels, 3 seeds)."""
    rng = np.random.default_rng(2)
    levels = np.repeat([0, 1, 2], 4)
    reps = 300
    fired = {0.0: 0, 1.0: 0}
    for signal in fired:
        for _ in range(reps):
            shift = levels[:, None] * 2.0
            within = rng.normal(size=(12, 1))  # what the design does not know, the same in every seed
            outcome = shift + within + 0.5 * rng.normal(size=(12, 3))
            score = shift + signal * within + rng.normal(size=(12, 3)) * (1.0 if signal == 0 else 0.5)
            result = av.within_level_test(score, outcome, levels, n_perm=199, perm_seed=int(rng.integers(1e9)))
            fired[signal] += result.p_greater <= 0.05
    assert fired[0.0] / reps <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps), fired
    assert fired[1.0] / reps >= 0.8, fired


def test_partial_spearman_with_one_level_is_the_plain_spearman():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=30), rng.normal(size=30)
    factors = pd.DataFrame({"level": ["only"] * 30})
    assert av.partial_spearman(x, y, factors) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_partial_spearman_removes_a_shared_level_effect():
    rng = np.random.default_rng(4)
    level = np.repeat([0, 1, 2], 20)
    x = level * 5 + rng.normal(size=60)
    y = level * 5 + rng.normal(size=60)
    factors = pd.DataFrame({"level": level})
    assert stats.spearmanr(x, y)[0] > 0.8
    assert abs(av.partial_spearman(x, y, factors)) < 0.35
    assert av.partial_spearman(x, x + 0.01 * rng.normal(size=60), factors) > 0.9


def test_loo_gain_is_one_for_the_outcome_itself_and_not_positive_for_noise():
    rng = np.random.default_rng(5)
    sources = np.repeat(np.arange(12), 3)
    level = sources // 4
    outcome = level * 1.0 + np.repeat(rng.normal(size=12), 3)
    factors = pd.DataFrame({"level": level})
    perfect = av.loo_squared_errors(outcome, outcome, factors, sources)
    assert av.loo_gain(perfect) == pytest.approx(1.0)
    assert list(perfect.columns) == ["source", "design", "with_score"] and len(perfect) == 12
    noise = av.loo_squared_errors(rng.normal(size=36), outcome, factors, sources)
    assert av.loo_gain(noise) < 0.1
    lo, hi = av.loo_gain_interval(noise, n_boot=500)
    assert lo <= av.loo_gain(noise) <= hi


def test_loo_squared_errors_by_hand():
    """Two sources at one level, one row each: without the score each is predicted by the other's outcome."""
    errors = av.loo_squared_errors(np.array([0.0, 1.0]), np.array([1.0, 3.0]), pd.DataFrame({"l": [0, 0]}), [0, 1])
    assert errors["design"].tolist() == [4.0, 4.0]


# ------------------------------------------------------------------------------------ the experiment's table


def _crossed_frame(rng, n_levels=3, per_level=4, seeds=3, signal=1.0):
    rows = []
    for u in range(n_levels * per_level):
        level, effect = u // per_level, rng.normal()
        for k in range(seeds):
            rows.append(dict(source=f"s{u:02d}", seed=k, overlap=level / n_levels,
                             outcome=3.0 * level + effect + 0.2 * rng.normal(),
                             score=3.0 * level + signal * effect + 0.2 * rng.normal(),
                             level_only=float(level), noise=rng.normal()))  # fmt: skip
    return pd.DataFrame(rows)


def test_added_value_table_has_the_issue_columns_and_a_row_per_metric_and_outcome():
    frame = _crossed_frame(np.random.default_rng(0))
    frame["outcome2"] = frame["outcome"] ** 2
    table = av.added_value_table(frame, ["score", "noise", "level_only"], ["outcome", "outcome2"], "overlap",
                                 ["overlap", "seed"], n_perm=499, n_boot=200)  # fmt: skip
    assert list(table.columns) == ["metric", "outcome", "within_spearman", "p_value", "partial_spearman", "loo_gain",
                                   "loo_gain_lo", "loo_gain_hi", "n_sources", "n_seeds"]  # fmt: skip
    assert len(table) == 6 and set(table["n_sources"]) == {12} and set(table["n_seeds"]) == {3}
    row = table.set_index(["metric", "outcome"]).loc[("score", "outcome")]
    assert row["within_spearman"] > 0.7 and row["p_value"] < 0.01 and row["loo_gain"] > 0.5
    assert row["loo_gain_lo"] <= row["loo_gain"] <= row["loo_gain_hi"]
    # the level itself: constant within every level, so no within-level value and no p-value (not p = 1)
    level_only = table.set_index(["metric", "outcome"]).loc[("level_only", "outcome")]
    assert np.isnan(level_only["within_spearman"]) and np.isnan(level_only["p_value"])
    assert abs(level_only["loo_gain"]) < 1e-9  # the design already knows it


def test_added_value_row_leaves_out_sources_lacking_a_seed_and_is_invariant_to_monotone_rescaling():
    frame = _crossed_frame(np.random.default_rng(1))
    table = av.added_value_row(frame, "score", "outcome", "overlap", ["overlap"], n_perm=199, n_boot=100)
    rescaled = frame.assign(score=np.exp(frame["score"]))  # the gain uses the score's rank: scale-free
    assert av.added_value_row(rescaled, "score", "outcome", "overlap", ["overlap"], n_perm=199,
                              n_boot=100) == pytest.approx(table, nan_ok=True)  # fmt: skip
    frame.loc[(frame["source"] == "s03") & (frame["seed"] == 1), "score"] = np.nan
    assert av.added_value_row(frame, "score", "outcome", "overlap", ["overlap"], n_perm=199)["n_sources"] == 11


def test_within_level_interval_covers_the_value_and_by_seed_averages_to_it():
    frame = _crossed_frame(np.random.default_rng(2), signal=0.5)
    _, _, m = av.unit_matrices(frame, ["score", "outcome"])
    levels = frame.groupby("source")["overlap"].first().to_numpy()
    value = av.within_level_spearman(m["score"], m["outcome"], levels)
    lo, hi = av.within_level_interval(m["score"], m["outcome"], levels, n_boot=300)
    assert lo <= value <= hi
    assert av.within_level_by_seed(m["score"], m["outcome"], levels).mean() == pytest.approx(value)


def test_within_level_gain_test_finds_a_factor_that_adds_within_levels_and_not_one_that_does_not():
    rng = np.random.default_rng(3)
    levels = np.repeat([0, 1, 2], 5)
    tau1_effect, tau2_effect = rng.normal(size=(15, 1)), rng.normal(size=(15, 1))
    noise = lambda: 0.1 * rng.normal(size=(15, 3))  # noqa: E731
    tau1 = np.exp(tau1_effect + levels[:, None] + noise())
    outcome = tau1_effect + tau2_effect + 3.0 * levels[:, None] + noise()
    adds = av.within_level_gain_test(tau1, np.exp(tau2_effect + noise()), outcome, levels, n_perm=999)
    unrelated = av.within_level_gain_test(tau1, np.exp(rng.normal(size=(15, 1)) + noise()), outcome, levels,
                                          n_perm=999)  # fmt: skip
    assert adds.value > 0 and adds.p_greater < 0.01
    assert unrelated.p_greater > 0.05
