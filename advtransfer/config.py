"""The workflow's configuration outside Snakemake (the calibration command reads it as the workflow does):
the schema with the registries' names filled in, YAML loading with overlays, validation with the schema's
defaults filled in. No torch."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from advtransfer.registry import DATASETS, MODELS, OBJECTIVES

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "schemas/config.schema.yaml"


def schema(root: str | Path = ROOT) -> dict[str, Any]:
    """The config schema with the registries' data-set, model and objective names filled in (there is no second
    list); the open forms (``imagefolder:<folder>``, ``torchvision:<arch>``, ``timm:<name>``,
    ``package.module:function``) are accepted by pattern."""
    filled = yaml.safe_load((Path(root) / SCHEMA).read_text())
    defs = filled["$defs"]
    defs["dataset_name"] = {"anyOf": [{"enum": list(DATASETS)}, {"type": "string", "pattern": "^imagefolder:.+"}]}
    defs["model_name"] = {"anyOf": [{"enum": list(MODELS)}, {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:.+$"}]}
    defs["objective_name"] = {"enum": list(OBJECTIVES)}
    return filled


def merge(base: dict, overlay: Mapping) -> dict:
    """``overlay`` laid over ``base`` key by key (nested mappings merged, everything else replaced), as
    Snakemake merges a --configfile over the Snakefile's configfile."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def load(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config of YAML files laid over each other in order (the first is usually config.yaml)."""
    config: dict[str, Any] = {}
    for path in paths:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config file holds a mapping of keys, got {type(data).__name__}")
        config = merge(config, data)
    return config


def validate(config: dict[str, Any], root: str | Path = ROOT) -> dict[str, Any]:
    """``config`` checked against the schema, with its defaults filled in (in place; also returned)."""
    from jsonschema import Draft202012Validator, validators

    base = Draft202012Validator

    def fill_defaults(validator, properties, instance, schema_):
        for name, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub and name not in instance:
                instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_)

    filling = validators.extend(base, {"properties": fill_defaults})
    errors = sorted(filling(schema(root)).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise ValueError(f"config key {where}: {errors[0].message}")
    return config
