"""The multi-order interactions family: job names and config checks (advtransfer.interaction_jobs), the summaries
and their two-level bootstrap (advtransfer.interactions), the claims, and the tiny end-to-end run."""


import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from advtransfer import claims as C
from advtransfer import config as configuration
from advtransfer import interactions as it
from advtransfer.families.interactions import claims as family
from advtransfer.families.interactions import jobs as ij
from tests.workflow_helpers import REPO

ROBUSTNESS = {"rb": {"schemes": {"ce": {}, "pgd_at": {}, "rrm": {}}, "seeds": [0, 1], "image_size": 8}}
SCENARIOS = {"sc": {"image_size": 8}}
BLOCK = {"robustness": "rb", "schemes": None, "retrain": "finetune", "scenario": "sc", "grid": 4}
CONFIG = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
DECLARED = C.declarations(CONFIG["claims"]["interactions"], None)


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
    both = {"robustness": ROBUSTNESS, "scenarios": SCENARIOS}
    assert ij.config_problems(BLOCK, both) == []
    assert [k for k, _ in ij.config_problems({**BLOCK, "robustness": "nope"}, both)] == ["robustness"]
    bad = {**BLOCK, "schemes": ["ce", "madry"], "scenario": "x", "grid": 9}
    keys = {k for k, _ in ij.config_problems(bad, both)}
    assert keys == {"schemes", "scenario", "grid"}
    config = {"robustness": ROBUSTNESS}
    assert family.claims_problems({**BLOCK, "schemes": ["ce", "pgd_at"]}, DECLARED, config) == []
    wrong = C.declarations(CONFIG["claims"]["interactions"], {
        "robust_lower_high_order_share": {"primary": {"group": "rrm"}},
        "attack_changes_high_orders": {"primary": {"low": 0.8}}})  # fmt: skip
    keys = {k for k, _ in family.claims_problems({**BLOCK, "schemes": ["ce", "pgd_at"]}, wrong, config)}
    assert keys == {"robust_lower_high_order_share.primary.group", "attack_changes_high_orders.primary.low"}


