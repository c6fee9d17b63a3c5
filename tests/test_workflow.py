"""Workflow tests: config validation, the DAG, lint, and a tiny end-to-end run of the synthetic experiment."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from tests.workflow_helpers import REPO, copy_workflow, snakemake

# the first words of the interactions family's captions (no wildcard in them)
INTERACTION_CAPTIONS = ("Multi-order interactions (Ren et al., NeurIPS 2021) of the robustness family's models",
                        "(a, b) Normalised interaction strength vs order m/n per training scheme",
                        "The two claims of Ren et al. with verdicts from declared criteria")  # fmt: skip

pytestmark = pytest.mark.workflow

SWEEP_COLUMNS = [
    "t", "seed", "split", "tau1", "tau2", "alpha", "grad_diff", "thm2_bound", "thm2_bound_lipschitz",
    "transfer_loss_lastlayer", "transfer_loss_affine", "thm3_bound", "cross_adv_loss",
    "lambda_s", "lambda_t", "beta", "target_loss", "tau2_reverse", "tau2_unclamped", "alpha_unclamped",
    "thm1_lhs", "thm1_rhs", "thm1_gap",
]  # fmt: skip


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    table = dry_run_output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def test_dry_run_default_config_builds_expected_dag():
    from tests.test_attributes import attribute_jobs
    from tests.test_scenarios import SCENARIO_JOBS

    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules").stdout
    network = {rule: SCENARIO_JOBS.get(rule, 0) + n for rule, n in attribute_jobs(6, 2).items()}
    assert job_counts(out) == {
        "synthetic_data": 1,
        "synthetic_target": 1,
        "synthetic_sweep": 5,
        "synthetic_summary": 1,
        "synthetic_figure": 1,
        "dataset": 2,  # digits (bundled with scikit-learn) and the shapes world (rendered)
        **SCENARIO_JOBS,
        **network,  # digits' and shapes_attributes' network jobs
        "train_task": 9,  # shapes_tasks
        "task_atm": 1,
        "task_tau": 1,
        "task_affinity": 1,
        "task_trees": 1,
        "task_figure": 1,
        # digits_robustness: 3 schemes x 2 seeds, a reference, one source split and the target's
        "split": network["split"] + 2,
        "train": network["train"] + 6 + 1,
        "attack": network["attack"] + 6,
        "metrics": network["metrics"] + 6,
        "retrain": 6 * 3,
        "robust_eval": 6 + 6 * 3,
        "robustness_summary": 1,
        "robustness_figure": 1,
        # digits_interactions: 6 sources and their 6 fine-tuned models, the digits scenario's 15 sources
        "interactions": 6 + 6 + 15,
        "interactions_summary": 1,
        "interactions_figure": 1,
        # digits_selection: the digits scenario's 15 sources
        "selection_scores": 15,
        "selection_summary": 1,
        "selection_figure": 1,
        "reproduction": 1,
        "all": 1,
    }


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("bad_config", "named"),
    [
        ("synthetic: {data: {n_samples: many}}", "n_samples"),
        ("synthetic: {sweep: {seedz: [1]}}", "seedz"),
        ("colour: blue", "colour"),
        ("device: tpu", "device"),
        ("experiments: []", "experiments"),
        ("synthetic: {attack: {eps: -0.1}}", "eps"),
        ("synthetic: {sweep: {seeds: []}}", "seeds"),
    ],
)
def test_invalid_config_stops_before_any_job_naming_the_key(tmp_path, bad_config, named):
    (tmp_path / "bad.yaml").write_text(bad_config + "\n")
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "Error validating config" in message and named in message, message
    assert "Job stats" not in message


def test_tiny_run_produces_every_output(tiny_run):
    out = tiny_run / "results" / "synthetic"
    for name in ("sweep.csv", "summary.csv", "figure2.png", "figure2.pdf", "target.json", "data.json"):
        assert (out / name).stat().st_size > 0, name
    for name in ("data", "target", "sweep_seed1", "sweep_seed2", "summary", "figure"):
        assert (out / "logs" / f"{name}.log").exists(), name
        assert (out / "benchmarks" / f"{name}.tsv").exists(), name
    sweep = pd.read_csv(out / "sweep.csv")
    assert list(sweep.columns) == SWEEP_COLUMNS
    assert len(sweep) == 3 * 2 * 2 and not sweep.isna().any().any()  # t x seeds x samples D
    assert sweep.groupby("split").size().to_dict() == {"heldout": 6, "train": 6}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["split"]) == ["heldout"] * 3 + ["train"] * 3
    assert list(summary["t"]) == [0.0, 0.5, 1.0] * 2
    for col in SWEEP_COLUMNS[3:]:
        assert (summary[f"{col}_lo"] <= summary[f"{col}_mean"] + 1e-12).all()
        assert (summary[f"{col}_mean"] <= summary[f"{col}_hi"] + 1e-12).all()
    assert open(out / "figure2.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(out / "figure2.pdf", "rb").read(5) == b"%PDF-"


def test_tiny_run_writes_the_reproduction_report_with_every_claim(tiny_run):
    from advtransfer import reproduction as rp

    claims = pd.read_csv(tiny_run / "results" / "reproduction.csv", keep_default_na=False)
    synthetic = claims[claims["experiment"] == "synthetic"]
    assert list(synthetic["claim_id"]) == [c for c, _, _ in rp.SYNTHETIC_CLAIM_IDS]
    scenario = claims[claims["experiment"] == "tinydigits"]["claim_id"].tolist()
    for prefix, _, _ in rp.SCENARIO_CLAIM_IDS:  # once per metric of config reproduction.metrics, or once
        assert any(c.startswith(prefix) for c in scenario), prefix
    assert set(claims["verdict"]) <= set(rp.VERDICTS)
    # the checks that must hold on any run: the identity, the bounds, the ranges
    checks = synthetic.set_index("claim_id")["verdict"]
    assert {checks[c] for c in ("prop1", "thm1", "thm2", "thm2_lipschitz", "thm3")} == {"reproduced"}
    md = (tiny_run / "results" / "reproduction.md").read_text()
    counts = rp.verdict_counts(claims)
    assert "**Verdicts:** " + ", ".join(f"{counts[v]} {v}" for v in rp.VERDICTS) + "." in md
    table, design = md.split("## Design checks")
    assert table.count("\n| synthetic |") == len(synthetic) and table.count("\n| tinydigits |") == len(scenario)
    assert design.count("\n| tinydigits | probe_accuracy") == 3  # the 2- and 5-shot probes and the all-data probe
    attributes = claims[claims["experiment"] == "tinyattributes"]["claim_id"].tolist()
    assert any(c.startswith("attributes_transfer_") for c in attributes)
    assert any(c.startswith("defining_first_") for c in attributes)  # the shapes world's identity is known
    assert table.count("\n| tinyattributes |") == len(attributes)
    assert design.count("\n| tinyattributes | probe_accuracy") == 3
    tasks = claims[claims["experiment"] == "tinytasks"]["claim_id"].tolist()
    assert {"tasks_agree_ATM_eps_0.03", "tasks_agree_ATM_eps_0.06", "tasks_agree_tau1_tau2_(encoders)"} <= set(tasks)
    robust = claims[claims["experiment"] == "tinyrobustness"]["claim_id"].tolist()
    assert {"retraining_minor", "rrm_fraction_of_time", *(f"robustness_transfers_{r}" for r in
            ("probe", "finetune", "adv_finetune"))} == set(robust)  # fmt: skip
    assert table.count("\n| tinyrobustness |") == len(robust)
    selection = claims[claims["experiment"] == "tinyselection"]["claim_id"].tolist()
    assert selection[0] == "tau_selects" and selection[-1] == "tau_beats_estimators"
    assert table.count("\n| tinyselection |") == len(selection)


def test_tiny_run_bounds_hold_and_t0_is_perfectly_transferable(tiny_run):
    sweep = pd.read_csv(tiny_run / "results" / "synthetic" / "sweep.csv")
    assert ((sweep[["tau1", "tau2", "alpha"]] >= 0) & (sweep[["tau1", "tau2", "alpha"]] <= 1)).all().all()
    assert (sweep.thm2_bound >= sweep.grad_diff).all()
    assert (sweep.thm2_bound_lipschitz >= sweep.thm2_bound).all()
    assert (sweep.thm3_bound >= sweep.transfer_loss_affine).all()
    at_zero = sweep[sweep.t == 0]
    np.testing.assert_allclose(at_zero[["tau1", "tau2", "alpha", "tau2_reverse"]].to_numpy(), 1.0, atol=1e-9)
    assert ((sweep.tau2_reverse >= 0) & (sweep.tau2_reverse <= 1)).all()
    np.testing.assert_allclose(at_zero.grad_diff, 0.0, atol=1e-12)


def _sigmoid_mlp_jacobians(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """J(x) = W2 diag(s(1 - s)) W1 with s = sigmoid(W1 x + b1), written out by hand."""
    s = 1 / (1 + np.exp(-(x @ state["hidden.weight"].T + state["hidden.bias"])))
    return np.einsum("oh,nh,hi->noi", state["head.weight"], s * (1 - s), state["hidden.weight"])


def _recompute_from_definitions(jac_s: np.ndarray, jac_t: np.ndarray) -> tuple[float, float, float]:
    """tau1 (Def. 2), tau2 from S to T (Def. 3) and alpha, with numpy only."""
    v_s = np.linalg.svd(jac_s)[2][:, 0, :]
    v_t = np.linalg.svd(jac_t)[2][:, 0, :]
    tau1 = np.mean(np.einsum("ni,ni->n", v_s, v_t) ** 2)
    d_s = np.einsum("noi,ni->no", jac_s, v_s)  # J_S delta_S
    d_t = np.einsum("noi,ni->no", jac_t, v_s)  # J_T delta_S
    d_tt = np.einsum("noi,ni->no", jac_t, v_t)  # J_T delta_T
    n = len(d_s)
    a = (d_t.T @ d_s / n) @ np.linalg.pinv(d_s.T @ d_s / n)
    radius = np.sqrt(np.mean((d_t**2).sum(1)) / np.mean((d_s**2).sum(1)))
    norm = np.linalg.norm(a, 2)
    a = a if norm <= radius else a * radius / norm
    mapped = d_s @ a.T
    tau2 = np.mean(((2 * d_t - mapped) * mapped).sum(1)) / np.mean((d_t**2).sum(1))
    alpha = np.mean((d_t**2).sum(1)) / np.mean((d_tt**2).sum(1))
    return tau1, tau2, alpha


def test_sweep_numbers_pass_independent_recomputation(tiny_run):
    """Rebuild every source from the saved target and V's seed; recompute tau1, tau2 (both directions) and
    alpha in numpy, on the sample D of each row."""
    from safetensors.numpy import load_file

    from advtransfer.models import SigmoidMLP
    from advtransfer.runtime import generator
    from advtransfer.synthetic import draw_perturbation

    out = tiny_run / "results" / "synthetic"
    data = load_file(out / "data.safetensors")
    target = load_file(out / "target.safetensors")
    sweep = pd.read_csv(out / "sweep.csv")
    shapes = SigmoidMLP(
        target["hidden.weight"].shape[1], target["hidden.weight"].shape[0], target["head.weight"].shape[0]
    )
    for seed, rows in sweep.groupby("seed"):
        v = draw_perturbation(shapes.double(), half_range=0.5, generator=generator(int(seed)))
        for row in rows.itertuples():
            source = {k: target[k] + row.t * v[k].numpy() for k in target}
            x = data["x_train" if row.split == "train" else "x_test"]
            jac_s, jac_t = _sigmoid_mlp_jacobians(source, x), _sigmoid_mlp_jacobians(target, x)
            expected = _recompute_from_definitions(jac_s, jac_t)
            np.testing.assert_allclose([row.tau1, row.tau2, row.alpha], expected, rtol=1e-6, atol=1e-9)
            reverse = _recompute_from_definitions(jac_t, jac_s)[1]  # tau2 from T to S: roles swapped
            np.testing.assert_allclose(row.tau2_reverse, reverse, rtol=1e-6, atol=1e-9)
    assert torch.get_default_dtype() == torch.float32  # the check above never touched global state




def test_snakefmt_is_clean():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    """ruff (lint + import order, configured in pyproject.toml) over the repository: `make test` runs it too."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_report_holds_every_figure_and_table_with_captions(tiny_run):
    from tests.workflow_helpers import TINY

    snakemake(tiny_run, "--report", "report.html", *TINY)
    html = (tiny_run / "report.html").read_text()
    for caption in ("Figure 2 (Section 4.1", "Figure 3 (Section 4.2)", "All rows of the synthetic sweep",
                    "Scenario tinydigits: Spearman", "Scenario tinydigits: one row per source",
                    "Scenario tinydigits, design check", "Claims vs findings",
                    "Attributes experiment tinyattributes (Section 4.3, Table 1)",
                    "Attributes experiment tinyattributes: Spearman",
                    "Figure 4 (Section 4.4) for tasks experiment tinytasks",
                    "Tasks experiment tinytasks (Section 4.4): the adversarial transferability matrix",
                    "Robustness transfer (experiment tinyrobustness)", "Claims of Kopetzki et al.",
                    "(a) Source vs target robust accuracy",
                    "Model selection (tinyselection): one row per candidate source",
                    "Model selection (tinyselection): for each knowledge outcome",
                    "Model selection (tinyselection): each score (x) against",
                    "Model selection (tinyselection): (a) each score's weighted Kendall"):  # fmt: skip
        assert caption in html, caption
    for caption in INTERACTION_CAPTIONS:
        assert caption.replace("{{ snakemake.wildcards.interactions }}", "tinyinteractions") in html, caption
    for name in ("figure2.png", "sweep.csv", "figure3.png", "summary.csv", "correlations.csv", "design.csv",
                 "reproduction.csv", "attributes.png", "attributes.csv", "identity_check.csv", "figure4.png",
                 "atm.csv", "trees.csv", "robustness.png", "robustness.csv", "claims.csv", "interactions.png",
                 "interactions.csv", "selection_scores.png", "selection_agreement.png", "scores.csv",
                 "agreement.csv"):  # fmt: skip
        assert name in html, name


