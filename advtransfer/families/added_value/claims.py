"""The added-value family's claims, from results/<experiment>/sources.csv (one row per source and seed of a crossed
design: its overlap level, its other design factors, every score and outcome). No torch.

The units are the sources, each keeping all its seeds; every test moves sources only among the sources of their
own overlap level, so the overlap (which drives scores and outcomes alike) cannot make a claim come true. Views:
``{score, against}``: the within-level Spearman (advtransfer.added_value.within_level_spearman) of a score with
the outcome; ``{baseline, factor, against}``: the within-level Spearman of baseline x factor minus that of the
baseline alone, the factor's sources moved within their levels (does tau2 add what tau1 lacks among sources the
overlap cannot tell apart?); ``{score, versus, against}``: per seed, the within-level Spearman of ``score`` minus
that of ``versus``, its mean tested by sign flips over the seeds (each seed an independent replicate: its sources
and its own reference). The estimator is declared in config before the run, never the run's best.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import added_value as av
from advtransfer import claims as C
from advtransfer.families.added_value.jobs import LEVEL, source_factors
from advtransfer.fidelity import aspect, fidelity_frame

CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("tau_within_level", "tau1 tau2 indicates knowledge transfer among sources with the same class "
                    "overlap", "Liang et al. 2021, Section 4.2, asked where the class overlap cannot answer",
                    knowledge=True),
        C.ClaimSpec("tau1_not_sufficient", "tau1 alone is not sufficient: tau1 tau2 indicates knowledge transfer "
                    "within an overlap level better than tau1", "Liang et al. 2021, Section 4.2, Figure 3b, "
                    "within overlap levels", knowledge=True),
        C.ClaimSpec("estimator_adds_more", "the declared transferability estimator carries more added information "
                    "than tau1 tau2 among sources with the same class overlap", "this project's question: the "
                    "estimators practitioners use, beside tau, beyond the design", knowledge=True),
    )
}  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"sources": f"results/{name}/sources.csv"}


def resolve(against: str, outcome: str) -> str:
    return outcome if against == "outcome" else against


def _matrices(frame: pd.DataFrame, columns: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Source x seed matrices of ``columns`` over the sources with every value, and each source's level."""
    units, _, mats = av.unit_matrices(frame, columns)
    keep = av.complete_units(*mats.values())
    levels = frame.groupby("source")[LEVEL].first().reindex(units).to_numpy()[keep]
    return {c: m[keep] for c, m in mats.items()}, levels


def _measure(frame: pd.DataFrame, outcome: str, settings: dict[str, Any]):
    tests = {k: settings[k] for k in ("n_perm", "perm_seed", "alpha")}

    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        against = resolve(view["against"], outcome)
        if "factor" in view:
            m, levels = _matrices(frame, [view["baseline"], view["factor"], against])
            result = av.within_level_gain_test(m[view["baseline"]], m[view["factor"]], m[against], levels, **tests)
            return result, (f"within-level Spearman with {against} of {view['baseline']} x {view['factor']} minus "
                            f"that of {view['baseline']} alone ({len(set(levels))} overlap levels)"), ""  # fmt: skip
        if "versus" in view:
            m, levels = _matrices(frame, [view["score"], view["versus"], against])
            per_seed = (av.within_level_by_seed(m[view["score"]], m[against], levels)
                        - av.within_level_by_seed(m[view["versus"]], m[against], levels))  # fmt: skip
            result = C.sign_flip(per_seed, **{k: settings[k] for k in ("n_perm", "perm_seed", "n_boot", "level",
                                                                        "alpha")})  # fmt: skip
            return result, (f"within-level Spearman with {against} of {view['score']} minus that of "
                            f"{view['versus']}, seed by seed, mean over {result.n_units} seeds"), ""  # fmt: skip
        m, levels = _matrices(frame, [view["score"], against])
        if len(levels) < 3:
            return C.untestable("fewer than 3 sources with every value", len(levels)), "", ""
        result = av.within_level_test(m[view["score"]], m[against], levels, **tests)
        lo, hi = av.within_level_interval(m[view["score"]], m[against], levels, n_boot=settings["n_boot"],
                                          seed=settings["perm_seed"], level=settings["level"])  # fmt: skip
        result = C.with_value(result, result.value, lo, hi)
        return result, (f"Spearman of {view['score']} with {against} across the sources of each overlap level, "
                        f"mean over seeds and {len(set(levels))} levels (interval: sources resampled within "
                        "levels)"), ""  # fmt: skip

    return measure


def within_level_design(frame: pd.DataFrame, outcome: str, min_separation: float) -> C.Design:
    """The design check of a within-level claim: in EVERY overlap level the sources' mean outcome must span
    ``min_separation`` seed SDs (else nothing within a level is there to be indicated)."""
    checks = {level: C.design_check(g, outcome, min_separation) for level, g in frame.groupby(LEVEL)}
    separations = {level: c.separation for level, c in sorted(checks.items())}
    passed = all(c.passed for c in checks.values())
    spans = " / ".join(f"{s:.1f}" for s in separations.values())
    at = " / ".join(f"{level:g}" for level in separations)
    text = (f"design check within overlap levels: the sources' mean {outcome} spans {spans} seed SDs at overlap "
            f"{at} (needed {min_separation:g} in every level)")
    return C.Design(passed, text + ("" if passed else ": failed"), float(np.nanmin(list(separations.values()))))


