"""Tests of advtransfer.stats: intervals over seeds and the rank correlations behind Figure 3 (Section 4.2)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from advtransfer import stats
from advtransfer.stats import mean_interval, rank_correlations, source_order, summarise

COLUMNS = ["metric", "outcome", "n", "spearman", "spearman_lo", "spearman_hi",
           "kendall", "kendall_lo", "kendall_hi", "n_clusters"]  # fmt: skip


def frame(n_seeds: int = 4, n_sources: int = 5, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """(source, seed) rows with probe_accuracy increasing in ``up`` and decreasing in ``down``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        for k in range(n_sources):
            t = k / n_sources + noise * rng.normal()
            rows.append(dict(seed=s, source=f"src{k}", outside_fraction=1 - k / (n_sources - 1), up=t, down=-(t**3),
                             probe_accuracy=0.5 + 0.4 * k / n_sources + 0.01 * s, constant=0.7))  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------- existing helpers


def test_mean_interval_and_summarise_unchanged():
    mean, lo, hi = mean_interval([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)
    two = summarise(pd.DataFrame({"s": ["b", "a", "a"], "t": [0, 0, 0], "v": [5.0, 1.0, 3.0]}), ["s", "t"], ["v"])
    assert two[["s", "t", "n", "v_mean"]].values.tolist() == [["a", 0, 2, 2.0], ["b", 0, 1, 5.0]]
    out = summarise(pd.DataFrame({"t": [0, 0, 1], "v": [1.0, 3.0, 2.0]}), "t", ["v"])
    assert list(out.columns) == ["t", "n", "v_mean", "v_lo", "v_hi"]
    assert out["n"].tolist() == [2, 1] and out["v_mean"].tolist() == [2.0, 2.0]


def test_source_order_by_outside_fraction_then_name():
    f = pd.DataFrame({"source": ["b100", "a25", "z0", "c25", "a25"], "outside_fraction": [1.0, 0.25, 0.0, 0.25, 0.25]})
    assert source_order(f) == ["z0", "a25", "c25", "b100"]


# --------------------------------------------------------------------------------- rank correlations


def test_columns_and_one_row_per_metric():
    out = rank_correlations(frame(), ["up", "down"], n_boot=50)
    assert list(out.columns) == COLUMNS
    assert out["metric"].tolist() == ["up", "down"] and set(out["outcome"]) == {"probe_accuracy"}
    assert out["n"].tolist() == [20, 20] and out["n_clusters"].tolist() == [4, 4]


def test_monotone_relation_gives_plus_one_and_reversed_minus_one():
    f = frame(noise=0.0)
    f["probe_accuracy"] = f["up"] * 0.3 + 0.1  # strictly monotone in up (ties across seeds are shared)
    out = rank_correlations(f, ["up", "down"], n_boot=200).set_index("metric")
    assert out.loc["up", "spearman"] == pytest.approx(1.0) and out.loc["up", "kendall"] == pytest.approx(1.0)
    assert out.loc["down", "spearman"] == pytest.approx(-1.0) and out.loc["down", "kendall"] == pytest.approx(-1.0)
    # every bootstrap draw is exactly monotone too, so the intervals collapse onto the point estimate
    assert out.loc["up", ["spearman_lo", "spearman_hi", "kendall_lo", "kendall_hi"]].tolist() == pytest.approx([1] * 4)
    assert out.loc["down", ["spearman_lo", "spearman_hi"]].tolist() == pytest.approx([-1, -1])


def test_point_estimates_are_scipys():
    f = frame(noise=0.3, seed=3)
    out = rank_correlations(f, ["up"], n_boot=20).iloc[0]
    assert out["spearman"] == pytest.approx(sps.spearmanr(f["up"], f["probe_accuracy"])[0], abs=1e-12)
    assert out["kendall"] == pytest.approx(sps.kendalltau(f["up"], f["probe_accuracy"])[0], abs=1e-12)


def test_interval_contains_the_estimate_for_a_noisy_relation():
    f = frame(n_seeds=8, noise=0.15, seed=1)
    out = rank_correlations(f, ["up", "down"], n_boot=500, seed=2)
    for _, row in out.iterrows():
        assert -1 <= row.spearman_lo <= row.spearman <= row.spearman_hi <= 1
        assert -1 <= row.kendall_lo <= row.kendall <= row.kendall_hi <= 1
        assert row.spearman_lo < row.spearman_hi  # a real, not a degenerate, interval
    assert out.loc[0, "spearman"] > 0.5 and out.loc[1, "spearman"] < -0.5


def test_deterministic_for_a_seed_and_different_for_another():
    f = frame(n_seeds=6, noise=0.3, seed=4)
    a = rank_correlations(f, ["up", "down"], n_boot=300, seed=11)
    b = rank_correlations(f, ["up", "down"], n_boot=300, seed=11)
    c = rank_correlations(f, ["up", "down"], n_boot=300, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a[["spearman_lo", "spearman_hi", "kendall_lo", "kendall_hi"]].equals(
        c[["spearman_lo", "spearman_hi", "kendall_lo", "kendall_hi"]]
    )
    # nor does the row order or the other metrics requested change a metric's result
    shuffled = f.sample(frac=1.0, random_state=0)
    alone = rank_correlations(shuffled, ["down"], n_boot=300, seed=11)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), a.iloc[[1]].reset_index(drop=True))


