"""Smoke test of the benchmark suite: ``python -m benchmarks --quick`` runs and writes complete JSON.

No timing assertions: the figures depend on the machine; only the structure of the results is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.workflow]  # the workflow case runs a Snakemake dry run

DEFAULT_CASES = (
    "products", "virtual_attack", "transferability", "pgd", "training", "probe", "atm", "smoothing", "robust_training",
    "interactions", "workflow", "scaling",
)  # fmt: skip
KEYS = {"case", "machine", "torch", "device", "figures", "ratios", "goal", "met"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    pytest.importorskip("torchattacks", reason="the pgd case compares with torchattacks (make test installs it)")
    out = tmp_path_factory.mktemp("benchmarks")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--device", "cpu", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900,  # a hang guard, not a timing assertion
    )  # fmt: skip
    assert proc.returncode == 0, f"python -m benchmarks --quick failed:\n{proc.stdout}\n{proc.stderr}"
    return out, proc


def test_quick_run_writes_one_json_per_default_case(quick_run):
    out, proc = quick_run
    assert {p.stem for p in out.glob("*.json")} == set(DEFAULT_CASES)  # main_job is opt-in
    assert (out / "table.md").is_file()
    assert "| case | figure | min | median | max | unit |" in proc.stdout


@pytest.mark.parametrize("case", DEFAULT_CASES)
def test_case_json_has_required_keys(quick_run, case):
    record = json.loads((quick_run[0] / f"{case}.json").read_text())
    assert KEYS <= set(record), f"{case}.json lacks {KEYS - set(record)}"
    assert record["case"] == case and record["device"] == "cpu" and record["quick"] is True
    assert {"platform", "cpu_count", "processor"} <= set(record["machine"])
    assert isinstance(record["torch"], str) and record["torch"]
    assert isinstance(record["goal"], str) and record["goal"] and isinstance(record["met"], bool)
    assert record["figures"], f"{case}: no figures"
    for name, fig in record["figures"].items():
        assert {"min", "median", "max", "unit"} <= set(fig), f"{case}.{name}: {fig}"
        assert fig["min"] <= fig["median"] <= fig["max"], f"{case}.{name}: {fig}"
    assert record["ratios"] and all(isinstance(v, (int, float)) for v in record["ratios"].values())


def test_unknown_case_is_rejected_with_the_list_of_cases():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nonsense"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "unknown case(s) nonsense" in proc.stderr and "virtual_attack" in proc.stderr
