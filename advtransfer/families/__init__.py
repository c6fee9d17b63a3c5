"""The table of experiment families (docs/architecture.md). Torch-free: the workflow reads it at start-up.

Each family is one entry: its name, the config key of its blocks, the library package that holds all of its
code (advtransfer.families.<name>: config normaliser and checks, job list, input lookups, summary, claims,
tables, figure), its rules file, its schema block and its captions. The shared hubs (the Snakefile,
rules/common.smk, the claims and reproduction rules, the run summary) loop over this table and name no family.
A user's own family is one more entry, given in config under ``families`` (tests/toy_family shows one).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Family:
    """One experiment family.

    ``config_key``: the top-level config key of its blocks ({experiment name: block}); with ``single`` the key
    holds one block and the experiment is named after the key (the synthetic experiment). ``wildcard``: the
    wildcard its own rules name the experiment by. ``module``: its library package; ``rules``, ``schema`` and
    ``captions`` are paths relative to the workflow's folder.
    """

    name: str
    module: str
    rules: str
    schema: str
    captions: str
    config_key: str = ""
    wildcard: str = ""
    single: bool = False
    requires: Sequence[str] = field(default_factory=tuple)  # families whose experiments its blocks name

    @property
    def key(self) -> str:
        return self.config_key or self.name

    def load(self, part: str = "claims") -> ModuleType:
        """One of the family's modules: ``claims`` (CLAIMS, claims_inputs, claims, claim_designs and optionally
        claims_problems), imported on demand so that a job importing one part does not depend on the others."""
        return importlib.import_module(f"{self.module}.{part}")

    def blocks(self, config: Mapping[str, Any]) -> dict[str, dict]:
        """{experiment name: config block} of this family in ``config`` (empty when the key is absent)."""
        value = config.get(self.key)
        if self.single:
            return {self.key: value} if isinstance(value, dict) else {}
        return dict(value) if isinstance(value, dict) else {}


def _builtin(name: str, wildcard: str, single: bool = False, requires: Sequence[str] = (), key: str = "") -> Family:
    return Family(name=name, module=f"advtransfer.families.{name}", rules=f"rules/{name}.smk",
                  schema=f"schemas/families/{name}.schema.yaml", captions=f"report/{name}",
                  config_key=key, wildcard=wildcard, single=single, requires=tuple(requires))  # fmt: skip


# In the order the workflow registers them: a family comes after the families whose experiments it names.
BUILTIN = (
    _builtin("synthetic", "", single=True),
    _builtin("scenarios", "scenario"),
    _builtin("attributes", "attributes"),
    _builtin("tasks", "tasks"),
    _builtin("robustness", "robustness"),
    _builtin("interactions", "interactions", requires=("robustness", "scenarios")),
    _builtin("model_selection", "selection", requires=("scenarios",)),
    _builtin("added_value", "added", requires=("scenarios", "model_selection")),
)


def from_config(entry: Mapping[str, Any]) -> Family:
    """A user's family from its config entry (``families:`` list): name, module, rules, schema, captions and
    optionally config_key, wildcard, single, requires."""
    return Family(**{k: (tuple(v) if k == "requires" else v) for k, v in entry.items()})


def table(config: Mapping[str, Any] | None = None) -> tuple[Family, ...]:
    """The built-in families, then the ones ``config["families"]`` adds (whose shape
    ``advtransfer.config.check_families`` checks first)."""
    extra = tuple(from_config(e) for e in ((config or {}).get("families") or []))
    names = [f.name for f in BUILTIN + extra]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"families: {duplicated} registered twice")
    return BUILTIN + extra


def table_problems(families: Sequence[Family], base: str | Path) -> Iterator[tuple[str, str]]:
    """(config key, problem) for a family entry whose files are missing under the workflow folder ``base`` (its
    rules file, schema, captions folder), whose package does not import, or that requires a family not listed
    before it (a family's blocks name experiments of the families it requires, so those register first)."""
    seen: list[str] = []
    for family in families:
        key = f"families.{family.name}"
        for field_name in ("rules", "schema", "captions"):
            path = Path(base) / getattr(family, field_name)
            if not (path.is_dir() if field_name == "captions" else path.is_file()):
                yield f"{key}.{field_name}", f"{path} does not exist"
        try:
            importlib.import_module(family.module)
        except ImportError as err:
            yield f"{key}.module", f"{family.module} does not import ({err})"
        for required in family.requires:
            if required not in seen:
                yield f"{key}.requires", f"{required!r} is not a family listed before {family.name!r}"
        seen.append(family.name)


def experiments(config: Mapping[str, Any],
                families: Sequence[Family] | None = None) -> Iterator[tuple[str, Family, dict]]:  # fmt: skip
    """(experiment name, family, block) of every block in ``config``, family by family in table order."""
    for family in families or table(config):
        for name, block in family.blocks(config).items():
            yield name, family, block


def where(family: Family, name: str) -> str:
    """The config key of an experiment's block: ``<family key>.<name>``, or the key itself for a single block."""
    return family.key if family.single else f"{family.key}.{name}"


def normalise(config: dict[str, Any], families: Sequence[Family]) -> None:
    """Each family's normaliser (its jobs module's ``normalise`` hook) on each of its validated blocks, in place:
    what every reader of a block (the jobs, the claims, the calibration command) expects."""
    for family in families:
        jobs = family.load("jobs")
        for block in family.blocks(config).values():
            jobs.normalise(block, config)


def config_problems(config: dict[str, Any], families: Sequence[Family]) -> Iterator[tuple[str, str]]:
    """Each family's own checks of its validated, normalised blocks (its jobs module's ``config_problems``
    hook): (config key, problem) for every problem."""
    for family in families:
        jobs = family.load("jobs")
        for name, block in family.blocks(config).items():
            for key, problem in jobs.config_problems(block, config):
                yield f"{where(family, name)}.{key}", problem
