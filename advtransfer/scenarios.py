"""Data-distribution scenarios (Section 4.2): a scenario's config block as network jobs. No torch.

A scenario trains one source per (class mixture, seed) on its source data set, one reference on the target
task, and evaluates every source against the reference (PGD, tau metrics) and on the target task (linear
probes on all and on k-shot sets of the labelled images, full fine-tuning). ``network_jobs`` turns the
block into the normalised description the generic network rules read (rules/common.smk).
"""

from __future__ import annotations

from typing import Any

from advtransfer.names import canonical_dataset, image_set


_FEW_SHOT = "probe_accuracy_k"


def few_shot_column(k: int) -> str:
    """The summary column of the k-shot probe's accuracy: ``probe_accuracy_k<k>``."""
    return f"{_FEW_SHOT}{k}"


def few_shot_k(column: str) -> int | None:
    """k of a k-shot probe column (``few_shot_column``), None for any other column."""
    rest = column.removeprefix(_FEW_SHOT)
    return int(rest) if rest != column and rest.isdigit() else None


def knowledge_outcomes(s: dict[str, Any]) -> list[str]:
    """The knowledge-transfer columns of a scenario's summary (its block ``s``): the k-shot probes by
    ascending k, the probe on all labelled target images, full fine-tuning; all target test accuracies."""
    return [few_shot_column(k) for k in sorted(s["probe"]["shots"])] + ["probe_accuracy", "finetune_accuracy"]


def network_jobs(s: dict[str, Any]) -> dict[str, Any]:
    """The normalised network jobs (rules/common.smk, NETWORKS) of one scenario's config block ``s``."""
    split, target = s["split"], s["target"]
    same = image_set(s["source_dataset"]) == image_set(target["dataset"])
    # pools stratified by label only when both sides label the images alike (else they would overlap)
    stratify = canonical_dataset(s["source_dataset"]) == canonical_dataset(target["dataset"])

    def pool(side, partner):
        if not same:
            return None
        return {
            "with": partner,
            "side": side,
            "fraction": split["source_pool_fraction"],
            "seed": split["seed"],
            "stratify": stratify,
        }

    common = {
        "val_fraction": split["val_fraction"],
        "max_train_per_class": split["max_train_per_class"],
        "seed": split["seed"],
    }
    splits = {
        f"source_{src}": {
            "dataset": s["source_dataset"],
            "classes": classes,
            "pool": pool("source", target["dataset"]),
            "test": False,
            "max_test_per_class": None,
            **common,
        }
        for src, classes in s["sources"].items()
    }
    splits["target"] = {
        "dataset": target["dataset"],
        "classes": target["classes"],
        "pool": pool("target", s["source_dataset"]),
        "test": True,
        "max_test_per_class": split["max_test_per_class"],
        "min_labelled_per_class": max(s["probe"]["shots"], default=0),  # the k-shot probes draw from it
        **common,
    }
    network = {
        "architecture": s["model"],  # a name or {name, weights, features, pretrained}
        "image_size": s["image_size"],
        "channels": s["channels"],
        "objective": s["objective"],
        "objective_params": {},
        "train": s["train"],
    }
    models = {
        f"source_{src}_seed{seed}": {
            "split": f"source_{src}",
            "dataset": s["source_dataset"],
            "classes": classes,
            "domain": "identity",
            "domain_seed": 0,
            "seed": seed,
            **network,
        }
        for src, classes in s["sources"].items()
        for seed in s["seeds"]
    }
    target_data = {**target, "domain_seed": split["seed"]}
    models["reference"] = {
        "split": "target",
        "dataset": target["dataset"],
        "classes": target["classes"],
        "domain": target["domain"],
        "domain_seed": split["seed"],
        "seed": s["reference_seed"],
        **network,
    }
    evaluations = {
        f"{src}_seed{seed}": {
            "source": f"source_{src}_seed{seed}",
            "reference": "reference",
            "split": "target",
            "target": target_data,
            "image_size": s["image_size"],
            "channels": s["channels"],
            "seed": seed,
            "labels": {"source": src, "seed": seed},
            "attack": s["attack"],
            "metrics": s["metrics"],
            "probe": s["probe"],
            "finetune": s["finetune"],
        }
        for src in s["sources"]
        for seed in s["seeds"]
    }
    return {
        "datasets": sorted({s["source_dataset"], target["dataset"]}),
        "splits": splits,
        "models": models,
        "evaluations": evaluations,
    }
