"""The multi-order interactions family's claims (Ren et al. 2021, abstract), from results/<experiment>/
profiles.csv (per model, image and order: the clean strength, the strength at the adversarial example and the
attack-induced change). No torch. The models are the units (images are nested in them); each claim is tested
by sign flips over models.

- ``attack_changes_high_orders``: "adversarial attacks mainly affect high-order interactions". Per model, the
  mean attack-induced change |I^(m)(x_adv) - I^(m)(x)| over the high orders (r = m / (n - 2) >= ``high``) over
  that over the low orders (r <= ``low``); the claim: above 1. The primary measure is that ``absolute`` change,
  the quantity the claim names (what the attack does to the interactions); the ``relative`` change (each
  order's change over its clean strength) is a secondary view: it divides by the clean strength, which itself
  falls with the order, so it answers a different question (how fragile each order is).
- ``robust_lower_high_order_share``: "the robustness of adversarially trained models comes from low-order
  interactions": per seed, the share of the clean strength at the high orders of the robust scheme's model
  minus the standard one's (paired by seed); the claim: below 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.fidelity import aspect, fidelity_frame

PAPER = "Ren et al. 2021, abstract"
CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("attack_changes_high_orders", "adversarial perturbations mainly change high-order interactions",
                    PAPER),
        C.ClaimSpec("robust_lower_high_order_share", "adversarially trained models rely less on high-order "
                    "interactions (their robustness comes from low-order ones)", PAPER),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"profiles": f"results/{name}/profiles.csv"}


def _models(profiles: pd.DataFrame, side: str, group: str | None) -> pd.DataFrame:
    part = profiles[profiles["side"] == side]
    return part if group in (None, "all") else part[part["group"] == group]


def change_ratios(profiles: pd.DataFrame, view: Mapping[str, Any]) -> pd.Series:
    """Per model (group, seed) of the view's side and group: mean change at r >= high over that at r <= low."""
    high, low = float(view["high"]), float(view["low"])
    out = {}
    for key, frame in _models(profiles, view["side"], view.get("group")).groupby(["group", "seed"]):
        means = frame.groupby("order_ratio")[["change", "clean"]].mean()
        r = means.index.to_numpy(float)
        per_order = means["change"] / means["clean"] if view["measure"] == "relative" else means["change"]
        hi, lo = per_order[r >= high - 1e-12], per_order[r <= low + 1e-12]
        out[key] = float(hi.mean() / lo.mean()) if len(hi) and len(lo) and lo.mean() > 0 else math.nan
    return pd.Series(out, dtype=float)


def high_order_share(frame: pd.DataFrame, high: float) -> float:
    means = frame.groupby("order_ratio")["clean"].mean()
    return float(means[means.index >= high - 1e-12].sum() / means.sum())


