"""The data-distribution scenarios' claims (Liang et al. 2021, Section 4.2, Figure 3), from a scenario's
summary (results/<scenario>/summary.csv: one row per source and seed). No torch.

The units are the sources (class mixtures); each keeps its seeds. Views:
``{metric, against}``: :func:`advtransfer.claims.rank_association` of an adversarial metric with ``closeness``
(1 - the share of the source's classes outside the target task), with ``outcome`` (the scenario's declared
knowledge outcome) or with any other outcome column; ``{baseline, factor, against}`` (tau1 alone is not
sufficient): the mean within-seed Spearman of baseline x factor with the outcome minus that of the baseline
alone, against the same difference when the factor's sources are relabelled at random (does tau2 add what
tau1 lacks?).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.designs import LOWER_IS_MORE
from advtransfer.families.scenarios.jobs import source_spec
from advtransfer.fidelity import aspect, fidelity_frame, view_result

PAPER = "Liang et al. 2021"
CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("closer_more_transferable", "the closer the source's data to the target's, the more "
                    "adversarially transferable the source", f"{PAPER}, Section 4.2"),
        C.ClaimSpec("transfers_knowledge", "the more adversarially transferable source transfers knowledge better",
                    f"{PAPER}, Section 4.2, Figure 3", knowledge=True),
        C.ClaimSpec("tau1_not_sufficient", "tau1 alone is not sufficient: tau1 tau2 indicates knowledge transfer "
                    "better than tau1", f"{PAPER}, Section 4.2, Figure 3b", knowledge=True),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"summary": f"results/{name}/summary.csv"}


def oriented(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` with larger = more adversarially transferable (the reference's accuracy at the source's
    examples is negated: lower means they hurt it more)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    return -values if column in LOWER_IS_MORE else values


def resolve(against: str, outcome: str) -> str:
    return outcome if against == "outcome" else against


def product_gain(frame: pd.DataFrame, baseline: str, factor: str, against: str, settings: Mapping[str, Any]):
    """Does ``factor`` add to ``baseline``? S(baseline x factor, y) - S(baseline, y), S the mean within-seed
    Spearman across sources, tested by relabelling the factor's sources (each keeping its seeds)."""
    cols = [baseline, factor, against]
    used = frame.dropna(subset=cols)
    m = {c: used.pivot_table(index="source", columns="seed", values=c, aggfunc="mean").to_numpy(float) for c in cols}
    complete = np.isfinite(np.stack(list(m.values()))).all(axis=(0, 2))
    m = {c: v[complete] for c, v in m.items()}
    alone = C.spearman_over_units(m[baseline], m[against])

    def statistic(mats: Mapping[str, np.ndarray]) -> np.ndarray:
        return C.spearman_over_units(mats[baseline][None] * mats[factor], mats[against]) - alone

    keys = {k: v for k, v in settings.items() if k in ("n_perm", "perm_seed", "alpha")}
    return C.unit_permutation_test(m, [factor], statistic, what="sources (the factor's values)", batched=True, **keys)


def _measure(frame: pd.DataFrame, outcome: str, settings: dict[str, Any]):
    frame = frame.assign(closeness=1.0 - frame["outside_fraction"])

    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        against = resolve(view["against"], outcome)
        if "factor" in view:
            result = product_gain(frame, view["baseline"], view["factor"], against, settings)
            return result, (f"mean within-seed Spearman with {against} of {view['baseline']} x {view['factor']} "
                            f"minus that of {view['baseline']} alone"), ""  # fmt: skip
        data = frame.assign(_x=oriented(frame, view["metric"]))
        result = C.rank_association(data, "_x", against, unit="source", seed="seed", **settings)
        sign = " (negated: lower = more transferable)" if view["metric"] in LOWER_IS_MORE else ""
        text = (f"Spearman of {view['metric']}{sign} with {against} across the {result.n_units} sources within each "
                f"seed, mean over {result.n_seeds} seeds")  # fmt: skip
        return result, text, ""

    return measure


