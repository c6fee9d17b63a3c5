# The generic machinery all the rules share (docs/architecture.md): the config checked against the schema and by
# each family, the families' experiments registered through the table of families, the normalised network jobs
# (NETWORKS) and the params taken from them, library code hashes and GPU requests. It names no family: each
# family's code is reached through advtransfer/families/__init__.py. Nothing here imports torch.
import sys
from pathlib import Path

BASE = Path(workflow.basedir)
SCRIPTS = BASE / "scripts"
if (
    str(BASE) not in sys.path
):  # a user's family module (config `families`) lives in this checkout
    sys.path.insert(0, str(BASE))

from advtransfer import claims as claims_protocol  # noqa: E402
from advtransfer import code  # noqa: E402
from advtransfer import config as configuration  # noqa: E402
from advtransfer import families  # noqa: E402
from advtransfer.paths import (
    dataset_key,
    dataset_marker,
    evaluation_paths,
)  # noqa: E402
from advtransfer.registry import DATASETS, MODELS, OBJECTIVES  # noqa: E402

try:
    configuration.check_families(config, BASE)
    FAMILIES = families.table(config)
except ValueError as err:
    raise WorkflowError(f"Error validating config: {err}") from None
BLOCKS = {}  # family name -> {experiment: its validated config block}
EXPERIMENTS = {}  # experiment -> (family, block)


# ------------------------------------------------------------------------------------ config checks
def _fail(key, err):
    raise WorkflowError(f"Error validating config: config key {key}: {err}")


def validate_config():
    """Validate ``config`` against the schema (schemas/config.schema.yaml with every family's block, the
    registries' names filled in, defaults filled), then let each family check its blocks and derive what it
    needs (its jobs module's normalise and config_problems hooks); every failure names the config key.
    """
    for key, problem in families.table_problems(FAMILIES, BASE):
        _fail(key, problem)
    try:
        configuration.validate(config, BASE, FAMILIES)
    except ValueError as err:
        raise WorkflowError(f"Error validating config: {err}") from None
    families.normalise(config, FAMILIES)
    for key, problem in families.config_problems(config, FAMILIES):
        _fail(key, problem)
    BLOCKS.update({family.name: family.blocks(config) for family in FAMILIES})
    EXPERIMENTS.update(
        {n: (f, b) for n, f, b in families.experiments(config, FAMILIES)}
    )


# ---------------------------------------------------------------------------- network jobs (generic)
# NETWORKS[experiment]: the normalised jobs of the shared network stages ("datasets", "splits", "models",
# "evaluations"; every key in docs/architecture.md, "The network jobs"), built by each family's jobs module from its
# config block; the rules in rules/networks.smk take every param from one job's entry, so an edit reruns exactly
# the jobs whose entry changed.
NETWORKS = {}
OUTPUTS = {}  # experiment -> the files rule `all` asks for
OWN_DATASETS = (
    {}
)  # experiment -> the data sets its family's own rules read (besides its network jobs')


def register_families():
    """Register every experiment of the config, family by family in the table's order (a family comes after
    those whose experiments it names): the files rule `all` asks for, its network jobs, its own data sets.
    """
    for name, (family, block) in EXPERIMENTS.items():
        jobs = family.load("jobs")
        if name in OUTPUTS:
            raise WorkflowError(f"experiment {name!r} is registered twice")
        OUTPUTS[name] = jobs.outputs(name, block)
        networks = jobs.network_jobs(name, block, NETWORKS)
        if networks is not None:
            NETWORKS[name] = networks
        OWN_DATASETS[name] = list(jobs.datasets(block))


def check_experiments():
    """Every name in config `experiments` is a registered experiment."""
    for name in config["experiments"]:
        if name not in OUTPUTS:
            _fail(
                "experiments",
                f"unknown experiment {name!r}; use one of {sorted(OUTPUTS)} (or add a block of your own "
                "under a family's key)",
            )


def evaluation_files(pattern, wildcard):
    """Input function of a family's summary: ``pattern`` ({experiment}, {evaluation}, {source},
    {reference}) over the evaluations of the experiment named by the ``wildcard`` wildcard.
    """

    def get(wildcards):
        experiment = wildcards[wildcard]
        return [
            pattern.format(experiment=experiment, evaluation=name, **entry)
            for name, entry in NETWORKS[experiment]["evaluations"].items()
        ]

    return get


def evaluation_labels(wildcards, wildcard):
    """Params of a family's summary: the ``labels`` of each evaluation, in the order of evaluation_files."""
    return [e["labels"] for e in NETWORKS[wildcards[wildcard]]["evaluations"].values()]


def network_job(kind, name_wildcard):
    """Params function: the whole entry NETWORKS[experiment][kind][wildcard] of a job."""

    def get(wildcards):
        return NETWORKS[wildcards.experiment][kind][wildcards[name_wildcard]]

    return get


def network_param(kind, name_wildcard, *keys):
    """Params function: one key (path) of a job's entry, e.g. network_param("models", "model", "train")."""
    whole = network_job(kind, name_wildcard)

    def get(wildcards):
        value = whole(wildcards)
        for key in keys:
            value = value[key]
        return value

    return get


