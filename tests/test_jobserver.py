"""The job server (advtransfer/jobserver.py): a script that delegates runs in a fork of the server with the
client's streams, working directory, environment, argv and sys.path, and the client exits with the script's
status; without a server the script runs in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advtransfer import jobserver

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from advtransfer.jobserver import delegate
delegate()
import json, os, time
from pathlib import Path
try:
    import numpy, threadpoolctl
    pools = sorted({{pool["num_threads"] for pool in threadpoolctl.threadpool_info()}})
except ImportError:
    pools = None
Path("report.json").write_text(json.dumps({{"pools": pools,
    "child": os.environ.get("ADVTRANSFER_JOBSERVER_CHILD"), "argv": sys.argv[1:], "pid": os.getpid(),
    "marker": os.environ.get("MARKER"), "path": list(dict.fromkeys(sys.path)), "torch": "torch" in sys.modules,
}}))
print("out:", sys.argv[1], flush=True)
print("err:", sys.argv[1], file=sys.stderr, flush=True)
if sys.argv[1] == "raise":
    raise RuntimeError("a failing job")
if sys.argv[1] == "sleep":
    time.sleep(60)
sys.exit(int(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def server():
    environ = {k: v for k, v in os.environ.items() if k != jobserver.SWITCH_ENV}
    process = jobserver.start(environ)
    yield environ
    jobserver.stop(process, environ)
    assert process.poll() is not None
    assert not Path(process.folder).exists()  # the socket's folder is removed


def run(tmp_path, environ, *args, **kw):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    env = {**environ, "MARKER": str(tmp_path), "OMP_NUM_THREADS": "1"}  # as Snakemake sets it for a 1-thread rule
    return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, **kw)  # fmt: skip


def report(tmp_path):
    import json

    return json.loads((tmp_path / "report.json").read_text())


def test_a_delegated_script_runs_in_the_server_with_the_clients_streams_and_status(server, tmp_path):
    proc = run(tmp_path, server, "hello", "3")
    assert proc.returncode == 3
    assert proc.stdout == "out: hello\n" and proc.stderr == "err: hello\n"
    got = report(tmp_path)
    assert got["child"] == "1"  # ran in a fork of the server
    assert got["argv"] == ["hello", "3"] and got["marker"] == str(tmp_path)  # its argv and environment
    # the client's sys.path (where a module is found first: the script's folder, as Python sets it, and the
    # client's own additions; the fork runs the script from its top again, so an insertion may repeat)
    alone = {k: v for k, v in server.items() if k != jobserver.SOCKET_ENV}
    assert run(tmp_path, alone, "alone", "0").returncode == 0
    assert report(tmp_path)["path"] == got["path"] and str(tmp_path) in got["path"]
    assert got["torch"]  # torch was already imported: the start-up the server saves
    # the BLAS / OpenMP pools the server loaded run the rule's threads, as in a fresh process (results and
    # rounding as there; no oversubscription)
    assert got["pools"] == [1]


def test_a_failing_script_prints_its_traceback_and_fails(server, tmp_path):
    proc = run(tmp_path, server, "raise", "0")
    assert proc.returncode == 1
    assert "RuntimeError: a failing job" in proc.stderr and "Traceback" in proc.stderr


def test_killing_the_client_kills_the_job(server, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    client = subprocess.Popen([sys.executable, str(script), "sleep", "0"], cwd=tmp_path, env=server,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 60
    while not (tmp_path / "report.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    pid = report(tmp_path)["pid"]
    assert pid != client.pid
    client.send_signal(signal.SIGTERM)  # as Snakemake cancels a job
    client.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail("the job outlived its client")


def test_without_a_server_the_script_runs_in_its_own_process(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != jobserver.SOCKET_ENV}
    proc = run(tmp_path, environ, "alone", "0")
    assert proc.returncode == 0 and proc.stdout == "out: alone\n"
    assert report(tmp_path)["child"] is None
    # a server that is gone (its socket path stale) is the same as none
    proc = run(tmp_path, {**environ, jobserver.SOCKET_ENV: str(tmp_path / "gone")}, "stale", "0")
    assert proc.returncode == 0 and report(tmp_path)["child"] is None


@pytest.mark.skipif(not Path("/usr/bin/python3").is_file(), reason="needs a second Python")
def test_a_script_of_another_python_runs_in_its_own(server, tmp_path):
    # e.g. a rule with a conda environment: the server's libraries are not its libraries
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(repo=str(REPO)).replace('"torch" in sys.modules', "None"))
    proc = subprocess.run(["/usr/bin/python3", "-S", str(script), "other", "0"], cwd=tmp_path, env=server,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert report(tmp_path)["child"] is None


def test_the_switch_turns_the_server_off():
    environ = {jobserver.SWITCH_ENV: "0"}
    assert jobserver.start(environ) is None and jobserver.SOCKET_ENV not in environ
    assert jobserver.enabled({}) and jobserver.enabled({jobserver.SWITCH_ENV: "1"})
    assert not jobserver.enabled({jobserver.SWITCH_ENV: "off"})
