"""Claims vs findings: the verdict logic, the claims computed from small hand-made results, the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advtransfer import reproduction as rp
from advtransfer.stats import outcome_separation, spearman_difference

CRITERIA = dict(level=0.95, n_boot=300, seed=0, min_correlation=0.0, min_separation=5.0, identity_rtol=1e-6,
                mantel_alpha=0.05, range_tolerance=1e-9, metrics=["tau1_tau2", "cross_adv_loss"])  # fmt: skip


@pytest.mark.parametrize(
    "lo, hi, sign, margin, verdict",
    [
        (0.2, 0.9, 1, 0.0, "reproduced"),
        (-0.9, -0.2, 1, 0.0, "not reproduced"),
        (-0.1, 0.5, 1, 0.0, "inconclusive"),
        (0.2, 0.9, 1, 0.3, "inconclusive"),  # positive, but not clearly beyond the declared margin
        (0.05, 0.2, 1, 0.3, "not reproduced"),  # wholly below the margin
        (-0.9, -0.2, -1, 0.0, "reproduced"),
        (0.2, 0.9, -1, 0.0, "not reproduced"),
        (-0.3, 0.1, -1, 0.0, "inconclusive"),
        (math.nan, math.nan, 1, 0.0, "inconclusive"),
    ],
)
def test_interval_verdict_reaches_every_verdict(lo, hi, sign, margin, verdict):
    assert rp.interval_verdict(lo, hi, sign, margin) == verdict


def test_check_verdict_and_bad_sign():
    assert rp.check_verdict(0, 10) == "reproduced"
    assert rp.check_verdict(1, 10) == "not reproduced"
    assert rp.check_verdict(0, 0) == "inconclusive"
    with pytest.raises(ValueError, match="sign"):
        rp.interval_verdict(0.1, 0.2, 0)


def synthetic_sweep(trend: float, seeds=(1, 2, 3, 4, 5), break_bound: bool = False) -> pd.DataFrame:
    """A sweep whose tau1 / tau2 / alpha fall with t when trend > 0 (rise when < 0, flat noise when 0)."""
    rng = np.random.default_rng(0)
    rows = []
    for split in ("train", "heldout"):
        for seed in seeds:
            for t in (0.0, 0.5, 1.0, 2.0, 3.0, 4.5):
                noise = 0.05 * rng.standard_normal()
                tau = float(
                    np.clip(0.5 - trend * (t - 2) / 5 + (noise if trend else 0.4 * rng.standard_normal()), 0, 1)
                )
                lhs = 0.3 + 0.01 * t
                rows.append(dict(
                    t=t, seed=seed, split=split, tau1=tau, tau2=tau, tau2_unclamped=tau, alpha=tau, tau2_reverse=tau,
                    grad_diff=1.0, thm2_bound=2.0 if not break_bound else 0.5, thm2_bound_lipschitz=3.0,
                    thm1_lhs=lhs, thm1_rhs=lhs * (1 + 1e-12), thm1_gap=-1e-12 * lhs,
                    transfer_loss_lastlayer=1 - tau, transfer_loss_affine=1 - tau, thm3_bound=5.0,
                ))  # fmt: skip
    return pd.DataFrame(rows)


def by_id(claims):
    return {c["claim_id"]: c for c in claims}


def test_synthetic_claims_follow_the_measured_trends():
    up = by_id(rp.synthetic_claims(synthetic_sweep(trend=1.0), CRITERIA))
    assert {c["verdict"] for c in up.values()} == {"reproduced"}
    assert [c for c, _, _ in rp.SYNTHETIC_CLAIM_IDS] == list(up)
    down = by_id(rp.synthetic_claims(synthetic_sweep(trend=-1.0, break_bound=True), CRITERIA))
    assert down["tau1_falls"]["verdict"] == "not reproduced" and down["loss_rises"]["verdict"] == "not reproduced"
    assert down["thm2"]["verdict"] == "not reproduced" and down["prop1"]["verdict"] == "reproduced"
    flat = by_id(rp.synthetic_claims(synthetic_sweep(trend=0.0), CRITERIA))
    assert flat["tau1_falls"]["verdict"] == "inconclusive"


def test_synthetic_claims_catch_a_broken_identity_and_range():
    sweep = synthetic_sweep(trend=1.0)
    sweep.loc[3, "thm1_gap"] = 0.01
    sweep.loc[4, "tau2_unclamped"] = 1.2
    claims = by_id(rp.synthetic_claims(sweep, CRITERIA))
    assert claims["thm1"]["verdict"] == "not reproduced" and claims["prop1"]["verdict"] == "not reproduced"
    with pytest.raises(ValueError, match="lacks columns"):
        rp.synthetic_claims(sweep.drop(columns=["thm1_gap"]), CRITERIA)


def scenario_summary(noise: float) -> pd.DataFrame:
    """Five sources x three seeds; closeness drives every metric and the outcome, plus seed noise."""
    rng = np.random.default_rng(1)
    rows = []
    for outside in (0.0, 0.25, 0.5, 0.75, 1.0):
        for seed in (0, 1, 2):
            close = 1 - outside
            tau1 = 0.2 + 0.1 * rng.random()  # tau1 unrelated to the outcome
            rows.append(dict(
                source=f"outside{int(100 * outside)}", seed=seed, outside_fraction=outside,
                tau1=tau1, tau1_tau2=0.5 * close + 0.01 * rng.standard_normal(), tau1_logits=tau1,
                tau1_tau2_logits=0.4 * close + 0.01 * rng.standard_normal(),
                cross_adv_loss=close + 0.01 * rng.standard_normal(),
                probe_accuracy=0.9 + 0.01 * close + noise * rng.standard_normal(),
                probe_accuracy_k5=0.5 + 0.3 * close + noise * rng.standard_normal(),
            ))  # fmt: skip
    return pd.DataFrame(rows)


def test_scenario_claims_and_the_design_gate():
    summary = scenario_summary(noise=0.005)
    design = outcome_separation(summary, ["probe_accuracy_k5", "probe_accuracy"])
    assert design.set_index("outcome").loc["probe_accuracy_k5", "separation"] > 5
    claims = by_id(rp.scenario_claims("toy", summary, design, "probe_accuracy_k5", CRITERIA))
    assert claims["transfers_knowledge_tau1_tau2"]["verdict"] == "reproduced"
    assert claims["closer_more_transferable_cross_adv_loss"]["verdict"] == "reproduced"
    assert claims["tau1_not_sufficient"]["verdict"] == "reproduced"
    # the same correlations, but an outcome drowned in seed noise: the design cannot answer
    noisy = scenario_summary(noise=0.3)
    design = outcome_separation(noisy, ["probe_accuracy_k5"])
    assert design["separation"].iloc[0] < 5
    claims = by_id(rp.scenario_claims("toy", noisy, design, "probe_accuracy_k5", CRITERIA))
    assert claims["transfers_knowledge_tau1_tau2"]["verdict"] == "inconclusive"
    assert "design check" in claims["transfers_knowledge_tau1_tau2"]["note"]


def test_outcome_separation_by_hand():
    frame = pd.DataFrame(dict(
        source=["a", "a", "b", "b"], seed=[0, 1, 0, 1], outside_fraction=[0.0, 0.0, 1.0, 1.0],
        y=[0.9, 0.8, 0.5, 0.7],
    ))  # fmt: skip
    row = outcome_separation(frame, ["y"]).iloc[0]
    # variances 0.005 and 0.02 -> pooled sd sqrt(0.0125); difference 0.85 - 0.6 = 0.25
    assert row.closest == "a" and row.farthest == "b"
    assert row.difference == pytest.approx(0.25) and row.seed_sd == pytest.approx(math.sqrt(0.0125))
    assert row.separation == pytest.approx(0.25 / math.sqrt(0.0125))


def test_spearman_difference_is_paired():
    summary = scenario_summary(noise=0.005)
    same = spearman_difference(summary, "tau1_tau2", "tau1_tau2", "probe_accuracy_k5", n_boot=200)
    assert same == (0.0, 0.0, 0.0)
    point, lo, hi = spearman_difference(summary, "tau1_tau2", "tau1", "probe_accuracy_k5", n_boot=200)
    assert lo <= point <= hi and point > 0.5


def test_report_lists_every_claim_and_counts_verdicts():
    claims = rp.synthetic_claims(synthetic_sweep(trend=1.0), CRITERIA)
    claims += rp.not_run_claims("a scenario", rp.SCENARIO_CLAIM_IDS)
    frame = pd.DataFrame(claims, columns=rp.COLUMNS)
    md = rp.report_markdown(frame, pd.DataFrame(), CRITERIA)
    assert "**Verdicts:** 10 reproduced, 0 not reproduced, 3 inconclusive." in md
    assert md.count("\n| synthetic |") == 10 and md.count("not measured: add a scenario") == 3
