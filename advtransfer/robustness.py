"""Robustness transfer across source training schemes (Kopetzki, Bojchevski and Guennemann, "When is
adversarial robustness transferable?"), robust representation matching (Vaishnavi, Eykholt and Rahmati) and
randomized-smoothing certificates (Cohen, Rosenfeld and Kolter 2019): a config block's network jobs and the
family's summary. Torch-free (the workflow builds its DAG with it); a model's robustness is measured by
``advtransfer.evaluation``.

A block trains one source per training scheme (an objective of ``advtransfer.registry.OBJECTIVES`` with its
parameters, optionally another architecture, training settings or a teacher scheme, ``rrm``) and seed on the
source classes, and a reference on the target classes. The generic stages give each source's tau1 / tau2 /
alpha and cross adversarial loss against the reference; the family's own jobs measure each source's
robustness on the source task and, after each retraining scheme (``probe``: a linear head on the frozen body;
``finetune``; ``adv_finetune``: the whole network with PGD on the target), on the target task.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from advtransfer import names, scenarios

RETRAIN_SCHEMES = ("probe", "finetune", "adv_finetune")


def source_name(scheme: str, seed: int) -> str:
    return f"source_{scheme}_seed{seed}"


def expand_all_classes(block: dict[str, Any]) -> None:
    """Replace ``classes: all`` of the block's source and target by the data set's classes in label order."""
    for side in ("source", "target"):
        if block[side]["classes"] == "all":
            block[side]["classes"] = list(names.class_names(block[side]["dataset"]))


def config_problems(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) pairs for what the schema cannot check: class names, teachers, the claims' schemes."""
    problems = []
    for side in ("source", "target"):
        try:
            names.class_indices(block[side]["dataset"], block[side]["classes"])
        except ValueError as err:
            problems.append((f"{side}.classes", str(err)))
    for domain in block["target"]["domain"].split("+"):
        if domain.strip() not in names.DOMAIN_NAMES:
            problems.append(("target.domain", f"unknown domain {domain!r}; use one of {list(names.DOMAIN_NAMES)}"))
    schemes = block["schemes"]
    for name, scheme in schemes.items():
        try:
            names.check_objective_name(scheme["objective"])
        except ValueError as err:
            problems.append((f"schemes.{name}.objective", str(err)))
        teacher = scheme.get("teacher")
        if (scheme["objective"] == "rrm") != (teacher is not None):
            problems.append((f"schemes.{name}.teacher", "an rrm scheme names the scheme of its teacher (e.g. "
                             "teacher: pgd_at), and only an rrm scheme has one"))  # fmt: skip
        elif teacher is not None and (teacher not in schemes or schemes[teacher].get("teacher")):
            problems.append((f"schemes.{name}.teacher", f"{teacher!r} is not a scheme of this block without a "
                             f"teacher of its own; schemes: {sorted(schemes)}"))  # fmt: skip
    evaluation = block["evaluation"]
    for eps in evaluation.get("apgd", {}).get("eps") or []:
        if eps not in evaluation["pgd"]["eps"]:
            problems.append(
                ("evaluation.apgd.eps", f"{eps} is not among evaluation.pgd.eps {evaluation['pgd']['eps']}")
            )
    return problems


