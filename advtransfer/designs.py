"""The design every transfer family shares: many source models, one reference on the target task, and one
evaluation of every source against it (attack, tau metrics, probes, fine-tuning). Its network jobs and the
columns of its summaries. No torch: the workflow builds its DAG with it."""

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


# The adversarial metrics of every transfer family's summary. tau1, tau2, tau1_tau2, alpha: at the source's
# features (the theory's f_S); *_logits: at its logits; cross adversarial loss and the reference's accuracy
# at the source's PGD examples.
ADVERSARIAL_METRICS = (
    "tau1", "tau2", "tau1_tau2", "alpha",
    "tau1_logits", "tau2_logits", "tau1_tau2_logits", "alpha_logits",
    "cross_adv_loss", "reference_adv_accuracy",
)  # fmt: skip


# The one metric whose smaller values mean more transferable: the reference's accuracy at the source's examples.
LOWER_IS_MORE = frozenset({"reference_adv_accuracy"})


def direction(metric: str) -> int:
    """+1 when a larger value of ``metric`` means more transferable (or more knowledge), -1 when smaller."""
    return -1 if metric in LOWER_IS_MORE else 1


# What one source may change of its block's settings (a crossed design's factors): the domain its images are
# shown in, symmetric label noise on its own labels, its training-set size, its architecture, its training
# settings (merged into the block's ``train``).
SOURCE_OVERRIDES = ("domain", "label_noise", "max_train_per_class", "model", "train")


def reference_name(s: dict[str, Any], seed: int) -> str:
    """The reference model a source of seed ``seed`` is measured against: ``reference``, or with
    ``paired_reference`` its own ``reference_seed<seed>`` (the reference's noise becomes part of the design)."""
    return f"reference_seed{seed}" if s.get("paired_reference") else "reference"


def transfer_jobs(s: dict[str, Any], sources: dict[str, tuple]) -> dict[str, Any]:
    """Network jobs of a many-sources-one-reference family (scenarios, attributes): one source model per
    ``sources`` entry (name -> (data set, class names) or (data set, class names, overrides), the overrides a
    mapping of SOURCE_OVERRIDES) and seed, a reference on ``s["target"]`` (one per seed with
    ``paired_reference``), and one evaluation (attack, metrics, probe, fine-tuning) per source and seed against
    its reference. ``s`` holds the block's target, split, model, image_size, channels, objective, seeds,
    reference_seed, train, attack, metrics, probe and (optionally) finetune, reference_train and
    paired_reference settings. A source without overrides gets exactly the jobs it got before they existed."""
    sources = {name: (entry[0], entry[1], dict(entry[2]) if len(entry) > 2 else {}) for name, entry in sources.items()}
    unknown = sorted({k for *_, o in sources.values() for k in o} - set(SOURCE_OVERRIDES))
    if unknown:
        raise ValueError(f"transfer_jobs: unknown source overrides {unknown}; known: {list(SOURCE_OVERRIDES)}")
    splits = _transfer_splits(s, sources)
    models = _transfer_models(s, sources)
    evaluations = _transfer_evaluations(s, sources)
    return {
        "datasets": sorted({*(d for d, *_ in sources.values()), s["target"]["dataset"]}),
        "splits": splits,
        "models": models,
        "evaluations": evaluations,
    }


def _pool(split: dict[str, Any], dataset: str, side: str, partner: str) -> dict[str, Any] | None:
    """The ``side`` half of the pool ``dataset`` shares with ``partner``: None unless both draw on one image set."""
    if image_set(dataset) != image_set(partner):
        return None
    return {
        "with": partner,
        "side": side,
        "fraction": split["source_pool_fraction"],
        "seed": split["seed"],
        # stratified by label only when both sides label the images alike (else they would overlap)
        "stratify": canonical_dataset(dataset) == canonical_dataset(partner),
    }


def _transfer_splits(s: dict[str, Any], sources: dict[str, tuple]) -> dict[str, Any]:
    """The split jobs: ``source_<name>`` per source (training images only; its own training-set size and label
    noise when it overrides them) and ``target`` (with its test set)."""
    split, target = s["split"], s["target"]
    common = {
        "val_fraction": split["val_fraction"],
        "max_train_per_class": split["max_train_per_class"],
        "seed": split["seed"],
    }
    splits = {
        f"source_{src}": {
            "dataset": dataset,
            "classes": classes,
            "pool": _pool(split, dataset, "source", target["dataset"]),
            "test": False,
            "max_test_per_class": None,
            **common,
            **{k: over[k] for k in ("max_train_per_class", "label_noise") if k in over},
        }
        for src, (dataset, classes, over) in sources.items()
    }
    partners = sorted({dataset for dataset, *_ in sources.values()})
    target_pools = [_pool(split, target["dataset"], "target", d) for d in partners]
    splits["target"] = {
        "dataset": target["dataset"],
        "classes": target["classes"],
        # every source shares the target's pool partition (one permutation per image set)
        "pool": next((p for p in target_pools if p is not None), None),
        "test": True,
        "max_test_per_class": split["max_test_per_class"],
        "min_labelled_per_class": max(s["probe"]["shots"], default=0),  # the k-shot probes draw from it
        **common,
    }
    return splits


def _transfer_models(s: dict[str, Any], sources: dict[str, tuple]) -> dict[str, Any]:
    """The model jobs: ``source_<name>_seed<k>`` per source and seed (its own domain, architecture and training
    settings when it overrides them), and the ``reference`` on the target split (``reference_seed<k>`` per seed
    with ``paired_reference``)."""
    split, target = s["split"], s["target"]
    network = {
        "architecture": s["model"],  # a name or {name, weights, features, pretrained}
        "image_size": s["image_size"],
        "channels": s["channels"],
        "objective": s["objective"],
        "objective_params": {},
    }
    models = {
        f"source_{src}_seed{seed}": {
            "split": f"source_{src}",
            "dataset": dataset,
            "classes": classes,
            "domain": over.get("domain", "identity"),
            "domain_seed": 0,
            "seed": seed,
            "train": {**s["train"], **over.get("train", {})},
            **network,
            **({"architecture": over["model"]} if "model" in over else {}),
        }
        for src, (dataset, classes, over) in sources.items()
        for seed in s["seeds"]
    }
    seeds = s["seeds"] if s.get("paired_reference") else [s["reference_seed"]]
    for seed in seeds:
        models[reference_name(s, seed)] = {
            "split": "target",
            "dataset": target["dataset"],
            "classes": target["classes"],
            "domain": target["domain"],
            "domain_seed": split["seed"],
            "seed": seed,
            "train": s.get("reference_train") or s["train"],
            **network,
        }
    return models


def _transfer_evaluations(s: dict[str, Any], sources: dict[str, tuple]) -> dict[str, Any]:
    """The evaluation jobs: ``<name>_seed<k>`` per source and seed, each source model against its reference."""
    target_data = {**s["target"], "domain_seed": s["split"]["seed"]}
    return {
        f"{src}_seed{seed}": {
            "source": f"source_{src}_seed{seed}",
            "reference": reference_name(s, seed),
            "split": "target",
            "target": target_data,
            "image_size": s["image_size"],
            "channels": s["channels"],
            "seed": seed,
            "labels": {"source": src, "seed": seed},
            "attack": s["attack"],
            "metrics": s["metrics"],
            "probe": s["probe"],
            "finetune": s.get("finetune"),
        }
        for src in sources
        for seed in s["seeds"]
    }
