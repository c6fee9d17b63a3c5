"""Process set-up shared by the workflow's scripts: log file, threads, seeds, device."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch


def configure(log_path: str | os.PathLike | None, threads: int = 1) -> logging.Logger:
    """Send stdout, stderr and logging to ``log_path`` (the rule's log) and use ``threads`` CPU threads."""
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
        sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    torch.set_num_threads(max(1, int(threads)))
    return logging.getLogger("advtransfer")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> cuda if available else cpu; anything else -> ``torch.device(device)``.

    The only place the library looks at the machine: for ``'auto'``, and to fail early with a clear
    message when CUDA is requested on a machine without it.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} requested but this machine has no CUDA; use 'cpu' or 'auto'")
    return resolved


def generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded from config (all random draws go through explicit generators)."""
    return torch.Generator().manual_seed(int(seed))


LOCK_FILE = Path(__file__).resolve().parents[1] / "requirements.lock"
"""The exact environment of this checkout (uv pip compile; README "Exact environments")."""

_ENVIRONMENT_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pandas", "snakemake")


def environment() -> dict[str, str | None]:
    """What made a result: Python's and the key packages' versions and the SHA-256 of the lock file the
    environment was installed from (None when the library runs outside a checkout that has one)."""
    import hashlib
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _ENVIRONMENT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    lock = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest() if LOCK_FILE.is_file() else None
    return {**versions, "lock_sha256": lock}
