"""A killed training job leaves nothing a later run would trust, and the rerun resumes from its checkpoint to the
same bytes as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.workflow

MODEL = "results/tinydigits/models/source_outside0_seed0.safetensors"
CHECKPOINT = "results/tinydigits/checkpoints/source_outside0_seed0/checkpoint.safetensors"
LOG = "results/tinydigits/logs/train_source_outside0_seed0.log"


def test_killed_training_leaves_no_output_and_resumes_from_the_last_epoch(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "long.yaml").write_text("scenarios: {tinydigits: {train: {epochs: 400}}}\n")
    args = [MODEL, "--cores", "1", "--configfile", "tests/configs/tiny_digits.yaml", "long.yaml"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args], cwd=work, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (work / CHECKPOINT).exists():
            assert proc.poll() is None, "training finished before it could be interrupted"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole job, as a node failure would
        proc.wait()
    assert not (work / MODEL).exists()
    assert not (work / MODEL).with_suffix(".json").exists()

    snakemake(work, *args, "--unlock")  # a killed Snakemake leaves its lock, as after a power loss
    snakemake(work, *args, "--rerun-incomplete")
    log = (work / LOG).read_text()
    assert "resumed from" in log, log[-2000:]
    assert (work / MODEL).exists() and not (work / CHECKPOINT).exists()
    # byte-identical to the same model trained without interruption
    whole = copy_workflow(tmp_path / "whole")
    (whole / "long.yaml").write_text((work / "long.yaml").read_text())
    snakemake(whole, *args)
    assert (whole / MODEL).read_bytes() == (work / MODEL).read_bytes()