def profile_rows(values: dict[int, np.ndarray], order_ratio, column="clean") -> pd.DataFrame:
    """Profile rows of one model group: values[seed] is (images, orders)."""
    rows = [{"seed": s, "image": b, "order": k, "order_ratio": order_ratio[k], "clean": v[b, k], "adversarial": v[b, k],
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
    order_ratio = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    change = np.array([1.0, 3.0, 100.0, 4.0, 8.0])
    frame = profile_rows({0: np.stack([change, change])}, order_ratio, column="change").assign(side="source",
                                                                                              group="ce")  # fmt: skip
    view = {"side": "source", "group": "ce", "measure": "absolute", "high": 0.7, "low": 0.3}
    assert family.change_ratios(frame, view).iloc[0] == pytest.approx(6.0 / 2.0)
    assert it.high_order_shares(change, order_ratio, 0.7) == pytest.approx(12 / 116)
    np.testing.assert_allclose(it.high_order_shares(np.stack([change, change]), order_ratio, 0.7), [12 / 116] * 2)


def test_order_summary_profile_averages_one_and_intervals_bracket_the_point():
    rng = np.random.default_rng(0)
    order_ratio = [0.0, 0.5, 0.9]
    frame = profile_rows({s: np.abs(rng.normal(size=(6, 3))) + np.array([1, 2, 3]) for s in (0, 1)}, order_ratio)
    summary = it.order_summary(frame.assign(side="source", group="ce"), n_boot=300, level=0.9, seed=0)
    assert len(summary) == 3 and summary["n_seeds"].eq(2).all() and summary["n_images"].eq(12).all()
    assert summary["profile"].mean() == pytest.approx(1.0)
    for column in ("clean", "profile", "change", "relative_change"):
        assert (summary[f"{column}_lo"] <= summary[column] + 1e-12).all()
        assert (summary[column] <= summary[f"{column}_hi"] + 1e-12).all()
    assert summary["relative_change"].to_numpy() == pytest.approx(np.ones(3))  # change == clean here


def judged(frames):
    profiles = {"profiles": pd.concat(frames, ignore_index=True)}
    out = family.claims("x", CONFIG["interactions"]["digits_interactions"], profiles, DECLARED,
                        {**CONFIG["reproduction"], "n_perm": 999})  # fmt: skip
    return out["claims"].set_index(["claim_id", "view"])


def test_claims_on_constructed_profiles():
    """ce: the change grows with the order, a large high-order share; pgd_at: a flat profile; six seeds, the
    fewest for a sign-flip test over models to reach its level."""
    order_ratio = [0.1, 0.2, 0.5, 0.8, 0.9]
    rng = np.random.default_rng(0)
    seeds = range(6)

    def models(shape):
        return {s: np.abs(shape + 0.05 * rng.normal(size=(8, 5))) for s in seeds}

    rising, flat = np.array([1.0, 1.0, 2.0, 4.0, 5.0]), np.ones(5)
    frames = [profile_rows(models(rising), order_ratio).assign(side=side, group="ce") for side in ("source", "target")]
    frames.append(profile_rows(models(flat), order_ratio).assign(side="source", group="pgd_at"))
    rows = judged(frames)
    change = rows.loc["attack_changes_high_orders"]
    primary = change[change["role"] == "primary"].iloc[0]
    assert primary["value"] == pytest.approx(4.5, rel=0.05) and primary["verdict"] == "reproduced"
    assert primary["null_value"] == 1.0 and "ce models on the source task" in primary["measurement"]
    verdicts = dict(zip(change.index, change["verdict"]))
    assert verdicts["measure=relative, side=source, group=ce, high=0.7, low=0.3"] == "inconclusive"  # change = clean
    target = change.loc["measure=absolute, side=target, group=ce, high=0.7, low=0.3"]
    assert target["p_value"] == pytest.approx(2 / 64) and target["p_adjusted"] == pytest.approx(4 / 64)
    assert verdicts["measure=absolute, side=target, group=ce, high=0.7, low=0.3"] == "inconclusive"  # after Holm
    share = rows.loc["robust_lower_high_order_share"].iloc[0]
    assert share["value"] == pytest.approx(2 / 5 - 9 / 13, abs=0.02) and share["verdict"] == "reproduced"
    # a falling standard profile and a rising robust one: not reproduced
    frames = [profile_rows(models(rising[::-1]), order_ratio).assign(side="source", group="ce"),
              profile_rows(models(rising), order_ratio).assign(side="source", group="pgd_at")]  # fmt: skip
    rows = judged(frames)
    assert rows.loc["robust_lower_high_order_share"].iloc[0]["verdict"] == "not reproduced"
    assert rows.loc["attack_changes_high_orders"].iloc[0]["verdict"] == "not reproduced"


def test_two_seeds_are_underpowered():
    rng = np.random.default_rng(0)
    rising = np.array([1.0, 1.0, 2.0, 4.0, 5.0])
    frames = [profile_rows({s: np.abs(rising + 0.05 * rng.normal(size=(8, 5))) for s in (0, 1)},
                           [0.1, 0.2, 0.5, 0.8, 0.9]).assign(side="source", group=g) for g in ("ce", "pgd_at")]
    rows = judged(frames)
    assert set(rows[rows["role"] == "primary"]["verdict"]) == {"underpowered"}


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
    assert set(claims["claim_id"]) == {"attack_changes_high_orders", "robust_lower_high_order_share"}
    assert claims["verdict"].isin(C.VERDICTS).all()
    assert set(claims[claims["role"] == "primary"]["verdict"]) == {"underpowered"}  # two seeds
    view = pd.read_csv(out / "orders_vs_tau.csv")
    assert len(view) == 4 and view[["tau1", "probe_accuracy_k5", "high_order_share"]].notna().all().all()
    assert "adversarial perturbations mainly change high-order interactions" in (
        tiny_run / "results" / "reproduction.md").read_text()
    assert claims[claims["role"] == "primary"]["value"].notna().all()


def test_tables_without_a_scenario_have_no_view_section():
    from advtransfer.families.interactions.tables import interaction_tables

    rng = np.random.default_rng(0)
    frame = profile_rows({s: np.abs(rng.normal(size=(4, 3))) for s in (0, 1)}, [0.0, 0.5, 0.9]).assign(
        side="source", group="ce")  # fmt: skip
    summary = it.order_summary(frame, n_boot=50, level=0.9, seed=0)
    shares = it.model_shares(frame, 0.7)
    empty = pd.DataFrame(columns=["source", "seed", "high_order_share"])
    out = interaction_tables(summary, shares, empty, pd.DataFrame(), family.compared(DECLARED))
    assert "| source | ce |" in out["md"] and "scenario's sources" not in out["md"]
    assert r"\begin{tabular}" in out["tex"] and "high-order share" in out["md"]
