"""Knowledge transfer among attributes (Section 4.3, Table 1): the analysis on hand-made cases, the network
jobs of a block, config checks, DAGs (shapes quick and full blocks, CelebA) and a tiny end-to-end run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from advtransfer.data import disjoint_pools
from advtransfer.families.attributes import jobs as A
from advtransfer.families.attributes import summary as S
from advtransfer.registry import SHAPES_LABELLINGS
from advtransfer.stats import outcome_separation
from tests.test_workflow import job_counts
from tests.workflow_helpers import REPO, snakemake

BLOCK = {
    "source_datasets": ["shapes_is_large", "shapes_is_red", "shapes_is_left"],
    "identity_defining": ["shapes_is_large", "shapes_is_red"],
    "target": {"dataset": "shapes_identity", "classes": None, "domain": "identity"},
    "split": {"source_pool_fraction": 0.5, "val_fraction": 0.2, "max_train_per_class": 50,
              "max_test_per_class": 10, "seed": 3},
    "model": "small_cnn", "objective": "ce", "image_size": 32, "channels": 3, "seeds": [0, 1],
    "reference_seed": 0, "train": {"epochs": 1, "batch_size": 16, "lr": 0.1}, "reference_train": None,
    "attack": {"eps": 0.03, "steps": 2, "step_size": 0.01, "n_images": 20},
    "metrics": {"n_images": 20}, "probe": {"shots": [2, 5], "draws": 2, "seed": 0},
    "outcome": "probe_accuracy_k5", "rank_by": "tau1_tau2", "top": 5,
}  # fmt: skip


# ------------------------------------------------------------------------------------------ analysis
def test_auc_above_on_hand_computed_cases():
    assert S.auc_above([3, 4], [1, 2]) == 1.0
    assert S.auc_above([1, 2], [3, 4]) == 0.0
    assert S.auc_above([1], [1]) == 0.5  # a tie counts one half
    assert S.auc_above([1, 3], [2]) == 0.5
    # pairs (2,1) (2,2) twice, (5,1) (5,2)
    assert S.auc_above([2, 2, 5], [1, 2]) == pytest.approx((1 + 0.5 + 1 + 0.5 + 1 + 1) / 6)
    assert math.isnan(S.auc_above([], [1.0]))


def _frame(values: dict[str, list[float]], defining: set[str], column: str = "m") -> pd.DataFrame:
    return pd.DataFrame(
        [dict(source=s, seed=i, defines_identity=s in defining, **{column: v}) for s, vs in values.items()
         for i, v in enumerate(vs)]
    )  # fmt: skip


def test_defining_rank_check_orders_and_orients_each_metric():
    values = {"a": [0.9, 0.8], "b": [0.7, 0.75], "c": [0.2, 0.3], "d": [0.5, 0.1]}  # a, b define identity
    frame = _frame(values, {"a", "b"})
    frame["reference_adv_accuracy"] = -frame["m"]  # lower accuracy = more transferable: same ordering
    frame["noise"] = [0.1, 0.9, 0.8, 0.2, 0.5, 0.5, 0.3, 0.6]  # a nuisance attribute ranks first
    check = S.defining_rank_check(frame, ["m", "reference_adv_accuracy", "noise"]).set_index("metric")
    for metric in ("m", "reference_adv_accuracy"):
        row = check.loc[metric]
        assert row.auc == 1.0 and row.top_hits == 2 and row.n_defining == 2 and row.n_attributes == 4
        assert row.defining_mean_rank == 1.5 and row.nuisance_mean_rank == 3.5
        # per seed: seed 0 (0.9, 0.7 vs 0.2, 0.5) and seed 1 (0.8, 0.75 vs 0.3, 0.1) both separate fully
        assert row.auc_seed_min == row.auc_seed_max == 1.0
    noise = check.loc["noise"]  # means a 0.5, b 0.5, c 0.5, d 0.45: ties count one half
    assert noise.auc == pytest.approx(S.auc_above([0.5, 0.5], [0.5, 0.45]))
    assert 0 <= noise.auc_seed_min <= noise.auc_seed_max <= 1


def test_top_attributes_ranks_by_the_metric_and_reports_the_outcome_rank():
    frame = _frame({"a": [0.9, 0.7], "b": [0.5, 0.5], "c": [0.1, 0.3]}, {"a"}, "tau1_tau2")
    frame["probe_accuracy"] = [0.6, 0.6, 0.9, 0.8, 0.2, 0.2]
    top = S.top_attributes(frame, "tau1_tau2", "probe_accuracy", k=2)
    assert list(top["source"]) == ["a", "b"] and list(top["metric_rank"]) == [1, 2]
    assert list(top["outcome_rank"]) == [2, 1]  # b has the best probe accuracy of all three
    assert top.loc[0, "tau1_tau2_mean"] == pytest.approx(0.8) and top.loc[0, "tau1_tau2_std"] == pytest.approx(
        np.std([0.9, 0.7], ddof=1)
    )


def test_outcome_separation_reports_the_anova_beside_the_seed_sd_range():
    rng = np.random.default_rng(0)
    groups = {s: rng.normal(mu, 0.05, 3) for s, mu in zip("abcd", [0.5, 0.6, 0.7, 0.9])}
    frame = pd.DataFrame([dict(source=s, seed=i, y=v) for s, vs in groups.items() for i, v in enumerate(vs)])
    row = outcome_separation(frame, ["y"]).iloc[0]
    anova = sps.f_oneway(*groups.values())
    assert row.anova_p == pytest.approx(anova.pvalue, rel=1e-12)
    assert row.n_units == 4 and row.n_seeds == 3
    seed_sd = np.sqrt(np.mean([np.var(v, ddof=1) for v in groups.values()]))
    means = {s: v.mean() for s, v in groups.items()}
    assert row.seed_sd == pytest.approx(seed_sd)
    assert row.separation == pytest.approx((max(means.values()) - min(means.values())) / seed_sd)
    single = outcome_separation(frame[frame["seed"] == 0], ["y"]).iloc[0]  # one seed: no noise estimate
    assert math.isnan(single.separation) and math.isnan(single.anova_p)


# ---------------------------------------------------------------------------------- jobs and checks
def test_network_jobs_one_binary_source_per_attribute_and_an_identity_reference():
    jobs = A.network_jobs("x", BLOCK, {})
    assert set(jobs["splits"]) == {"source_is_large", "source_is_red", "source_is_left", "target"}
    assert jobs["datasets"] == sorted([*BLOCK["source_datasets"], "shapes_identity"])
    for name in ("is_large", "is_red", "is_left"):
        split = jobs["splits"][f"source_{name}"]
        assert split["classes"] == ["no", "yes"] and split["dataset"] == f"shapes_{name}"
        assert split["pool"] == {"with": "shapes_identity", "side": "source", "fraction": 0.5, "seed": 3,
                                 "stratify": False}  # fmt: skip
    target = jobs["splits"]["target"]
    assert target["classes"] == list(SHAPES_LABELLINGS["identity"]) and len(target["classes"]) == 30
    assert target["pool"]["side"] == "target" and target["pool"]["stratify"] is False
    assert target["min_labelled_per_class"] == 5
    assert len(jobs["models"]) == 3 * 2 + 1 and jobs["models"]["reference"]["classes"] == target["classes"]
    evaluation = jobs["evaluations"]["is_red_seed1"]
    assert evaluation["labels"] == {"source": "is_red", "seed": 1} and evaluation["source"] == "source_is_red_seed1"
    assert evaluation["finetune"] is None  # the family measures knowledge transfer by identity probes
    special = A.network_jobs("x", {**BLOCK, "reference_train": {"epochs": 9, "batch_size": 8, "lr": 1.0}}, {})
    assert special["models"]["reference"]["train"]["epochs"] == 9
    assert special["models"]["source_is_red_seed0"]["train"] == BLOCK["train"]


def test_attribute_and_identity_pools_hold_disjoint_images():
    """The attribute models never see an image the identity reference or probes use (pools drawn from n alone)."""
    from advtransfer.shapes import labels, split_batch

    factors = split_batch("train").factors
    source, _ = disjoint_pools(labels(factors, "is_red"), 0.5, 3, False)
    _, target = disjoint_pools(labels(factors, "identity"), 0.5, 3, False)
    assert len(source) and len(target) and not set(source.tolist()) & set(target.tolist())
    assert len(source) + len(target) == len(factors["shape"])


def test_config_problems_name_the_key():
    assert A.config_problems(BLOCK, {}) == []
    problems = dict(A.config_problems({**BLOCK, "identity_defining": ["shapes_is_blue"], "outcome": "probe_accuracy_k9",
                                       "split": {**BLOCK["split"], "source_pool_fraction": None}}, {}))  # fmt: skip
    assert "shapes_is_blue" in problems["identity_defining"]
    assert "probe_accuracy_k9" in problems["outcome"]
    assert "fraction" in problems["split.source_pool_fraction"]
    assert A.knowledge_outcomes(BLOCK) == ["probe_accuracy_k2", "probe_accuracy_k5", "probe_accuracy"]
    assert A.attribute_name("shapes_is_red") == "is_red" and S.direction("reference_adv_accuracy") == -1


# ------------------------------------------------------------------------------------------ workflow
def attribute_jobs(n_sources: int, n_seeds: int) -> dict[str, int]:
    """Jobs of one attributes experiment, besides its `dataset` job."""
    n = n_sources * n_seeds
    return {"split": n_sources + 1, "train": n + 1, "attack": n, "metrics": n, "probe": n,
            "attributes_summary": 1, "attributes_figure": 1, "claims": 1}  # fmt: skip


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("experiment", "n_sources", "n_seeds"),
    [("shapes_attributes", 8, 2), ("shapes_attributes_full", 14, 3), ("celeba", 40, 1)],
)  # fmt: skip
def test_dry_run_builds_the_attribute_dags(experiment, n_sources, n_seeds):
    """The quick and full shapes blocks, and the paper's CelebA block (its files need not be present to plan)."""
    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules", "--config", f"experiments=[{experiment}]").stdout
    assert job_counts(out) == {
        "dataset": 1,  # one job for every labelling of the same images
        **attribute_jobs(n_sources, n_seeds),
        "reproduction": 1,
        "all": 1,
    }


