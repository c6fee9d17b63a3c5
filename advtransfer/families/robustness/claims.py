"""The robustness family's claims (Kopetzki, Bojchevski and Guennemann; Vaishnavi, Eykholt and Rahmati), from
results/<experiment>/robustness.csv (one row per source scheme, seed and retraining scheme). No torch.

- ``robustness_transfers``: across the source schemes (the units, each keeping its seeds), does the source's
  robust accuracy on the source task rank the retrained models' robust accuracy on the target task? (rank
  association within each seed; its design check: the schemes' source robustness must differ by more than
  the seed noise.)
- ``retraining_minor``: per seed, the SD of the target robust accuracy across the declared retraining schemes
  over its SD across the source schemes (each a mean over the other factor); below 1 means the source matters
  more. Kopetzki et al.'s "minor influence" compares their standard retraining schemes; robust (adversarial)
  fine-tuning is their separate question "does robust retraining improve robustness?", so the primary view
  compares ``probe`` and ``finetune`` and the view with ``adv_finetune`` is secondary.
- ``rrm_robust`` / ``rrm_cheaper``: per seed, the RRM student's source robust accuracy over its adversarially
  trained teacher scheme's (at least ``ratio``) and its training CPU time over that scheme's (at most
  ``ratio``; the teacher's own training not counted, as in the RRM paper).
The last three are tested by sign flips over the seeds (each an independent repetition) of the log ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.fidelity import aspect, fidelity_frame, view_result

CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("robustness_transfers", "improving source robustness increases target robustness",
                    "Kopetzki et al., abstract", knowledge=True),
        C.ClaimSpec("retraining_minor", "target retraining has a minor influence on target robustness",
                    "Kopetzki et al., abstract"),
        C.ClaimSpec("rrm_robust", "robust representation matching reaches adversarial training's robustness",
                    "Vaishnavi et al., Table 1"),
        C.ClaimSpec("rrm_cheaper", "robust representation matching trains in a fraction of adversarial training's "
                    "time", "Vaishnavi et al., Table 1"),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"summary": f"results/{name}/robustness.csv"}


def robust_column(side: str, view: Mapping[str, Any]) -> str:
    """robustness.csv's column of ``side``'s (source / target) accuracy under the view's attack at its eps."""
    return f"{side}_{view.get('attack', 'pgd')}_accuracy_eps{float(view['eps']):g}"


def effect_ratio(frame: pd.DataFrame, column: str) -> float:
    """SD (ddof 1) of the means of ``column`` per retraining scheme over the SD of its means per source scheme."""
    by_retrain = frame.groupby("retrain")[column].mean()
    by_scheme = frame.groupby("scheme")[column].mean()
    if len(by_retrain) < 2 or len(by_scheme) < 2 or by_scheme.std(ddof=1) == 0:
        return math.nan
    return float(by_retrain.std(ddof=1) / by_scheme.std(ddof=1))


def scheme_ratio(frame: pd.DataFrame, column: str, numerator: str, denominator: str) -> float:
    means = frame.groupby("scheme")[column].mean()
    if numerator not in means.index or denominator not in means.index or means[denominator] == 0:
        return math.nan
    return float(means[numerator] / means[denominator])


def ratio_test(per_seed: dict, pooled: float, null: float, settings: Mapping[str, Any]) -> C.TestResult:
    """Sign flips of log(r_seed / null); reported as the pooled ratio, the interval back on the ratio scale."""
    logs = np.log(np.asarray([v for v in per_seed.values()], dtype=float) / null)
    result = C.sign_flip(logs[np.isfinite(logs)], **settings)
    lo, hi = (null * math.exp(result.lo), null * math.exp(result.hi)) if math.isfinite(result.lo) else (math.nan,) * 2
    return C.with_value(result, pooled, lo, hi, null_value=null)


