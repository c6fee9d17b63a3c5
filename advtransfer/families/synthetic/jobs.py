"""The synthetic experiment's config block (Section 4.1): the files rule `all` asks for. Its own rules
(rules/synthetic.smk) build the data, the reference and one sweep per draw of V; it trains no network of the
shared stages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OUTPUTS = ("sweep.csv", "summary.csv", "figure2.png", "figure2.pdf")


def normalise(block: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Nothing to derive: the schema's defaults complete the block."""


def config_problems(block: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    return []  # the schema says everything


def outputs(name: str, block: Mapping[str, Any]) -> list[str]:
    return [f"results/{name}/{file}" for file in OUTPUTS]


def network_jobs(name: str, block: Mapping[str, Any], networks: Mapping[str, Any]) -> None:
    return None


def datasets(block: Mapping[str, Any]) -> list[str]:
    return []