def _notes(frame: pd.DataFrame) -> str:
    if "n_metric_images" not in frame.columns:
        return ""
    note = f"tau1 / tau2 / alpha on {int(frame['n_metric_images'].min())} target images no source saw"
    if "features_underdetermined" in frame.columns and frame["features_underdetermined"].astype(bool).any():
        note += " (fewer than 5 per feature dimension: the features variant's alignment is under-determined)"
    return note


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    target, attack = block["target"], block["attack"]
    model = block["model"] if isinstance(block["model"], str) else block["model"]["name"]
    images = int(frame["n_metric_images"].min()) if "n_metric_images" in frame.columns else block["metrics"]["n_images"]
    outcome = block["outcome"]
    return fidelity_frame(name, [
        aspect("data", "CIFAR-10 sources (4 classes each, 0-100 % animals) -> STL-10 target (4 vehicle classes)",
               f"{block['source_dataset']} sources ({len(block['sources'])} mixtures of "
               f"{len(source_spec(next(iter(block['sources'].values())))[0])} classes) -> {target['dataset']} target "
               f"({len(target['classes'])} classes), target domain {target['domain']}"),
        aspect("model", "ResNet-18 (CIFAR variant), 300 epochs, 32 x 32",
               f"{model}, {block['train']['epochs']} epochs, {block['image_size']} x {block['image_size']}"),
        aspect("seeds per source", "1", str(len(block["seeds"]))),
        aspect("reference", "one reference model", "one reference per seed, source seed k against reference seed k: "
               "its seed noise is part of the design" if block.get("paired_reference") else
               f"one reference model (seed {block['reference_seed']}) for every source: its own seed noise is not part "
               "of the design", differs=True),
        aspect("attack", "PGD Linf eps 0.1, 10 steps, 1000 target images",
               f"PGD Linf eps {attack['eps']:g}, {attack['steps']} steps, {attack['n_images']} target images"),
        aspect("tau images", "1000 target test images", f"{images} target images no source saw"),
        aspect("knowledge outcome", "a new last layer on all labelled target images (probe_accuracy)", outcome,
               ablation=_ablation("tau1 tau2 vs probe_accuracy", claims, against="probe_accuracy")),
        aspect("tau metrics at", "the logits (the paper's code)", "the source's penultimate features (the theory's "
               "f_S)", ablation=_ablation("tau1 tau2 at the logits", claims, metric="tau1_tau2_logits")),
        aspect("tau2 direction", "from T to S (the paper's code)", "from S to T (Definition 3)"),
    ])  # fmt: skip


def _ablation(label: str, claims: pd.DataFrame, **view: Any) -> str:
    found = view_result(claims, "transfers_knowledge", **view)
    return f"{label}: {found}" if found else ""


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one scenario (no checks of its own)."""
    frame, outcome = frames["summary"], block["outcome"]
    measure, rows = _measure(frame, outcome, C.test_settings(protocol)), []
    note = _notes(frame)
    for cid, declaration in declared.items():
        against = resolve(declaration["primary"]["against"], outcome)
        design = C.design_check(frame, against, float(protocol["min_separation"])) if CLAIMS[cid].knowledge else None
        claim_rows = C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]), design)
        rows += [{**r, "note": "; ".join(x for x in (r["note"], note) if x)} for r in claim_rows]
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table, frame)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    n, k = len(block["sources"]), len(block["seeds"])
    return [C.ClaimDesign(name, cid, "product" if "factor" in d["primary"] else "rank", n, k, d["direction"],
                          float(d.get("min_effect", 0.0)), y_design=d["primary"].get("against") == "closeness")
            for cid, d in declared.items()]  # fmt: skip


def _run_product(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration (advtransfer.calibration) of ``tau1_not_sufficient``: tau1, tau2 and an outcome in the design's
    shape, tau2 unrelated to the outcome under ``null``; the real test and verdict on it."""
    from advtransfer.calibration import simulate_product

    result = product_gain(simulate_product(design, null, rng), "b", "f", "y", settings)
    return C.verdict(result, design.direction, design.min_effect, settings["alpha"])


CALIBRATION_RUNNERS = {"product": _run_product}