def dataset_names():
    """{key: data-set name} of every image set an experiment of this config reads; for labellings of the
    same images, the first of them in the registry (whichever the config uses, so the job never changes).
    """
    from advtransfer.names import canonical_dataset

    used = [d for description in NETWORKS.values() for d in description["datasets"]]
    used += [d for datasets in OWN_DATASETS.values() for d in datasets]
    keys = {dataset_key(d): canonical_dataset(d) for d in used}
    return {
        key: next((n for n in DATASETS if dataset_key(n) == key), name)
        for key, name in keys.items()
    }


def dataset_inputs(wildcards):
    """A `dataset` job's inputs: for an image folder, its images (names.imagefolder_images), so that adding,
    removing or changing one reruns the job and, through its marker, everything that reads the data set.
    """
    from advtransfer.names import imagefolder_images, is_imagefolder

    name = dataset_names()[wildcards.dataset]
    return [str(p) for p in imagefolder_images(name)] if is_imagefolder(name) else []


def split_inputs(wildcards):
    """A split job's inputs: the markers of the data sets it reads (its own, and the pool's partner)."""
    entry = NETWORKS[wildcards.experiment]["splits"][wildcards.split]
    used = [entry["dataset"]] + ([entry["pool"]["with"]] if entry["pool"] else [])
    return sorted({dataset_marker(d) for d in used})


def model_inputs(wildcards):
    """A train job's inputs: its split, its data set's marker, the local weights it starts from (config
    `model.weights`) and, for a student (rrm), its teacher model."""
    x = wildcards.experiment
    entry = NETWORKS[x]["models"][wildcards.model]
    out = {
        "split": f"results/{x}/splits/{entry['split']}.safetensors",
        "dataset": dataset_marker(entry["dataset"]),
    }
    architecture = entry["architecture"]
    # the user's own weights file: replacing it retrains
    if isinstance(architecture, dict) and architecture.get("weights"):
        out["weights"] = architecture["weights"]
    if entry.get("teacher"):
        out["teacher"] = f"results/{x}/models/{entry['teacher']}.safetensors"
        out["teacher_info"] = f"results/{x}/models/{entry['teacher']}.json"
    return out


def evaluation_inputs(*roles):
    """Input function of attack / metrics / probe / finetune: the split, target data and the models of
    ``roles`` (source, reference), plus the attack's adversarial examples when "attack" is among them.
    """
    return lambda w: evaluation_paths(NETWORKS, w.experiment, w.evaluation, roles)


# --------------------------------------------------------------------------------------- code hashes
def code_hash(script):
    """Hash of the library modules (and script helpers) that ``script`` imports, transitively (advtransfer/code.py):
    a param, so that an edit of a module reruns exactly the jobs whose scripts depend on it.
    """
    return code.script_hash(BASE, script)


def import_path_hash(path):
    """Hash of the module an import path names and of what it imports (advtransfer/code.py)."""
    return code.import_path_hash(BASE, path)


def training_code(wildcards):
    """A train job's code beyond its script: the modules of its objective and of its architecture."""
    entry = NETWORKS[wildcards.experiment]["models"][wildcards.model]
    architecture = entry["architecture"]
    name = architecture.get("name") if isinstance(architecture, dict) else architecture
    return [
        import_path_hash(OBJECTIVES[entry["objective"]]),
        import_path_hash(MODELS.get(name, "")),
    ]


def reader_hash(wildcards):
    """Hash of the module that reads (or renders) a `dataset` job's data set: the registry names it by import
    path, which code_hash cannot follow, so an edit of a reader or renderer reruns the dataset job and,
    through its marker, every job downstream."""
    from advtransfer.names import is_imagefolder

    name = dataset_names()[wildcards.dataset]
    if is_imagefolder(name):
        return ""
    return code.file_hash(
        code.module_file(BASE, DATASETS[name].reader.partition(":")[0])
    )


def gpu_request():
    """gpu=1 for rules that train, attack or differentiate networks when config `device` is cuda or auto.

    Decided by config, never by probing the machine that builds the DAG (a login node has no GPU).
    With `auto` the job asks for a GPU and uses it if the machine running it has one.
    """
    return 1 if config["device"] in ("cuda", "auto") else 0


# ------------------------------------------------------------------------------ claims and reproduction
def declared_claims(name):
    """The claims of experiment ``name``: its family's declarations (config `claims`) with its block's own."""
    family, block = EXPERIMENTS[name]
    return claims_protocol.declarations(
        config["claims"].get(family.name), (block or {}).get("claims")
    )


def check_claims():
    """Every experiment's declared claims are claims of its family, and its family accepts their views."""
    for key, problem in claims_protocol.family_claims_problems(config, FAMILIES):
        _fail(key, problem)


def claims_files(wildcards):
    """The tables a `claims` job reads: whatever its family's claims_inputs names."""
    family, block = EXPERIMENTS[wildcards.exp]
    return family.load("claims").claims_inputs(wildcards.exp, block)


def reproduction_inputs(wildcards):
    """Every experiment of the run's claims, checks and fidelity table, in the run's order."""
    run = [name for name in config["experiments"] if name in EXPERIMENTS]
    return {
        kind: [f"results/{name}/{kind}.csv" for name in run]
        for kind in ("claims", "checks", "fidelity")
    }
