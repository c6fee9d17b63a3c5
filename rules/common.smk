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
    """gpu=1 for rules that train, attack or differentiate networks when config `device` is cuda or auto.

    Decided by config, never by probing the machine that builds the DAG (a login node has no GPU).
    With `auto` the job asks for a GPU and uses it if the machine running it has one.
    """
    return 1 if config["device"] in ("cuda", "auto") else 0


SCENARIOS = config["scenarios"]


def check_config():
    """Checks the JSON schema cannot express; each failure names the config key and the fix."""
    for name in config["experiments"]:
        if name != "synthetic" and name not in SCENARIOS:
            raise WorkflowError(
                f"config key experiments: unknown experiment {name!r}; use 'synthetic' or one of "
                f"the scenarios {sorted(SCENARIOS)}"
            )
    if not SCENARIOS:
        return
    from advtransfer import names  # names only: no torch import at every start

    for name, scenario in SCENARIOS.items():
        key = f"scenarios.{name}"
        checks = [
            (f"{key}.sources.{s}", scenario["source_dataset"], c)
            for s, c in scenario["sources"].items()
        ]
        checks.append(
            (
                f"{key}.target.classes",
                scenario["target"]["dataset"],
                scenario["target"]["classes"],
            )
        )
        for where, dataset, classes in checks:
            try:
                names.class_indices(dataset, classes)
            except ValueError as err:
                raise WorkflowError(f"config key {where}: {err}") from None
        unknown = [
            d
            for d in scenario["target"]["domain"].split("+")
            if d.strip() not in names.DOMAIN_NAMES
        ]
        if unknown:
            raise WorkflowError(
                f"config key {key}.target.domain: unknown domain {unknown}; use one of {list(names.DOMAIN_NAMES)} "
                "or several joined by '+'"
            )
        same = names.canonical_dataset(
            scenario["source_dataset"]
        ) == names.canonical_dataset(scenario["target"]["dataset"])
        if same and scenario["split"]["source_pool_fraction"] is None:
            raise WorkflowError(
                f"config key {key}.split.source_pool_fraction: sources and target both use "
                f"{scenario['source_dataset']}; set a fraction (e.g. 0.5) so the target gets images no source sees"
            )


def scenario_param(*keys):
    """Params function: the value at scenarios.{scenario}.<keys> for a job's scenario wildcard."""

    def get(wildcards):
        value = SCENARIOS[wildcards.scenario]
        for key in keys:
            value = value[key]
        return value

    return get


def source_classes(wildcards):
    return SCENARIOS[wildcards.scenario]["sources"][wildcards.source]


def scenario_jobs(pattern, scenario):
    """``pattern`` expanded over every source and seed of ``scenario``."""
    s = SCENARIOS[scenario]
    return expand(
        pattern, scenario=scenario, source=list(s["sources"]), seed=s["seeds"]
    )


def dataset_marker(role):
    """Input function: the `dataset` rule's marker of the scenario's source or target data set."""

    def get(wildcards):
        s = SCENARIOS[wildcards.scenario]
        name = s["source_dataset"] if role == "source" else s["target"]["dataset"]
        return f"results/datasets/{name}.json"

    return get


def experiment_outputs(name):
    """The files rule `all` asks for, per experiment."""
    if name == "synthetic":
        files = ["sweep.csv", "summary.csv", "figure2.png", "figure2.pdf"]
    else:
        files = [
            "summary.csv",
            "correlations.csv",
            "table.md",
            "table.tex",
            "figure3.png",
            "figure3.pdf",
        ]
    return [f"results/{name}/{f}" for f in files]