def test_a_finished_run_ends_with_the_summary(tiny_run):
    out = (tiny_run / "snakemake.out").read_text()
    summary = out[out.index("advtransfer: the run finished."):]
    for name in ("synthetic", "tinydigits", "tinyattributes", "tinytasks", "tinyrobustness", "tinyinteractions",
                 "tinyselection"):  # fmt: skip
        assert f"  {name} " in summary, name
    assert "figure3.png" in summary and "selection_agreement.png" in summary and "agreement.csv" in summary
    assert "Claims vs findings: results/reproduction.md (" in summary and "make report" in summary


@pytest.mark.workflow
def test_a_failure_inside_a_script_names_its_log(tmp_path):
    """A job whose script raises: Snakemake prints the job's log path, and the log holds the traceback."""
    work = copy_workflow(tmp_path / "work")
    (work / "bad.yaml").write_text(
        "experiments: [badsel]\n"
        "model_selection: {badsel: {scenario: digits, scenario_sources: false, zoo: [{name: bad, model: "
        "'advtransfer.models:no_such_factory', num_classes: 3}]}}\n"
    )
    proc = snakemake(work, "--cores", "1", "results/badsel/zoo/bad.safetensors", "--configfile", "bad.yaml",
                     check=False)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "results/badsel/logs/zoo_bad.log" in out
    assert "The failed job's log file" in out  # the workflow's own pointer (onerror)
    log = (work / "results/badsel/logs/zoo_bad.log").read_text()
    assert "no_such_factory" in log and "Traceback" in log
    assert not (work / "results/badsel/zoo/bad.safetensors").exists()