def test_constant_metric_or_outcome_gives_nan_without_exception_or_warning():
    f = frame(noise=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = rank_correlations(f, ["constant", "up"], n_boot=100)
        flat = rank_correlations(f.assign(probe_accuracy=0.5), ["up"], n_boot=100)
    numbers = ["spearman", "spearman_lo", "spearman_hi", "kendall", "kendall_lo", "kendall_hi"]
    assert out.loc[0, numbers].isna().all() and out.loc[0, "n"] == 20
    assert out.loc[1, numbers].notna().all()
    assert flat.loc[0, numbers].isna().all()


def test_single_seed_gives_point_estimate_with_nan_interval():
    out = rank_correlations(frame(n_seeds=1, noise=0.1), ["up"], n_boot=100).iloc[0]
    assert out["n_clusters"] == 1 and out["n"] == 5
    assert np.isfinite(out["spearman"]) and np.isfinite(out["kendall"])
    assert np.isnan([out.spearman_lo, out.spearman_hi, out.kendall_lo, out.kendall_hi]).all()


def test_nan_rows_are_dropped_per_metric():
    f = frame(noise=0.2)
    f.loc[[0, 7], "up"] = np.nan
    out = rank_correlations(f, ["up", "down"], n_boot=50).set_index("metric")
    assert out.loc["up", "n"] == 18 and out.loc["down", "n"] == 20
    assert np.isfinite(out.loc["up", "spearman"])


def test_all_draws_undefined_gives_nan_interval():
    # within a seed the metric is constant, and the outcome only varies within seeds: any single-seed draw is
    # undefined, but so is any draw at all, since the metric is constant overall too
    f = frame(n_seeds=3).assign(up=1.0)
    out = rank_correlations(f, ["up"], n_boot=50).iloc[0]
    assert np.isnan([out.spearman, out.spearman_lo, out.spearman_hi]).all()


def test_undefined_draws_are_skipped():
    # 2 seeds whose rows are constant within the seed: a draw of the same seed twice is constant (undefined),
    # a draw of both seeds is perfectly monotone: the interval is built from the defined draws only -> [1, 1]
    f = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "up": [1.0] * 3 + [2.0] * 3, "probe_accuracy": [0.3] * 3 + [0.9] * 3})
    out = rank_correlations(f, ["up"], n_boot=200).iloc[0]
    assert out["spearman"] == pytest.approx(1.0)
    assert (out.spearman_lo, out.spearman_hi, out.kendall_lo, out.kendall_hi) == pytest.approx((1, 1, 1, 1))


