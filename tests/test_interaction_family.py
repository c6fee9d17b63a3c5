"""The multi-order interactions family: job names and config checks (advtransfer.interaction_jobs), the summaries
and their two-level bootstrap (advtransfer.interactions), the claims, and the tiny end-to-end run."""


import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from advtransfer import interaction_jobs as ij
from advtransfer import interactions as it
from advtransfer import reproduction
from tests.workflow_helpers import REPO

ROBUSTNESS = {"rb": {"schemes": {"ce": {}, "pgd_at": {}, "rrm": {}}, "seeds": [0, 1], "image_size": 8}}
SCENARIOS = {"sc": {"image_size": 8}}
BLOCK = {"robustness": "rb", "schemes": None, "retrain": "finetune", "scenario": "sc", "grid": 4,
         "claims": {"standard": "ce", "robust": ["pgd_at"], "high": 0.7, "low": 0.3}}  # fmt: skip
CRITERIA = {"n_boot": 400, "level": 0.95, "seed": 0}


def test_job_names_round_trip():
    names = ij.model_names(BLOCK, ROBUSTNESS["rb"], ["outside0_seed0", "outside100_seed1"])
    assert names[:2] == ["source_ce_seed0", "target_ce_seed0_finetune"] and len(names) == 3 * 2 * 2 + 2
    assert [ij.parse_name(n) for n in names[-2:]] == [("scenario", "outside0", 0), ("scenario", "outside100", 1)]
    assert ij.parse_name("target_free_at_seed12_adv_finetune") == ("target", "free_at", 12)
    assert ij.parse_name("source_pgd_at_seed1") == ("source", "pgd_at", 1)
    for bad in ("source_ce", "target_ce_seed0", "reference_seed0", "source_ce_seed0_probe"):
        with pytest.raises(ValueError, match="interactions job name"):
            ij.parse_name(bad)


def test_config_problems_name_the_key():
    assert ij.config_problems(BLOCK, ROBUSTNESS, SCENARIOS) == []
    assert [k for k, _ in ij.config_problems({**BLOCK, "robustness": "nope"}, ROBUSTNESS, SCENARIOS)] == ["robustness"]
    bad = {**BLOCK, "schemes": ["ce", "madry"], "scenario": "x", "grid": 9,
           "claims": {**BLOCK["claims"], "robust": ["rrm"], "low": 0.8}}  # fmt: skip
    keys = {k for k, _ in ij.config_problems(bad, ROBUSTNESS, SCENARIOS)}
    assert keys == {"schemes", "claims.robust", "claims.low", "scenario", "grid"}


def profile_rows(values: dict[int, np.ndarray], m_over_n, column="clean") -> pd.DataFrame:
    """Profile rows of one model group: values[seed] is (images, orders)."""
    rows = [{"seed": s, "image": b, "order": k, "m_over_n": m_over_n[k], "clean": v[b, k], "adversarial": v[b, k],
             "change": v[b, k]}
            for s, v in values.items() for b in range(v.shape[0]) for k in range(v.shape[1])]  # fmt: skip
    return pd.DataFrame(rows)


def test_bootstrap_draws_are_means_of_resampled_images_and_seeds():
    rng = np.random.default_rng(0)
    groups = {0: rng.normal(size=(5, 3)), 1: rng.normal(size=(5, 3)) + 2}
    draws = it.bootstrap_order_means(groups, 3000, seed=1)
    assert draws.shape == (3000, 3)
    np.testing.assert_allclose(it.order_means(groups), np.concatenate([groups[0], groups[1]]).mean(0))
    # the bootstrap mean of the mean is the mean; resampling seeds spreads the draws over the two seed means
    np.testing.assert_allclose(draws.mean(0), it.order_means(groups), atol=0.1)
    low, high = groups[0].mean(0), groups[1].mean(0)
    assert (draws.min(0) < (low + high) / 2 - 0.4).all() and (draws.max(0) > (low + high) / 2 + 0.4).all()
    # a constant group has a degenerate interval; one seed resamples only its images
    const = it.bootstrap_order_means({0: np.ones((4, 2))}, 50, seed=0)
    assert np.all(const == 1)
    assert np.array_equal(it.bootstrap_order_means(groups, 100, seed=3), it.bootstrap_order_means(groups, 100, seed=3))


