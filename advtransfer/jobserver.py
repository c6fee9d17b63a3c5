"""A fork server for the rule scripts of a local run (docs/performance.md, "Start-up").

Every rule script is a fresh Python process that imports torch, torchvision, pandas, scipy: 2-4 s of CPU before
any work, which in the default run's tiny jobs is most of the job. The server imports those libraries once; a
rule script then starts, sends its command line, environment, working directory and standard streams to the
server (`delegate`, the first thing scripts/_job.py does) and waits while a fork of the server runs the very same
script file. The job's result is the same (same files, same code read from disk: the server preloads only
third-party libraries, never advtransfer), and Snakemake still sees one process per job that exits with the
script's status. Where there is no server (a cluster job, ADVTRANSFER_JOBSERVER=0, or the server is gone)
the script simply runs in its own process as before.

Plain Python, no torch at import: the client side runs before anything heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

SOCKET_ENV = "ADVTRANSFER_JOBSERVER_SOCKET"
"""Set by the Snakefile for the jobs of a local run: the server's socket."""
SWITCH_ENV = "ADVTRANSFER_JOBSERVER"
"""``0`` turns the server off (each script then imports everything itself; its benchmark file measures it)."""
CHILD_ENV = "ADVTRANSFER_JOBSERVER_CHILD"
"""Set in the forks: the script runs here, it does not delegate again."""
PRELOAD = (
    "numpy", "scipy.optimize", "scipy.stats", "pandas", "torch", "torch.func", "torchvision", "safetensors.torch",
    "sklearn.linear_model", "matplotlib.pyplot", "yaml", "jsonschema",
    "snakemake.script", "snakemake.logging", "snakemake.iocontainers",  # what Snakemake's script preamble imports
)  # fmt: skip
"""Third-party modules the rule scripts import; never the library (its code is read from disk by every job)."""
_MAX_REQUEST = 1 << 20


def interpreter() -> list[str]:
    """Which Python this is (its environment's prefix and executable): a job runs in the server only when it was
    started by the same one (a rule with a conda environment or a container keeps its own)."""
    return [sys.prefix, os.path.realpath(sys.executable)]


def enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether a local run should start the server (ADVTRANSFER_JOBSERVER other than 0, false, no, off)."""
    value = (os.environ if environ is None else environ).get(SWITCH_ENV, "1")
    return value.strip().lower() not in {"0", "false", "no", "off"}


def served() -> bool:
    """Whether this process is a job running in a fork of the server."""
    return bool(os.environ.get(CHILD_ENV))


# ------------------------------------------------------------------------------------------------ client
def delegate() -> None:
    """Run this script in the job server and exit with its status; return (run here) when there is no server.

    Called first by every rule script (scripts/_job.py). The standard streams go to the server as file
    descriptors, so the fork writes where this process would have written.
    """
    path = os.environ.get(SOCKET_ENV)
    if not path or os.environ.get(CHILD_ENV):
        return
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        client.connect(path)
        request = {"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path,
                   "interpreter": interpreter()}  # fmt: skip
        socket.send_fds(client, [json.dumps(request).encode()], [0, 1, 2])
        started = client.recv(64)
    except OSError:
        started = b""
    if started != b"started":  # no server, another Python, or it could not fork: run here
        client.close()
        return
    try:
        reply = client.recv(64)
    except OSError:
        reply = b""
    if not reply:
        sys.stderr.write(f"advtransfer: the job server ({path}) stopped while it ran this job\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(reply) if reply else 1)


# ------------------------------------------------------------------------------------------------ server
def _run_script(request: dict, fds: list[int]) -> int:
    """In the fork: become the job's process (streams, cwd, environment, argv, sys.path) and run its script as
    __main__; return its exit status."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[CHILD_ENV] = "1"
    sys.argv[:] = request["argv"]
    sys.path[:] = request["path"]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threads = request["env"].get("OMP_NUM_THREADS")  # Snakemake sets it (and the BLAS ones) to the rule's threads
    if threads:  # the BLAS and OpenMP pools the server loaded, sized for this job as a fresh process sizes them
        with contextlib.suppress(Exception):
            from threadpoolctl import threadpool_limits

            threadpool_limits(int(threads))
    with contextlib.suppress(Exception):  # Linux: the job ends with the server (prctl PR_SET_PDEATHSIG)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    import runpy

    try:
        runpy.run_path(request["argv"][0], run_name="__main__")
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return int(stop.code or 0)
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - the job's traceback, as Python would print it
        traceback.print_exc()
        return 1


def _watch(conn: socket.socket, pid: int) -> None:
    """Wait for the fork; send its exit status to the client, or kill the fork when the client goes away
    (Snakemake cancelled the job)."""
    with conn:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                with contextlib.suppress(OSError):
                    conn.send(str(code if code >= 0 else 128 - code).encode())
                return
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and not conn.recv(64):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                return


def _handle(listener: socket.socket, conn: socket.socket) -> None:
    message, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
    request = json.loads(message) if len(fds) == 3 and message else None
    # a malformed request, or another environment: the client runs the job in its own process
    if request is None or request.get("interpreter") != interpreter():
        for fd in fds:
            os.close(fd)
        conn.send(b"refused")
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the job
        listener.close()
        conn.close()
        code = 1
        try:
            code = _run_script(request, fds)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.send(b"started")
    threading.Thread(target=_watch, args=(conn, pid), daemon=True).start()


def serve(folder: str, parent: int) -> None:
    """Listen on ``folder``/socket (bound first, so early clients wait instead of missing it), import PRELOAD,
    then fork one process per request until the parent process (Snakemake) is gone or stops us (SIGTERM);
    ``folder`` is removed at the end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches Snakemake and the jobs; Snakemake stops us
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # to the finally below (the forks reset it)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(str(Path(folder) / "socket"))
        listener.listen(64)
        import importlib

        for name in PRELOAD:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        listener.settimeout(1.0)
        while os.getppid() == parent:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            try:
                _handle(listener, conn)
            except OSError:
                conn.close()
    finally:
        listener.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def start(environ: dict[str, str] | None = None):
    """Start the server for this (Snakemake's) process and point its jobs at it (SOCKET_ENV in ``environ``,
    default os.environ); return the server process, or None when switched off. Its socket lives in a private
    temporary folder the server removes as it exits."""
    import subprocess  # here, not at the top: the client (every job) imports this module

    environ = os.environ if environ is None else environ
    if not enabled(environ):
        return None
    folder = tempfile.mkdtemp(prefix="advtransfer-jobs-")
    path = str(Path(folder) / "socket")
    process = subprocess.Popen(
        [sys.executable, "-c", f"from advtransfer.jobserver import serve; serve({folder!r}, {os.getpid()})"],
        cwd=str(Path(__file__).resolve().parents[1]),
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in environ.items() if k != SOCKET_ENV},
    )
    process.folder = folder
    deadline = time.monotonic() + 30  # bound before the first job asks (it binds before importing anything)
    while not Path(path).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    environ[SOCKET_ENV] = path
    return process


def stop(process, environ: dict[str, str] | None = None) -> None:
    """Stop the server `start` returned (None: nothing to do); it removes its socket's folder as it exits (one
    that does not within 10 s is killed, and its folder removed here)."""
    environ = os.environ if environ is None else environ
    environ.pop(SOCKET_ENV, None)
    if process is None:
        return
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        import shutil

        shutil.rmtree(process.folder, ignore_errors=True)