@pytest.mark.workflow
def test_bad_attributes_block_stops_before_any_job_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("attributes:\n  shapes_attributes:\n    identity_defining: [shapes_is_blue, shapes_noisy]\n")
    proc = snakemake(REPO, "-n", "--configfile", str(bad), check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "attributes.shapes_attributes.identity_defining" in message, message
    assert "shapes_noisy" in message and "Job stats" not in message


@pytest.fixture(scope="module")
def tiny_attributes(tiny_run):
    return tiny_run / "results" / "tinyattributes"


@pytest.mark.workflow
def test_tiny_attributes_run_produces_every_output(tiny_attributes):
    for name in ("attributes.csv", "design.csv", "correlations.csv", "identity_check.csv", "table.md", "table.tex",
                 "attributes.png", "attributes.pdf"):  # fmt: skip
        assert (tiny_attributes / name).stat().st_size > 0, name
    summary = pd.read_csv(tiny_attributes / "attributes.csv")
    assert len(summary) == 3 * 2 and set(summary["seed"]) == {0, 1}
    assert dict(summary.groupby("source")["defines_identity"].first()) == {
        "is_large": True, "is_red": True, "is_left": False}  # fmt: skip
    for column in ("tau1", "tau2", "alpha", "tau1_logits", "cross_adv_loss", "reference_adv_accuracy",
                   "probe_accuracy", "probe_accuracy_k2", "probe_accuracy_k5", "source_val_accuracy"):  # fmt: skip
        assert summary[column].notna().all(), column
    assert summary[["tau1", "tau2", "alpha"]].stack().between(0, 1).all()
    check = pd.read_csv(tiny_attributes / "identity_check.csv")
    assert "tau1_tau2" in set(check["metric"]) and "probe_accuracy_k5" in set(check["metric"])
    assert check["auc"].between(0, 1).all() and (check["n_defining"] == 2).all()
    correlations = pd.read_csv(tiny_attributes / "correlations.csv")
    assert set(correlations["outcome"]) == {"probe_accuracy_k2", "probe_accuracy_k5", "probe_accuracy"}
    table = (tiny_attributes / "table.md").read_text()
    assert "Table 1 analog" in table and "defines identity" in table and "Design check" in table
    assert not (tiny_attributes / "finetunes").exists()  # the family probes; it never fine-tunes
    probe = torch.tensor(summary["probe_accuracy"].to_numpy())
    assert bool(((probe >= 0) & (probe <= 1)).all())


# ------------------------------------------------------------------------------------- claims
def _attribute_summary(effect: float, attributes: str = "abcdef") -> pd.DataFrame:
    """Attributes x three seeds; knowledge rises with tau1_tau2 by ``effect`` per step; a, b, c define identity."""
    rng = np.random.default_rng(1)
    rows = []
    for i, source in enumerate(attributes):
        for seed in range(3):
            tau = 0.9 - 0.1 * i + rng.normal(0, 0.01)
            rows.append(dict(source=source, seed=seed, defines_identity=source in "abc", tau1_tau2=tau,
                             tau1_tau2_logits=tau, cross_adv_loss=tau, reference_val_accuracy=0.8,
                             reference_n_classes=30, probe_accuracy=0.5 + effect * (5 - i) + rng.normal(0, 0.01),
                             probe_accuracy_k10=0.3 + effect * (5 - i) + rng.normal(0, 0.01)))  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("effect", [0.05, 0.0])
def test_attribute_claims_need_the_design_check_and_test_the_truth(effect):
    from advtransfer import claims as C
    from advtransfer import config as configuration
    from advtransfer.families.attributes import claims as family

    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
    block = {**config["attributes"]["shapes_attributes"], "identity_defining": ["a", "b", "c"]}
    declared = C.declarations(config["claims"]["attributes"], None)
    protocol = {**config["reproduction"], "n_perm": 999}
    out = family.claims("x", block, {"summary": _attribute_summary(effect)}, declared, protocol)
    claims = out["claims"][out["claims"]["role"] == "primary"].set_index("claim_id")
    assert set(claims.index) == {"attributes_transfer", "defining_first"}
    # with no effect the attributes differ only by seed noise: the design check fails, the claim is inconclusive
    assert claims.loc["attributes_transfer", "verdict"] == ("reproduced" if effect else "inconclusive")
    # a, b, c have the largest tau on every seed: AUC 1, and 1 of C(6, 3) = 20 labellings: the smallest p is
    # 1/20 > 0.025, so six attributes (three defining) cannot reach the level
    assert claims.loc["defining_first", "value"] == 1.0
    assert claims.loc["defining_first", "min_p"] == pytest.approx(1 / 20)
    assert claims.loc["defining_first", "verdict"] == "underpowered"
    assert "chance 0.033" in claims.loc["attributes_transfer", "note"]
    eight = family.claims("x", block, {"summary": _attribute_summary(effect, "abcdefgh")}, declared, protocol)
    assert eight["claims"].set_index("claim_id").loc["defining_first"].iloc[0]["verdict"] == "reproduced"