def test_change_ratio_and_shares_on_hand_values():
    m_over_n = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    change = np.array([1.0, 3.0, 100.0, 4.0, 8.0])
    assert it.change_ratio(change, m_over_n, 0.7, 0.3) == pytest.approx(6.0 / 2.0)
    assert it.high_order_shares(change, m_over_n, 0.7) == pytest.approx(12 / 116)
    np.testing.assert_allclose(it.high_order_shares(np.stack([change, change]), m_over_n, 0.7), [12 / 116] * 2)
    with pytest.raises(ValueError, match="no order"):
        it.change_ratio(change, m_over_n, 0.95, 0.3)


def test_order_summary_profile_averages_one_and_intervals_bracket_the_point():
    rng = np.random.default_rng(0)
    m_over_n = [0.0, 0.5, 0.9]
    frame = profile_rows({s: np.abs(rng.normal(size=(6, 3))) + np.array([1, 2, 3]) for s in (0, 1)}, m_over_n)
    summary = it.order_summary(frame.assign(side="source", group="ce"), n_boot=300, level=0.9, seed=0)
    assert len(summary) == 3 and summary["n_seeds"].eq(2).all() and summary["n_images"].eq(12).all()
    assert summary["profile"].mean() == pytest.approx(1.0)
    for column in ("clean", "profile", "change", "relative_change"):
        assert (summary[f"{column}_lo"] <= summary[column] + 1e-12).all()
        assert (summary[column] <= summary[f"{column}_hi"] + 1e-12).all()
    assert summary["relative_change"].to_numpy() == pytest.approx(np.ones(3))  # change == clean here


def test_claims_on_constructed_profiles():
    """ce: the change grows with the order, a large high-order share; pgd_at: a flat profile."""
    m_over_n = [0.1, 0.2, 0.5, 0.8, 0.9]
    rng = np.random.default_rng(0)

    def models(shape):
        return {s: np.abs(shape + 0.05 * rng.normal(size=(8, 5))) for s in (0, 1, 2)}

    rising, flat = np.array([1.0, 1.0, 2.0, 4.0, 5.0]), np.ones(5)
    frames = [profile_rows(models(rising), m_over_n).assign(side=side, group="ce") for side in ("source", "target")]
    frames.append(profile_rows(models(flat), m_over_n).assign(side="source", group="pgd_at"))
    rows = {r["claim_id"]: r for r in reproduction.interaction_claims(
        "x", pd.concat(frames, ignore_index=True), {"standard": "ce", "robust": ["pgd_at"], "high": 0.7, "low": 0.3},
        CRITERIA)}  # fmt: skip
    assert rows["attack_changes_high_orders_source"]["value"] == pytest.approx(4.5, rel=0.05)
    assert rows["attack_changes_high_orders_source"]["verdict"] == "reproduced"
    assert rows["attack_changes_high_orders_target"]["verdict"] == "reproduced"
    share = rows["at_lower_high_order_share_pgd_at"]
    assert share["value"] == pytest.approx(2 / 5 - 9 / 13, abs=0.02) and share["verdict"] == "reproduced"
    # a falling standard profile and a rising robust one: not reproduced
    frames = [profile_rows(models(rising[::-1]), m_over_n).assign(side="source", group="ce"),
              profile_rows(models(rising), m_over_n).assign(side="source", group="pgd_at")]  # fmt: skip
    rows = {r["claim_id"]: r for r in reproduction.interaction_claims(
        "x", pd.concat(frames, ignore_index=True), {"standard": "ce", "robust": ["pgd_at"], "high": 0.7, "low": 0.3},
        CRITERIA)}  # fmt: skip
    assert rows["at_lower_high_order_share_pgd_at"]["verdict"] == "not reproduced"
    assert rows["attack_changes_high_orders_source"]["verdict"] == "not reproduced"


