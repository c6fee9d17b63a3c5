"""An interactions experiment's config block as jobs (Ren et al. 2021): the models it analyses, its checks, the
files rule `all` asks for and the inputs of its rules. No torch: the workflow builds its DAG with it; the
science is in ``advtransfer.interactions``.

A block analyses the models of one robustness block: each source (``source_{scheme}_seed{seed}``, on the
source task's test images) and its retrained model (``target_{scheme}_seed{seed}_{retrain}``, on the target
task's), and, when it names a data-distribution scenario, each of its sources on the scenario's target
images (``scenario_{source}_seed{seed}``, scored on the source's own prediction).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from advtransfer.families.robustness.jobs import robust_data, robust_inputs, source_name
from advtransfer.paths import dataset_marker

OUTPUTS = ("interactions.csv", "orders_vs_tau.csv", "table.md", "table.tex", "interactions.png", "interactions.pdf")
SIDES = ("source", "target", "scenario")


def schemes_of(block: Mapping[str, Any], robustness_block: Mapping[str, Any]) -> list[str]:
    return list(block["schemes"] or robustness_block["schemes"])


def model_names(block: Mapping[str, Any], robustness_block: Mapping[str, Any], scenario_evaluations=()) -> list[str]:
    """Every job name of the block: sources and retrained models of the robustness block's schemes x seeds,
    then one per evaluation (``{source}_seed{seed}``) of the scenario."""
    names = []
    for scheme in schemes_of(block, robustness_block):
        for seed in robustness_block["seeds"]:
            names += [source_name(scheme, seed), f"target_{scheme}_seed{seed}_{block['retrain']}"]
    return names + [f"scenario_{evaluation}" for evaluation in scenario_evaluations]


def side_of(name: str) -> str:
    """'source', 'target' or 'scenario' from a job name."""
    side = name.partition("_")[0]
    if side not in SIDES:
        raise ValueError(f"{name!r} is not an interactions job name (source_*, target_*, scenario_*)")
    return side


_NAME = re.compile(r"^(source|target|scenario)_(\w+?)_seed(\d+)(?:_(probe|finetune|adv_finetune))?$")


def parse_name(name: str) -> tuple[str, str, int]:
    """(side, group, seed) of a job name: the scheme (robustness models) or the scenario's source."""
    match = _NAME.match(name)
    if not match or (match[1] == "target") != (match[4] is not None):
        raise ValueError(f"{name!r} is not an interactions job name (source_*_seed*, target_*_seed*_<retrain>, "
                         "scenario_*_seed*)")  # fmt: skip
    return match[1], match[2], int(match[3])


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) pairs for what the schema cannot check: the robustness block, schemes, scenario
    and that the grid fits the images."""
    robustness_blocks, scenarios = config.get("robustness") or {}, config.get("scenarios") or {}
    r = robustness_blocks.get(block["robustness"])
    if r is None:
        return [
            ("robustness", f"{block['robustness']!r} is not a block under `robustness:` {sorted(robustness_blocks)}")
        ]
    problems = []
    for scheme in block["schemes"] or []:
        if scheme not in r["schemes"]:
            problems.append(("schemes", f"{scheme!r} is not a scheme of {block['robustness']}: {sorted(r['schemes'])}"))
    grid = block["grid"]
    rows, cols = (grid, grid) if isinstance(grid, int) else grid
    sizes = {block["robustness"]: r["image_size"]}
    if block["scenario"] is not None:
        if block["scenario"] not in scenarios:
            problems.append(
                ("scenario", f"{block['scenario']!r} is not a block under `scenarios:` {sorted(scenarios)}")
            )
        else:
            sizes[block["scenario"]] = scenarios[block["scenario"]]["image_size"]
    for owner, size in sizes.items():
        if max(rows, cols) > size:
            problems.append(("grid", f"{rows} x {cols} cells do not fit {owner}'s {size} x {size} images"))
    if rows * cols < 3:  # r = m / (n - 2) names the orders: two players have only the order 0
        problems.append(("grid", "need at least 3 cells"))
    return problems


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete a block."""


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> None:
    return None  # the models are the robustness block's and the scenario's


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []  # the models' own experiments name the data sets


# ------------------------------------------------------------------------------------ the family's rules


def job_names(block: Mapping[str, Any], config: Mapping[str, Any], networks: Mapping[str, Any]) -> list[str]:
    """Every profile job of a block (:func:`model_names` with its robustness block and scenario)."""
    scenario = block["scenario"]
    return model_names(block, config["robustness"][block["robustness"]],
                       networks[scenario]["evaluations"] if scenario else ())  # fmt: skip


def _scenario_evaluation(block: Mapping[str, Any], networks: Mapping[str, Any], name: str) -> dict[str, Any]:
    return networks[block["scenario"]]["evaluations"][name[len("scenario_"):]]


def profile_inputs(block: Mapping[str, Any], config: Mapping[str, Any], networks: Mapping[str, Any],
                   name: str) -> dict[str, str]:  # fmt: skip
    """A profile job's model, its sidecar, the split with its test images and the data set's marker."""
    if side_of(name) != "scenario":
        r = block["robustness"]
        return robust_inputs(networks, r, config["robustness"][r], name)
    s, e = block["scenario"], _scenario_evaluation(block, networks, name)
    return {
        "model": f"results/{s}/models/{e['source']}.safetensors",
        "info": f"results/{s}/models/{e['source']}.json",
        "split": f"results/{s}/splits/{e['split']}.safetensors",
        "dataset": dataset_marker(e["target"]["dataset"]),
    }


def profile_data(block: Mapping[str, Any], config: Mapping[str, Any], networks: Mapping[str, Any],
                 name: str) -> dict[str, Any]:  # fmt: skip
    """Where a profile job's images come from and which labels score them (true, or the model's own)."""
    if side_of(name) != "scenario":
        return {**robust_data(config["robustness"][block["robustness"]], name), "labels": "true"}
    e = _scenario_evaluation(block, networks, name)
    t = e["target"]
    return {"dataset": t["dataset"], "domain": t["domain"], "seed": t["domain_seed"], "channels": e["channels"],
            "size": e["image_size"], "labels": "own"}  # fmt: skip


PROFILE_SETTINGS = ("grid", "ratios", "n_images", "n_pairs", "n_contexts", "score", "baseline", "attack",
                    "batch_size", "seed")  # fmt: skip


def profile_settings(block: Mapping[str, Any]) -> dict[str, Any]:
    """A profile job's estimator, image count and attack settings (not the block's claims or sources)."""
    return {k: block[k] for k in PROFILE_SETTINGS}
