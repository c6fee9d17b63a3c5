"""The exact environment and the project's metadata: the lock file pins what the conda environments pin, every
result records the lock's hash, and the license and citation files are valid."""

import hashlib
import json
import re
import tomllib

import pytest
import yaml

from advtransfer.runtime import LOCK_FILE, environment
from tests.workflow_helpers import REPO


def locked_versions() -> dict[str, str]:
    """Package -> version of requirements.lock for Python 3.11 on Linux (the entry without a marker, or the one
    whose marker admits Python < 3.12)."""
    versions = {}
    for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]*))?", LOCK_FILE.read_text(), re.M):
        name, version, marker = m[1].lower().replace("_", "-"), m[2], m[3] or ""
        if not marker or "< '3.12'" in marker or "3.12" not in marker:
            versions.setdefault(name, version)
    return versions


def test_the_lock_pins_every_dependency_with_hashes():
    text = LOCK_FILE.read_text()
    assert "uv pip compile pyproject.toml" in text.splitlines()[1]  # the command that regenerates it
    locked = locked_versions()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        name = re.split(r"[<>=~!\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} (pyproject) is not in requirements.lock: run `make lock`"
    entries = re.split(r"\n(?=[A-Za-z])", text)[1:]  # one block per pinned package
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M)) > 100
    unhashed = [e.split()[0] for e in entries if "--hash=sha256:" not in e]
    assert not unhashed, f"entries without hashes: {unhashed}"


@pytest.mark.parametrize("env", ["torch", "plot"])
def test_conda_environments_pin_the_locked_versions(env):
    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    locked = locked_versions()
    for pin in pip:
        name, version = pin.split("==")
        assert locked[name.lower()] == version, f"envs/{env}.yaml pins {pin}, requirements.lock {locked[name.lower()]}"


def test_results_record_the_lock_files_hash(tmp_path):
    import torch

    from advtransfer.io import load_json, save_model

    env = environment()
    assert env["lock_sha256"] == hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    assert env["torch"] == torch.__version__.split("+")[0] and env["python"].startswith("3.")
    save_model(tmp_path / "m.safetensors", torch.nn.Linear(2, 2), {"seed": 0})
    assert load_json(tmp_path / "m.json")["environment"] == env


def test_citation_file_is_valid_and_names_the_papers():
    import jsonschema

    schema = json.loads((REPO / "tests/data/citation-file-format-1.2.0.schema.json").read_text())
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    citation["date-released"] = str(citation["date-released"])  # YAML reads a date; the schema wants its text
    jsonschema.Draft7Validator(schema).validate(citation)
    titles = " ".join(r["title"] for r in citation["references"])
    for paper in ("adversarial transferability and knowledge transferability", "adversarial robustness transferable",
                  "robust representation matching", "randomized smoothing", "game-theoretic", "LEEP", "LogME"):
        assert paper in titles, paper


def test_license_is_stated_in_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and "MIT License" in (REPO / "LICENSE").read_text().splitlines()[0]
    assert yaml.safe_load((REPO / "CITATION.cff").read_text())["license"] == "MIT"


def test_pre_commit_runs_the_linters_of_make_lint():
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    entries = {h["id"]: h["entry"].removeprefix(".venv/bin/") for h in hooks}
    makefile = (REPO / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:"):].split("\n\n")[0]
    for command in entries.values():
        assert f"$(BIN)/{command}" in lint, command
    assert set(entries) == {"ruff", "snakefmt", "snakemake-lint"}
    assert "make lint" in (REPO / ".ci/run").read_text() and "make test" in (REPO / ".ci/run").read_text()


def _rule_scripts(env: str) -> set[str]:
    """The scripts of the rules that run in conda environment ``env`` (envs/<env>.yaml)."""
    scripts = set()
    for rules in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for block in re.split(r"\n(?=rule |checkpoint )", rules.read_text()):
            script = re.search(r'script:\s*"\.\./(scripts/[\w/]+\.py)"', block)
            if script and f'"../envs/{env}.yaml"' in block:
                scripts.add(script[1])
    return scripts


_DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow"}


@pytest.mark.parametrize("env", ["torch", "plot"])
def test_conda_environments_hold_every_package_their_scripts_import(env):
    """A rule's conda environment must install every third-party package its script imports, transitively
    through the library (a job run with --use-conda fails on a missing one, which a venv run never shows)."""
    import ast
    import sys

    from advtransfer.code import OWN_PACKAGES, imports

    scripts = _rule_scripts(env)
    assert scripts, f"no rule runs in envs/{env}.yaml"
    todo, seen = {REPO / s for s in scripts}, set()
    while todo:
        path = todo.pop()
        seen.add(path)
        todo |= imports(REPO, path) - seen
    names = set()
    for path in seen:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    helpers = {p.stem for p in (REPO / "scripts").glob("*.py")}
    third_party = names - set(sys.stdlib_module_names) - set(OWN_PACKAGES) - helpers - {"snakemake", "timm", "__main__"}
    spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
    pinned = {p.split("==")[0].lower() for p in next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))}
    missing = sorted(n for n in third_party if _DISTRIBUTIONS.get(n, n).lower() not in pinned)
    assert not missing, f"envs/{env}.yaml lacks {missing}, imported by the scripts of its rules"
