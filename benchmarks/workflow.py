"""Case workflow: wall time of ``snakemake -n --forceall --config experiments=[cifar10_stl10]``.

The dry run of the paper-scale scenario (72 jobs: 15 source models, 15 attacks, metrics and probes, ...)
in this checkout: Snakemake start-up, config validation against the schema, the library-hash params of
every rule, and the DAG. It reads the checkout and writes nothing under results/. Timed as a subprocess
(so it includes the interpreter start), repeated; no warm-up in --quick.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import REPO, CaseResult, Settings, Timing, children_cpu_seconds, figure

NAME = "workflow"
GOAL = "informational; expected: the paper-scale dry run takes < 30 s (it is what users wait for before every run)"
COMMAND = ["-m", "snakemake", "-n", "--forceall", "--config", "experiments=[cifar10_stl10]"]


def dry_run() -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, number of jobs in the DAG) of one dry run."""
    start, cpu = time.perf_counter(), children_cpu_seconds()
    proc = subprocess.run([sys.executable, *COMMAND], cwd=REPO, capture_output=True, text=True, timeout=600)
    seconds, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    if proc.returncode != 0:
        raise RuntimeError(
            f"snakemake dry run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    match = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, flags=re.MULTILINE)
    return seconds, cpu, int(match.group(1)) if match else -1


def measure(settings: Settings) -> CaseResult:
    warmup = 0 if settings.quick else settings.warmup
    for _ in range(warmup):
        dry_run()
    timing, jobs = Timing(), -1
    for _ in range(settings.reps(3)):
        seconds, cpu, jobs = dry_run()
        timing.add(seconds, cpu)
    figures: dict[str, Any] = {
        "dry_run_time": figure(timing.wall, "s"),
        "dry_run_cpu_time": figure(timing.cpu, "s cpu"),
        "dag_jobs": figure(jobs, "jobs"),
    }
    ratios = {"wall_seconds_per_job": figures["dry_run_time"]["median"] / max(jobs, 1)}
    params = {"command": "snakemake " + " ".join(COMMAND[2:])}
    notes = ["judged on wall time (what a user waits for); CPU time is of the snakemake process"]
    return CaseResult(NAME, figures, ratios, GOAL, figures["dry_run_time"]["median"] < 30, params=params, notes=notes)
