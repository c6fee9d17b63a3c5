"""The multi-order interactions family's jobs (config -> the models it analyses), torch-free: the workflow
builds its DAG with it; the science is in ``advtransfer.interactions``.

A block analyses the models of one robustness block: each source (``source_{scheme}_seed{seed}``, on the
source task's test images) and its retrained model (``target_{scheme}_seed{seed}_{retrain}``, on the target
task's), and, when it names a data-distribution scenario, each of its sources on the scenario's target
images (``scenario_{source}_seed{seed}``, scored on the source's own prediction).
"""

from __future__ import annotations

import re
from typing import Any

from advtransfer.robustness import source_name

SIDES = ("source", "target", "scenario")


def schemes_of(block: dict[str, Any], robustness_block: dict[str, Any]) -> list[str]:
    return list(block["schemes"] or robustness_block["schemes"])


def model_names(block: dict[str, Any], robustness_block: dict[str, Any], scenario_evaluations=()) -> list[str]:
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


def config_problems(block: dict[str, Any], robustness_blocks: dict, scenarios: dict) -> list[tuple[str, str]]:
    """(key, problem) pairs for what the schema cannot check: the robustness block, schemes, scenario
    and that the grid fits the images."""
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
    if rows * cols < 2:
        problems.append(("grid", "need at least 2 cells"))
    return problems
