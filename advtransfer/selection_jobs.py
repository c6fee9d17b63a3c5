"""Model-selection blocks as jobs (rules/model_selection.smk): candidate names, config checks and the zoo's network
jobs. Plain Python (no torch, numpy or pandas): it runs while Snakemake builds the DAG. The science is in
advtransfer.selection and advtransfer.estimators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer.scenarios import knowledge_outcomes


def zoo_candidate(name: str) -> str:
    """A zoo model's candidate (and evaluation) name."""
    return f"zoo_{name}"


def candidate_names(block: Mapping[str, Any], scenario_evaluations: Mapping[str, Any]) -> list[str]:
    """The candidates of a model-selection block: its scenario's evaluations (one per source and seed, named
    ``<source>_seed<seed>``) when ``scenario_sources``, then ``zoo_<name>`` for each zoo entry."""
    names = list(scenario_evaluations) if block["scenario_sources"] else []
    return names + [zoo_candidate(e["name"]) for e in block["zoo"]]


def config_problems(block: Mapping[str, Any], scenarios: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each thing wrong with a model-selection block that its schema cannot see (torch-free,
    before any job runs): an unknown scenario, no candidates, a zoo name given twice, an outcome the scenario
    does not measure, or one the zoo is not measured on."""
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


def zoo_evaluations(block: Mapping[str, Any], experiment: str, scenario_jobs: Mapping[str, Any]) -> dict[str, Any]:
    """The network jobs (rules/common.smk, NETWORKS) of a block's zoo: one evaluation per zoo model against the
    scenario's reference on the scenario's target split, with the scenario's attack, metrics and probe settings
    (fine-tuning when ``zoo_finetune``). Their models and split live in other folders, so each names its files
    in full (``files``); no split or model is built here."""
    scenario = block["scenario"]
    template = target_evaluation(scenario_jobs)
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
