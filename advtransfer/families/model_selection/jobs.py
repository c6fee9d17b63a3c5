"""A model-selection experiment's config block as jobs: its candidates, checks, the zoo's network jobs, the files
rule `all` asks for and the inputs of its rules. Plain Python (no torch, numpy or pandas): it runs while
Snakemake builds the DAG. The science is in advtransfer.selection and advtransfer.estimators.

A zoo is a list of models the user brings, each entry {name, model, weights} plus the keys its family needs,
built by one loader (advtransfer.zoo.load_zoo_model). A model-selection zoo entry adds ``num_classes``,
``features`` and ``seed``; each is a further candidate, a classifier built for the target's channels and image
size (rule selection_zoo)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer.families.scenarios.jobs import knowledge_outcomes
from advtransfer.paths import evaluation_paths

OUTPUTS = ("scores.csv", "agreement.csv", "table.md", "table.tex", "selection_scores.png", "selection_scores.pdf",
           "selection_agreement.png", "selection_agreement.pdf")  # fmt: skip


def zoo_candidate(name: str) -> str:
    """A zoo model's candidate (and evaluation) name."""
    return f"zoo_{name}"


def candidate_names(block: Mapping[str, Any], scenario_evaluations: Mapping[str, Any]) -> list[str]:
    """The candidates of a model-selection block: its scenario's evaluations (one per source and seed, named
    ``<source>_seed<seed>``) when ``scenario_sources``, then ``zoo_<name>`` for each zoo entry."""
    names = list(scenario_evaluations) if block["scenario_sources"] else []
    return names + [zoo_candidate(e["name"]) for e in block["zoo"]]


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with a model-selection block that its schema cannot see (torch-free,
    before any job runs): an unknown scenario, no candidates, a zoo name given twice, an outcome the scenario
    does not measure, or one the zoo is not measured on."""
    scenarios = config.get("scenarios") or {}
    scenario = block["scenario"]
    if scenario not in scenarios:
        return [("scenario", f"{scenario!r} is not a scenario of this config; choose one of {sorted(scenarios)}")]
    problems = []
    if not block["scenario_sources"] and not block["zoo"]:
        problems.append(("zoo", "no candidates: give a zoo, or set scenario_sources: true"))
    names = [entry["name"] for entry in block["zoo"]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(("zoo", f"the name {name!r} is given twice"))
    known = knowledge_outcomes(scenarios[scenario])
    if block["outcome"] not in known:
        problems.append(
            ("outcome", f"{block['outcome']!r} is not a knowledge outcome of scenario {scenario!r}: {known}")
        )
    elif block["outcome"] == "finetune_accuracy" and block["zoo"] and not block["zoo_finetune"]:
        problems.append(("outcome", "finetune_accuracy must rank the zoo too: set zoo_finetune: true"))
    return problems


def target_evaluation(scenario_jobs: Mapping[str, Any]) -> dict[str, Any]:
    """Any evaluation of a scenario's network jobs: they share the target task, its split and the reference."""
    return next(iter(scenario_jobs["evaluations"].values()))


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> dict[str, Any] | None:
    """The network jobs (rules/common.smk, NETWORKS) of a block's zoo: one evaluation per zoo model against the
    scenario's reference on the scenario's target split, with the scenario's attack, metrics and probe settings
    (fine-tuning when ``zoo_finetune``). Their models and split live in other folders, so each names its files
    in full (``files``); no split or model is built here. None without a zoo."""
    if not block["zoo"]:
        return None
    scenario, experiment = block["scenario"], name
    template = target_evaluation(networks[scenario])
    evaluations = {}
    for entry in block["zoo"]:
        name = zoo_candidate(entry["name"])
        evaluations[name] = {
            **{k: template[k] for k in ("split", "target", "image_size", "channels", "attack", "metrics", "probe")},
            "source": name,
            "reference": template["reference"],
            "files": {
                "source": f"results/{experiment}/zoo/{entry['name']}",
                "reference": f"results/{scenario}/models/{template['reference']}",
                "split": f"results/{scenario}/splits/{template['split']}",
            },
            "seed": entry.get("seed", 0),
            "labels": {"candidate": name},
            "finetune": template["finetune"] if block["zoo_finetune"] else None,
        }
    return {"datasets": [template["target"]["dataset"]], "splits": {}, "models": {}, "evaluations": evaluations}


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete a block."""


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []  # the scenario's network jobs and the zoo's name theirs


# ------------------------------------------------------------------------------------ the family's rules


def candidates(block: Mapping[str, Any], networks: Mapping[str, Any]) -> list[str]:
    """The candidates of a block (:func:`candidate_names` with its scenario's evaluations)."""
    return candidate_names(block, networks[block["scenario"]]["evaluations"])


def zoo_entry(block: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config entry of the zoo model ``name`` (what advtransfer.zoo.zoo_entry checks and the loader builds)."""
    return next(e for e in block["zoo"] if e["name"] == name)


def target(block: Mapping[str, Any], networks: Mapping[str, Any], key: str) -> Any:
    """The target task's ``key`` (target, image_size, channels) of a block's scenario."""
    return target_evaluation(networks[block["scenario"]])[key]


def scores_inputs(block: Mapping[str, Any], networks: Mapping[str, Any], experiment: str,
                  candidate: str) -> dict[str, str]:  # fmt: skip
    """A scores job's model and sidecar (a scenario's source, or a zoo model: the files its evaluation names),
    the target split and its data set's marker: the inputs of the candidate's probe."""
    s = block["scenario"]
    own = block["scenario_sources"] and candidate in networks[s]["evaluations"]
    inputs = evaluation_paths(networks, s if own else experiment, candidate, ["source"])
    return {"model": inputs["source"], "info": inputs["source_info"], "split": inputs["split"],
            "dataset": inputs["dataset"]}  # fmt: skip


def summary_inputs(block: Mapping[str, Any], networks: Mapping[str, Any], experiment: str) -> dict[str, list | str]:
    """The candidates' scores, the scenario's summary (its sources' tau and outcomes), the zoo's metrics, probes
    and fine-tuning, and the references' sidecars (their training time is part of tau's cost)."""
    x = experiment
    zoo = [zoo_candidate(e["name"]) for e in block["zoo"]]
    return {
        "scores": [f"results/{x}/scores/{c}.json" for c in candidates(block, networks)],
        "scenario": [f"results/{block['scenario']}/summary.csv"] if block["scenario_sources"] else [],
        "zoo_metrics": [f"results/{x}/metrics/{c}.json" for c in zoo],
        "zoo_probes": [f"results/{x}/probes/{c}.json" for c in zoo],
        "zoo_finetunes": [f"results/{x}/finetunes/{c}.json" for c in zoo] if block["zoo_finetune"] else [],
        "reference": references(block, networks),
    }


def references(block: Mapping[str, Any], networks: Mapping[str, Any]) -> list[str]:
    """The sidecars of every reference model the ranked candidates were measured against (one per seed with the
    scenario's ``paired_reference``; the zoo's evaluations use the first): tau's cost trains each once."""
    s = block["scenario"]
    names = [target(block, networks, "reference")]
    if block["scenario_sources"]:
        names += [e["reference"] for e in networks[s]["evaluations"].values()]
    return [f"results/{s}/models/{name}.json" for name in sorted(set(names))]
