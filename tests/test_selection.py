"""Model selection (advtransfer.selection, advtransfer.selection_jobs): agreement statistics on hand-computed
rankings, the vectorised bootstrap against one draw at a time, costs, claims, config checks, tables, figures, and
the tiny end-to-end run (a zoo of two module:function models and the tiny digits scenario's sources)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from advtransfer import selection
from advtransfer.claims import VERDICTS
from advtransfer.families.model_selection import jobs as selection_jobs
from advtransfer.stats import _resampled
from tests.workflow_helpers import REPO

# ------------------------------------------------------------------------------------------ agreement


def test_agreement_values_on_known_rankings():
    outcome = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    same = selection.agreement_values(outcome * 10, outcome)
    assert same["weighted_kendall"] == pytest.approx(1.0) and same["kendall"] == pytest.approx(1.0)
    assert same["pearson"] == pytest.approx(1.0) and same["top1"] == 1.0 and same["regret"] == 0.0
    reverse = selection.agreement_values(-outcome, outcome)
    assert reverse["weighted_kendall"] == pytest.approx(-1.0) and reverse["kendall"] == pytest.approx(-1.0)
    assert reverse["top1"] == 0.0 and reverse["regret"] == pytest.approx(0.4)  # it picks the worst
    # the weighted Kendall is scipy's, default (hyperbolic) weigher
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=9), rng.normal(size=9)
    assert selection.agreement_values(x, y)["weighted_kendall"] == pytest.approx(stats.weightedtau(x, y).statistic)


def test_top1_and_regret_by_hand_with_ties():
    score = [3, 3, 1, 2]
    outcome = [0.5, 0.9, 0.7, 0.9]  # the two best-scored: outcomes 0.5 and 0.9; the best outcome is 0.9
    assert selection.top1_hit(score, outcome) == 0.5
    assert selection.regret(score, outcome) == pytest.approx(0.9 - 0.7)
    assert math.isnan(selection.agreement_values([1, 1, 1], [1, 2, 3])["kendall"])  # a constant score


def test_weighted_kendall_weighs_the_top_of_the_ranking():
    """Swapping the two best candidates costs more than swapping the two worst (what Kendall cannot tell)."""
    outcome = np.arange(8.0)
    top_swapped, bottom_swapped = outcome.copy(), outcome.copy()
    top_swapped[[7, 6]] = top_swapped[[6, 7]]
    bottom_swapped[[0, 1]] = bottom_swapped[[1, 0]]
    top, bottom = (selection.agreement_values(s, outcome) for s in (top_swapped, bottom_swapped))
    assert top["kendall"] == pytest.approx(bottom["kendall"])
    assert top["weighted_kendall"] < bottom["weighted_kendall"] < 1


def candidates(rng, n_seeds=3, sources=5, noise=0.3, sign=1.0):
    """Candidates whose outcome rises with the source's quality; ``good`` tracks it (times ``sign``), ``noise``
    does not; seeds are the clusters."""
    rows = []
    for seed in range(n_seeds):
        for s in range(sources):
            quality = s + noise * rng.normal()
            rows.append(dict(candidate=f"s{s}_seed{seed}", source=f"s{s}", seed=seed, cluster=f"seed{seed}",
                             kind="scenario", outside_fraction=1 - s / (sources - 1), outcome=quality,
                             good=sign * (quality + 0.1 * rng.normal()), noise=rng.normal()))  # fmt: skip
    return pd.DataFrame(rows)


def test_vectorised_bootstrap_equals_one_draw_at_a_time():
    rng = np.random.default_rng(1)
    frame = candidates(rng)
    frame.loc[3, "good"] = frame.loc[4, "good"]  # a tie in the score
    x, y = frame["good"].to_numpy(), frame["outcome"].to_numpy()
    members = [np.flatnonzero(frame["cluster"].to_numpy() == c) for c in sorted(frame["cluster"].unique())]
    draws = rng.integers(0, 3, size=(60, 3))
    idx = _resampled(members, draws)
    assert isinstance(idx, np.ndarray)  # balanced clusters: the vectorised path
    fast = selection._bootstrap(x, y, idx)
    slow = selection._bootstrap(x, y, list(idx))
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_agreement_table_intervals_and_order():
    rng = np.random.default_rng(2)
    frame = candidates(rng, n_seeds=4)
    frame["tau1_tau2"], frame["logme"] = frame["good"], frame["noise"]
    table = selection.agreement(frame, ["tau1_tau2", "logme"], "outcome", n_boot=300, seed=0).set_index("score")
    assert list(table.columns) == [c for c in selection.AGREEMENT_COLUMNS if c != "score"]
    good, noise = table.loc["tau1_tau2"], table.loc["logme"]
    assert good.family == "adversarial" and noise.family == "estimator"
    assert good.n == 20 and good.n_clusters == 4
    for row in (good, noise):
        for s in selection.AGREEMENT_STATISTICS:
            assert row[f"{s}_lo"] <= row[f"{s}_hi"]
    assert good.weighted_kendall_lo > 0.5 and good.top1_rate > 0.5
    assert noise.weighted_kendall_lo < 0 < noise.weighted_kendall_hi
    again = selection.agreement(frame, ["tau1_tau2", "logme"], "outcome", n_boot=300, seed=0).set_index("score")
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_agreement_drops_missing_rows_and_a_single_cluster_has_no_interval():
    rng = np.random.default_rng(3)
    frame = candidates(rng, n_seeds=2)
    frame["tau1"] = frame["good"]
    frame.loc[frame["seed"] == 1, "tau1"] = np.nan
    row = selection.agreement(frame, ["tau1"], "outcome", n_boot=100).iloc[0]
    assert row.n == 5 and row.n_clusters == 1
    assert math.isfinite(row.weighted_kendall) and math.isnan(row.weighted_kendall_lo) and math.isnan(row.top1_rate)
    with pytest.raises(KeyError, match="missing_score"):
        selection.agreement(frame, ["missing_score"], "outcome")


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_tau_rows_equal_scipy(ties):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 15))
    y = rng.normal(size=15)
    if ties:
        x, y = np.round(x), np.round(y)
    expected = [stats.weightedtau(row, y).statistic for row in x]
    np.testing.assert_allclose(selection.weighted_tau_rows(x, y), expected, atol=1e-12)


# ---------------------------------------------------------------------------------------------- costs


def test_score_costs_by_hand():
    frame = pd.DataFrame({
        "features_wall_seconds": [1.0, 2.0], "features_cpu_seconds": [0.5, 1.5],
        **{f"{e}_{u}_seconds": [0.1, 0.2] for e in selection.ESTIMATORS for u in ("wall", "cpu")},
        "attack_wall_seconds": [3.0, 4.0], "attack_cpu_seconds": [3.0, 4.0],
        "metrics_wall_seconds": [10.0, 20.0], "metrics_cpu_seconds": [9.0, 19.0],
    })  # fmt: skip
    costs = selection.score_costs(frame, [{"wall_seconds": 100.0, "cpu_seconds": 90.0}]).set_index("score")
    assert set(costs.index) == set(selection.SCORES)
    assert (
        costs.loc["logme", "wall_seconds"] == pytest.approx(3.3)
        and costs.loc["logme", "cpu_seconds"] == pytest.approx(2.3)
    )
    assert costs.loc["tau1_tau2", "wall_seconds"] == pytest.approx(3 + 4 + 10 + 20 + 100)
    assert costs.loc["alpha_logits", "cpu_seconds"] == pytest.approx(3 + 4 + 9 + 19 + 90)
    assert costs.loc["cross_adv_loss", "wall_seconds"] == pytest.approx(3 + 4 + 100)
    assert costs.loc["parameter_count", "cpu_seconds"] == 0.0 and (costs["n"] == 2).all()
    # paired references (one per seed): tau trains each of them once
    paired = selection.score_costs(frame, [{"wall_seconds": 100.0, "cpu_seconds": 90.0},
                                           {"wall_seconds": 50.0, "cpu_seconds": 40.0}]).set_index("score")  # fmt: skip
    assert paired.loc["tau1_tau2", "wall_seconds"] == pytest.approx(3 + 4 + 10 + 20 + 100 + 50)
    assert paired.loc["logme", "wall_seconds"] == pytest.approx(3.3)


def test_estimator_scores_time_every_estimator():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 20)
    F = rng.normal(size=(60, 6)) + 3 * np.eye(3, 6)[y]
    theta = np.exp(F[:, :4]) / np.exp(F[:, :4]).sum(1, keepdims=True)
    settings = yaml.safe_load((REPO / "config.yaml").read_text())["model_selection"]["digits_selection"]["estimators"]
    rows = selection.estimator_scores(F, theta, y, settings)
    assert [r["score"] for r in rows] == list(selection.ESTIMATORS)
    assert all(math.isfinite(r["value"]) and r["wall_seconds"] >= 0 and r["cpu_seconds"] >= 0 for r in rows)


# --------------------------------------------------------------------------------------------- claims


@pytest.mark.parametrize("sign, verdict", [(1.0, "reproduced"), (-1.0, "not reproduced")])
def test_selection_claims_reach_both_verdicts(sign, verdict):
    from advtransfer import claims as C
    from advtransfer import config as configuration
    from advtransfer.families.model_selection import claims as family

    rng = np.random.default_rng(6)
    frame = candidates(rng, n_seeds=6, noise=0.1, sign=sign)
    for score in ("tau1_tau2", "cross_adv_loss", "tau1_tau2_logits", *selection.ESTIMATORS):
        frame[score] = frame["good"]
    frame["logme"] = frame["outcome"] + 10  # the declared estimator: perfect
    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
    declared = C.declarations(config["claims"]["model_selection"], None)
    protocol = {**config["reproduction"], "n_perm": 999}
    block = {"scenario": "s", "scenario_sources": True, "zoo": [], "outcome": "outcome"}

    def judged(f, p=protocol):
        out = family.claims("x", block, {"scores": f}, declared, p)
        return out["claims"][out["claims"]["role"] == "primary"].set_index("claim_id")

    claims = judged(frame)
    assert list(claims.index) == ["tau_selects", "estimator_selects", "tau_beats_estimator"]
    assert claims["design"].str.contains("design check").all()
    assert claims.loc["tau_selects", "verdict"] == verdict
    assert claims.loc["estimator_selects", "verdict"] == "reproduced"
    # tau against the declared LogME (perfect): a near tie when tau tracks the outcome, a clear loss when reversed
    assert claims.loc["tau_beats_estimator", "verdict"] == ("inconclusive" if sign > 0 else "not reproduced")
    assert "logme" in claims.loc["tau_beats_estimator", "measurement"]
    # the same rankings, but the outcome no longer separates the sources beyond the seed noise: no verdict
    assert set(judged(frame, {**protocol, "min_separation": 1e6})["verdict"]) == {"inconclusive"}
    # a zoo alone has no seeds to check the design against (and no seeds for the paired comparison)
    zoo = frame.assign(kind="zoo", cluster=frame["candidate"], source=frame["candidate"])
    alone = judged(zoo)
    assert alone["design"].str.contains("no design check").all() and alone.loc["tau_selects", "verdict"] == verdict
    assert "tau_beats_estimator" not in alone.index


# ------------------------------------------------------------------------------------- config and jobs

SCENARIOS = {"digits": {"probe": {"shots": [2, 5]}}}


def block(**changes):
    base = {"scenario": "digits", "scenario_sources": True, "zoo": [], "zoo_finetune": False,
            "outcome": "probe_accuracy_k5"}  # fmt: skip
    return {**base, **changes}


ZOO = [{"name": "a", "model": "pkg.mod:f", "num_classes": 3, "weights": None, "features": None, "seed": 0},
       {"name": "b", "model": "torchvision:resnet18", "num_classes": 10, "weights": "w.pth", "features": None,
        "seed": 1}]  # fmt: skip


@pytest.mark.parametrize(
    "changes, key, text",
    [
        ({"scenario": "nope"}, "scenario", "not a scenario"),
        ({"scenario_sources": False}, "zoo", "no candidates"),
        ({"zoo": [ZOO[0], ZOO[0]]}, "zoo", "given twice"),
        ({"outcome": "accuracy"}, "outcome", "not a knowledge outcome"),
        ({"outcome": "finetune_accuracy", "zoo": ZOO[:1]}, "outcome", "zoo_finetune"),
    ],
)
def test_config_problems_name_the_key(changes, key, text):
    problems = selection_jobs.config_problems(block(**changes), {"scenarios": SCENARIOS})
    assert problems and problems[0][0] == key and text in problems[0][1]


def test_good_block_has_no_problems_and_names_its_candidates():
    good = block(zoo=ZOO, zoo_finetune=True, outcome="finetune_accuracy")
    assert selection_jobs.config_problems(good, {"scenarios": SCENARIOS}) == []
    evaluations = {"outside0_seed0": {}, "outside100_seed0": {}}
    assert selection_jobs.candidate_names(good, evaluations) == ["outside0_seed0", "outside100_seed0", "zoo_a", "zoo_b"]
    assert selection_jobs.candidate_names({**good, "scenario_sources": False}, evaluations) == ["zoo_a", "zoo_b"]


def test_zoo_evaluations_reuse_the_scenarios_target_and_reference():
    from advtransfer.families.scenarios import jobs as scenario_jobs

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["scenarios"]["digits"]
    jobs = scenario_jobs.network_jobs("digits", {**cfg, "objective": "ce"}, {})  # the schema default
    out = selection_jobs.network_jobs("sel", block(zoo=ZOO), {"digits": jobs})
    assert out["splits"] == {} and out["models"] == {} and out["datasets"] == ["digits"]
    e = out["evaluations"]["zoo_b"]
    template = next(iter(jobs["evaluations"].values()))
    for key in ("target", "image_size", "channels", "attack", "metrics", "probe"):
        assert e[key] == template[key]
    assert e["files"] == {"source": "results/sel/zoo/b", "reference": "results/digits/models/reference",
                          "split": "results/digits/splits/target"}  # fmt: skip
    assert e["seed"] == 1 and e["finetune"] is None
    tuned = selection_jobs.network_jobs("sel", block(zoo=ZOO, zoo_finetune=True), {"digits": jobs})
    assert tuned["evaluations"]["zoo_a"]["finetune"] == template["finetune"]


# -------------------------------------------------------------------------------------- tables, figures


def test_tables_and_figures_render(tmp_path):
    from advtransfer import plots
    from advtransfer.families.model_selection.figures import selection_agreement_figure, selection_scores_figure
    from advtransfer.families.model_selection.tables import selection_tables

    rng = np.random.default_rng(7)
    frame = candidates(rng).rename(columns={"outcome": "probe_accuracy_k5"}).assign(kind="scenario")
    for score in selection.SCORES:
        frame[score] = frame["good"] + rng.normal(size=len(frame))
    frame["feature_dim"] = 128.0  # a constant score: no correlation, still a row
    zoo = pd.DataFrame([{**frame.iloc[0].to_dict(), "candidate": "zoo_a", "kind": "zoo", "cluster": "zoo:a"}])
    frame = pd.concat([frame, zoo], ignore_index=True)
    agreement = selection.agreement(frame, list(selection.SCORES), "probe_accuracy_k5", n_boot=50)
    agreement = agreement.merge(pd.DataFrame({"score": selection.SCORES, "cpu_seconds": 1.0, "wall_seconds": 1.0}))
    agreement["rank"] = agreement["weighted_kendall"].rank(ascending=False, method="min")
    out = selection_tables(agreement, outcome="probe_accuracy_k5")
    assert "| – | feature_dim | baseline | n/a (constant)" in out["md"] and r"\begin{tabular}" in out["tex"]
    for fig, name in ((selection_scores_figure(frame, agreement, outcome="probe_accuracy_k5", title="t"), "s"),
                      (selection_agreement_figure(agreement, outcome="probe_accuracy_k5", title="t"), "a")):
        plots.save_figure(fig, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------- tiny run


@pytest.mark.workflow
def test_tiny_selection_run_scores_a_zoo_and_a_scenarios_sources(tiny_run):
    out = tiny_run / "results" / "tinyselection"
    for name in ("scores.csv", "agreement.csv", "claims.csv", "table.md", "table.tex", "selection_scores.png",
                 "selection_scores.pdf", "selection_agreement.png", "selection_agreement.pdf"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    scores = pd.read_csv(out / "scores.csv").set_index("candidate")
    assert sorted(scores.index) == sorted(["outside0_seed0", "outside0_seed1", "outside100_seed0", "outside100_seed1",
                                           "zoo_mlp", "zoo_cnn"])  # fmt: skip
    assert scores.loc[["zoo_mlp", "zoo_cnn"], "kind"].eq("zoo").all()
    assert scores.loc["zoo_mlp", "feature_dim"] == 24 and scores.loc["zoo_cnn", "feature_dim"] == 128
    # every estimator and tau metric for every candidate; the zoo was fine-tuned (zoo_finetune: true)
    columns = [*selection.ESTIMATORS, *selection.ADVERSARIAL_SCORES, "probe_accuracy_k5", "finetune_accuracy"]
    assert scores[columns].notna().all().all()
    assert scores.loc["zoo_mlp", "source_val_accuracy"] != scores.loc["zoo_mlp", "source_val_accuracy"]  # NaN
    assert (scores[["attack_cpu_seconds", "metrics_cpu_seconds", "features_cpu_seconds"]] > 0).all().all()
    agreement = pd.read_csv(out / "agreement.csv")
    outcomes = ["probe_accuracy_k2", "probe_accuracy_k5", "probe_accuracy", "finetune_accuracy"]
    assert set(agreement["outcome"]) == set(outcomes)
    assert len(agreement) == len(outcomes) * len(selection.SCORES)
    assert (agreement["cpu_seconds"] >= 0).all()
    own_accuracy = agreement["score"] == "source_val_accuracy"  # unknown for a zoo model: the sources only
    assert agreement.loc[~own_accuracy, "n"].eq(6).all() and agreement.loc[own_accuracy, "n"].eq(4).all()
    # tau's cost: every candidate's attack and metrics job and the reference's training; an estimator's: the
    # forward pass and its own computation (their sizes are timings, not compared here)
    reference = json.loads((tiny_run / "results" / "tinydigits" / "models" / "reference.json").read_text())
    first = agreement[agreement["outcome"] == outcomes[0]].set_index("score")
    assert first.loc["tau1_tau2", "cpu_seconds"] == pytest.approx(
        scores["attack_cpu_seconds"].sum() + scores["metrics_cpu_seconds"].sum() + reference["cpu_seconds"])
    assert first.loc["logme", "cpu_seconds"] == pytest.approx(
        scores["features_cpu_seconds"].sum() + scores["logme_cpu_seconds"].sum())
    claims = pd.read_csv(out / "claims.csv")
    assert claims["verdict"].isin(VERDICTS).all() and "tau_selects" in set(claims["claim_id"])
    assert "tau1 tau2 ranks candidate sources by their transfer" in (
        tiny_run / "results" / "reproduction.md"
    ).read_text()


# ------------------------------------------------------------------------------- the zoo through the workflow


def zoo_config(tmp_path, weights):
    from tests.workflow_helpers import copy_workflow

    work = copy_workflow(tmp_path / "work")
    entry = {"name": "r18", "model": "torchvision:resnet18", "num_classes": 6, "weights": weights}
    config = {"experiments": ["zoosel"], "model_selection": {"zoosel": {
        "scenario": "digits", "scenario_sources": False, "zoo": [entry], "outcome": "probe_accuracy"}}}  # fmt: skip
    (work / "zoo.yaml").write_text(yaml.safe_dump(config))
    return work


@pytest.mark.workflow
def test_a_torchvision_zoo_model_with_local_weights_is_built_and_evaluated(tmp_path):
    import torch
    import torchvision

    from advtransfer.models import load_classifier
    from tests.test_workflow import job_counts
    from tests.workflow_helpers import snakemake

    work = zoo_config(tmp_path, "weights/r18.pth")
    (work / "weights").mkdir()
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=6).eval()
    torch.save(reference.state_dict(), work / "weights" / "r18.pth")
    dry = snakemake(work, "-n", "--quiet", "rules", "--configfile", "zoo.yaml").stdout
    counts = job_counts(dry)
    # the zoo model, its tau, probe and scores; the scenario's split and reference; none of its sources
    for rule, n in {"selection_zoo": 1, "attack": 1, "metrics": 1, "probe": 1, "selection_scores": 1, "train": 1,
                    "split": 1, "finetune": 0}.items():  # fmt: skip
        assert counts.get(rule, 0) == n, (rule, counts)
    snakemake(work, "--cores", "1", "results/zoosel/zoo/r18.safetensors", "--configfile", "zoo.yaml")
    model = load_classifier(work / "results/zoosel/zoo/r18.safetensors")
    x = torch.rand(2, 1, 8, 8)  # the digits scenario: 1 channel, 8 x 8; torchvision nets see it as 3 channels
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x.expand(-1, 3, -1, -1)), atol=1e-5)
    info = yaml.safe_load((work / "results/zoosel/zoo/r18.json").read_text())
    assert info["parameter_count"] == sum(p.numel() for p in reference.parameters()) and info["weights_sha256"]


@pytest.mark.workflow
def test_a_missing_zoo_weights_file_fails_before_any_job_naming_it(tmp_path):
    from tests.workflow_helpers import snakemake

    work = zoo_config(tmp_path, "weights/missing.pth")
    out = snakemake(work, "-n", "--configfile", "zoo.yaml", check=False)
    assert out.returncode != 0 and "weights/missing.pth" in out.stdout + out.stderr
