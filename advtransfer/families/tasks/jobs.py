"""A tasks experiment's config block as jobs (Liang et al. 2021, Section 4.4): its checks, the files rule `all`
asks for and the inputs of its rules. No torch: the workflow builds its DAG with it.

A block either trains one shapes-world network per task (``tasks``) or takes a user's ``zoo`` of task networks
with its images; the family's own rules (rules/tasks.smk) attack them, measure tau between them and, for the
shapes world, the knowledge-transfer affinity.

A zoo is a list of models the user brings, each entry {name, model, weights} plus the keys its family needs,
built by one loader (advtransfer.zoo.load_zoo_model). A tasks zoo entry adds ``kind`` and ``output`` (and
``num_classes`` for a model-registry classifier); each is one task network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer.paths import dataset_marker

OUTPUTS = ("atm.csv", "tau_matrix.csv", "affinity.csv", "trees.csv", "table.md", "table.tex", "figure4.png",
           "figure4.pdf")  # fmt: skip


def is_zoo(block: Mapping[str, Any]) -> bool:
    """Whether a tasks block names a user's model zoo (``zoo``) rather than shapes-world ``tasks``."""
    return bool(block.get("zoo"))


def task_names(block: Mapping[str, Any]) -> list[str]:
    """The tasks of a block in the matrices' order: its shapes-world ``tasks`` or its zoo entries' names."""
    return [e["name"] for e in block["zoo"]] if is_zoo(block) else list(block["tasks"])


def task_kinds(block: Mapping[str, Any]) -> dict[str, str]:
    """{task: kind}: the registry's kinds of the shapes-world tasks, or the zoo entries' declared kinds."""
    from advtransfer.registry import TASKS

    return {e["name"]: e["kind"] for e in block["zoo"]} if is_zoo(block) else {t: TASKS[t].kind for t in block["tasks"]}


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each problem of a validated tasks block the schema cannot express."""
    from advtransfer.names import check_task_names

    problems = []
    if bool(block.get("tasks")) == is_zoo(block):
        return [("tasks", "give either `tasks` (shapes-world task names) or `zoo` (your task networks), not both")]
    images = block["images"]
    if is_zoo(block):
        names = task_names(block)
        if len(set(names)) != len(names):
            problems.append(("zoo", f"two entries share a name: {names}"))
        problems += zoo_problems(block["zoo"])
        missing = [k for k in ("dataset", "image_size") if k not in images]
        if missing:
            problems.append(("images", f"a zoo needs images.{' and images.'.join(missing)} (e.g. dataset: "
                             "imagefolder:/path/to/images, image_size: 64)"))  # fmt: skip
    else:
        try:
            check_task_names(block["tasks"])
        except ValueError as err:
            problems.append(("tasks", str(err)))
        missing = [k for k in ("n_train", "n_val") if k not in images]
        if missing or "train" not in block:
            problems.append(("images" if missing else "train", "shapes-world tasks are trained here: give images."
                             "n_train, images.n_val and a train block"))  # fmt: skip
        if "dataset" in images or "image_size" in images:
            problems.append(("images", "images.dataset and images.image_size are for a zoo; the shapes world is 32x32"))
    return problems


def zoo_problems(zoo: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(key, message) for each zoo entry whose ``model`` does not fit its ``num_classes`` (the schema checks each
    key alone; advtransfer.zoo.zoo_entry checks the same when the entries are loaded): a model-registry classifier
    (a built-in, ``torchvision:<arch>``, ``timm:<name>``) needs ``num_classes``, and ``num_classes`` makes a
    classifier, whose output is ``classes``."""
    from advtransfer.registry import MODEL_PREFIXES, MODELS

    problems = []
    for index, entry in enumerate(zoo):
        where, model = f"entry {entry['name']!r}", entry["model"]
        if "num_classes" not in entry and (model in MODELS or model.startswith(MODEL_PREFIXES)):
            problems.append((f"zoo.{index}.num_classes", (
                f"{where}: model {model!r} is a model-registry classifier: give its num_classes (with output: "
                "classes), or name a package.module:function that, called with no arguments, returns the network"
            )))  # fmt: skip
        elif "num_classes" in entry and entry["output"] != "classes":
            problems.append((f"zoo.{index}.output", (
                f"{where}: num_classes builds a classifier through the model registry (logits (B, num_classes)), so "
                f"its output is classes, not {entry['output']!r}; drop num_classes, or set output: classes"
            )))  # fmt: skip
    return problems


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete a block."""


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    """The family's files; a zoo has no affinity (it brings no labels)."""
    return [f"results/{name}/{file}" for file in OUTPUTS if not (is_zoo(block) and file == "affinity.csv")]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> None:
    return None  # the family's own rules train and evaluate its networks


def datasets(block: Mapping[str, Any]) -> list[str]:
    """The images the family's rules read: the shapes world, or the zoo's data set."""
    return [block["images"]["dataset"] if is_zoo(block) else "shapes"]


def task_models(block: Mapping[str, Any], name: str) -> list[str]:
    """Every task network of a block, as inputs of its jobs: the trained shapes-world networks, or the local
    weight files of a zoo (so replacing one reruns the matrices)."""
    if is_zoo(block):
        return [e["weights"] for e in block["zoo"] if e.get("weights")]
    return [f"results/{name}/models/{task}.safetensors" for task in block["tasks"]]


def task_images(block: Mapping[str, Any]) -> str:
    """The marker of the images a block reads."""
    return dataset_marker(datasets(block)[0])
