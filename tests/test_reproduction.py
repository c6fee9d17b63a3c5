"""Claims vs findings: the synthetic and scenario families' claims and checks on small hand-made results, through
the declarations of config.yaml, and the report that gathers them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advtransfer import claims as C
from advtransfer import config as configuration
from advtransfer import reproduction as rp
from advtransfer.families.scenarios import claims as scenarios
from advtransfer.families.synthetic import claims as synthetic
from advtransfer.stats import outcome_separation

CONFIG = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
PROTOCOL = {**CONFIG["reproduction"], "n_perm": 999, "n_boot": 300}


def declared(family: str, block: dict | None = None) -> dict:
    return C.declarations(CONFIG["claims"][family], (block or {}).get("claims"))


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


def judged(family, name, block, frames, protocol=PROTOCOL):
    out = family.claims(name, block, frames, declared(family.__name__.split(".")[2], block), protocol)
    primary = out["claims"][out["claims"]["role"] == "primary"].set_index("claim_id")
    return out, primary


def test_synthetic_claims_follow_the_measured_trends_and_the_checks_are_apart():
    block = CONFIG["synthetic"]
    out, up = judged(synthetic, "synthetic", block, {"sweep": synthetic_sweep(trend=1.0)})
    assert list(up.index) == list(CONFIG["claims"]["synthetic"])
    assert set(up["verdict"]) == {"reproduced"}
    assert set(out["checks"]["check_id"]) == {"prop1", "thm1", "thm2", "thm2_lipschitz", "thm3"}
    assert set(out["checks"]["result"]) == {"pass"}
    out, down = judged(synthetic, "synthetic", block, {"sweep": synthetic_sweep(trend=-1.0, break_bound=True)})
    assert down.loc["tau1_falls", "verdict"] == "not reproduced"
    assert down.loc["loss_rises", "verdict"] == "not reproduced"
    checks = out["checks"].set_index("check_id")["result"]
    assert checks["thm2"] == "fail" and checks["prop1"] == "pass"
    _, flat = judged(synthetic, "synthetic", block, {"sweep": synthetic_sweep(trend=0.0)})
    assert flat.loc["tau1_falls", "verdict"] == "inconclusive"


def test_synthetic_checks_catch_a_broken_identity_and_range():
    sweep = synthetic_sweep(trend=1.0)
    sweep.loc[3, "thm1_gap"] = 0.01
    sweep.loc[4, "tau2_unclamped"] = 1.2
    out, _ = judged(synthetic, "synthetic", CONFIG["synthetic"], {"sweep": sweep})
    checks = out["checks"].set_index("check_id")
    assert checks.loc["thm1", "result"] == "fail" and checks.loc["prop1", "result"] == "fail"
    assert checks.loc["prop1", "violations"] == 1
    with pytest.raises(ValueError, match="lacks columns"):
        judged(synthetic, "synthetic", CONFIG["synthetic"], {"sweep": sweep.drop(columns=["thm1_gap"])})


def scenario_summary(noise: float, sources=(0.0, 0.25, 0.5, 0.75, 1.0), seeds=(0, 1, 2)) -> pd.DataFrame:
    """Sources x seeds; closeness drives every metric and the outcome, plus seed noise; tau2 drives the outcome
    beyond tau1 (tau1 tau2 = tau1 x tau2)."""
    rng = np.random.default_rng(1)
    rows = []
    for outside in sources:
        for seed in seeds:
            close = 1 - outside
            tau1 = 0.2 + 0.1 * rng.random()  # tau1 unrelated to the outcome
            tau2 = 0.1 + 0.8 * close + 0.01 * rng.standard_normal()
            rows.append(dict(
                source=f"outside{int(100 * outside)}", seed=seed, outside_fraction=outside, tau1=tau1, tau2=tau2,
                tau1_tau2=tau1 * tau2, tau1_logits=tau1, tau2_logits=tau2, tau1_tau2_logits=tau1 * tau2,
                cross_adv_loss=close + 0.01 * rng.standard_normal(), alpha=close,
                probe_accuracy=0.9 + 0.01 * close + noise * rng.standard_normal(),
                probe_accuracy_k5=0.5 + 0.3 * close + noise * rng.standard_normal(),
                finetune_accuracy=0.9 + 0.05 * close + noise * rng.standard_normal(), n_metric_images=100,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def test_scenario_claims_and_the_design_gate():
    block = CONFIG["scenarios"]["digits"]
    out, claims = judged(scenarios, "toy", block, {"summary": scenario_summary(noise=0.005)})
    assert claims.loc["transfers_knowledge", "verdict"] == "reproduced"
    assert claims.loc["closer_more_transferable", "verdict"] == "reproduced"
    assert claims.loc["tau1_not_sufficient", "verdict"] == "reproduced"
    assert "design check" in claims.loc["transfers_knowledge", "design"]
    assert out["fidelity"]["aspect"].tolist()[:2] == ["data", "model"]
    # the same metrics, but an outcome drowned in seed noise: the design cannot answer
    _, noisy = judged(scenarios, "toy", block, {"summary": scenario_summary(noise=0.3)})
    assert noisy.loc["transfers_knowledge", "verdict"] == "inconclusive"
    assert noisy.loc["transfers_knowledge", "design"].endswith("failed")
    assert noisy.loc["closer_more_transferable", "verdict"] == "reproduced"  # no outcome: no design check


def test_three_sources_are_underpowered_however_strong_the_effect():
    block = CONFIG["scenarios"]["digits"]
    _, claims = judged(scenarios, "toy", block, {"summary": scenario_summary(0.005, sources=(0.0, 0.5, 1.0))})
    assert set(claims["verdict"]) == {"underpowered"}
    assert "needs at least 5" in claims.loc["transfers_knowledge", "note"]


def test_outcome_separation_by_hand():
    frame = pd.DataFrame(dict(source=["a", "a", "b", "b"], seed=[0, 1, 0, 1], y=[0.9, 0.8, 0.5, 0.7]))
    row = outcome_separation(frame, ["y"]).iloc[0]
    # variances 0.005 and 0.02 -> pooled sd sqrt(0.0125); means 0.85 and 0.6
    assert row.highest == "a" and row.lowest == "b"
    assert row.difference == pytest.approx(0.25) and row.seed_sd == pytest.approx(math.sqrt(0.0125))
    assert row.separation == pytest.approx(0.25 / math.sqrt(0.0125))


def test_report_counts_primary_verdicts_and_checks_apart_and_lists_the_fidelity_differences():
    out, _ = judged(synthetic, "synthetic", CONFIG["synthetic"], {"sweep": synthetic_sweep(trend=1.0)})
    md = rp.report_markdown(out["claims"], out["checks"], out["fidelity"], PROTOCOL, not_run=["scenarios"])
    assert "**Claims** (primary views): 5 reproduced, 0 not reproduced, 0 inconclusive, 0 underpowered." in md
    assert "**Checks**: 5 pass, 0 fail." in md
    primary_table = md.split("## Claims")[1].split("### Secondary views")[0]
    assert primary_table.count("\n| synthetic |") == 5  # one row per claim: its primary view
    assert "### Secondary views" in md and "## Fidelity" in md and "tau2 direction" in md
    assert "Not measured in this run (no experiment of these families in `experiments`): scenarios." in md
    assert rp.verdict_counts(out["claims"])["reproduced"] == 5
