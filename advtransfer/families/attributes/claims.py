"""The attributes' claims (Liang et al. 2021, Section 4.3, Table 1), from an attributes experiment's summary
(results/<experiment>/attributes.csv: one row per attribute model and seed). No torch.

The units are the attributes; each keeps its seeds. ``attributes_transfer``: the Spearman of an adversarial
metric with the identity outcome across the attributes within each seed (the paper's claim, tested over all
attributes). ``defining_first`` (implied where the truth is known, as in the shapes world): do the attributes
that define identity rank above the nuisance ones? Its value is the mean over seeds of the AUC (defining over
nuisance, 0.5 = no separation); the test relabels which attributes define identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.designs import LOWER_IS_MORE
from advtransfer.families.scenarios.claims import oriented, resolve
from advtransfer.fidelity import aspect, fidelity_frame, view_result

PAPER = "Liang et al. 2021"
CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("attributes_transfer", "the attribute models more adversarially transferable to the identity "
                    "model transfer knowledge to identity better", f"{PAPER}, Section 4.3, Table 1", knowledge=True),
        C.ClaimSpec("defining_first", "(implied; truth known by construction) the attributes that define identity "
                    "are more adversarially transferable to it than the nuisance ones", f"{PAPER}, Section 4.3 "
                    "(implied)"),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"summary": f"results/{name}/attributes.csv"}


def auc_per_seed(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Per seed, P(a defining attribute's value > a nuisance one's), ties one half (larger = more transferable)."""
    from advtransfer.families.attributes.summary import auc_above

    out = []
    for _, g in frame.assign(_v=oriented(frame, column)).groupby("seed"):
        d = g["defines_identity"].astype(bool)
        out.append(auc_above(g.loc[d, "_v"], g.loc[~d, "_v"]))
    return np.asarray(out, dtype=float)


def _measure(frame: pd.DataFrame, outcome: str, settings: dict[str, Any]):
    frame = frame.assign(defines_identity=frame["defines_identity"].astype(bool))

    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        against = resolve(view["against"], outcome)
        data = frame.assign(_x=oriented(frame, view["metric"]), _y=frame[against].astype(float))
        result = C.rank_association(data, "_x", "_y", unit="source", seed="seed", **settings)
        sign = " (negated: lower = more transferable)" if view["metric"] in LOWER_IS_MORE else ""
        if against != "defines_identity":
            return result, (f"Spearman of {view['metric']}{sign} with {against} across the {result.n_units} "
                            f"attributes within each seed, mean over {result.n_seeds} seeds"), ""  # fmt: skip
        aucs = auc_per_seed(frame, view["metric"])
        lo, hi = (np.quantile(aucs, [0.0, 1.0]) if aucs.size > 1 else (np.nan, np.nan))
        result = C.with_value(result, float(np.mean(aucs)), lo, hi, null_value=0.5)
        n_def = int(frame.drop_duplicates("source")["defines_identity"].sum())
        return result, (f"AUC of {view['metric']}{sign}: the {n_def} identity-defining attributes over the "
                        f"{result.n_units - n_def} nuisance ones within each seed, mean over {result.n_seeds} seeds "
                        "(interval: the range over single seeds)"), ""  # fmt: skip

    return measure


def _reference_note(frame: pd.DataFrame) -> str:
    if "reference_val_accuracy" not in frame.columns:
        return ""
    accuracy = float(frame["reference_val_accuracy"].iloc[0])
    n = int(frame["reference_n_classes"].iloc[0]) if "reference_n_classes" in frame.columns else 0
    chance = f" (chance {1 / n:.3f}, {n} identities)" if n else ""
    return f"identity reference: validation accuracy {accuracy:.3f}{chance}"


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    model = block["model"] if isinstance(block["model"], str) else block["model"]["name"]
    target = block["target"]["dataset"]
    found = view_result(claims, "attributes_transfer", metric="tau1_tau2_logits")
    return fidelity_frame(name, [
        aspect("data", "CelebA: 40 attributes; identity over 10,177 people",
               f"{len(block['source_datasets'])} attribute data sets; identity reference on {target}"),
        aspect("model", "ResNet-18, Adadelta lr 1.0, 14 epochs", f"{model}, {block['train'].get('optimizer', 'sgd')} "
               f"lr {block['train']['lr']:g}, {block['train']['epochs']} epochs, {block['image_size']} px"),
        aspect("reference", "ArcFace (focal loss) identity model, SGD lr 0.1, 125 epochs",
               "a cross-entropy identity classifier; " + (_reference_note(frame) or "accuracy not recorded")),
        aspect("knowledge transfer", "a facial-recognition head on 7 verification benchmarks (LFW, CFP, AgeDB, ...)",
               f"identity probes on held-out images of the same identities ({block['outcome']})"),
        aspect("seeds per attribute", "1", str(len(block["seeds"]))),
        aspect("attack", "PGD on 1000 images (CelebA)",
               f"PGD Linf eps {block['attack']['eps']:g}, {block['attack']['steps']} steps, "
               f"{block['attack']['n_images']} images"),
        aspect("tau metrics at", "the logits (the paper's code)", "the attribute model's penultimate features",
               ablation=f"tau1 tau2 at the logits: {found}" if found else ""),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one attributes experiment; ``defining_first`` only where the block names
    identity-defining attributes (the truth is known)."""
    frame, outcome = frames["summary"], block["outcome"]
    measure, rows, note = _measure(frame, outcome, C.test_settings(protocol)), [], _reference_note(frame)
    for cid, declaration in declared.items():
        if cid == "defining_first" and not block.get("identity_defining"):
            continue
        against = resolve(declaration["primary"]["against"], outcome)
        design = C.design_check(frame, against, float(protocol["min_separation"]), what="attributes") \
            if CLAIMS[cid].knowledge else None  # fmt: skip
        claim_rows = C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]), design)
        rows += [{**r, "note": "; ".join(x for x in (r["note"], note) if x)} for r in claim_rows]
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table, frame)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    n, k = len(block["source_datasets"]), len(block["seeds"])
    out = []
    for cid, d in declared.items():
        indicator = d["primary"].get("against") == "defines_identity"
        if indicator and not block.get("identity_defining"):
            continue
        out.append(C.ClaimDesign(name, cid, "indicator" if indicator else "rank", n, k, d["direction"],
                                 float(d.get("min_effect", 0.0)), n_positive=len(block.get("identity_defining", []))))
    return out
