"""The workflow's configuration outside Snakemake (the calibration command reads it as the workflow does):
the schema with the registries' names filled in, YAML loading with overlays, validation with the schema's
defaults filled in. No torch."""

from __future__ import annotations

import copy
import json
import math
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


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping (first on line {seen[key].line + 1})",
                    key_node.start_mark)  # fmt: skip
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """One config file: a mapping of keys, read with YAML's safe loader, refusing duplicated keys; a syntax error,
    a duplicated key or a file that is not a mapping raises ValueError naming the file and the line."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as err:
        raise ValueError(f"{path}: cannot read the config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ValueError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file holds a mapping of keys, got {type(data).__name__}")
    return data


def load(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config of YAML files laid over each other in order (the first is usually config.yaml)."""
    config: dict[str, Any] = {}
    for path in paths:
        config = merge(config, read_yaml(path))
    return config


def check_files(paths: Sequence[str | Path]):
    """Read each existing config file strictly (read_yaml): Snakemake's own loader keeps the last of a duplicated
    key silently and names neither file nor line for a syntax error."""
    for path in paths:
        if Path(path).is_file():
            read_yaml(path)


LARGEST_INTEGER = 2**53  # integers beyond it are not exact as JSON numbers (params, sidecars)


def number_problems(config: Any, where: tuple = ()) -> list[tuple[str, str]]:
    """(key, problem) for every NaN or infinite number and every integer too large to be exact, anywhere in
    ``config``: no setting of this workflow means a non-finite number (the schema's bounds let NaN through)."""
    if isinstance(config, Mapping):
        return [p for k, v in config.items() for p in number_problems(v, (*where, k))]
    if isinstance(config, (list, tuple)):
        return [p for i, v in enumerate(config) for p in number_problems(v, (*where, i))]
    key = ".".join(map(str, where)) or "(top level)"
    if isinstance(config, float) and not math.isfinite(config):
        return [(key, f"{config} is not a finite number")]
    if isinstance(config, int) and not isinstance(config, bool) and abs(config) >= LARGEST_INTEGER:
        return [(key, f"{config} is too large (at most 2**53)")]
    return []


def check_families(config: Mapping[str, Any], root: str | Path = ROOT):
    """ValueError naming the key unless config `families` fits the schema's `families` entry: the table of
    families (advtransfer.families.table) is built from it before the rest of the config can be checked."""
    from jsonschema import Draft202012Validator

    spec = yaml.safe_load((Path(root) / SCHEMA).read_text())["properties"]["families"]
    errors = sorted(Draft202012Validator(spec).iter_errors(config.get("families") or []), key=lambda e: list(e.path))
    if errors:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path)
        raise ValueError(f"config key families{where}: {errors[0].message}")


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

    numbers = number_problems(config)
    if numbers:
        raise ValueError("\n".join(f"config key {key}: {problem}" for key, problem in numbers))
    if families is None:
        check_families(config, root)
    chosen = families if families is not None else table(config)
    changes = outdated(config, chosen)
    if changes:  # every change at once: a config from an earlier version usually has several
        raise ValueError("\n".join(f"config key {key}: {change}" for key, change in changes))
    filled = schema(root, chosen)
    errors = sorted(filling(filled).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = _deepest(errors[0])
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        message = (_registry_problem(error, filled["$defs"]) or _rule_broken(error) or _enum_problem(error)
                   or error.message)  # fmt: skip
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
        return f"{error.schema['description']} (given: {_given(error.instance)})"
    return None


def _enum_problem(error: Any) -> str | None:
    """For a value outside a long list of choices, the value and the first choices (not the whole list)."""
    choices = error.validator_value if error.validator == "enum" else None
    if not choices or len(choices) <= 8:
        return None
    first = ", ".join(map(str, choices[:8]))
    return f"{_given(error.instance)} is not one of the {len(choices)} choices ({first}, ...)"


def _given(value: Any) -> str:
    """A short account of a config value for a message: a mapping's keys, else the value itself (cut short)."""
    if isinstance(value, Mapping):
        return "a mapping of " + ", ".join(sorted(map(str, value)))
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _deepest(error: Any) -> Any:
    """Of an error among alternatives (anyOf / oneOf), the one that names the culprit: the one deepest inside the
    value, or the only alternative of the value's own type (e.g. a model given as a mapping with an unknown key)."""
    if error.context:
        deeper = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deeper.absolute_path) > len(error.absolute_path):
            return _deepest(deeper)
        by_alternative: dict[Any, list] = {}
        for e in error.context:
            by_alternative.setdefault(e.relative_schema_path[0], []).append(e)
        of_its_type = [errs for errs in by_alternative.values() if not any(map(_wrong_type, errs))]
        if len(of_its_type) == 1 and len(of_its_type[0]) == 1:
            return _deepest(of_its_type[0][0])
    return error


def _wrong_type(error: Any) -> bool:
    """Whether a schema error says the value is of the wrong type (a type, a list of choices of other types, or
    every alternative of the wrong type), rather than a value of the right type that breaks a rule."""
    if error.validator == "type":
        return True
    if error.validator == "enum":
        return not any(type(choice) is type(error.instance) for choice in error.validator_value)
    if error.validator in ("anyOf", "oneOf") and error.context:
        return all(_wrong_type(e) for e in error.context)
    return False


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
