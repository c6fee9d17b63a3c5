"""Content digests of results (no torch: the Snakefile's end-of-run summary reads them too). The job that writes a
result records its SHA-256 beside it (``.<name>.sha256``, ``advtransfer.io.atomic_path``); every reader checks it,
so a result changed, emptied or corrupted behind the workflow's back (even with its modification time kept) is
named, not trusted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def digest_path(path: str | os.PathLike) -> Path:
    """Where the digest of ``path``'s content is recorded by the job that wrote it: ``.<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.sha256")


def rerun_advice(path: str | os.PathLike) -> str:
    """How to rewrite one broken result: force its own job (deleting it alone is not enough: Snakemake does not
    rerun a job for a missing intermediate file while what depends on it is up to date); the usual command then
    reruns what depends on it."""
    return f"rewrite it with `snakemake --cores 1 --force {path}`, then run your usual command"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def check_digest(path: str | os.PathLike):
    """Refuse a result whose content is not what the job that wrote it recorded (ValueError naming the file):
    changed by hand, emptied, corrupted, or written by something other than this workflow; FileNotFoundError
    when the result itself is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (rerun the rule that produces it)")
    record = digest_path(path)
    fix = rerun_advice(path)
    if not record.is_file():
        raise ValueError(f"{path}: no content digest recorded beside it ({record.name}): it was not written by a "
                         f"job of this workflow; {fix}")  # fmt: skip
    if record.read_text().strip() != file_digest(path):
        raise ValueError(f"{path}: its content changed after the job that wrote it finished (its SHA-256 differs from "
                         f"the one recorded in {record.name}); {fix}")  # fmt: skip
