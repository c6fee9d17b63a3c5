"""Case floor (opt-in: ``--only floor``): how far the default run is from its compute floor.

Runs the default workflow (``snakemake --cores 2`` on config.yaml) in a scratch copy, as case main_job does, or
reads a finished run's folder given by ``ADVTRANSFER_FLOOR_RUN`` (a workflow directory whose ``.snakemake``
holds the run's records). From Snakemake's own record of every job (``.snakemake/metadata``: rule, script,
start and end time) and an import-time probe per script (a fresh interpreter importing what the script imports,
with Snakemake's script preamble), it reports per rule and in total: the jobs, their start-up (interpreter and
imports) and their work (job wall minus start-up), the **floor** (the work over the cores: what a run with no
start-up and perfect packing would take) and the run's wall time over that floor.

The start-up is the one the run paid. With the job server (advtransfer/jobserver.py, on unless
ADVTRANSFER_JOBSERVER=0) a job starts a client interpreter (the preamble and advtransfer.jobserver), and the
server's fork imports the script's modules on top of the preloaded libraries: the probe times both. The cold
start-up (a fresh interpreter importing everything, what each job paid before the server) is reported beside it.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from benchmarks.common import REPO, CaseResult, Settings, figure
from benchmarks.main_job import CORES, run_default

NAME = "floor"
GOAL = "the default run takes at most 1.5 x its floor (issue 28)"


def job_records(workdir: Path) -> list[dict]:
    """One record per job of the last run in ``workdir``: rule, script, start, end, wall (from Snakemake's
    metadata; a job's outputs share one record)."""
    jobs = {}
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        meta = json.loads(path.read_text())
        if meta.get("starttime") is None or meta.get("endtime") is None:
            continue
        # the outputs of one job share its hash and end time; their start times differ by microseconds
        key = (meta["rule"], meta["job_hash"], meta["endtime"])
        code = (meta.get("code") or "").strip().strip('"')
        start = min(meta["starttime"], jobs[key]["start"]) if key in jobs else meta["starttime"]
        jobs[key] = {"rule": meta["rule"], "script": code if code.endswith(".py") else None,
                     "start": start, "end": meta["endtime"], "output": base64.b64decode(path.name).decode()}
    return [{**j, "wall": j["end"] - j["start"]} for j in jobs.values()]


def script_imports(script: Path) -> list[str]:
    """The modules ``script`` imports at its top level (the helpers of scripts/, the preamble ``_job`` among them,
    replaced by what they import)."""
    names = []
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    out = []
    for name in names:  # a helper of scripts/ (_job, _target, _tasks) reads the job's snakemake object: its imports
        helper = script.parent / f"{name}.py"
        out += script_imports(helper) if "." not in name and helper.is_file() else [name]
    return list(dict.fromkeys(out))


def _probe_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "scripts")])}


def startup_seconds(modules: Iterable[str], repeats: int = 3) -> float:
    """Median wall seconds of a fresh interpreter that imports ``modules`` after Snakemake's script preamble."""
    code = "import snakemake.script\n" + "".join(f"import {m}\n" for m in modules)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=_probe_env(), capture_output=True)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


_FORK_PROBE = """
import importlib, json, os, sys, time
from advtransfer.jobserver import PRELOAD
for name in PRELOAD:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
walls = []
for _ in range({repeats}):
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        import snakemake.script
        for name in {modules!r}:
            importlib.import_module(name)
        os._exit(0)
    os.waitpid(pid, 0)
    walls.append(time.perf_counter() - t0)
print(json.dumps(sorted(walls)[len(walls) // 2]))
"""


def served_startup_seconds(modules: Iterable[str], repeats: int = 3) -> float:
    """Median wall seconds a job pays with the job server: a client interpreter (the preamble and
    advtransfer.jobserver) plus a fork of a process that preloaded jobserver.PRELOAD importing ``modules``."""
    client = startup_seconds(["advtransfer.jobserver"], repeats)
    code = _FORK_PROBE.format(repeats=repeats, modules=list(modules))
    out = subprocess.run([sys.executable, "-c", code], check=True, env=_probe_env(), capture_output=True, text=True)
    return client + float(out.stdout.strip().splitlines()[-1])


def floor_report(jobs: list[dict], startup: dict[str, float], cores: int) -> dict:
    """Per rule: jobs, start-up and work seconds; and the totals, floor and wall / floor of the run."""
    rules: dict[str, dict] = {}
    for job in jobs:
        s = min(startup.get(job["rule"], 0.0), job["wall"])
        r = rules.setdefault(job["rule"], {"jobs": 0, "startup": 0.0, "work": 0.0})
        r["jobs"] += 1
        r["startup"] += s
        r["work"] += job["wall"] - s
    wall = max(j["end"] for j in jobs) - min(j["start"] for j in jobs)
    work = sum(r["work"] for r in rules.values())
    return {"rules": rules, "jobs": len(jobs), "startup": sum(r["startup"] for r in rules.values()), "work": work,
            "floor": work / cores, "wall": wall, "wall_over_floor": wall / (work / cores) if work else float("nan")}


def measure(settings: Settings) -> CaseResult:
    given = os.environ.get("ADVTRANSFER_FLOOR_RUN")
    with tempfile.TemporaryDirectory(prefix="advtransfer-floor-") as tmp:
        workdir = Path(given) if given else Path(tmp)
        if not given:
            run_default(workdir)
        jobs = job_records(workdir)
    from advtransfer import jobserver

    served = jobserver.enabled()
    startup, cold = {}, {}
    for rule, script in {j["rule"]: j["script"] for j in jobs}.items():
        path = (REPO / "rules" / script).resolve() if script else None
        modules = script_imports(path) if path and path.is_file() else None
        cold[rule] = startup_seconds(modules) if modules is not None else 0.0
        startup[rule] = (served_startup_seconds(modules) if served else cold[rule]) if modules is not None else 0.0
    report = floor_report(jobs, startup, CORES)
    cold_total = sum(cold.get(j["rule"], 0.0) for j in jobs)
    figures = {
        "jobs": figure(report["jobs"], "jobs"),
        "startup_total": figure(report["startup"], "s"),
        "cold_startup_total": figure(cold_total, "s"),
        "work_total": figure(report["work"], "s"),
        "floor": figure(report["floor"], "s"),
        "run_wall": figure(report["wall"], "s"),
    }
    for rule, r in sorted(report["rules"].items(), key=lambda kv: -kv[1]["startup"] - kv[1]["work"]):
        figures[f"{rule}: {r['jobs']} jobs, start-up / work per job"] = figure(
            [r["startup"] / r["jobs"], r["work"] / r["jobs"]], "s")
    ratios = {"wall_over_floor": report["wall_over_floor"], "startup_share": report["startup"] /
              max(1e-9, report["startup"] + report["work"])}  # fmt: skip
    notes = [f"start-up per rule as the run paid it: {(served_startup_seconds if served else startup_seconds).__doc__}",
             f"cold start-up (what every job paid without the job server): {startup_seconds.__doc__}",
             "the per-rule figures' min / max are the start-up and the work per job"]
    return CaseResult(NAME, figures, ratios, GOAL, report["wall_over_floor"] <= 1.5,
                      params={"cores": CORES, "job_server": served}, notes=notes)  # fmt: skip
