"""Which code a job runs, as a hash for its params: Snakemake tracks a rule's own script but not the modules it
imports, so the rules pass the hash of every module of this checkout a script imports, transitively, and an edit
of e.g. advtransfer/metrics.py reruns exactly the jobs whose scripts depend on it. Plain Python: the workflow
computes these while it builds the DAG."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

OWN_PACKAGES = ("advtransfer", "tests")  # packages of this checkout; other names are helpers in scripts/


def module_file(base: Path, dotted: str) -> Path | None:
    """The file of a module of the checkout at ``base`` (a package of OWN_PACKAGES, or a helper in scripts/),
    or None for anything else (the standard library, installed packages)."""
    parts = dotted.split(".")
    root = base if parts[0] in OWN_PACKAGES else base / "scripts"
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def imports(base: Path, path: Path) -> set[Path]:
    """Files of the checkout's modules that the Python file ``path`` imports, with the packages above them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        for module in modules:
            parts = module.split(".")
            for end in range(1, len(parts) + 1):
                file = module_file(base, ".".join(parts[:end]))
                if file is not None:
                    found.add(file)
    return found


def closure_hash(base: Path, start: Iterable[Path]) -> str:
    """Hash of the files ``start`` and of the checkout's modules they import, transitively."""
    todo, seen = set(start), set()
    while todo:
        path = todo.pop()
        seen.add(path)
        todo |= imports(base, path) - seen
    digest = hashlib.sha256()
    for path in sorted(seen):
        digest.update(str(path.relative_to(base)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def script_hash(base: Path, script: str) -> str:
    """Hash of the modules (and script helpers) that the script ``script`` imports, transitively."""
    return closure_hash(base, imports(base, base / script))


def import_path_hash(base: Path, path: str) -> str:
    """Hash of the module an import path names (``package.module:function``, e.g. a registry entry the scripts
    load by name, which a script's hash cannot follow) and of what it imports; "" for a module elsewhere."""
    dotted = str(path).partition(":")[0]
    file = module_file(base, dotted) if dotted else None
    return closure_hash(base, {file}) if file else ""


def file_hash(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path else ""