def _measure(profiles: pd.DataFrame, settings: dict[str, Any]):
    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        if "versus" not in view:
            ratios = change_ratios(profiles, view).dropna()
            result = C.sign_flip(np.log(ratios.to_numpy()), what="models", **settings)
            gm = lambda v: math.exp(v) if math.isfinite(v) else math.nan  # noqa: E731 - the geometric scale
            result = C.with_value(result, gm(result.value), gm(result.lo), gm(result.hi), null_value=1.0)
            group = view.get("group") or "all"
            return result, (f"{group} models on the {view['side']} task: {view['measure']} attack-induced change of "
                            f"I^(m) at r >= {view['high']:g} over that at r <= {view['low']:g} (r = m / (n - 2)), "
                            f"geometric mean over {len(ratios)} models"), ""  # fmt: skip
        side, high = view["side"], float(view["high"])
        robust, standard = _models(profiles, side, view["group"]), _models(profiles, side, view["versus"])
        shares = {s: high_order_share(g, high) for s, g in robust.groupby("seed")}
        base = {s: high_order_share(g, high) for s, g in standard.groupby("seed")}
        paired = [shares[s] - base[s] for s in sorted(set(shares) & set(base))]
        result = C.sign_flip(paired, **settings)
        return result, (f"share of the clean interaction strength at r >= {high:g}: {view['group']} minus "
                        f"{view['versus']} on the {side} task, paired by seed"), ""  # fmt: skip

    return measure


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame) -> pd.DataFrame:
    grid = block["grid"]
    players = grid * grid if isinstance(grid, int) else grid[0] * grid[1]
    return fidelity_frame(name, [
        aspect("models and data", "ResNet / VGG on CIFAR-10, Tiny ImageNet (standard and adversarially trained)",
               f"the models of robustness block {block['robustness']}"
               + (f" and the sources of scenario {block['scenario']}" if block.get("scenario") else "")),
        aspect("players", "a 16 x 16 grid of image regions (256 players)",
               f"a {grid} x {grid} grid ({players} players)" if isinstance(grid, int) else f"{grid}"),
        aspect("images", "hundreds of images", f"{block['n_images']} correctly classified images per model"),
        aspect("pairs and contexts", "sampled pairs and contexts", f"{block['n_pairs']} adjacent pairs x "
               f"{block['n_contexts']} contexts per order and image"),
        aspect("attack", "PGD", f"PGD Linf eps {block['attack']['eps']:g}, {block['attack']['steps']} steps"),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one interactions experiment (views whose models are absent are left out)."""
    profiles = frames["profiles"]
    measure, rows = _measure(profiles, C.test_settings(protocol)), []
    for cid, declaration in declared.items():
        primary = declaration["primary"]
        if _models(profiles, primary["side"], primary.get("group")).empty:
            continue
        present = [s for s in declaration.get("secondary") or []  # e.g. the scenario's side, in a block without one
                   if not _models(profiles, {**primary, **s}["side"], {**primary, **s}.get("group")).empty]
        rows += C.judge(name, CLAIMS[cid], {**declaration, "secondary": present}, measure, float(protocol["alpha"]))
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    """Sign flips over the models of each claim's primary view: one per seed of the robustness block for a
    scheme, or every source and seed of the scenario for its side with every group."""
    seeds = len(config["robustness"][block["robustness"]]["seeds"])
    out = []
    for cid, d in declared.items():
        view = d["primary"]
        n = seeds
        if view["side"] == "scenario" and block.get("scenario"):
            scenario = config["scenarios"][block["scenario"]]
            n = len(scenario["seeds"]) * (len(scenario["sources"]) if view.get("group") in (None, "all") else 1)
        out.append(C.ClaimDesign(name, cid, "sign", n, n, d["direction"], float(d.get("min_effect", 0.0))))
    return out


def compared(declared: Mapping[str, Any]) -> dict[str, Any]:
    """The order ranges and groups the family's summary, table and figure show, from the declared claims."""
    change = declared["attack_changes_high_orders"]["primary"]
    share = declared.get("robust_lower_high_order_share", {}).get("primary", {})
    return {"high": float(change["high"]), "low": float(change["low"]), "standard": change.get("group") or "ce",
            "robust": [share["group"]] if share else []}


def claims_problems(block: Mapping[str, Any], declared: Mapping[str, Any],
                    config: Mapping[str, Any]) -> list[tuple[str, str]]:  # fmt: skip
    """(key, problem) for views whose models the block does not analyse, or whose order ranges overlap."""
    robustness = config["robustness"].get(block["robustness"]) or {}
    chosen = list(block["schemes"] or robustness.get("schemes", {}))
    problems = []
    for cid, declaration in declared.items():
        primary = declaration["primary"]
        for part, own in C.declared_parts(declaration):
            view, where = {**primary, **own}, f"{cid}.{part}"
            mine = own if part != "primary" else view  # a secondary answers for the keys it names
            for key in ("group", "versus"):
                name = view.get(key)
                if key in mine and view.get("side") != "scenario" and name not in (None, "all") and name not in chosen:
                    problems.append((f"{where}.{key}", f"{name!r} is not among the analysed schemes {chosen}"))
            if {"low", "high"} & set(mine) and "low" in view and float(view["low"]) >= float(view["high"]):
                problems.append((f"{where}.low", f"low ({view['low']}) must lie below high ({view['high']})"))
    return problems
