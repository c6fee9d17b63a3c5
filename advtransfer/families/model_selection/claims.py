"""The model-selection family's claims, from results/<experiment>/scores.csv (one row per candidate: a
scenario's source and seed, or a zoo model; every score and outcome). No torch.

A view ``{score, against}`` is the weighted Kendall (scipy.stats.weightedtau, default weigher) of the score
with the outcome over all candidates, as a practitioner ranks them; its test relabels the candidate sources
(a scenario source keeps all its seeds; zoo models are relabelled among themselves). A view ``{score, versus,
against}`` (tau beats the declared estimator) takes, per seed, the weighted Kendall of ``score`` minus that
of ``versus`` over that seed's sources, and tests their mean by sign flips over the seeds. The estimator is
declared in config before the run (not the best of the run: that would pick the winner on the data it is then
judged on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.families.scenarios.claims import resolve
from advtransfer.fidelity import aspect, fidelity_frame
from advtransfer.selection import weighted_tau_rows

CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("tau_selects", "more adversarially transferable sources transfer knowledge better, so tau1 tau2 "
                    "ranks candidate sources by their transfer", "Liang et al. 2021, Section 4.2, as a "
                    "model-selection score", knowledge=True),
        C.ClaimSpec("estimator_selects", "a transferability estimator ranks candidate sources by their transfer",
                    "the estimator's paper (LEEP, NCE, H-score, shrinkage H-score, LogME, N-LEEP, TransRate, GBC, "
                    "SFDA)", knowledge=True),
        C.ClaimSpec("tau_beats_estimator", "tau1 tau2 ranks candidate sources better than the declared "
                    "transferability estimator", "this project's question: adversarial transferability next to "
                    "the practitioners' estimators", knowledge=True),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"scores": f"results/{name}/scores.csv", "agreement": f"results/{name}/agreement.csv"}


def weighted_kendall(x: np.ndarray, y: np.ndarray) -> float:
    """scipy's weightedtau over the candidates where both are finite (NaN with fewer than 2 or a constant side)."""
    used = np.isfinite(x) & np.isfinite(y)
    if used.sum() < 2 or np.ptp(x[used]) == 0 or np.ptp(y[used]) == 0:
        return math.nan
    return float(weighted_tau_rows(x[used], y[used])[0])


