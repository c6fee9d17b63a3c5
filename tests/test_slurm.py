"""The workflow on a real single-node SLURM cluster on localhost, through profiles/slurm.

The module fixture installs Debian's slurm-wlm and munge if they are missing (as root, with apt-get),
starts a throw-away cluster with tests/slurm/start-cluster.sh (every file under a temporary directory,
two fake GPUs declared as gres) and always stops its daemons by their PIDs at the end. The tiny synthetic
and digits experiments are then submitted with `sbatch` through snakemake-executor-plugin-slurm, using
profiles/slurm/config.yaml with its placeholders filled in from tests/slurm/profile-overrides.yaml.

Set ADVTRANSFER_SKIP_SLURM=1 to skip these tests on purpose. Run alone: `.venv/bin/python -m pytest
tests/test_slurm.py` (about 5-10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.workflow_helpers import REPO, copy_workflow

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SLURM_DIR = REPO / "tests" / "slurm"
PACKAGES = ["slurm-wlm", "munge"]  # slurmctld, slurmd, the clients and munged
NEEDED = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "srun", "munged", "munge", "unmunge"]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DAEMONS = ("slurmd", "slurmctld", "munged")

CONFIGS = ["tests/configs/tiny.yaml", "tests/configs/tiny_digits.yaml", "tests/configs/tiny_slurm.yaml"]
GPU_RULES = {"train", "attack", "metrics", "probe", "finetune"}
CPU_RULES = {"synthetic_data", "synthetic_target", "synthetic_sweep", "split"}
LOCAL_RULES = {"all", "dataset", "synthetic_summary", "synthetic_figure", "scenario_summary", "scenario_figure",
               "reproduction"}  # fmt: skip
# cluster jobs of the tiny run: synthetic data, target, 2 sweeps; tinydigits (2 sources x 1 seed,
# see tiny_slurm.yaml) 2 source splits, the target split, 2 + 1 trainings, 2 attacks, metrics, probes,
# fine-tunings
EXPECTED_JOBS = {
    "synthetic_data": 1, "synthetic_target": 1, "synthetic_sweep": 2, "split": 2 + 1,
    "train": 2 + 1, "attack": 2, "metrics": 2, "probe": 2, "finetune": 2,
}  # fmt: skip


def _path_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{env.get('PATH', '')}:{SYSTEM_PATH}"
    return env


def _missing_tools() -> list[str]:
    path = _path_env()["PATH"]
    return [tool for tool in NEEDED if shutil.which(tool, path=path) is None]


def _install_packages() -> None:
    """apt-get install the cluster's Debian packages, or skip with the reason why not."""
    missing = _missing_tools()
    if not missing:
        return
    why = f"SLURM test cluster needs {', '.join(missing)} (Debian packages {' '.join(PACKAGES)})"
    if os.geteuid() != 0:
        pytest.skip(f"{why}; not root, so they cannot be installed here (apt-get install {' '.join(PACKAGES)})")
    if shutil.which("apt-get") is None:
        pytest.skip(f"{why}; apt-get is not available to install them")
    env = _path_env() | {"DEBIAN_FRONTEND": "noninteractive"}
    # Keep the packages' maintainer scripts from starting the system-wide munged/slurmd/slurmctld
    # (the test starts its own): the standard policy-rc.d "deny", only while installing.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\n# written by tests/test_slurm.py while installing SLURM\nexit 101\n")
        policy.chmod(0o755)
    try:
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        for cmd in (
            ["apt-get", *lock, "update", "-q"],
            ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
        ):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                pytest.fail(
                    f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                )
    finally:
        if made_policy:
            policy.unlink()
    if still := _missing_tools():
        pytest.fail(f"installed {' '.join(PACKAGES)} but {', '.join(still)} still missing")


@dataclass
class Cluster:
    dir: Path
    partition: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients and Snakemake: the wrappers (which set SLURM_CONF) first on PATH,
        then this Python's bin directory (the jobs run Snakemake with this interpreter)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["PATH"] = f"{self.dir / 'bin'}:{Path(sys.executable).parent}:{_path_env()['PATH']}"
        env["SLURM_CONF"] = str(self.dir / "etc" / "slurm.conf")
        return env

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def jobs(self, workdir: Path) -> list[dict[str, str]]:
        """Every job submitted from ``workdir`` (finished ones stay listed: MinJobAge=3600), as the
        `key=value` fields of `scontrol show job --oneliner`."""
        out = self.run("scontrol", "show", "job", "--oneliner").stdout
        jobs = [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in out.splitlines() if line.strip()]
        return [job for job in jobs if Path(job.get("WorkDir", "/nonexistent")) == workdir]

    def logs(self) -> str:
        text = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.dir / "log" / name
            if path.exists():
                text.append(f"--- {path} (tail)\n" + "\n".join(path.read_text().splitlines()[-30:]))
        return "\n".join(text)


def _stop(cluster_dir: Path) -> None:
    """Stop the daemons by the PIDs start-cluster.sh recorded; SIGKILL whatever survives the script."""
    pids = {}
    for daemon in DAEMONS:
        pidfile = cluster_dir / "run" / f"{daemon}.pid"
        if pidfile.exists() and pidfile.read_text().strip().isdigit():
            pids[daemon] = int(pidfile.read_text())
    try:
        subprocess.run(["bash", str(SLURM_DIR / "stop-cluster.sh"), str(cluster_dir)], env=_path_env(), timeout=120)
    except subprocess.TimeoutExpired:
        pass  # the PIDs below are killed regardless
    for daemon, pid in pids.items():
        cmdline = Path(f"/proc/{pid}/cmdline")
        try:
            alive = daemon in cmdline.read_bytes().decode(errors="replace")
        except OSError:
            alive = False
        if alive:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.environ.get("ADVTRANSFER_SKIP_SLURM"):
        pytest.skip("ADVTRANSFER_SKIP_SLURM is set")
    _install_packages()
    cluster_dir = tmp_path_factory.mktemp("slurm")
    if len(str(cluster_dir)) > 80:  # unix socket paths are limited to 108 bytes
        import tempfile

        cluster_dir = Path(tempfile.mkdtemp(prefix="advt-slurm-"))
    partition = yaml.safe_load((SLURM_DIR / "profile-overrides.yaml").read_text())["default-resources"][
        "slurm_partition"
    ]
    try:
        proc = subprocess.run(
            ["bash", str(SLURM_DIR / "start-cluster.sh"), str(cluster_dir)],
            env=_path_env() | {"SLURM_TEST_PARTITION": partition},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0:
            pytest.fail(f"start-cluster.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        cluster = Cluster(cluster_dir, partition)
        state = cluster.run("sinfo", "--noheader", "--Node", "--format=%t").stdout.split()
        assert state == ["idle"], f"node state {state}\n{cluster.logs()}"
        yield cluster
    finally:
        _stop(cluster_dir)


def slurm_profile(workdir: Path) -> Path:
    """profiles/slurm/config.yaml with tests/slurm/profile-overrides.yaml deep-merged over it (null
    deletes a key), written as a workflow profile inside ``workdir``."""

    def merge(base: dict, over: dict) -> dict:
        for key, value in over.items():
            if value is None:
                base.pop(key, None)
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    profile = yaml.safe_load((workdir / "profiles" / "slurm" / "config.yaml").read_text())
    merged = merge(profile, yaml.safe_load((SLURM_DIR / "profile-overrides.yaml").read_text()))
    target = workdir / "profiles" / "slurm-test" / "config.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(merged, sort_keys=False))
    return target.parent


@dataclass
class Run:
    workdir: Path
    returncode: int
    output: str  # stdout and stderr together, also kept in workdir/snakemake.out
    seconds: float


def start_on_slurm(cluster: Cluster, workdir: Path, *args: str) -> tuple[subprocess.Popen, float]:
    """Start `snakemake --executor slurm --workflow-profile <filled-in profiles/slurm> ARGS` in ``workdir``."""
    profile = slurm_profile(workdir)
    cmd = [sys.executable, "-m", "snakemake", "--executor", "slurm", "--workflow-profile", str(profile), *args]
    out = open(workdir / "snakemake.out", "w")  # noqa: SIM115 - closed in finish()
    proc = subprocess.Popen(cmd, cwd=workdir, env=cluster.env, stdout=out, stderr=subprocess.STDOUT, text=True)
    out.close()  # the child has its own copy
    return proc, time.monotonic()


def finish(started: tuple[subprocess.Popen, float], workdir: Path, timeout: float = 1200) -> Run:
    proc, t0 = started
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # Snakemake's own jobs are cancelled when the fixture stops the cluster
        proc.wait()
    output = (workdir / "snakemake.out").read_text()
    return Run(workdir, proc.returncode, output, time.monotonic() - t0)


def run_on_slurm(cluster: Cluster, workdir: Path, *args: str) -> Run:
    return finish(start_on_slurm(cluster, workdir, *args), workdir)


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job submitted by the plugin (its comment is rule_<name>[_wildcards_<values>])."""
    comment = job.get("Comment", "")
    names = GPU_RULES | CPU_RULES | LOCAL_RULES
    matches = [n for n in names if comment == f"rule_{n}" or comment.startswith(f"rule_{n}_wildcards_")]
    assert len(matches) == 1, f"cannot tell the rule of job {job.get('JobId')}: Comment={comment!r}"
    return matches[0]


def gpu_request(job: dict[str, str]) -> int:
    """GPUs a job asked for: TresPerJob=gres:gpu:1 (SLURM 22.05) or gres/gpu[:type]:1 (newer)."""
    requests = ",".join(job.get(key, "") for key in ("TresPerJob", "TresPerNode", "TresPerTask"))
    found = re.findall(r"gres[:/]gpu(?::[\w.]+)?[:=](\d+)", requests)
    return sum(int(n) for n in found)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict[str, Run]:
    """Two Snakemake runs on the cluster, side by side (which saves a minute or two):

    - "tiny": the tiny synthetic + digits experiments, every non-local job submitted with sbatch;
    - "failing": a corrupt input (results/synthetic/data.safetensors) makes synthetic_target fail inside
      its SLURM job. With --retries 0, since the profile's one retry would fail the same way.
    """
    tiny = copy_workflow(tmp_path_factory.mktemp("wf-slurm"))
    failing = copy_workflow(tmp_path_factory.mktemp("wf-slurm-fail"))
    data = failing / "results" / "synthetic"
    data.mkdir(parents=True)
    (data / "data.safetensors").write_text("this is not a safetensors file\n")
    (data / "data.json").write_text("{}\n")
    started_failing = start_on_slurm(
        cluster, failing, "--configfile", "tests/configs/tiny.yaml", "--retries", "0", "--",
        "results/synthetic/target.json",
    )
    result = {}
    try:
        result["tiny"] = run_on_slurm(cluster, tiny, "--configfile", *CONFIGS)
    finally:
        result["failing"] = finish(started_failing, failing, timeout=600)
    print(f"tiny workflow on SLURM: {result['tiny'].seconds:.0f} s")
    return result


@pytest.fixture(scope="module")
def slurm_run(cluster, runs) -> Path:
    run = runs["tiny"]
    assert run.returncode == 0, f"{run.output[-12000:]}\n{cluster.logs()}"
    return run.workdir


def test_profile_has_marked_placeholders_and_the_slurm_executor():
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert "CHANGE_ME" in str(defaults["slurm_partition"]) and "CHANGE_ME" in str(defaults["slurm_account"])
    assert "PLACEHOLDER" in text and "gpu_model" in text
    # GPUs go through the plugin's gpu / gpu_model resources, never through slurm_extra
    assert "--gpus" not in str(defaults.get("slurm_extra", "")) and "--gres" not in str(defaults.get("slurm_extra", ""))
    for rule, resources in (profile.get("set-resources") or {}).items():
        assert not re.search(r"--(gpus|gres)", str(resources.get("slurm_extra", ""))), rule


def test_every_output_is_built_on_the_cluster(slurm_run):
    from_workflow = {
        "synthetic": ["sweep.csv", "summary.csv", "figure2.png", "figure2.pdf", "data.json", "target.json"],
        "tinydigits": ["summary.csv", "correlations.csv", "table.md", "table.tex", "figure3.png", "figure3.pdf"],
    }
    for experiment, names in from_workflow.items():
        for name in names:
            path = slurm_run / "results" / experiment / name
            assert path.exists() and path.stat().st_size > 0, path
    digits = slurm_run / "results" / "tinydigits"
    for source in ("outside0", "outside100"):
        for kind in ("metrics", "probes"):
            assert (digits / kind / f"{source}_seed0.json").stat().st_size > 0
        assert (digits / "attacks" / f"{source}_seed0.safetensors").stat().st_size > 0
    assert (digits / "models" / "reference.safetensors").stat().st_size > 0
    # `device: auto` asked the cluster for a GPU; inside the job (no CUDA) training used the CPU
    assert "device cpu" in (digits / "logs" / "train_reference.log").read_text()


def test_gpu_rules_request_a_gpu_and_cpu_rules_do_not(cluster, slurm_run):
    jobs = cluster.jobs(slurm_run)
    counts: dict[str, int] = {}
    for job in jobs:
        rule = rule_of(job)
        counts[rule] = counts.get(rule, 0) + 1
        assert job["JobState"] == "COMPLETED", job
        assert job["Partition"] == cluster.partition, job
        if rule in GPU_RULES:
            assert gpu_request(job) == 1, f"{rule} submitted without a GPU request: {job}"
        else:
            assert rule in CPU_RULES, f"local rule {rule} was submitted to SLURM"
            assert gpu_request(job) == 0, f"{rule} asked for a GPU: {job}"
    assert counts == EXPECTED_JOBS


def test_rerun_with_nothing_changed_submits_nothing(cluster, slurm_run):
    before = len(cluster.jobs(slurm_run))
    run = run_on_slurm(cluster, slurm_run, "--configfile", *CONFIGS)
    assert run.returncode == 0, run.output
    assert "Nothing to be done" in run.output, run.output
    assert len(cluster.jobs(slurm_run)) == before


def test_failing_cluster_job_is_reported_as_failed(cluster, runs):
    """Snakemake must report the failed job and exit non-zero; SLURM must have recorded it as failed."""
    run = runs["failing"]
    assert run.returncode != 0, run.output
    assert "Error in rule synthetic_target" in run.output, run.output
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", run.output), run.output
    jobs = cluster.jobs(run.workdir)
    assert [rule_of(job) for job in jobs] == ["synthetic_target"], jobs
    assert jobs[0]["JobState"] == "FAILED", jobs
    data = run.workdir / "results" / "synthetic"
    assert "data.safetensors" in (data / "logs" / "target.log").read_text()  # the rule's log names the bad file
    slurm_log = run.workdir / ".snakemake" / "slurm_logs" / "rule_synthetic_target" / f"{jobs[0]['JobId']}.log"
    assert slurm_log.exists(), "the plugin keeps the SLURM log of a failed job"
    assert not (data / "target.safetensors").exists()
