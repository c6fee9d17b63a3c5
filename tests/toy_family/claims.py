"""The toy family's claim, judged through the one claims protocol (advtransfer/claims.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from advtransfer import claims as C
from advtransfer.fidelity import aspect, fidelity_frame

CLAIMS = {"toy_rises": C.ClaimSpec("toy_rises", "the toy score ranks the toy outcome", "the toy paper, Figure 1")}


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"values": f"results/{name}/values.csv"}


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    settings = C.test_settings(protocol)

    def measure(view):
        result = C.rank_association(frames["values"], view["x"], view["y"], **settings)
        return result, f"Spearman of {view['x']} with {view['y']} across sources within seeds", ""

    rows = [r for cid, d in declared.items() for r in C.judge(name, CLAIMS[cid], d, measure, protocol["alpha"])]
    fidelity = fidelity_frame(name, [aspect("sources", "a dozen", str(block["n_sources"]))])
    return {"claims": C.claims_frame(rows), "checks": C.checks_frame([]), "fidelity": fidelity}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    return [C.ClaimDesign(name, cid, "rank", block["n_sources"], len(block["seeds"]), d["direction"])
            for cid, d in declared.items()]  # fmt: skip
