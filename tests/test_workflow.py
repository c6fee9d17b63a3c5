"""Workflow tests: config validation, the DAG, lint, and a tiny end-to-end run of the synthetic experiment."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.workflow_helpers import REPO, TINY, copy_workflow, snakemake

# the first words of the interactions family's captions (no wildcard in them)
INTERACTION_CAPTIONS = ("Multi-order interactions (Ren et al., NeurIPS 2021) of the robustness family's models",
                        "(a, b) Normalised interaction strength (E|I^(m)| over its mean across orders) vs order "
                        "ratio r")  # fmt: skip

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
    network = {rule: SCENARIO_JOBS.get(rule, 0) + n for rule, n in attribute_jobs(8, 2).items()}
    # digits_crossed (the added-value quick block): 3 overlap levels x 4 sources x 2 seeds, each source its own
    # split (domain, label noise and training-set size change it) and each seed its own reference
    crossed = 12 * 2
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
        # digits_robustness: 5 schemes x 2 seeds, a reference, one source split and the target's
        "split": network["split"] + 2 + 12 + 1,
        "train": network["train"] + 10 + 1 + crossed + 2,
        "attack": network["attack"] + 10 + crossed,
        "metrics": network["metrics"] + 10 + crossed,
        "probe": network["probe"] + crossed,
        "finetune": SCENARIO_JOBS["finetune"] + crossed,
        "retrain": 10 * 3,
        "robust_eval": 10 + 10 * 3,
        "robustness_summary": 1,
        "robustness_figure": 1,
        # digits_interactions: 2 schemes x 2 seeds and their 4 fine-tuned models, the digits scenario's 15 sources
        "interactions": 4 + 4 + 15,
        "interactions_summary": 1,
        "interactions_figure": 1,
        # digits_selection: the digits scenario's 15 sources; digits_crossed_selection: the crossed block's 24
        "scenario_summary": 2,
        "selection_scores": 15 + crossed,
        "selection_summary": 2,
        "selection_figure": 1,
        "added_value_summary": 1,  # digits_added_value
        "added_value_figure": 1,
        "claims": 8,  # one per experiment (in place of `network`'s one, the attributes')
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
        ("synthetic: {attack: {step_size: 0.01, step_factor: 0.25}}", "PGD step given at most once"),
        ("scenarios: {digits: {attack: {step_factor: 0.25}}}", "scenarios.digits.attack: a PGD step, given once"),
        # a config written for 27738ae: what to change
        ("reproduction: {min_correlation: 0.5}", "reproduction.min_correlation: the claims protocol no longer"),
        ("robustness: {digits_robustness: {claims: {eps: 0.2, robust: pgd_at}}}",
         "digits_robustness.claims: eps, robust: the old form of a block's claims"),
    ],
)
def test_invalid_config_stops_before_any_job_naming_the_key(tmp_path, bad_config, named):
    (tmp_path / "bad.yaml").write_text(bad_config + "\n")
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "Error validating config" in message and named in message, message
    assert "Job stats" not in message


def _results_without_timing(path):
    """A job's result with its timing fields (names ending in 'seconds') left out: JSON as a dict, safetensors as
    their metadata and tensors."""
    import json

    if path.suffix == ".json":
        return {k: v for k, v in json.loads(path.read_text()).items() if not k.endswith("seconds")}
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return f.metadata(), {k: f.get_tensor(k).tolist() for k in f.keys() if not k.endswith("seconds")}  # noqa: SIM118


def test_the_job_server_changes_no_result(tiny_run, tmp_path):
    """The tiny run's jobs ran in forks of the job server (advtransfer/jobserver.py, on for every local run); the
    same jobs, each in its own process (ADVTRANSFER_JOBSERVER=0), write the same results, timing aside."""
    work = copy_workflow(tmp_path)
    names = ["models/reference.json", "models/source_outside0_seed0.json", "models/source_outside0_seed0.safetensors",
             "attacks/outside0_seed0.safetensors", "metrics/outside0_seed0.json", "probes/outside0_seed0.json",
             "finetunes/outside0_seed0.json"]  # fmt: skip
    # and a model-selection candidate's estimators (numpy / scipy BLAS: the server sizes its pools per job)
    targets = [f"results/tinydigits/{name}" for name in names] + ["results/tinyselection/scores/outside0_seed0.json"]
    snakemake(work, "--cores", "2", *targets, *TINY, env={"ADVTRANSFER_JOBSERVER": "0"})
    logs = [work / "results/tinydigits/logs/metrics_outside0_seed0.log",
            tiny_run / "results/tinydigits/logs/metrics_outside0_seed0.log"]  # fmt: skip
    assert "started in its own process" in logs[0].read_text()
    assert "started in the job server's fork" in logs[1].read_text()
    for target in targets:
        assert _results_without_timing(work / target) == _results_without_timing(tiny_run / target), target


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
    from advtransfer import claims as C
    from advtransfer import config as configuration

    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
    claims = pd.read_csv(tiny_run / "results" / "reproduction.csv", keep_default_na=False)
    primary = claims[claims["role"] == "primary"]
    assert set(claims["verdict"]) <= set(C.VERDICTS)
    expected = {"synthetic": "synthetic", "tinydigits": "scenarios", "tinyattributes": "attributes",
                "tinytasks": "tasks", "tinyrobustness": "robustness", "tinyinteractions": "interactions",
                "tinyselection": "model_selection", "tinyadded": "added_value"}  # fmt: skip
    for experiment, family in expected.items():
        mine = primary[primary["experiment"] == experiment]
        assert list(mine["claim_id"]) == list(config["claims"][family]), experiment  # every declared claim, once
        # every secondary view declared for it, once (a view whose models the design lacks is left out)
        assert len(claims[claims["experiment"] == experiment]) >= len(mine)
    # the tiny designs (2 sources, 2 seeds, 3 tasks) cannot reach the level: every primary verdict says so, but
    # one that cannot be measured at all: the H-score of the tiny crossed sources is 1 for every source (128
    # features, 40 target images: in-sample the classes separate perfectly), so its within-level Spearman is
    # undefined
    untestable = (primary["experiment"] == "tinyadded") & (primary["claim_id"] == "estimator_adds_more")
    assert set(primary.loc[untestable, "verdict"]) == {"inconclusive"}
    assert set(claims.loc[claims["claim_id"] == "estimator_adds_more", "test"]) >= {"no finite value over the seeds"}
    assert set(primary.loc[~untestable, "verdict"]) == {"underpowered"}
    assert primary.loc[~untestable, "note"].str.contains("underpowered: the smallest p this design allows").all()
    checks = pd.concat([pd.read_csv(p) for p in (tiny_run / "results").glob("*/checks.csv")], ignore_index=True)
    assert set(checks["check_id"]) == {"prop1", "thm1", "thm2", "thm2_lipschitz", "thm3"}
    assert set(checks["result"]) == {"pass"}  # the identity, the bounds and the ranges hold on any run
    md = (tiny_run / "results" / "reproduction.md").read_text()
    counts = {v: int((primary["verdict"] == v).sum()) for v in C.VERDICTS}
    assert "**Claims** (primary views): " + ", ".join(f"{counts[v]} {v}" for v in C.VERDICTS) + "." in md
    assert "**Checks**: 5 pass, 0 fail." in md
    table = md.split("## Claims")[1].split("### Secondary views")[0]
    for experiment in expected:
        assert table.count(f"\n| {experiment} |") == int((primary["experiment"] == experiment).sum()), experiment
    fidelity = md.split("## Fidelity")[1]
    assert "| tinydigits | knowledge outcome |" in fidelity and "| tinyrobustness | RRM lambda |" in fidelity


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
                    "Robustness transfer (experiment tinyrobustness)", "Claims of tinyrobustness",
                    "(a) Source vs target robust accuracy",
                    "Model selection (tinyselection): one row per candidate source",
                    "Model selection (tinyselection): for each knowledge outcome",
                    "Model selection (tinyselection): each score's value (x axis) against",
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
