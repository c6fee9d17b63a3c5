"""Workflow tests of the data-distribution scenarios (Section 4.2): DAGs, GPU requests, tiny digits run."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from safetensors.torch import load_file

from tests.test_workflow import job_counts
from tests.workflow_helpers import REPO, snakemake

pytestmark = pytest.mark.workflow

NETWORK_RULES = {"train", "attack", "metrics", "probe", "finetune"}
# Jobs of one scenario with 5 sources x 3 seeds, besides its `dataset` jobs.
SCENARIO_JOBS = {
    "split": 6,  # 5 source mixtures + the target task
    "train": 16,  # 15 sources + the reference
    "attack": 15,
    "metrics": 15,
    "probe": 15,
    "finetune": 15,
    "scenario_summary": 1,
    "scenario_figure": 1,
}


def scenario_jobs(seeds: int) -> dict[str, int]:
    """A 5-source scenario's jobs with ``seeds`` seeds per source (SCENARIO_JOBS is the one of 3 seeds)."""
    per_source = ("train", "attack", "metrics", "probe", "finetune")
    return {k: (5 * seeds + (k == "train") if k in per_source else v) for k, v in SCENARIO_JOBS.items()}


@pytest.mark.parametrize(
    ("scenario", "datasets", "seeds"), [("cifar10_stl10", 2, 3), ("fashion_mnist", 1, 6), ("digits", 1, 3)]
)  # fmt: skip
def test_dry_run_builds_the_full_scenario_dag(scenario, datasets, seeds):
    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules", "--config", f"experiments=[{scenario}]").stdout
    assert job_counts(out) == {"dataset": datasets, **scenario_jobs(seeds), "claims": 1, "reproduction": 1, "all": 1}


def _gpu_by_rule(dry_run: str) -> dict[str, set[int]]:
    """rule name -> the gpu resource values its jobs declare in a dry run (0 when absent)."""
    found: dict[str, set[int]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if head:
            gpu = re.search(r"\bgpu=(\d+)", block)
            found.setdefault(head[1], set()).add(int(gpu[1]) if gpu else 0)
    return found


@pytest.mark.parametrize(("device", "expected"), [("cuda", 1), ("auto", 1), ("cpu", 0)])
def test_network_rules_request_a_gpu_only_when_config_says_cuda(device, expected):
    out = snakemake(
        REPO, "-n", "--forceall", "--config", "experiments=[cifar10_stl10,synthetic]", f"device={device}"
    ).stdout
    gpus = _gpu_by_rule(out)
    assert set(gpus) >= NETWORK_RULES | {"dataset", "scenario_summary", "synthetic_target"}
    for rule, values in gpus.items():
        assert values == ({expected} if rule in NETWORK_RULES else {0}), (rule, values)


def test_unknown_class_name_stops_before_any_job(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "scenarios:\n  digits:\n    sources:\n      outside0: ['0', '1', 'eleven']\n"
    )
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "scenarios.digits.sources.outside0" in message and "eleven" in message
    assert "Job stats" not in message


def test_empty_source_list_stops_before_any_job(tmp_path):
    (tmp_path / "empty.yaml").write_text(
        "scenarios:\n"
        "  nomix:\n"
        "    source_dataset: digits\n"
        "    sources: {}\n"
        "    target: {dataset: digits, classes: ['0', '1']}\n"
        "    split: {source_pool_fraction: 0.5}\n"
        "    model: small_cnn\n"
        "    image_size: 8\n"
        "    channels: 1\n"
        "    seeds: [0]\n"
        "    train: {epochs: 1, batch_size: 8, lr: 0.1}\n"
        "    attack: {eps: 0.1, steps: 1, step_size: 0.1}\n"
        "    metrics: {}\n"
        "    probe: {}\n"
    )
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "empty.yaml"), check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Error validating config" in message and "sources" in message, message
    assert "Job stats" not in message


@pytest.fixture(scope="module")
def tiny_digits(tiny_run):
    return tiny_run / "results" / "tinydigits"


def test_tiny_digits_run_produces_every_output(tiny_digits):
    for name in ("summary.csv", "correlations.csv", "table.md", "table.tex", "figure3.png", "figure3.pdf"):
        assert (tiny_digits / name).stat().st_size > 0, name
    summary = pd.read_csv(tiny_digits / "summary.csv")
    assert len(summary) == 4 and set(summary.source) == {"outside0", "outside100"}
    assert summary.loc[summary.source == "outside0", "outside_fraction"].eq(0).all()
    assert summary.loc[summary.source == "outside100", "outside_fraction"].eq(1).all()
    for col in ("tau1", "tau2", "tau1_tau2", "alpha", "reference_adv_accuracy", "probe_accuracy"):
        assert summary[col].between(0, 1).all(), col
    assert (summary.cross_adv_loss > 0).all()
    correlations = pd.read_csv(tiny_digits / "correlations.csv")
    assert set(correlations.metric) == {
        "tau1", "tau2", "tau1_tau2", "alpha", "tau1_logits", "tau2_logits", "tau1_tau2_logits", "alpha_logits",
        "cross_adv_loss", "reference_adv_accuracy",
    }  # fmt: skip
    for variant in ("tau1", "tau2", "alpha"):  # unsuffixed = the features variant
        assert summary[variant].equals(summary[f"{variant}_features"]), variant
        assert summary[f"{variant}_logits"].between(0, 1).all(), variant
    # tau is taken on 40 target images no source saw (train, validation and test of the target); m = 128
    assert summary.n_metric_images.eq(40).all() and summary.feature_dim.eq(128).all()
    assert summary.features_underdetermined.eq(1).all()
    assert "under-determined" in (tiny_digits / "table.md").read_text()
    assert not list((tiny_digits / "checkpoints").rglob("*.safetensors"))  # finished models supersede them


def test_tiny_digits_models_and_attacks_are_well_formed(tiny_digits):
    info = json.loads((tiny_digits / "models" / "source_outside0_seed0.json").read_text())
    assert info["classes"] == ["0", "1", "2"] and info["seed"] == 0 and 0 <= info["val_accuracy"] <= 1
    assert info["architecture"] == {"name": "small_cnn", "num_classes": 3, "in_channels": 1, "image_size": 8}
    attack = load_file(tiny_digits / "attacks" / "outside0_seed0.safetensors")
    assert attack["x_adv"].shape == (40, 1, 8, 8) and attack["chosen"].shape == (40,)
    assert attack["x_adv"].min() >= 0 and attack["x_adv"].max() <= 1
    source_split = load_file(tiny_digits / "splits" / "source_outside0.safetensors")
    target_split = load_file(tiny_digits / "splits" / "target.safetensors")
    seen_by_sources = set(source_split["train_idx"].tolist()) | set(source_split["val_idx"].tolist())
    target_train = set(target_split["train_idx"].tolist()) | set(target_split["val_idx"].tolist())
    assert not seen_by_sources & target_train  # the target holds images no source saw
