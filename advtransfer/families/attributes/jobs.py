"""An attributes experiment's config block as jobs (Liang et al. 2021, Section 4.3, Table 1): its checks, its
network jobs for the shared stages and the files rule `all` asks for. No torch.

An attributes block trains one binary classifier per attribute (each a data set labelling the same images:
``shapes_is_large``, ``celeba_smiling``, ...) and seed, and an identity classifier as the reference (e.g.
``shapes_identity``: shape x hue bin x scale bin; ``celeba_identity``). Every attribute model is evaluated
against the reference by the shared stages (virtual adversarial PGD, tau1 / tau2 / alpha at features and
logits, cross adversarial loss) and by identity probes on its frozen features, scored on held-out images of
the same identities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer.designs import few_shot_column, transfer_jobs
from advtransfer.names import class_names, image_set

OUTPUTS = ("attributes.csv", "design.csv", "correlations.csv", "identity_check.csv", "table.md", "table.tex",
           "attributes.png", "attributes.pdf")  # fmt: skip


def attribute_name(dataset: str) -> str:
    """The attribute a data set labels: its name without the image set's prefix (``shapes_is_red`` -> ``is_red``)."""
    return dataset.removeprefix(f"{image_set(dataset)}_")


def target_classes(block: dict[str, Any]) -> list[str]:
    """The reference's classes: ``target.classes``, or every class of the target data set when null."""
    classes = block["target"].get("classes")
    return list(classes) if classes else list(class_names(block["target"]["dataset"]))


def knowledge_outcomes(block: dict[str, Any]) -> list[str]:
    """The knowledge-transfer columns of an attributes summary: the k-shot identity probes by ascending k,
    then the probe on all labelled target images (target test accuracies)."""
    return [few_shot_column(k) for k in sorted(block["probe"]["shots"])] + ["probe_accuracy"]


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each problem of a validated attributes block the schema cannot express."""
    problems = []
    unknown = sorted(set(block["identity_defining"]) - set(block["source_datasets"]))
    if unknown:
        problems.append(("identity_defining", f"{unknown} are not among source_datasets"))
    names = [attribute_name(d) for d in block["source_datasets"]]
    if len(set(names)) != len(names):
        problems.append(("source_datasets", f"two data sets name the same attribute: {names}"))
    shared = [d for d in block["source_datasets"] if image_set(d) == image_set(block["target"]["dataset"])]
    if shared and block["split"]["source_pool_fraction"] is None:
        problems.append(("split.source_pool_fraction", f"{shared} label the target's images; set a fraction (e.g. "
                         "0.5) so the identity reference and probes get images no attribute model saw"))  # fmt: skip
    if block["outcome"] not in knowledge_outcomes(block):
        problems.append(("outcome", f"{block['outcome']!r} is not one of {knowledge_outcomes(block)}"))
    return problems


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete a block."""


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []  # its network jobs name theirs


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised network jobs (rules/common.smk, NETWORKS) of one attributes block: one source per
    attribute data set (all its classes) and seed, the identity reference, one evaluation per source."""
    sources = {attribute_name(d): (d, list(class_names(d))) for d in block["source_datasets"]}
    target = {**block["target"], "classes": target_classes(block)}
    return transfer_jobs({**block, "target": target}, sources)
