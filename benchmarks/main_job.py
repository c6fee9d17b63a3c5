"""Case main_job (opt-in: ``--only main_job``): wall time of the default workflow run on 2 cores.

Copies the workflow (Snakefile, config.yaml, rules, scripts, schemas, envs, profiles, advtransfer) into a
temporary directory, so this checkout's results/ is untouched, and runs ``snakemake --cores 2`` there on
the default config.yaml (every family's quick block: every job from scratch). Reports the wall time, the CPU time
of snakemake and all its jobs (CPU / (2 x wall) = how busy both cores were), the number of jobs and the
sum of the jobs' own wall times from their Snakemake ``benchmark:`` files. One run (about ten minutes on
2 cores); ``--repeats N`` runs N. With the job server (the default) the CPU time still counts every job: the
server's forks are children of Snakemake's children.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, CaseResult, Settings, children_cpu_seconds, figure

NAME = "main_job"
GOAL = "the default run (a quick tour of every family) finishes in at most 10 minutes on 2 cores (issue 28)"
COPIED = ("Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "profiles", "report", "advtransfer")
CORES = 2


def run_default(work: Path) -> tuple[float, float, int, float]:
    """(wall s, CPU s, jobs, sum of per-job wall s) of one full default run in ``work``, an empty folder the
    workflow is copied into."""
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, work / name)
    start, cpu = time.perf_counter(), children_cpu_seconds()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(CORES)], cwd=work, capture_output=True, text=True
    )
    seconds, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --cores {CORES} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    job_seconds, jobs = 0.0, 0
    for tsv in (work / "results").glob("**/benchmarks/*.tsv"):
        with tsv.open() as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                job_seconds += float(row["s"])
                jobs += 1
    return seconds, cpu, jobs, job_seconds


def run_once() -> tuple[float, float, int, float]:
    """``run_default`` in a scratch folder (deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="advtransfer-main-job-") as tmp:
        return run_default(Path(tmp))


def measure(settings: Settings) -> CaseResult:
    runs = [run_once() for _ in range(settings.repeats or 1)]
    wall = figure([r[0] for r in runs], "s")
    figures = {
        "main_job_time": wall,
        "main_job_cpu_time": figure([r[1] for r in runs], "s cpu"),
        "jobs_with_benchmark_file": figure(runs[-1][2], "jobs"),
        "sum_of_job_wall_times": figure([r[3] for r in runs], "s"),
    }
    ratios = {
        "core_utilisation": figures["main_job_cpu_time"]["median"] / (CORES * wall["median"]),
        "job_wall_sum_over_wall": figures["sum_of_job_wall_times"]["median"] / wall["median"],
    }
    notes = ["opt-in case (not in the default run); the default config.yaml in a scratch copy of the workflow"]
    return CaseResult(NAME, figures, ratios, GOAL, wall["median"] <= 600, params={"cores": CORES}, notes=notes)
