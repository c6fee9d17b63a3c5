"""A robustness experiment's config block as jobs (Kopetzki et al.; Vaishnavi et al.; Cohen et al.): its checks,
its network jobs for the shared stages, the files rule `all` asks for and the inputs of its own rules. No torch:
the workflow builds its DAG with it; a model's robustness is measured by ``advtransfer.evaluation``.

A block trains one source per training scheme (an objective of ``advtransfer.registry.OBJECTIVES`` with its
parameters, optionally another architecture, training settings or a teacher scheme, ``rrm``) and seed on the
source classes, and a reference on the target classes. The shared stages give each source's tau1 / tau2 /
alpha and cross adversarial loss against the reference; the family's own jobs measure each source's
robustness on the source task and, after each retraining scheme (``probe``: a linear head on the frozen body;
``finetune``; ``adv_finetune``: the whole network with PGD on the target), on the target task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advtransfer import names
from advtransfer.designs import transfer_jobs
from advtransfer.paths import dataset_marker

OUTPUTS = ("robustness.csv", "table.md", "table.tex", "robustness.png", "robustness.pdf")
RETRAIN_SCHEMES = ("probe", "finetune", "adv_finetune")


def source_name(scheme: str, seed: int) -> str:
    return f"source_{scheme}_seed{seed}"


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Replace ``classes: all`` of the block's source and target by the data set's classes in label order."""
    for side in ("source", "target"):
        if block[side]["classes"] == "all":
            block[side]["classes"] = list(names.class_names(block[side]["dataset"]))


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
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
        else:  # an unknown parameter would otherwise fail only when the job trains (a TypeError)
            wrong = names.objective_params_problem(scheme["objective"], scheme.get("params") or {})
            if wrong:
                problems.append((f"schemes.{name}.params", wrong))
        teacher = scheme.get("teacher")
        if (scheme["objective"] == "rrm") != (teacher is not None):
            problems.append((f"schemes.{name}.teacher", "an rrm scheme names the scheme of its teacher (e.g. "
                             "teacher: pgd_at), and only an rrm scheme has one"))  # fmt: skip
        elif teacher is not None and (teacher not in schemes or schemes[teacher].get("teacher")):
            problems.append((f"schemes.{name}.teacher", f"{teacher!r} is not a scheme of this block without a "
                             f"teacher of its own; schemes: {sorted(schemes)}"))  # fmt: skip
    adversarial = (block.get("retrain") or {}).get("adv_finetune")
    wrong = adversarial and names.objective_params_problem("pgd_at", adversarial["params"])
    if wrong:
        problems.append(("retrain.adv_finetune.params", wrong))
    evaluation = block["evaluation"]
    for eps in evaluation.get("apgd", {}).get("eps") or []:
        if eps not in evaluation["pgd"]["eps"]:
            problems.append(
                ("evaluation.apgd.eps", f"{eps} is not among evaluation.pgd.eps {evaluation['pgd']['eps']}")
            )
    return problems


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> dict[str, Any]:
    """The generic network jobs of a block (advtransfer.designs.transfer_jobs: splits, one source per scheme and seed,
    the target reference, one evaluation per source), with each source's objective, parameters, architecture,
    training settings and teacher; all sources share one split (``source``), which keeps a test part
    (robustness on the source task). Source and target classes of one labelling are disjoint images, so they
    need no pool."""
    source, target = block["source"], block["target"]
    schemes = block["schemes"]
    s = {**block, "objective": "ce", "probe": {**block["retrain"]["probe"], "shots": []}, "finetune": None}
    jobs = transfer_jobs(s, {name: (source["dataset"], source["classes"]) for name in schemes})
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




def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []  # its network jobs name theirs


# ------------------------------------------------------------------------------------ the family's rules


def sources(block: Mapping[str, Any]) -> list[str]:
    """Every source model of a block: one per scheme and seed."""
    return [source_name(scheme, seed) for scheme in block["schemes"] for seed in block["seeds"]]


def retrain_inputs(networks: Mapping[str, Any], experiment: str, block: Mapping[str, Any],
                   retrained: str) -> dict[str, str]:  # fmt: skip
    """A retraining job's source model and sidecar, the target split and its data set's marker."""
    evaluation, _ = split_retrained(retrained)
    e = networks[experiment]["evaluations"][evaluation]
    return {
        "source": f"results/{experiment}/models/{e['source']}.safetensors",
        "source_info": f"results/{experiment}/models/{e['source']}.json",
        "split": f"results/{experiment}/splits/target.safetensors",
        "dataset": dataset_marker(e["target"]["dataset"]),
    }


def robust_inputs(networks: Mapping[str, Any], experiment: str, block: Mapping[str, Any],
                  name: str) -> dict[str, str]:  # fmt: skip
    """A robustness evaluation's model (a source, or a retrained target model ``target_<retrained>``), its
    sidecar, split and data set's marker."""
    if name.startswith("target_"):
        retrained = name[len("target_"):]
        return {
            "model": f"results/{experiment}/retrained/{retrained}.safetensors",
            "info": f"results/{experiment}/retrained/{retrained}.json",
            "split": f"results/{experiment}/splits/target.safetensors",
            "dataset": dataset_marker(block["target"]["dataset"]),
        }
    split = networks[experiment]["models"][name]["split"]
    return {
        "model": f"results/{experiment}/models/{name}.safetensors",
        "info": f"results/{experiment}/models/{name}.json",
        "split": f"results/{experiment}/splits/{split}.safetensors",
        "dataset": dataset_marker(block["source"]["dataset"]),
    }


def robust_data(block: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Where a robustness evaluation's test images come from: the source task, or the target task's domain."""
    target = name.startswith("target_")
    side = block["target" if target else "source"]
    return {
        "dataset": side["dataset"],
        "domain": side["domain"] if target else "identity",
        "seed": block["split"]["seed"] if target else 0,
        "channels": block["channels"],
        "size": block["image_size"],
    }


def robust_seed(networks: Mapping[str, Any], experiment: str, name: str) -> int:
    """The seed of a robustness evaluation: its model's (a retrained model's is its evaluation's)."""
    if name.startswith("target_"):
        evaluation, _ = split_retrained(name[len("target_"):])
        return networks[experiment]["evaluations"][evaluation]["seed"]
    return networks[experiment]["models"][name]["seed"]
