"""A data-distribution scenario's config block as jobs (Liang et al. 2021, Section 4.2): its checks, its network
jobs for the shared stages and the files rule `all` asks for. No torch: the workflow builds its DAG with it.

A scenario trains one source per (class mixture, seed) on its source data set and one reference on the target
task, and evaluates every source against the reference (PGD, tau metrics) and on the target task (linear probes
on all and on k-shot sets of the labelled images, full fine-tuning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer import names
from advtransfer.designs import few_shot_column, transfer_jobs

OUTPUTS = ("summary.csv", "design.csv", "correlations.csv", "table.md", "table.tex", "figure3.png", "figure3.pdf")


def source_spec(entry: Any) -> tuple[list[str], dict[str, Any]]:
    """A ``sources`` entry as (class names, overrides): a bare class list has none; a mapping's keys besides
    ``classes`` are what the source changes of the block's settings (advtransfer.designs.SOURCE_OVERRIDES)."""
    if isinstance(entry, Mapping):
        return list(entry["classes"]), {k: v for k, v in entry.items() if k != "classes"}
    return list(entry), {}


def knowledge_outcomes(block: Mapping[str, Any]) -> list[str]:
    """The knowledge-transfer columns of a scenario's summary: the k-shot probes by ascending k, the probe on
    all labelled target images, full fine-tuning; all target test accuracies."""
    return [few_shot_column(k) for k in sorted(block["probe"]["shots"])] + ["probe_accuracy", "finetune_accuracy"]


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete a scenario."""


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for what the schema cannot check: class names (matched by name in each data set), the
    target domain, a shared image set without a pool fraction, an outcome the scenario does not measure."""
    problems, unreadable = [], set()
    for key, dataset in (("source_dataset", block["source_dataset"]), ("target.dataset", block["target"]["dataset"])):
        try:  # a data set whose classes cannot be listed (a missing folder) is named once, by its own key
            names.class_names(dataset)
        except ValueError as err:
            problems.append((key, str(err)))
            unreadable.add(dataset)
    specs = {s: source_spec(entry) for s, entry in block["sources"].items()}
    checks = [(f"sources.{s}", block["source_dataset"], c) for s, (c, _) in specs.items()]
    checks.append(("target.classes", block["target"]["dataset"], block["target"]["classes"]))
    for key, dataset, classes in checks:
        if dataset in unreadable:
            continue
        try:
            names.class_indices(dataset, classes)
        except ValueError as err:
            problems.append((key, str(err)))
    domains = [("target.domain", block["target"]["domain"])]
    domains += [(f"sources.{s}.domain", over["domain"]) for s, (_, over) in specs.items() if "domain" in over]
    for key, domain in domains:
        unknown = [d for d in domain.split("+") if d.strip() not in names.DOMAIN_NAMES]
        if unknown:
            problems.append((key, f"unknown domain {unknown}; use one of {list(names.DOMAIN_NAMES)} or several "
                             "joined by '+'"))  # fmt: skip
    same = names.image_set(block["source_dataset"]) == names.image_set(block["target"]["dataset"])
    if same and block["split"]["source_pool_fraction"] is None:
        problems.append(("split.source_pool_fraction", f"sources and target both use the images of "
                         f"{block['source_dataset']}; set a fraction (e.g. 0.5) so the target gets images no source "
                         "sees"))  # fmt: skip
    if block["outcome"] not in knowledge_outcomes(block):
        problems.append(("outcome", f"{block['outcome']!r} is not one of this scenario's knowledge outcomes "
                         f"{knowledge_outcomes(block)}"))  # fmt: skip
    return problems


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> dict[str, Any]:
    """The shared stages' jobs of one scenario: one source per class mixture of ``source_dataset``."""
    sources = {src: (block["source_dataset"], *source_spec(entry)) for src, entry in block["sources"].items()}
    return transfer_jobs(block, sources)


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []  # its network jobs name theirs