def fidelity(name: str, block: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    levels = frame.groupby(LEVEL)["source"].nunique()
    per_level = ", ".join(f"{n} at overlap {level:g}" for level, n in levels.items())
    return fidelity_frame(name, [
        aspect("design", "sources that differ in their class overlap with the target only (Section 4.2)",
               f"a crossed design: {frame['source'].nunique()} sources ({per_level}) that share an overlap level "
               "but differ in domain, training budget, label noise or width", differs=True),
        aspect("seeds", "1", f"{frame['seed'].nunique()}, each source seed against its own reference seed"),
        aspect("question", "does tau indicate knowledge transfer across sources", "does a score rank sources the "
               "class overlap cannot tell apart (within levels, given the known factors, leave-one-source-out)"),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one added-value experiment (no checks of its own)."""
    frame, outcome = frames["sources"], block["outcome"]
    measure, rows = _measure(frame, outcome, C.test_settings(protocol)), []
    for cid, declaration in declared.items():
        against = resolve(declaration["primary"]["against"], outcome)
        design = within_level_design(frame, against, float(protocol["min_separation"]))
        rows += C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]), design)
    return {"claims": C.claims_frame(rows), "checks": C.checks_frame([]), "fidelity": fidelity(name, block, frame)}


def claims_problems(block: Mapping[str, Any], declared: Mapping[str, Any],
                    config: Mapping[str, Any]) -> list[tuple[str, str]]:  # fmt: skip
    """(key, problem) for a view naming a score that the model-selection block does not measure."""
    from advtransfer.selection import SCORES

    problems = []
    for cid, declaration in declared.items():
        for i, view in enumerate(C.declared_views(declaration)):
            where = f"{cid}.primary" if i == 0 else f"{cid}.secondary[{i - 1}]"
            for key in ("score", "versus", "baseline", "factor"):
                if key in view and view[key] not in SCORES:
                    problems.append((f"{where}.{key}", f"{view[key]!r} is not a score; the scores: {list(SCORES)}"))
    return problems


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    selection = config["model_selection"][block["selection"]]
    scenario = config["scenarios"][selection["scenario"]]
    levels = tuple(f[LEVEL] for f in source_factors(scenario).values())
    seeds = len(scenario["seeds"])
    out = []
    for cid, d in declared.items():
        primary = d["primary"]
        kind = "sign" if "versus" in primary else "within_level_gain" if "factor" in primary else "within_level"
        out.append(C.ClaimDesign(name, cid, kind, seeds if kind == "sign" else len(levels), seeds, d["direction"],
                                 float(d.get("min_effect", 0.0)), strata=() if kind == "sign" else levels))
    return out


def _confounded(design: C.ClaimDesign, null: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Two scores and an outcome in the design's shape (sources x seeds), each under ``null`` (the calibration's
    nulls: independent, seed offsets, source effects of their own) plus the overlap level, which drives all
    three (the confound every crossed design has): unrelated within levels."""
    from advtransfer.calibration import _column

    level = 3.0 * np.asarray(design.strata, dtype=float)[:, None]
    return tuple(_column(design, null, rng).reshape(design.n_units, design.n_seeds) + level for _ in range(3))


def _shared(design: C.ClaimDesign, rng: np.random.Generator) -> np.ndarray:
    from advtransfer.calibration import EFFECT

    return EFFECT * rng.normal(size=(design.n_units, 1))


def _run_within_level(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration of a within-level view: the real test on confounded data (``_confounded``); under the effect
    score and outcome share a within-level source signal in the claimed direction."""
    x, _, y = _confounded(design, null or "independent", rng)
    if null is None:
        shared = _shared(design, rng)
        x, y = x + C.direction_sign(design.direction) * shared, y + shared
    result = av.within_level_test(x, y, design.strata, n_perm=settings["n_perm"], perm_seed=settings["perm_seed"],
                                  alpha=settings["alpha"])  # fmt: skip
    return C.verdict(result, design.direction, design.min_effect, settings["alpha"])


def _run_within_level_gain(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration of ``tau1_not_sufficient``: tau1 tracks the outcome within levels; under ``null`` tau2 has
    nothing to do with it there, under the effect the outcome also rises with tau2. Positive, as tau are."""
    x, f, y = _confounded(design, null or "independent", rng)
    tracked = _shared(design, rng)
    x, y = x + tracked, y + tracked
    if null is None:
        shared = _shared(design, rng)
        f, y = f + shared, y + shared
    result = av.within_level_gain_test(np.exp(x / 4), np.exp(f / 4), y, design.strata, n_perm=settings["n_perm"],
                                       perm_seed=settings["perm_seed"], alpha=settings["alpha"])  # fmt: skip
    return C.verdict(result, design.direction, design.min_effect, settings["alpha"])


CALIBRATION_RUNNERS = {"within_level": _run_within_level, "within_level_gain": _run_within_level_gain}