def _measure(frame: pd.DataFrame, settings: dict[str, Any]):
    one = frame[frame["retrain"] == frame["retrain"].iloc[0]]  # one row per (scheme, seed) for source quantities

    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        if "retrain" in view:
            source, target = robust_column("source", view), robust_column("target", view)
            part = frame[frame["retrain"] == view["retrain"]]
            result = C.rank_association(part, source, target, unit="scheme", seed="seed", **settings)
            return result, (f"Spearman of {source} with {target} after {view['retrain']} across the "
                            f"{result.n_units} source schemes within each seed"), ""  # fmt: skip
        if "retrains" in view:
            target = robust_column("target", view)
            part = frame[frame["retrain"].isin(view["retrains"])]
            per_seed = {s: effect_ratio(g, target) for s, g in part.groupby("seed")}
            result = ratio_test(per_seed, effect_ratio(part, target), 1.0, settings)
            means = part.groupby("retrain", sort=False)[target].mean()
            return result, (f"SD of {target} across the retraining schemes {list(view['retrains'])} over its SD "
                            "across the source schemes"), "mean by retraining: " + ", ".join(
                                f"{k} {v:.3f}" for k, v in means.items())  # fmt: skip
        column = robust_column("source", view) if "eps" in view else "train_cpu_seconds"
        per_seed = {s: scheme_ratio(g, column, view["scheme"], view["versus"]) for s, g in one.groupby("seed")}
        result = ratio_test(per_seed, scheme_ratio(one, column, view["scheme"], view["versus"]),
                            float(view["ratio"]), settings)
        return result, f"{column} of {view['scheme']} over {view['versus']} (no effect: {view['ratio']:g})", ""

    return measure


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame) -> pd.DataFrame:
    rrm = [s for s in block["schemes"].values() if s["objective"] == "rrm"]
    lam = ", ".join(f"{s.get('params', {}).get('lam', 'default')}" for s in rrm) or "no rrm scheme"
    retrain = view_result(claims, "retraining_minor", retrains="['probe', 'finetune', 'adv_finetune']")
    model = block["model"] if isinstance(block["model"], str) else block["model"]["name"]
    return fidelity_frame(name, [
        aspect("data", "CIFAR-100 / CIFAR-10 / SVHN-style source and target tasks",
               f"{block['source']['dataset']} ({len(block['source']['classes'])} classes) -> "
               f"{block['target']['dataset']} ({len(block['target']['classes'])} classes, "
               f"{block['target'].get('domain', 'identity')})"),
        aspect("model", "ResNet-18", f"{model}, {block['image_size']} px"),
        aspect("source schemes", "10 (ce, noise, adversarial, contrastive, Lipschitz, ...)",
               f"{len(block['schemes'])}: {', '.join(block['schemes'])}"),
        aspect("seeds", "not stated", str(len(block["seeds"]))),
        aspect("retraining schemes", "3 target schemes", "probe, finetune, adv_finetune",
               ablation=f"the retraining ratio with adv_finetune: {retrain}" if retrain else ""),
        aspect("RRM lambda", "0.005 (CIFAR-10, L-inf)", lam),
        aspect("robustness measured by", "randomized smoothing and attacks", "PGD and APGD per eps, certified "
               "accuracy (Cohen et al.) per radius"),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one robustness experiment; the rrm claims only when both schemes exist."""
    frame = frames["summary"]
    measure, rows = _measure(frame, C.test_settings(protocol)), []
    schemes = set(frame["scheme"])
    for cid, declaration in declared.items():
        primary = declaration["primary"]
        if cid.startswith("rrm") and not {primary["scheme"], primary["versus"]} <= schemes:
            continue
        design = None
        if CLAIMS[cid].knowledge:
            one = frame[frame["retrain"] == primary["retrain"]]
            design = C.design_check(one, robust_column("source", primary), float(protocol["min_separation"]),
                                    unit="scheme", what="schemes")  # fmt: skip
        rows += C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]), design)
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    n, k = len(block["schemes"]), len(block["seeds"])
    out = []
    for cid, d in declared.items():
        if cid.startswith("rrm") and not {d["primary"]["scheme"], d["primary"]["versus"]} <= set(block["schemes"]):
            continue
        kind = "rank" if cid == "robustness_transfers" else "sign"
        out.append(C.ClaimDesign(name, cid, kind, n if kind == "rank" else k, k, d["direction"],
                                 float(d.get("min_effect", 0.0))))
    return out


def claims_problems(block: Mapping[str, Any], declared: Mapping[str, Any],
                    config: Mapping[str, Any]) -> list[tuple[str, str]]:  # fmt: skip
    """(key, problem) for views that name an eps the block does not attack at, or none."""
    pgd = block["evaluation"]["pgd"]["eps"]
    attacked = {"pgd": pgd, "apgd": block["evaluation"].get("apgd", {}).get("eps") or pgd}
    problems = []
    for cid, declaration in declared.items():
        primary = declaration["primary"]
        for part, own in C.declared_parts(declaration):
            view, where = {**primary, **own}, f"{cid}.{part}"
            if "eps" not in view or (part != "primary" and not {"eps", "attack"} & set(own)):
                continue  # a secondary answers for the keys it names
            allowed = attacked.get(view.get("attack", "pgd"), [])
            if view["eps"] is None or float(view["eps"]) not in [float(e) for e in allowed]:
                attack = view.get("attack", "pgd")
                problems.append((f"{where}.eps", f"name the eps this claim compares at: one of the block's "
                                 f"evaluation.{attack}.eps {allowed} (got {view['eps']})"))  # fmt: skip
    return problems


def compared(block: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """What the family's table and figure compare, from the declared claims: the eps of the primary
    robustness_transfers view, the RRM student and its teacher scheme, the first scheme as the standard one and
    the others (each shown in the figure's time panel)."""
    rrm = declared.get("rrm_robust", {}).get("primary", {})
    schemes = list(block["schemes"])
    student, teacher = rrm.get("scheme", ""), rrm.get("versus", "")
    return {"eps": float(declared["robustness_transfers"]["primary"]["eps"]), "standard": schemes[0],
            "robust": teacher, "rrm": student, "fast": [s for s in schemes[1:] if s not in (student, teacher)]}
