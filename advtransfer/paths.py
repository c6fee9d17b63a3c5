"""The files of the shared network stages (rules/networks.smk), as the family rules name them: a data set's
marker and an evaluation's inputs. No torch: the workflow builds its DAG with it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from advtransfer import names


def dataset_key(name: str) -> str:
    """File-name key of a data set's files: its image set (one `dataset` job for every labelling of the same
    images, e.g. the shapes world's), or imagefolder_<hash of the folder's path> for a folder."""
    name = names.canonical_dataset(name)
    if names.is_imagefolder(name):
        folder = str(names.imagefolder_root(name).resolve())
        return f"imagefolder_{hashlib.sha256(folder.encode()).hexdigest()[:10]}"
    return names.image_set(name)


def dataset_marker(dataset: str) -> str:
    """The `dataset` job's output for a data set: what every job reading its files lists as an input."""
    return f"results/datasets/{dataset_key(dataset)}.json"


def evaluation_paths(networks: Mapping[str, Any], experiment: str, evaluation: str, roles) -> dict[str, str]:
    """The inputs of one evaluation's stage (attack, metrics, probe, finetune): its split, the target data set's
    marker and the models of ``roles`` (source, reference) with their sidecars, plus the attack's adversarial
    examples when "attack" is among the roles. An evaluation of models built elsewhere (a model-selection zoo)
    names their files in full (``files``)."""
    e = networks[experiment]["evaluations"][evaluation]
    files = {
        "split": f"results/{experiment}/splits/{e['split']}",
        **{r: f"results/{experiment}/models/{e[r]}" for r in ("source", "reference")},
        **e.get("files", {}),
    }
    out = {"split": f"{files['split']}.safetensors", "dataset": dataset_marker(e["target"]["dataset"])}
    for role in roles:
        if role == "attack":
            out["attack"] = f"results/{experiment}/attacks/{evaluation}.safetensors"
        else:
            out[role] = f"{files[role]}.safetensors"
            out[f"{role}_info"] = f"{files[role]}.json"
    return out
