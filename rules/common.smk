# Shared helpers for the rules: library code hashes and GPU requests.
# (Scripts import the library from this checkout through scripts/_library_path.py.)
import ast
import hashlib
from pathlib import Path

BASE = Path(workflow.basedir)
LIBRARY = BASE / "advtransfer"


def _library_imports(source):
    """Names of the advtransfer modules that a Python source imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] == "advtransfer":
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "advtransfer" and len(parts) > 1:
                    found.add(parts[1])
    return {name for name in found if (LIBRARY / f"{name}.py").exists()}


def code_hash(script):
    """Hash of the library modules that ``script`` imports, transitively.

    Snakemake tracks a rule's own script but not what it imports; passing this hash as a param makes an
    edit of e.g. advtransfer/metrics.py rerun exactly the jobs whose scripts depend on it.
    """
    todo = _library_imports((BASE / script).read_text())
    seen = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= _library_imports((LIBRARY / f"{name}.py").read_text()) - seen
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + (LIBRARY / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


def gpu_request():
    """gpu=1 for rules that differentiate networks when config `device` is cuda (never probed here)."""
    return 1 if config["device"] == "cuda" else 0