def candidate_matrices(scores: pd.DataFrame, columns: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Unit x column matrices of ``columns``: scenario sources by seed, then each zoo model in a column of its
    own; and each unit's stratum (0: scenario sources, 1: zoo models)."""
    scenario, zoo = scores[scores["kind"] == "scenario"], scores[scores["kind"] != "scenario"]
    seeds = sorted(scenario["seed"].dropna().unique())
    sources = sorted(scenario["source"].unique())
    n = len(sources) + len(zoo)
    out = {}
    for c in columns:
        m = np.full((n, len(seeds) + 1), np.nan)
        for i, s in enumerate(sources):
            rows = scenario[scenario["source"] == s].set_index("seed")[c]
            m[i, : len(seeds)] = rows.reindex(seeds).to_numpy(float)
        m[len(sources):, -1] = zoo[c].to_numpy(float)
        out[c] = m
    return out, np.array([0] * len(sources) + [1] * len(zoo))


def _with_interval(result: C.TestResult, agreement: pd.DataFrame | None, score: str, outcome: str) -> C.TestResult:
    """The test's result with agreement.csv's cluster-bootstrap interval of the same weighted Kendall."""
    if agreement is None:
        return result
    row = agreement[(agreement["score"] == score) & (agreement["outcome"] == outcome)]
    if row.empty:
        return result
    return C.with_value(result, result.value, float(row["weighted_kendall_lo"].iloc[0]),
                        float(row["weighted_kendall_hi"].iloc[0]))  # fmt: skip


def _measure(scores: pd.DataFrame, outcome: str, settings: dict[str, Any], agreement: pd.DataFrame | None = None):
    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        against = resolve(view["against"], outcome)
        if "versus" in view:
            per_seed = []
            for _, g in scores[scores["kind"] == "scenario"].groupby("seed"):
                y = g[against].to_numpy(float)
                per_seed.append(weighted_kendall(g[view["score"]].to_numpy(float), y)
                                - weighted_kendall(g[view["versus"]].to_numpy(float), y))  # fmt: skip
            result = C.sign_flip(per_seed, **settings)
            return result, (f"weighted Kendall with {against} of {view['score']} minus {view['versus']} within each "
                            f"seed's sources, mean over {result.n_units} seeds"), ""  # fmt: skip
        mats, strata = candidate_matrices(scores, [view["score"], against])
        finite = np.isfinite(mats[view["score"]]) & np.isfinite(mats[against])
        used = np.zeros_like(finite)  # the same cells in every arrangement: units move within their stratum only
        scenario = strata == 0
        used[scenario, :-1] = finite[scenario, :-1].all(axis=1, keepdims=True)  # a source with every seed
        used[~scenario, -1] = finite[~scenario, -1]

        def statistic(m: Mapping[str, np.ndarray]) -> np.ndarray:
            x = m[view["score"]][:, used]  # (P, candidates)
            return weighted_tau_rows(x, m[against][used]) if used.sum() >= 2 else np.full(len(x), np.nan)

        result = C.unit_permutation_test(
            mats, [view["score"]], statistic, strata=strata, what="candidate sources", batched=True,
            **{k: settings[k] for k in ("n_perm", "perm_seed", "alpha")},
        )  # fmt: skip
        result = _with_interval(result, agreement, view["score"], against)
        return result, (f"weighted Kendall of {view['score']} with {against} over the {int(used.sum())} "
                        "candidates (interval: agreement.csv's cluster bootstrap)"), ""  # fmt: skip

    return measure


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame) -> pd.DataFrame:
    return fidelity_frame(name, [
        aspect("candidates", "(no paper: this project's comparison)",
               (f"the sources of scenario {block['scenario']}" if block["scenario_sources"] else "")
               + (f" and {len(block['zoo'])} zoo models" if block.get("zoo") else ""), differs=False),
        aspect("estimators", "each on its paper's benchmarks (ImageNet models, fine-grained targets)",
               "every estimator on the same candidates' features of the scenario's labelled target images"),
        aspect("ground truth", "fine-tuned accuracy", f"{block['outcome']} (and every other knowledge outcome)"),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one model-selection experiment. The knowledge claims need the design
    check on the scenario's sources; a zoo alone has no seeds to check against (said in the design text)."""
    scores, outcome = frames["scores"], block["outcome"]
    measure, rows = _measure(scores, outcome, C.test_settings(protocol), frames.get("agreement")), []
    sources = scores[scores["kind"] == "scenario"]
    design = (C.design_check(sources, outcome, float(protocol["min_separation"])) if len(sources)
              else C.Design(True, "no design check: a zoo alone has no seeds"))  # fmt: skip
    for cid, declaration in declared.items():
        if "versus" in declaration["primary"] and sources.empty:
            continue
        rows += C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]), design)
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    scenario = config["scenarios"][block["scenario"]] if block.get("scenario_sources") else None
    n_sources = len(scenario["sources"]) if scenario else 0
    seeds = len(scenario["seeds"]) if scenario else 1
    units = n_sources + len(block.get("zoo") or [])
    out = []
    for cid, d in declared.items():
        versus = "versus" in d["primary"]
        if versus and not scenario:
            continue
        out.append(C.ClaimDesign(name, cid, "sign" if versus else "weighted_kendall", seeds if versus else units,
                                 seeds, d["direction"], float(d.get("min_effect", 0.0))))
    return out


def _run_weighted_kendall(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration (advtransfer.calibration) of a score's weighted Kendall over the candidates: candidates in the
    design's shape (sources x seeds), the score unrelated to the outcome under ``null``; the real test."""
    from advtransfer.calibration import simulate_rank

    frame = simulate_rank(design, null, rng).rename(columns={"x": "score", "y": "outcome_value"})
    frame["kind"] = "scenario"
    result, _, _ = _measure(frame, "outcome_value", settings)({"score": "score", "against": "outcome"})
    return C.verdict(result, design.direction, design.min_effect, settings["alpha"])


CALIBRATION_RUNNERS = {"weighted_kendall": _run_weighted_kendall}