def network_jobs(block: dict[str, Any]) -> dict[str, Any]:
    """The generic network jobs of a block (scenarios.transfer_jobs: splits, one source per scheme and seed,
    the target reference, one evaluation per source), with each source's objective, parameters, architecture,
    training settings and teacher; all sources share one split (``source``), which keeps a test part
    (robustness on the source task). Source and target classes of one labelling are disjoint images, so they
    need no pool."""
    source, target = block["source"], block["target"]
    schemes = block["schemes"]
    s = {**block, "objective": "ce", "probe": {**block["retrain"]["probe"], "shots": []}, "finetune": None}
    jobs = scenarios.transfer_jobs(s, {name: (source["dataset"], source["classes"]) for name in schemes})
    # every scheme trains on the same source images: one split job (the comparison of schemes is paired)
    shared = [jobs["splits"].pop(f"source_{name}") for name in schemes][0]
    jobs["splits"]["source"] = {**shared, "test": True, "max_test_per_class": block["split"]["max_test_per_class"]}
    if not set(source["classes"]) & set(target["classes"] or []):
        for split in jobs["splits"].values():
            split["pool"] = None
    for name, scheme in schemes.items():
        for seed in block["seeds"]:
            model = jobs["models"][source_name(name, seed)]
            model["split"] = "source"
            model["objective"] = scheme["objective"]
            model["objective_params"] = dict(scheme.get("params") or {})
            model["train"] = {**block["train"], **(scheme.get("train") or {})}
            if scheme.get("model") is not None:
                model["architecture"] = scheme["model"]
            if scheme.get("teacher") is not None:
                model["teacher"] = source_name(scheme["teacher"], seed)
    for evaluation in jobs["evaluations"].values():
        evaluation["labels"] = {"scheme": evaluation["labels"]["source"], "seed": evaluation["labels"]["seed"]}
    return jobs


def retrained_names(block: dict[str, Any]) -> list[str]:
    """``{scheme}_seed{seed}_{retrain}`` for every evaluation and retraining scheme of the block."""
    return [f"{scheme}_seed{seed}_{retrain}" for scheme in block["schemes"] for seed in block["seeds"]
            for retrain in RETRAIN_SCHEMES]  # fmt: skip


def split_retrained(name: str) -> tuple[str, str]:
    """(evaluation, retraining scheme) of a retrained model's name."""
    for retrain in sorted(RETRAIN_SCHEMES, key=len, reverse=True):  # adv_finetune before finetune
        if name.endswith(f"_{retrain}"):
            return name[: -len(retrain) - 1], retrain
    raise ValueError(f"{name!r} does not end with a retraining scheme {RETRAIN_SCHEMES}")


# ------------------------------------------------------------------------------------------- summary


def pgd_column(side: str, eps: float) -> str:
    """The robustness.csv column of ``side``'s (source / target) accuracy under PGD at ``eps``."""
    return f"{side}_pgd_accuracy_eps{eps:g}"


def summary_frame(
    sources: dict, robust_sources: dict, retrained: dict, robust_targets: dict, metrics: dict
) -> pd.DataFrame:
    """robustness.csv: one row per (scheme, seed, retraining scheme). ``sources`` / ``robust_sources`` map
    (scheme, seed) to the source's sidecar / robustness; ``retrained`` / ``robust_targets`` map (scheme,
    seed, retrain) to the target model's sidecar / robustness; ``metrics`` maps (scheme, seed) to the
    generic metrics (tau1, tau2, alpha at features and logits, cross adversarial loss, ...)."""
    rows = []
    for (scheme, seed, retrain), target in robust_targets.items():
        info, model = sources[(scheme, seed)], retrained[(scheme, seed, retrain)]
        rows.append({
            "scheme": scheme, "seed": int(seed), "retrain": retrain, "objective": info["objective"],
            "source_val_accuracy": info["val_accuracy"], "train_wall_seconds": info["wall_seconds"],
            "train_cpu_seconds": info.get("cpu_seconds", math.nan),
            **{f"source_{k}": v for k, v in robust_sources[(scheme, seed)].items() if k not in ("n_images", "seconds")},
            "target_val_accuracy": model["val_accuracy"], "retrain_wall_seconds": model["wall_seconds"],
            "retrain_cpu_seconds": model["cpu_seconds"],
            **{f"target_{k}": v for k, v in target.items() if k not in ("n_images", "seconds")},
            **{k: v for k, v in metrics[(scheme, seed)].items() if isinstance(v, (int, float))},
        })  # fmt: skip
    order = {"retrain": {r: i for i, r in enumerate(RETRAIN_SCHEMES)}}
    frame = pd.DataFrame(rows)
    return frame.sort_values(["scheme", "retrain", "seed"],
                             key=lambda c: c.map(order[c.name]) if c.name in order else c,
                             ignore_index=True)  # fmt: skip


