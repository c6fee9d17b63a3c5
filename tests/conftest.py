"""Shared fixtures: one tiny end-to-end run of the workflow, reused read-only by the workflow tests."""

from __future__ import annotations

import pytest

from tests.workflow_helpers import TINY, copy_workflow, snakemake


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A throw-away copy of the workflow after a finished run of the tiny synthetic + digits configs."""
    work = copy_workflow(tmp_path_factory.mktemp("tiny"))
    proc = snakemake(work, "--cores", "2", *TINY)
    (work / "snakemake.out").write_text(proc.stdout + proc.stderr)  # what the user saw (the end-of-run summary)
    return work
