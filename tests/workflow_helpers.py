"""Run the Snakemake workflow of this checkout in a throw-away copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The tiny synthetic experiment, digits scenario, attributes, tasks, robustness, interactions, model-selection and
# added-value experiments together
# (tests/conftest.py runs them once).
TINY = (
    "--configfile",
    "tests/configs/tiny.yaml",
    "tests/configs/tiny_digits.yaml",
    "tests/configs/tiny_attributes.yaml",
    "tests/configs/tiny_tasks.yaml",
    "tests/configs/tiny_robustness.yaml",
    "tests/configs/tiny_interactions.yaml",
    "tests/configs/tiny_selection.yaml",
    "tests/configs/tiny_added_value.yaml",
    "--config",
    "experiments=[synthetic,tinydigits,tinyattributes,tinytasks,tinyrobustness,tinyinteractions,tinyselection,"
    "tinyadded]",
)
COPIED = (
    "Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "profiles", "report", "advtransfer",
    "tests/configs",
)  # fmt: skip


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results, caches or environments) into ``dest``."""
    for name in COPIED:
        src = REPO / name
        target = dest / name
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake ARGS`` in ``workdir`` (``env``: variables set on top of this process's);
    output captured as text."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1800,
        env=None if env is None else {**os.environ, **env},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