def test_bootstrap_resamples_whole_seeds_not_rows(monkeypatch):
    # each row's metric value encodes (seed, source) uniquely: seed * 100 + source index
    n_seeds, n_sources = 4, 5
    f = pd.DataFrame([dict(seed=s, up=100.0 * s + k, probe_accuracy=float((7 * s + 3 * k) % 11))
                      for s in range(n_seeds) for k in range(n_sources)])  # fmt: skip
    seen = []
    original = stats._spearman_rows  # the batched Spearman: one row per draw (balanced seeds)

    def recording(x, y):
        seen.extend(np.array(row) for row in x)
        return original(x, y)

    monkeypatch.setattr(stats, "_spearman_rows", recording)
    rank_correlations(f, ["up"], n_boot=100, seed=5)
    assert len(seen) == 100
    whole_seed_draws = 0
    for draw in seen:
        assert draw.size == n_seeds * n_sources  # as many clusters drawn as there are, each with all its rows
        seeds, copies = np.unique(draw // 100, return_counts=True)
        assert (copies % n_sources == 0).all()
        for s in seeds:  # every row of a drawn seed appears equally often: whole seeds, never single rows
            _, per_row = np.unique(draw[draw // 100 == s], return_counts=True)
            assert per_row.size == n_sources and (per_row == per_row[0]).all()
        whole_seed_draws += int((copies > n_sources).any())
    assert whole_seed_draws > 0  # and seeds are drawn with replacement


def test_matches_a_direct_cluster_bootstrap_with_scipy():
    """Reference: the documented scheme written out with scipy; also checks the fast rank statistics (with ties)."""
    f = frame(n_seeds=5, noise=0.2, seed=9)
    f["probe_accuracy"] = f["probe_accuracy"].round(2)  # ties
    n_boot, level = 300, 0.9
    out = rank_correlations(f, ["up"], n_boot=n_boot, level=level, seed=3).iloc[0]
    rng = np.random.default_rng(3)
    draws = rng.integers(0, 5, size=(n_boot, 5))
    rho, tau = [], []
    for draw in draws:
        part = pd.concat([f[f["seed"] == s] for s in draw])
        rho.append(sps.spearmanr(part["up"], part["probe_accuracy"])[0])
        tau.append(sps.kendalltau(part["up"], part["probe_accuracy"])[0])
    q = [(1 - level) / 2, (1 + level) / 2]
    assert [out.spearman_lo, out.spearman_hi] == pytest.approx(np.quantile(rho, q), abs=1e-12)
    assert [out.kendall_lo, out.kendall_hi] == pytest.approx(np.quantile(tau, q), abs=1e-12)


def test_fast_rank_statistics_equal_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 4, size=12).astype(float)
        y = rng.integers(0, 5, size=12).astype(float)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert stats._spearman(x, y) == pytest.approx(sps.spearmanr(x, y)[0], abs=1e-12)
        assert stats._kendall(x, y) == pytest.approx(sps.kendalltau(x, y)[0], abs=1e-12)


def test_row_bootstrap_when_no_cluster_and_bad_input():
    f = frame(n_seeds=1, noise=0.2)
    out = rank_correlations(f, ["up"], cluster=None, n_boot=100).iloc[0]
    assert out["n_clusters"] == 5 and np.isfinite([out.spearman_lo, out.spearman_hi]).all()
    with pytest.raises(KeyError, match="nope"):
        rank_correlations(f, ["nope"])
    with pytest.raises(ValueError, match="level"):
        rank_correlations(f, ["up"], level=95)


@pytest.mark.parametrize("drop", [(), (1, 4, 9)])  # balanced clusters (one gather) and unbalanced (per draw)
def test_bootstrap_intervals_equal_a_plain_loop_over_draws(drop):
    """The batched bootstrap gives exactly the intervals of resampling draw by draw with scipy."""
    from scipy import stats as st

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"seed": np.repeat([0, 1, 2, 3], 6), "m": rng.normal(size=24), "y": rng.normal(size=24)})
    frame.loc[[2, 3], "m"] = frame.loc[[2, 3], "y"]  # some ties and structure
    frame = frame.drop(index=list(drop)).reset_index(drop=True)
    got = rank_correlations(frame, ["m"], outcome="y", cluster="seed", n_boot=200, seed=5).iloc[0]
    clusters = np.sort(frame["seed"].unique())
    draws = np.random.default_rng(5).integers(0, len(clusters), size=(200, len(clusters)))
    rho, tau = [], []
    for draw in draws:
        rows = pd.concat([frame[frame["seed"] == clusters[c]] for c in draw])
        rho.append(st.spearmanr(rows["m"], rows["y"])[0])
        tau.append(st.kendalltau(rows["m"], rows["y"])[0])
    assert got.spearman_lo == pytest.approx(np.quantile(rho, 0.025), abs=1e-12)
    assert got.spearman_hi == pytest.approx(np.quantile(rho, 0.975), abs=1e-12)
    assert got.kendall_lo == pytest.approx(np.quantile(tau, 0.025), abs=1e-12)
    assert got.kendall_hi == pytest.approx(np.quantile(tau, 0.975), abs=1e-12)
    skipped = rank_correlations(frame, ["m"], outcome="y", n_boot=200, seed=5, kendall=False).iloc[0]
    assert skipped.spearman_lo == got.spearman_lo and np.isnan(skipped.kendall_lo) and skipped.kendall == got.kendall