def test_clean_and_adversarial_profile_pairs_the_draws():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x = torch.rand(2, 1, 4, 4)
    y = torch.tensor([0, 2])
    same = it.clean_and_adversarial_profile(model, x, x.clone(), y, 2, [0.0, 0.5, 1.0], 2, 3, 0.5, seed=0)
    frame = pd.DataFrame(same)
    assert list(frame.columns) == it.PROFILE_COLUMNS and len(frame) == 2 * 3
    assert (frame["clean"] == frame["adversarial"]).all() and (frame["change"] == 0).all()  # same pairs and contexts
    other = pd.DataFrame(it.clean_and_adversarial_profile(model, x, (x + 0.1).clamp(0, 1), y, 2, [0.0, 0.5, 1.0], 2, 3,
                                                          0.5, seed=0))  # fmt: skip
    assert (other["change"] > 0).any() and np.allclose(other["clean"], frame["clean"])


@pytest.mark.workflow
def test_tiny_interactions_run_produces_every_output(tiny_run):
    out = tiny_run / "results" / "tinyinteractions"
    for name in ("interactions.csv", "profiles.csv", "claims.csv", "orders_vs_tau.csv", "table.md", "table.tex",
                 "interactions.png", "interactions.pdf"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    cfg = yaml.safe_load(
        (REPO / "tests/configs/tiny_interactions.yaml").read_text()
    )["interactions"]["tinyinteractions"]
    summary = pd.read_csv(out / "interactions.csv")
    orders = it.orders(4, cfg["ratios"])
    groups = {("source", g) for g in ("ce", "pgd_at", "rrm")} | {("target", g) for g in ("ce", "pgd_at", "rrm")}
    groups |= {("scenario", "outside0"), ("scenario", "outside100")}
    assert set(map(tuple, summary[["side", "group"]].to_numpy())) == groups
    assert summary.groupby(["side", "group"])["order"].apply(list).map(lambda o: o == orders).all()
    assert np.allclose(summary.groupby(["side", "group"])["profile"].mean(), 1.0)
    profiles = pd.read_csv(out / "profiles.csv")
    assert profiles.groupby(["side", "group", "seed"])["image"].nunique().max() <= cfg["n_images"]
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["claim_id"]) == {"attack_changes_high_orders_source", "attack_changes_high_orders_target",
                                       "at_lower_high_order_share_pgd_at", "at_lower_high_order_share_rrm"}  # fmt: skip
    assert claims["verdict"].isin(["reproduced", "not reproduced", "inconclusive"]).all()
    view = pd.read_csv(out / "orders_vs_tau.csv")
    assert len(view) == 4 and view[["tau1", "probe_accuracy_k5", "high_order_share"]].notna().all().all()
    assert "adversarial perturbations mainly change high-order interactions" in (
        tiny_run / "results" / "reproduction.md").read_text()
    assert claims["value"].notna().all()


def test_tables_without_a_scenario_have_no_view_section():
    from advtransfer import tables

    rng = np.random.default_rng(0)
    frame = profile_rows({s: np.abs(rng.normal(size=(4, 3))) for s in (0, 1)}, [0.0, 0.5, 0.9]).assign(
        side="source", group="ce")  # fmt: skip
    summary = it.order_summary(frame, n_boot=50, level=0.9, seed=0)
    shares = it.model_shares(frame, 0.7)
    claims = pd.DataFrame(columns=reproduction.COLUMNS)
    empty = pd.DataFrame(columns=["source", "seed", "high_order_share"])
    out = tables.interaction_tables(summary, shares, claims, empty, pd.DataFrame(), BLOCK["claims"])
    assert "| source | ce |" in out["md"] and "scenario's sources" not in out["md"]
    assert r"\begin{tabular}" in out["tex"] and "high-order share" in out["md"]
