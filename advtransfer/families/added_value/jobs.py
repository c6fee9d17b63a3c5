"""An added-value experiment's config block as jobs: its checks, the design factors of its scenario's sources,
the files rule `all` asks for and the inputs of its rules. Plain Python (no torch, numpy or pandas): it runs
while Snakemake builds the DAG. The measurements are in advtransfer.added_value.

A block names a model-selection block (``selection``) whose scenario is a crossed design: sources that share a
class-overlap level but differ in what a user cannot read off the overlap (their domain, training budget, label
noise, width). The selection block scores every source with every estimator, tau metric and baseline; this
family asks, for each score and knowledge outcome, how much it adds to what the design factors already tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer.families.scenarios.jobs import knowledge_outcomes, source_spec

OUTPUTS = ("added_value.csv", "sources.csv", "added_value.png", "added_value.pdf")

LEVEL = "overlap"
"""The factor a user knows: the share of the source's classes inside the target task (the class overlap)."""

FACTORS = (LEVEL, "domain", "label_noise", "max_train_per_class", "epochs", "model", "seed")
"""The design factors of a crossed scenario's (source, seed) rows, any of which a block may declare ``known``:
``seed`` is the seed of the source and of its paired reference."""


def source_factors(scenario: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{source: {factor: value}} of a scenario's sources: the overlap (share of its classes inside the target
    task, matched by name as the scenario's splits are) and what the source changes of the block's settings
    (the block's own value where it changes nothing)."""
    target = {c.lower() for c in scenario["target"]["classes"]}
    out = {}
    for name, entry in scenario["sources"].items():
        classes, over = source_spec(entry)
        model = over.get("model", scenario["model"])
        out[name] = {
            LEVEL: round(sum(c.lower() in target for c in classes) / len(classes), 6),
            "domain": over.get("domain", "identity"),
            "label_noise": float(over.get("label_noise", 0.0)),
            "max_train_per_class": over.get("max_train_per_class", scenario["split"]["max_train_per_class"]),
            "epochs": {**scenario["train"], **over.get("train", {})}["epochs"],
            "model": model["name"] if isinstance(model, Mapping) else model,
        }
    return out


def scenario_of(block: Mapping[str, Any], config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The crossed design: the scenario block of the block's model-selection block (None where either is missing)."""
    selection = (config.get("model_selection") or {}).get(block["selection"])
    return None if selection is None else (config.get("scenarios") or {}).get(selection["scenario"])


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for what the schema cannot see: an unknown selection block, one without its scenario's
    sources, a design with fewer than two overlap levels holding two or more sources each, a known factor that
    is unknown."""
    selections = config.get("model_selection") or {}
    if block["selection"] not in selections:
        return [("selection", f"{block['selection']!r} is not a model_selection block of this config; choose one "
                 f"of {sorted(selections)}")]  # fmt: skip
    selection = selections[block["selection"]]
    if not selection.get("scenario_sources", True):
        return [("selection", f"model_selection.{block['selection']} must score its scenario's sources "
                 "(scenario_sources: true): they are the design")]  # fmt: skip
    scenario = scenario_of(block, config)
    if scenario is None:
        return []  # the selection block's own check names its unknown scenario
    problems = []
    levels: dict[float, int] = {}
    for factors in source_factors(scenario).values():
        levels[factors[LEVEL]] = levels.get(factors[LEVEL], 0) + 1
    if sum(n >= 2 for n in levels.values()) < 2:
        problems.append(("selection", f"scenario {selection['scenario']!r} is not a crossed design: it needs at "
                         f"least two overlap levels with two or more sources each (sources per overlap: {levels})"))
    if block["outcome"] not in knowledge_outcomes(scenario):
        problems.append(("outcome", f"{block['outcome']!r} is not a knowledge outcome of scenario "
                         f"{selection['scenario']!r}: {knowledge_outcomes(scenario)}"))  # fmt: skip
    unknown = sorted(set(block["known"]) - set(FACTORS))
    if unknown:
        problems.append(("known", f"unknown design factors {unknown}; the factors are {list(FACTORS)}"))
    return problems


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """``outcome`` null: the selection block's (when that block exists; config_problems names it otherwise)."""
    selection = (config.get("model_selection") or {}).get(block["selection"])
    if block["outcome"] is None and selection is not None:
        block["outcome"] = selection["outcome"]


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> None:
    return None  # its selection block's scenario trains and evaluates every network


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []


# ------------------------------------------------------------------------------------ the family's rules


def summary_inputs(block: Mapping[str, Any]) -> dict[str, str]:
    """The selection block's scores (every candidate's scores and outcomes) and agreement (each score's cost)."""
    return {"scores": f"results/{block['selection']}/scores.csv",
            "agreement": f"results/{block['selection']}/agreement.csv"}  # fmt: skip


def outcomes(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """Every knowledge outcome of the design's scenario."""
    return knowledge_outcomes(scenario_of(block, config))





def declared_estimator(declared: Mapping[str, Any]) -> str | None:
    """The estimator the block's claims compare tau1 tau2 with (``estimator_adds_more``), declared before the
    run; None when that claim is not declared."""
    claim = declared.get("estimator_adds_more")
    return claim["primary"].get("score") if claim else None
