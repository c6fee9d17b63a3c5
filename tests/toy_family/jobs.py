"""The toy family's hooks (docs/extending.md): its config block as jobs. Each block draws sources whose score and
outcome share a known effect; it trains no network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive."""


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [("seeds", "give at least one seed")] if not block["seeds"] else []


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/values.csv", f"results/{name}/toy.png"]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> None:
    return None


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []
