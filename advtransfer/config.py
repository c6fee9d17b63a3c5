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


_EXPERIMENT_NAME = {"pattern": "^[A-Za-z][A-Za-z0-9_]*$", "not": {"enum": ["datasets", "logs", "benchmarks"]}}


def schema(root: str | Path = ROOT, families: Sequence[Any] | None = None) -> dict[str, Any]:
    """The config schema: schemas/config.schema.yaml (the shared keys and definitions) with each family's block
    (its ``schema`` file: ``block`` and its own ``$defs``) under its config key, and the registries' data-set,
    model and objective names filled in (there is no second list); the open forms (``imagefolder:<folder>``,
    ``torchvision:<arch>``, ``timm:<name>``, ``package.module:function``) are accepted by pattern."""
    from advtransfer.families import table

    filled = yaml.safe_load((Path(root) / SCHEMA).read_text())
    defs = filled["$defs"]
    for family in families if families is not None else table():
        part = yaml.safe_load((Path(root) / family.schema).read_text())
        defs.update(part.get("$defs") or {})
        defs[f"{family.name}_block"] = part["block"]
        ref = {"$ref": f"#/$defs/{family.name}_block"}
        filled["properties"][family.key] = (
            {**ref, "default": {}} if family.single else
            {"type": "object", "default": {}, "description": part.get("description", f"{family.name}: name -> block"),
             "propertyNames": _EXPERIMENT_NAME, "additionalProperties": ref}
        )  # fmt: skip
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


def validate(config: dict[str, Any], root: str | Path = ROOT, families: Sequence[Any] | None = None) -> dict[str, Any]:
    """``config`` checked against the schema (with ``families``' blocks, default: the table of ``config``), with its
    defaults filled in (in place; also returned)."""
    from jsonschema import Draft202012Validator, validators

    base = Draft202012Validator

    def fill_defaults(validator, properties, instance, schema_):
        for name, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub and name not in instance:
                instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_)

    filling = validators.extend(base, {"properties": fill_defaults})
    from advtransfer.families import table

    chosen = families if families is not None else table(config)
    changes = outdated(config, chosen)
    if changes:  # every change at once: a config from an earlier version usually has several
        raise ValueError("\n".join(f"config key {key}: {change}" for key, change in changes))
    filled = schema(root, chosen)
    errors = sorted(filling(filled).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = _deepest(errors[0])
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        message = _registry_problem(error, filled["$defs"]) or _rule_broken(error) or error.message
        raise ValueError(f"config key {where}: {message}")
    return config


_RETIRED = {
    key: "the claims protocol no longer has it (docs/claims.md): every verdict is a permutation test at "
    "reproduction.alpha on each claim's declared primary view (the top-level `claims:`); delete this key"
    for key in ("min_correlation", "mantel_alpha", "metrics", "robustness")
}


def outdated(config: Mapping[str, Any], families: Sequence[Any]) -> list[tuple[str, str]]:
    """Keys of a config written for an earlier version (27738ae), with what to change: retired ``reproduction``
    thresholds, and a block's ``claims:`` in the old form (settings such as ``eps`` or ``robust`` instead of
    claim declarations by claim name)."""
    from advtransfer.families import experiments, where

    problems = [(f"reproduction.{key}", change) for key, change in _RETIRED.items()
                if key in (config.get("reproduction") or {})]  # fmt: skip
    for name, family, block in experiments(config, families):
        claims = block.get("claims") if isinstance(block, Mapping) else None
        old = sorted(str(k) for k, v in (claims or {}).items() if not isinstance(v, Mapping))
        if isinstance(claims, Mapping) and old:
            problems.append((f"{where(family, name)}.claims", (
                f"{', '.join(old)}: the old form of a block's claims. A block's `claims:` now changes the "
                "declared claims by claim name (docs/claims.md): e.g. `claims: {robustness_transfers: {primary: "
                "{eps: 0.2}}}` for the eps, and a claim's `versus` / `group` for the compared schemes (see "
                "config.yaml's top-level `claims:` for each family's claims and their keys)"
            )))  # fmt: skip
    return problems


def _rule_broken(error: Any) -> str | None:
    """For a rule across keys (``not`` / ``oneOf``, e.g. a PGD step given twice), the rule's own description
    instead of jsonschema's dump of the schema; None for any other error."""
    if error.validator in ("not", "oneOf") and isinstance(error.schema, Mapping) and error.schema.get("description"):
        return f"{error.schema['description']} (given: {', '.join(sorted(map(str, error.instance)))})"
    return None


def _deepest(error: Any) -> Any:
    """Of an error among alternatives (anyOf / oneOf), the one deepest inside the value, when the value fits one
    alternative's shape (e.g. a model given as a mapping whose name is unknown): it names the culprit."""
    if error.context:
        deeper = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deeper.absolute_path) > len(error.absolute_path):
            return _deepest(deeper)
    return error


_REGISTRY_DEFS = ("dataset_name", "model_name", "objective_name")


def _mentions(schema_: Any, name: str, defs: Mapping[str, Any]) -> bool:
    """Whether a (sub)schema is, or offers as an alternative, the registry definition ``name``."""
    if not isinstance(schema_, Mapping):
        return False
    if schema_ == defs[name] or schema_.get("$ref") == f"#/$defs/{name}":
        return True
    return any(_mentions(s, name, defs) for key in ("anyOf", "oneOf") for s in schema_.get(key, []))


def _registry_problem(error: Any, defs: Mapping[str, Any]) -> str | None:
    """For a registered name the schema refused (a data set, a model, an objective), the registries' own message,
    which names the choices; None for any other error."""
    from advtransfer import names

    if not isinstance(error.instance, str):
        return None
    checks = dict(zip(_REGISTRY_DEFS, (names.canonical_dataset, names.check_model_name, names.check_objective_name)))
    for name, check in checks.items():
        if _mentions(error.schema, name, defs):
            try:
                check(error.instance)
            except ValueError as err:
                return str(err)
    return None
