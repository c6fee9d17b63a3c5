# Shared by every rule: config checks against the registries, the normalised description of the network
# jobs of every experiment, params taken from it, library code hashes and GPU requests. Nothing here
# imports torch (advtransfer.names and advtransfer.registry are plain Python).
import ast
import hashlib
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import yaml

from advtransfer import (
    affinity,
    attributes,
    families,
    interaction_jobs,
    names,
    robustness,
    scenarios,
    selection_jobs,
)
from advtransfer import claims as claims_protocol
from advtransfer.registry import DATASETS, MODELS, OBJECTIVES
from advtransfer.registry import TASKS as TASK_SPECS

BASE = Path(workflow.basedir)
SCRIPTS = BASE / "scripts"


# ------------------------------------------------------------------------------------ config checks
def validate_config(schema="schemas/config.schema.yaml"):
    """Validate ``config`` against the schema with the registries' names filled in, then check names.

    The schema's data-set, model and objective enums are the registry keys (advtransfer/registry.py):
    there is no second list. The open forms (``imagefolder:<folder>``, ``torchvision:<arch>``,
    ``timm:<name>``, ``package.module:function``) are accepted by pattern.
    """
    with open(BASE / schema) as stream:
        filled = yaml.safe_load(stream)
    defs = filled["$defs"]
    defs["dataset_name"] = {
        "anyOf": [
            {"enum": list(DATASETS)},
            {"type": "string", "pattern": "^imagefolder:.+"},
        ]
    }
    defs["model_name"] = {
        "anyOf": [
            {"enum": list(MODELS)},
            {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:.+$"},
        ]
    }
    defs["objective_name"] = {"enum": list(OBJECTIVES)}
    check_names()  # before the schema: its messages name the key and the choices
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.schema.json"
        path.write_text(json.dumps(filled))
        validate(config, str(path))
    check_config()


def _fail(key, err):
    raise WorkflowError(f"config key {key}: {err}")


def check_names():
    """Data-set, class, model and objective names of every scenario, against the registries."""
    blocks = config.get("scenarios")
    for name, s in (blocks if isinstance(blocks, dict) else {}).items():
        if not isinstance(s, dict):
            continue  # the schema names it
        key = f"scenarios.{name}"
        target = s.get("target") if isinstance(s.get("target"), dict) else {}
        model = s.get("model")
        model = model.get("name") if isinstance(model, dict) else model
        checks = [
            (f"{key}.source_dataset", s.get("source_dataset"), names.canonical_dataset),
            (f"{key}.target.dataset", target.get("dataset"), names.canonical_dataset),
            (f"{key}.model", model, names.check_model_name),
            (f"{key}.objective", s.get("objective"), names.check_objective_name),
        ]
        for where, value, check in checks:
            if isinstance(value, str):
                try:
                    check(value)
                except ValueError as err:
                    _fail(where, err)


def check_config():
    """Checks the JSON schema cannot express; each failure names the config key and the fix."""
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
                _fail(where, err)
        unknown = [
            d
            for d in scenario["target"]["domain"].split("+")
            if d.strip() not in names.DOMAIN_NAMES
        ]
        if unknown:
            _fail(
                f"{key}.target.domain",
                f"unknown domain {unknown}; use one of {list(names.DOMAIN_NAMES)} or several joined by '+'",
            )
        same = names.image_set(scenario["source_dataset"]) == names.image_set(
            scenario["target"]["dataset"]
        )
        if same and scenario["split"]["source_pool_fraction"] is None:
            _fail(
                f"{key}.split.source_pool_fraction",
                f"sources and target both use the images of {scenario['source_dataset']}; set a fraction (e.g. 0.5) "
                "so the target gets images no source sees",
            )
        outcomes = scenarios.knowledge_outcomes(scenario)
        if scenario["outcome"] not in outcomes:
            _fail(
                f"{key}.outcome",
                f"{scenario['outcome']!r} is not one of this scenario's knowledge outcomes {outcomes}",
            )


SCENARIOS = config.get("scenarios") or {}


# ---------------------------------------------------------------------------- network jobs (generic)
# Every experiment that trains networks is described, per job, in NETWORKS[experiment]:
#   "datasets":    data-set names it reads (each gets one `dataset` job)
#   "splits":      {split: {dataset, classes, pool, val_fraction, max_train_per_class, test,
#                           max_test_per_class, seed, min_labelled_per_class (optional)}}
#                                                                         -> splits/{split}.safetensors
#   "models":      {model: {split, dataset, classes, domain, domain_seed, architecture, image_size,
#                           channels, objective, objective_params, train, seed, teacher (optional:
#                           the model whose frozen copy an objective such as rrm reads)}}
#                                                                         -> models/{model}.safetensors
#   "evaluations": {evaluation: {source, reference, split, target: {dataset, classes, domain,
#                                domain_seed}, image_size, channels, seed, labels, attack, metrics,
#                                probe, finetune, files (optional: {source, reference, split} -> the
#                                file stems when they are another experiment's, e.g. a zoo's)}}
#                                (labels: the family's row labels, e.g. {source, seed})
#                                -> attacks/, metrics/, probes/, finetunes/{evaluation}.*
# A family's rules file registers them (add_experiment), built from its config block by its library
# module (e.g. advtransfer.scenarios.network_jobs, torch-free); the generic rules in
# rules/networks.smk take every param from here, one job's entry at a time, so an edit reruns exactly
# the jobs whose entry changed.
NETWORKS = {}
OUTPUTS = {}  # experiment -> the files rule `all` asks for
# experiment -> the data sets its family's own rules read (besides its network jobs')
OWN_DATASETS = {}


def add_experiment(experiment, outputs, networks=None, datasets=()):
    """Register an experiment (a family's rules file does, for each of its config blocks): the files rule
    `all` asks for and, for a family that trains networks, its normalised network jobs (see above); a
    family with rules of its own names the data sets they read in ``datasets`` (each gets a `dataset` job).
    """
    if experiment in OUTPUTS:
        raise WorkflowError(f"experiment {experiment!r} is registered twice")
    OUTPUTS[experiment] = outputs
    if networks is not None:
        NETWORKS[experiment] = networks
    OWN_DATASETS[experiment] = list(datasets)


def check_experiments():
    """Every name in config `experiments` is a registered experiment (run after the families' files)."""
    for name in config["experiments"]:
        if name not in OUTPUTS:
            _fail(
                "experiments",
                f"unknown experiment {name!r}; use one of {sorted(OUTPUTS)} (add a scenario under "
                "`scenarios:` to run your own)",
            )


def evaluation_files(pattern, wildcard="scenario"):
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


def evaluation_labels(wildcards, wildcard="scenario"):
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


def dataset_key(name):
    """File-name key of a data set's files: its image set (one `dataset` job for every labelling of the same
    images, e.g. the shapes world's), or imagefolder_<hash> for a folder."""
    name = names.canonical_dataset(name)
    if names.is_imagefolder(name):
        folder = str(names.imagefolder_root(name).resolve())
        return f"imagefolder_{hashlib.sha256(folder.encode()).hexdigest()[:10]}"
    return names.image_set(name)


def dataset_names():
    """{key: data-set name} of every image set an experiment of this config reads; for labellings of the
    same images, the first of them in the registry (whichever the config uses, so the job never changes).
    """
    used = [d for description in NETWORKS.values() for d in description["datasets"]]
    used += [d for datasets in OWN_DATASETS.values() for d in datasets]
    keys = {dataset_key(d): names.canonical_dataset(d) for d in used}
    return {
        key: next((n for n in DATASETS if dataset_key(n) == key), name)
        for key, name in keys.items()
    }


def dataset_marker(dataset):
    return f"results/datasets/{dataset_key(dataset)}.json"


def split_inputs(wildcards):
    """A split job's inputs: the markers of the data sets it reads (its own, and the pool's partner)."""
    entry = NETWORKS[wildcards.experiment]["splits"][wildcards.split]
    used = [entry["dataset"]] + ([entry["pool"]["with"]] if entry["pool"] else [])
    return sorted({dataset_marker(d) for d in used})


def model_inputs(wildcards):
    """A train job's inputs: its split, its data set's marker and, for a student (rrm), its teacher model."""
    entry = NETWORKS[wildcards.experiment]["models"][wildcards.model]
    out = {
        "split": f"results/{wildcards.experiment}/splits/{entry['split']}.safetensors",
        "dataset": dataset_marker(entry["dataset"]),
    }
    if entry.get("teacher"):
        out["teacher"] = (
            f"results/{wildcards.experiment}/models/{entry['teacher']}.safetensors"
        )
        out["teacher_info"] = (
            f"results/{wildcards.experiment}/models/{entry['teacher']}.json"
        )
    return out


def evaluation_inputs(*roles):
    """Input function of attack / metrics / probe / finetune: the split, target data and the models of ``roles``
    (source, reference), plus the attack's adversarial examples when "attack" is among them.
    """

    def get(wildcards):
        x = wildcards.experiment
        e = NETWORKS[x]["evaluations"][wildcards.evaluation]
        files = {  # an evaluation of models built elsewhere (a model-selection zoo) names them in full
            "split": f"results/{x}/splits/{e['split']}",
            **{r: f"results/{x}/models/{e[r]}" for r in ("source", "reference")},
            **e.get("files", {}),
        }
        out = {
            "split": f"{files['split']}.safetensors",
            "dataset": dataset_marker(e["target"]["dataset"]),
        }
        for role in roles:
            if role == "attack":
                out["attack"] = (
                    f"results/{x}/attacks/{wildcards.evaluation}.safetensors"
                )
                continue
            out[role] = f"{files[role]}.safetensors"
            out[f"{role}_info"] = f"{files[role]}.json"
        return out

    return get


# --------------------------------------------------------------------------------------- code hashes
def _module_file(dotted):
    """The file of a module of this checkout (advtransfer.* or a helper in scripts/), or None."""
    parts = dotted.split(".")
    root = BASE if parts[0] == "advtransfer" else SCRIPTS
    for candidate in (
        root.joinpath(*parts).with_suffix(".py"),
        root.joinpath(*parts, "__init__.py"),
    ):
        if candidate.is_file():
            return candidate
    return None


def _imports(path):
    """Files of this checkout's modules that the Python file ``path`` imports: advtransfer modules and
    packages (with the packages above them) and helpers in scripts/. (The registries' import paths into
    advtransfer name readers, models and objectives that the scripts using them import directly.)
    """
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
                file = _module_file(".".join(parts[:end]))
                if file is not None:
                    found.add(file)
    return found


def _hash_closure(start):
    """Hash of the files ``start`` and of this checkout's modules they import, transitively."""
    todo, seen = set(start), set()
    while todo:
        path = todo.pop()
        seen.add(path)
        todo |= _imports(path) - seen
    digest = hashlib.sha256()
    for path in sorted(seen):
        digest.update(str(path.relative_to(BASE)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_hash(script):
    """Hash of the library modules (and script helpers) that ``script`` imports, transitively.

    Snakemake tracks a rule's own script but not what it imports; passing this hash as a param makes an
    edit of e.g. advtransfer/metrics.py or advtransfer/data/reading.py rerun exactly the jobs whose
    scripts depend on it.
    """
    return _hash_closure(_imports(BASE / script))


def import_path_hash(path):
    """Hash of the module a registry entry names (``advtransfer.robust:pgd_at``) and what it imports: an objective
    or model the scripts load by name, which code_hash cannot follow ("" for a module outside this checkout).
    """
    dotted = str(path).partition(":")[0]
    file = _module_file(dotted) if dotted else None
    return _hash_closure({file}) if file else ""


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
    path, which code_hash cannot follow, so an edit of e.g. advtransfer/shapes.py reruns the dataset job and,
    through its marker, every job downstream."""
    name = dataset_names()[wildcards.dataset]
    if names.is_imagefolder(name):
        return ""
    file = _module_file(DATASETS[name].reader.partition(":")[0])
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file else ""


def gpu_request():
    """gpu=1 for rules that train, attack or differentiate networks when config `device` is cuda or auto.

    Decided by config, never by probing the machine that builds the DAG (a login node has no GPU).
    With `auto` the job asks for a GPU and uses it if the machine running it has one.
    """
    return 1 if config["device"] in ("cuda", "auto") else 0


# ------------------------------------------------------------------------------------------- tasks
TASKS_BLOCKS = config.get("tasks") or {}


def task_models(wildcards):
    """Every task network of a tasks block, as inputs of its jobs. The trained shapes-world networks, or the local
    weight files of a zoo (so replacing one reruns the matrices)."""
    block = TASKS_BLOCKS[wildcards.tasks]
    if affinity.is_zoo(block):
        return [e["weights"] for e in block["zoo"] if e.get("weights")]
    return [
        f"results/{wildcards.tasks}/models/{task}.safetensors"
        for task in block["tasks"]
    ]


def task_images(wildcards):
    """The marker of the images a tasks block reads: the shapes world, or the zoo's data set."""
    block = TASKS_BLOCKS[wildcards.tasks]
    return dataset_marker(
        block["images"]["dataset"] if affinity.is_zoo(block) else "shapes"
    )


# -------------------------------------------------------------------------------------- robustness
ROBUSTNESS = config.get("robustness") or {}


def robustness_sources(wildcards):
    block = ROBUSTNESS[wildcards.robustness]
    return [
        robustness.source_name(scheme, seed)
        for scheme in block["schemes"]
        for seed in block["seeds"]
    ]


def retrain_inputs(wildcards):
    evaluation, _ = robustness.split_retrained(wildcards.retrained)
    e = NETWORKS[wildcards.robustness]["evaluations"][evaluation]
    return {
        "source": f"results/{wildcards.robustness}/models/{e['source']}.safetensors",
        "source_info": f"results/{wildcards.robustness}/models/{e['source']}.json",
        "split": f"results/{wildcards.robustness}/splits/target.safetensors",
        "dataset": dataset_marker(e["target"]["dataset"]),
    }


def robust_inputs(wildcards):
    """A robustness evaluation's model (a source, or a retrained target model), its split and data set."""
    r, name = wildcards.robustness, wildcards.name
    if name.startswith("target_"):
        return {
            "model": f"results/{r}/retrained/{name[len('target_'):]}.safetensors",
            "info": f"results/{r}/retrained/{name[len('target_'):]}.json",
            "split": f"results/{r}/splits/target.safetensors",
            "dataset": dataset_marker(ROBUSTNESS[r]["target"]["dataset"]),
        }
    return {
        "model": f"results/{r}/models/{name}.safetensors",
        "info": f"results/{r}/models/{name}.json",
        "split": f"results/{r}/splits/{NETWORKS[r]['models'][name]['split']}.safetensors",
        "dataset": dataset_marker(ROBUSTNESS[r]["source"]["dataset"]),
    }


def robust_data(wildcards):
    """Where a robustness evaluation's test images come from: the source task, or the target task's domain."""
    block = ROBUSTNESS[wildcards.robustness]
    target = wildcards.name.startswith("target_")
    side = block["target" if target else "source"]
    return {
        "dataset": side["dataset"],
        "domain": side["domain"] if target else "identity",
        "seed": block["split"]["seed"] if target else 0,
        "channels": block["channels"],
        "size": block["image_size"],
    }


def robust_seed(wildcards):
    name = wildcards.name
    if name.startswith("target_"):
        evaluation, _ = robustness.split_retrained(name[len("target_") :])
        return NETWORKS[wildcards.robustness]["evaluations"][evaluation]["seed"]
    return NETWORKS[wildcards.robustness]["models"][name]["seed"]


# ------------------------------------------------------------------------------------- interactions
INTERACTIONS = config.get("interactions") or {}


def interaction_names(wildcards):
    block = INTERACTIONS[wildcards.interactions]
    scenario = block["scenario"]
    return interaction_jobs.model_names(
        block,
        ROBUSTNESS[block["robustness"]],
        NETWORKS[scenario]["evaluations"] if scenario else (),
    )


def _scenario_evaluation(block, name):
    return NETWORKS[block["scenario"]]["evaluations"][name[len("scenario_") :]]


def interaction_inputs(wildcards):
    """A profile job's model, its sidecar, the split with its test images and the data set's marker."""
    block = INTERACTIONS[wildcards.interactions]
    if interaction_jobs.side_of(wildcards.name) != "scenario":
        return robust_inputs(
            SimpleNamespace(robustness=block["robustness"], name=wildcards.name)
        )
    s, e = block["scenario"], _scenario_evaluation(block, wildcards.name)
    return {
        "model": f"results/{s}/models/{e['source']}.safetensors",
        "info": f"results/{s}/models/{e['source']}.json",
        "split": f"results/{s}/splits/{e['split']}.safetensors",
        "dataset": dataset_marker(e["target"]["dataset"]),
    }


def interaction_data(wildcards):
    """Where a profile job's images come from and which labels score them (true, or the model's own)."""
    block = INTERACTIONS[wildcards.interactions]
    if interaction_jobs.side_of(wildcards.name) != "scenario":
        ns = SimpleNamespace(robustness=block["robustness"], name=wildcards.name)
        return {**robust_data(ns), "labels": "true"}
    e = _scenario_evaluation(block, wildcards.name)
    t = e["target"]
    return {
        "dataset": t["dataset"],
        "domain": t["domain"],
        "seed": t["domain_seed"],
        "channels": e["channels"],
        "size": e["image_size"],
        "labels": "own",
    }


def interaction_settings(wildcards):
    """A profile job's estimator, image count and attack settings (not the block's claims or sources)."""
    block = INTERACTIONS[wildcards.interactions]
    keys = (
        "grid",
        "ratios",
        "n_images",
        "n_pairs",
        "n_contexts",
        "score",
        "baseline",
        "attack",
        "batch_size",
        "seed",
    )
    return {k: block[k] for k in keys}


SELECTION = config.get("model_selection") or {}


def _selection_template(block):
    return selection_jobs.target_evaluation(NETWORKS[block["scenario"]])


def selection_candidates(wildcards):
    block = SELECTION[wildcards.selection]
    return selection_jobs.candidate_names(
        block, NETWORKS[block["scenario"]]["evaluations"]
    )


def selection_inputs(wildcards):
    """A scores job's model and sidecar (a scenario's source, or a zoo model: the files its evaluation names),
    the target split and its data set's marker: the inputs of the candidate's probe."""
    block = SELECTION[wildcards.selection]
    s, c = block["scenario"], wildcards.candidate
    own = block["scenario_sources"] and c in NETWORKS[s]["evaluations"]
    evaluation = SimpleNamespace(
        experiment=s if own else wildcards.selection, evaluation=c
    )
    inputs = evaluation_inputs("source")(evaluation)
    return {
        "model": inputs["source"],
        "info": inputs["source_info"],
        "split": inputs["split"],
        "dataset": inputs["dataset"],
    }


def selection_target(key):
    """Params function: the target task's ``key`` (target, image_size, channels) of a block's scenario."""
    return lambda w: _selection_template(SELECTION[w.selection])[key]


def selection_zoo_entry(wildcards):
    block = SELECTION[wildcards.selection]
    return next(e for e in block["zoo"] if e["name"] == wildcards.name)


def selection_summary_inputs(wildcards):
    """The candidates' scores, the scenario's summary (its sources' tau and outcomes), the zoo's metrics,
    probes and fine-tuning, and the reference's sidecar (its training time is part of tau's cost).
    """
    x, block = wildcards.selection, SELECTION[wildcards.selection]
    zoo = [selection_jobs.zoo_candidate(e["name"]) for e in block["zoo"]]
    template = _selection_template(block)
    return {
        "scores": [
            f"results/{x}/scores/{c}.json" for c in selection_candidates(wildcards)
        ],
        "scenario": (
            [f"results/{block['scenario']}/summary.csv"]
            if block["scenario_sources"]
            else []
        ),
        "zoo_metrics": [f"results/{x}/metrics/{c}.json" for c in zoo],
        "zoo_probes": [f"results/{x}/probes/{c}.json" for c in zoo],
        "zoo_finetunes": (
            [f"results/{x}/finetunes/{c}.json" for c in zoo]
            if block["zoo_finetune"]
            else []
        ),
        "reference": f"results/{block['scenario']}/models/{template['reference']}.json",
    }


# ------------------------------------------------------------------------------ claims and reproduction
FAMILIES = families.table(config)
EXPERIMENTS = {
    name: (family, block)
    for name, family, block in families.experiments(config, FAMILIES)
}


def declared_claims(name):
    """The claims of experiment ``name``: its family's declarations (config `claims`) with its block's own."""
    family, block = EXPERIMENTS[name]
    return claims_protocol.declarations(
        config["claims"].get(family.name), (block or {}).get("claims")
    )


def check_claims():
    """Every experiment's declared claims are claims of its family, and its family accepts their views."""
    for name, (family, block) in EXPERIMENTS.items():
        code = family.load()
        where = f"{family.key}.{name}" if not family.single else family.key
        for key, problem in claims_protocol.declaration_problems(
            config["claims"].get(family.name), (block or {}).get("claims"), code.CLAIMS
        ):
            _fail(f"{where}.{key}", problem)
        unknown = sorted(
            set(config["claims"].get(family.name) or {}) - set(code.CLAIMS)
        )
        if unknown:
            _fail(
                f"claims.{family.name}",
                f"{unknown} are not claims of this family; its claims are {sorted(code.CLAIMS)}",
            )
        for key, problem in getattr(code, "claims_problems", lambda *a: [])(
            block, declared_claims(name), config
        ):
            _fail(f"{where}.claims.{key}", problem)


def claims_files(wildcards):
    """The tables a `claims` job reads: whatever its family's claims_inputs names."""
    family, block = EXPERIMENTS[wildcards.exp]
    return family.load().claims_inputs(wildcards.exp, block)


def reproduction_inputs(wildcards):
    """Every experiment of the run's claims, checks and fidelity table, in the run's order."""
    run = [name for name in config["experiments"] if name in EXPERIMENTS]
    return {
        kind: [f"results/{name}/{kind}.csv" for name in run]
        for kind in ("claims", "checks", "fidelity")
    }
