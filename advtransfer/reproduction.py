"""Claims vs findings: each claim of Liang et al. (ICML 2021) tested by a measurement of this run, with a
verdict from criteria declared in config before the run (``reproduction`` block). No torch.

A claim row: ``experiment, claim_id, claim, paper, measurement, value, lo, hi, criterion, verdict, note``.
Verdicts: ``reproduced``, ``not reproduced``, ``inconclusive``. An interval claim ("rises", "falls",
"correlates") is reproduced when its whole interval lies beyond the declared margin on the claimed side,
not reproduced when it lies wholly on the other side of the margin, and inconclusive otherwise (or without
an interval). A check claim (an identity, a bound, a range) is reproduced when no row violates it.
``note`` says where our design deviates from the paper's and gives the ablation's number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from advtransfer.stats import format_interval as _fmt
from advtransfer.stats import outcome_separation, rank_correlations, spearman_difference

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
COLUMNS = [
    "experiment", "claim_id", "claim", "paper", "measurement", "value", "lo", "hi", "criterion", "verdict", "note",
]


def interval_verdict(lo: float, hi: float, sign: int, margin: float = 0.0) -> str:
    """Verdict of a claim that a quantity is above ``margin`` (``sign`` = +1) or below ``-margin``
    (``sign`` = -1), given its interval [lo, hi]: the whole interval beyond the margin on the claimed side
    -> reproduced; wholly on the other side -> not reproduced; straddling it or NaN -> inconclusive."""
    if sign not in (1, -1):
        raise ValueError(f"interval_verdict: sign must be +1 or -1, got {sign}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    lo, hi = (lo, hi) if sign == 1 else (-hi, -lo)
    if lo > margin:
        return "reproduced"
    if hi < margin:
        return "not reproduced"
    return "inconclusive"


def check_verdict(violations: int, rows: int) -> str:
    """Verdict of a claim every row must satisfy (an identity, a bound, a range): reproduced when none of
    ``rows`` (> 0) violates it, else not reproduced; inconclusive without rows."""
    if rows <= 0:
        return "inconclusive"
    return "reproduced" if violations == 0 else "not reproduced"


def _claim(experiment, claim_id, claim, paper, measurement, value, lo, hi, criterion, verdict, note="") -> dict:
    return dict(zip(COLUMNS, (experiment, claim_id, claim, paper, measurement, float(value), float(lo), float(hi),
                              criterion, verdict, note)))  # fmt: skip


def _spearman(frame: pd.DataFrame, metric: str, outcome: str, c: dict[str, Any]) -> tuple[float, float, float]:
    """Spearman rho of ``metric`` with ``outcome`` over the rows, cluster-bootstrap interval over seeds."""
    r = rank_correlations(frame, [metric], outcome=outcome, cluster="seed", n_boot=c["n_boot"], level=c["level"],
                          seed=c["seed"], kendall=False).iloc[0]  # fmt: skip
    return float(r.spearman), float(r.spearman_lo), float(r.spearman_hi)


# ------------------------------------------------------------------------------- Section 4.1, Figure 2

SYNTHETIC_COLUMNS = ("t", "seed", "split", "tau1", "tau2", "tau2_unclamped", "alpha", "tau2_reverse", "grad_diff",
                     "thm1_lhs", "thm1_rhs", "thm1_gap", "thm2_bound", "thm2_bound_lipschitz",
                     "transfer_loss_lastlayer", "transfer_loss_affine", "thm3_bound")  # fmt: skip


def synthetic_claims(sweep: pd.DataFrame, c: dict[str, Any]) -> list[dict]:
    """The Section 3 / 4.1 claims on the synthetic sweep (every row of both samples D for the checks; the
    training sample, the theory's D, for the trends, with the held-out sample and the paper's t range
    and tau2 direction as ablations in the notes). ``c``: the config's ``reproduction`` block."""
    missing = [k for k in SYNTHETIC_COLUMNS if k not in sweep.columns]
    if missing:
        raise ValueError(f"synthetic_claims: the sweep lacks columns {missing}")
    e, margin = "synthetic", c["min_correlation"]
    train, heldout = sweep[sweep["split"] == "train"], sweep[sweep["split"] == "heldout"]
    text_range = train[train["t"] <= 1.0]
    n = len(sweep)
    claims = []

    values = sweep[["tau1", "tau2_unclamped"]].to_numpy(dtype=float)
    tol = c["range_tolerance"]
    outside = int(((values < -tol) | (values > 1 + tol)).any(axis=1).sum())
    claims.append(_claim(
        e, "prop1", "tau1 and tau2 lie in [0, 1]", "Proposition 1",
        f"min and max of tau1 and of tau2 before the clamp to [0, 1], {n} rows (both samples D)",
        values.min(), values.min(), values.max(), f"every value in [-{tol:g}, 1 + {tol:g}]",
        check_verdict(outside, n), f"{outside} rows outside",
    ))  # fmt: skip

    rel = np.abs(sweep["thm1_gap"].to_numpy(dtype=float))
    rtol = c["identity_rtol"]
    claims.append(_claim(
        e, "thm1", "||grad f_T - A grad f_S||^2 = E[(1 - tau1(x) tau2) ||grad f_T(x)||^2] (m = d = 1)", "Theorem 1",
        f"largest |difference| of the two sides over E ||grad f_T||^2 (which bounds both) over {n} rows, on "
        "the first output of f_S and f_T",
        rel.max(), rel.min(), rel.max(), f"relative difference <= {rtol:g} on every row",
        check_verdict(int((rel > rtol).sum()), n),
        "the experiment's outputs are 10-dimensional; Theorem 1 is the scalar case, so it is checked on one output",
    ))  # fmt: skip

    for claim_id, name, ratio_of, bound, paper in (
        ("thm2", "||J_T - A J_S||^2 is below the Theorem 2 bound", "grad_diff", "thm2_bound", "Theorem 2"),
        ("thm2_lipschitz", "the Theorem 2 bound is below its Lipschitz form", "thm2_bound", "thm2_bound_lipschitz",
         "Theorem 2"),
        ("thm3", "the loss of g o f_S is below the Theorem 3 bound", "transfer_loss_affine", "thm3_bound", "Theorem 3"),
    ):  # fmt: skip
        ratio = sweep[ratio_of].to_numpy(dtype=float) / sweep[bound].to_numpy(dtype=float)
        claims.append(_claim(
            e, claim_id, name, paper, f"largest ratio {ratio_of} / {bound} over {n} rows (both samples D)",
            ratio.max(), ratio.min(), ratio.max(), "ratio <= 1 on every row",
            check_verdict(int((ratio > 1 + 1e-12).sum()), n), f"median ratio {np.median(ratio):.3g}",
        ))  # fmt: skip

    range_note = "t in [0, 4.5] (the paper's code reached t = 4.5; its text says [0, 1]); on [0, 1] alone: {}"
    for metric, paper in (("tau1", "Section 4.1, Figure 2"), ("tau2", "Section 4.1, Figure 2"),
                          ("alpha", "Section 4.1, Figure 2")):  # fmt: skip
        value = _spearman(train, metric, "t", c)
        notes = [range_note.format(_fmt(*_spearman(text_range, metric, "t", c))),
                 f"held-out sample D: {_fmt(*_spearman(heldout, metric, 't', c))}"]  # fmt: skip
        if metric == "tau2":
            notes.insert(0, "tau2 from S to T as Def. 3 defines it; from T to S (the paper's code): "
                         + _fmt(*_spearman(train, "tau2_reverse", "t", c)))  # fmt: skip
        claims.append(_claim(
            e, f"{metric}_falls", f"{metric} falls as the source moves away from the target (t grows)", paper,
            f"Spearman rho of {metric} with t over {len(train)} training-sample rows, seeds (draws of V) resampled",
            *value, f"interval below {0.0 - margin:g}", interval_verdict(value[1], value[2], -1, margin),
            "; ".join(notes),
        ))  # fmt: skip

    value = _spearman(train, "transfer_loss_lastlayer", "t", c)
    claims.append(_claim(
        e, "loss_rises", "the transferred loss rises as t grows", "Section 4.1, Figure 2",
        f"Spearman rho of the last-layer refit loss with t over {len(train)} training-sample rows",
        *value, f"interval above {margin:g}", interval_verdict(value[1], value[2], 1, margin),
        f"evaluated on the training sample, the theory's D; on the held-out split (mixing in the reference's own "
        f"generalisation error): {_fmt(*_spearman(heldout, 'transfer_loss_lastlayer', 't', c))}; affine map "
        f"g o f_S of Theorem 3: {_fmt(*_spearman(train, 'transfer_loss_affine', 't', c))}",
    ))  # fmt: skip

    value = _spearman(train, "tau1", "alpha", c)
    claims.append(_claim(
        e, "prop2", "tau1 tracks alpha, the normalised cross adversarial loss", "Proposition 2, Figure 2",
        f"Spearman rho of tau1 with alpha over {len(train)} training-sample rows", *value,
        f"interval above {margin:g}", interval_verdict(value[1], value[2], 1, margin),
        f"held-out sample D: {_fmt(*_spearman(heldout, 'tau1', 'alpha', c))}",
    ))  # fmt: skip
    return claims


# ------------------------------------------------------------------------------- Section 4.2, Figure 3


def _design_check(chosen: pd.Series, outcome: str, c: dict[str, Any]) -> tuple[bool, str]:
    """Can a scenario's knowledge claims get a verdict? Its design check's row (advtransfer.stats.outcome_separation)
    must separate the closest and the farthest source by ``c["min_separation"]`` seed SDs: (passed, note)."""
    adequate = bool(np.isfinite(chosen.separation) and chosen.separation >= c["min_separation"])
    note = (f"design check: {outcome} separates the closest and the farthest source by "
            f"{chosen.separation:.1f} seed SDs (needed: {c['min_separation']:g})")  # fmt: skip
    return adequate, note


def scenario_claims(
    scenario: str, summary: pd.DataFrame, design: pd.DataFrame, outcome: str, c: dict[str, Any]
) -> list[dict]:
    """The Section 4.2 claims on one scenario: closer sources are more adversarially transferable; the
    more adversarially transferable sources transfer knowledge better (``outcome``; inconclusive when the
    design check finds the outcome does not separate the closest from the farthest source by
    ``c["min_separation"]`` seed standard deviations); tau1 alone is not sufficient (Figure 3b)."""
    margin = c["min_correlation"]
    frame = summary.assign(closeness=1.0 - summary["outside_fraction"])
    n = len(frame)
    adequate, design_note = _design_check(design.set_index("outcome").loc[outcome], outcome, c)
    images = (f"tau1 / tau2 / alpha on {int(frame['n_metric_images'].min())} target images no source saw (the paper: "
              "1000 target test images)" if "n_metric_images" in frame.columns else "")  # fmt: skip
    if "features_underdetermined" in frame.columns and frame["features_underdetermined"].astype(bool).any():
        images += ", fewer than 5 per feature dimension: the features variant's alignment is under-determined"
    claims = []
    for metric in c["metrics"]:
        logits = f"{metric}_logits" if f"{metric}_logits" in frame.columns else None

        value = _spearman(frame, metric, "closeness", c)
        note = f"logits variant (the paper's code): {_fmt(*_spearman(frame, logits, 'closeness', c))}" if logits else ""
        claims.append(_claim(
            scenario, f"closer_more_transferable_{metric}", "the closer the source's data to the target's, the more "
            "adversarially transferable the source", "Section 4.2",
            f"Spearman rho of {metric} with the share of source classes inside the target task, "
            f"{n} (source, seed) rows",
            *value, f"interval above {margin:g}", interval_verdict(value[1], value[2], 1, margin), note,
        ))  # fmt: skip

        value = _spearman(frame, metric, outcome, c)
        notes = [design_note]
        if logits:
            notes += [f"logits variant: {_fmt(*_spearman(frame, logits, outcome, c))}", images]
        if outcome != "probe_accuracy":
            notes.append(f"the paper's outcome (a new last layer on all target images): "
                         f"{_fmt(*_spearman(frame, metric, 'probe_accuracy', c))}")  # fmt: skip
        verdict = interval_verdict(value[1], value[2], 1, margin) if adequate else "inconclusive"
        claims.append(_claim(
            scenario, f"transfers_knowledge_{metric}", "the more adversarially transferable source transfers "
            "knowledge better", "Section 4.2, Figure 3",
            f"Spearman rho of {metric} with {outcome}, {n} (source, seed) rows", *value,
            f"interval above {margin:g}, and the design check passed", verdict, "; ".join(notes),
        ))  # fmt: skip

    value = spearman_difference(frame, "tau1_tau2", "tau1", outcome, n_boot=c["n_boot"], level=c["level"],
                                seed=c["seed"])  # fmt: skip
    logits = spearman_difference(frame, "tau1_tau2_logits", "tau1_logits", outcome, n_boot=c["n_boot"],
                                 level=c["level"], seed=c["seed"])  # fmt: skip
    verdict = interval_verdict(value[1], value[2], 1, 0.0) if adequate else "inconclusive"
    claims.append(_claim(
        scenario, "tau1_not_sufficient", "tau1 alone is not sufficient: tau1 tau2 indicates knowledge transfer "
        "better than tau1", "Section 4.2, Figure 3b",
        f"Spearman(tau1 tau2, {outcome}) - Spearman(tau1, {outcome}), paired over the same resampled seeds",
        *value, "interval above 0, and the design check passed", verdict,
        f"{design_note}; logits variant: {_fmt(*logits)}",
    ))  # fmt: skip
    return claims


# ------------------------------------------------------------------------------- Section 4.3, Table 1


def attribute_claims(
    experiment: str, summary: pd.DataFrame, design: pd.DataFrame, check: pd.DataFrame, outcome: str, c: dict[str, Any]
) -> list[dict]:
    """The Section 4.3 claim on one attributes experiment: the attribute models more adversarially
    transferable to the identity reference transfer knowledge to identity better (Spearman over all
    (attribute, seed) rows; inconclusive when the design check finds the attributes' ``outcome`` means
    differ by less than ``c["min_separation"]`` standard errors of a seed mean). Where the identity-defining
    attributes are known (the shapes world), also: each metric ranks them above the nuisance ones on every
    seed (AUC > 0.5 on each seed alone; not a claim the paper states, the one its claim implies here)."""
    margin = c["min_correlation"]
    n = len(summary)
    chosen = design.set_index("outcome").loc[outcome]
    adequate = bool(np.isfinite(chosen.spread) and chosen.spread >= c["min_separation"])
    design_note = (f"design check: the attributes' {outcome} means differ by {chosen.spread:.1f} standard errors "
                   f"of a seed mean (needed: {c['min_separation']:g})")  # fmt: skip
    by_metric = check.set_index("metric") if len(check) else None
    claims = []
    for metric in c["metrics"]:
        value = _spearman(summary, metric, outcome, c)
        logits = f"{metric}_logits" if f"{metric}_logits" in summary.columns else None
        notes = [design_note] + ([f"logits variant: {_fmt(*_spearman(summary, logits, outcome, c))}"] if logits else [])
        verdict = interval_verdict(value[1], value[2], 1, margin) if adequate else "inconclusive"
        claims.append(_claim(
            experiment, f"attributes_transfer_{metric}", "the attribute models more adversarially transferable to "
            "the identity model transfer knowledge to identity better", "Section 4.3, Table 1",
            f"Spearman rho of {metric} with {outcome} over all {n} (attribute, seed) rows", *value,
            f"interval above {margin:g}, and the design check passed", verdict, "; ".join(notes),
        ))  # fmt: skip
        if by_metric is not None and metric in by_metric.index and summary["defines_identity"].astype(bool).any():
            r = by_metric.loc[metric]
            ok = bool(r.auc_seed_min > 0.5)
            claims.append(_claim(
                experiment, f"defining_first_{metric}", "(implied; truth known by construction) the attributes "
                "that define identity are more adversarially transferable to it than the nuisance ones",
                "Section 4.3 (implied)", f"AUC of {metric}: defining over nuisance attributes, seed means; "
                f"range over single seeds", r.auc, r.auc_seed_min, r.auc_seed_max, "AUC > 0.5 on every seed",
                "reproduced" if ok else ("not reproduced" if r.auc_seed_max < 0.5 else "inconclusive"),
                f"mean rank defining {r.defining_mean_rank:.1f} vs nuisance {r.nuisance_mean_rank:.1f}; "
                f"{int(r.top_hits)} of the {int(r.n_defining)} top-ranked attributes define identity",
            ))  # fmt: skip
    return claims


ATTRIBUTE_CLAIM_IDS = [
    ("attributes_transfer", "the attribute models more adversarially transferable to the identity model transfer "
     "knowledge to identity better", "Section 4.3, Table 1"),
]  # fmt: skip


# ------------------------------------------------------------------------------- Section 4.4, Figure 4


def task_claims(experiment: str, trees: pd.DataFrame, c: dict[str, Any]) -> list[dict]:
    """The Section 4.4 claim on one tasks experiment: tasks that are adversarially transferable to each other
    also transfer knowledge to each other. Per adversarial view (the ATM at each eps; tau1 tau2 between the
    encoders): Spearman correlation of its off-diagonal entries with the affinity matrix's, reproduced when
    positive with a Mantel permutation p-value below ``c["mantel_alpha"]`` (not reproduced when negative with
    such a p-value, inconclusive otherwise); the note gives the trees' agreement and their entropy against
    the known kinds at k = 3, the number of the shapes world's kinds, when computed (Figures 4 and 5)."""
    claims = []
    alpha = c["mantel_alpha"]
    for view, group in trees.groupby("view", sort=False):
        row = group.iloc[0]
        rho, p = float(row["mantel"]), float(row["mantel_p"])
        verdict = (
            "inconclusive" if not (np.isfinite(p) and p < alpha) else ("reproduced" if rho > 0 else "not reproduced")
        )
        at = group.set_index("k").loc[3 if (group["k"] == 3).any() else int(group["k"].min())]
        claims.append(_claim(
            experiment, f"tasks_agree_{view.replace(' ', '_')}", "tasks that are more adversarially transferable to "
            "each other transfer knowledge to each other better (the trees agree)", "Section 4.4, Figure 4",
            f"{view} vs the knowledge-transfer affinity: Spearman rho of the off-diagonal entries, Mantel permutation "
            "test", rho, math.nan, math.nan, f"rho > 0 with Mantel p < {alpha:g}", verdict,
            f"Mantel p = {p:.3g}; at k = {int(at.name)} clusters: adjusted Rand {at['ari']:+.2f} with the knowledge "
            f"tree, inner-category entropy {at['entropy']:.2f} nats vs {at['reference_entropy']:.2f} for the "
            "knowledge tree (0 = every cluster one kind)",
        ))  # fmt: skip
    return claims


TASK_CLAIM_IDS = [
    ("tasks_agree", "tasks that are more adversarially transferable to each other transfer knowledge to each other "
     "better", "Section 4.4, Figure 4"),
]  # fmt: skip


# ------------------------------------------------------ robustness transfer (Kopetzki et al.; RRM)


def robustness_claims(experiment: str, summary: pd.DataFrame, claims: dict[str, Any], c: dict[str, Any]) -> list[dict]:
    """The claims of Kopetzki et al. and of the RRM paper on one robustness experiment (robustness.csv),
    robustness measured as accuracy under PGD at ``claims["eps"]``, intervals from a cluster bootstrap of
    the seeds:

    - per retraining scheme, source robustness increases target robustness: Spearman rho of the sources'
      robust accuracy on the source task with the retrained models' robust accuracy on the target task,
      over (scheme, seed); reproduced when the interval lies above ``c["min_correlation"]`` and the design
      check passed (the schemes' source robustness differs by at least ``c["min_separation"]`` standard
      errors of a seed mean, ``stats.outcome_spread``), else inconclusive;
    - target retraining has a minor influence: ``robustness.retrain_effect_ratio`` of the target robust
      accuracy; reproduced when its interval lies below 1, not reproduced above 1;
    - RRM reaches AT-level robustness at a fraction of the time: the rrm scheme's source robust accuracy
      over the robust scheme's (interval wholly >= ``c["robustness"]["rrm_min_robust_ratio"]``) with a
      training CPU-time ratio wholly <= ``rrm_max_time_ratio`` (the teacher's training not counted, as in
      the RRM paper: the robust teacher exists already); not reproduced when either lies wholly on the
      wrong side."""
    from advtransfer.robustness import pgd_column, retrain_effect_ratio, scheme_ratio, seed_bootstrap
    from advtransfer.stats import outcome_spread

    r = c["robustness"]
    eps = claims["eps"]
    source, target = pgd_column("source", eps), pgd_column("target", eps)
    boot = dict(n_boot=c["n_boot"], level=c["level"], seed=c["seed"])
    one_per_source = summary[summary["retrain"] == summary["retrain"].iloc[0]]
    spread = outcome_spread(one_per_source, [source], group="scheme").iloc[0]
    adequate = bool(np.isfinite(spread.spread) and spread.spread >= c["min_separation"])
    design_note = (f"design check: the {int(spread.n_sources)} schemes' source robust accuracy (PGD, eps {eps:g}) "
                   f"differs by {spread.spread:.1f} standard errors of a seed mean (needed: {c['min_separation']:g})")
    rows = []
    for retrain, frame in summary.groupby("retrain", sort=False):
        value = _spearman(frame, source, target, c)
        verdict = interval_verdict(value[1], value[2], 1, c["min_correlation"]) if adequate else "inconclusive"
        rows.append(_claim(
            experiment, f"robustness_transfers_{retrain}", "improving source robustness increases target robustness",
            "Kopetzki et al., abstract", f"Spearman rho of source with target accuracy under PGD (eps {eps:g}) after "
            f"{retrain}, over {len(frame)} (scheme, seed) sources", *value,
            f"interval above {c['min_correlation']:g}, and the design check passed", verdict, design_note,
        ))  # fmt: skip
    ratio = seed_bootstrap(summary, lambda f: retrain_effect_ratio(f, target), **boot)
    means = summary.groupby("retrain", sort=False)[target].mean()
    rows.append(_claim(
        experiment, "retraining_minor", "target retraining has a minor influence on target robustness",
        "Kopetzki et al., abstract", f"SD of the target robust accuracy (PGD, eps {eps:g}) across retraining "
        "schemes over its SD across source schemes", *ratio, "interval below 1",
        interval_verdict(ratio[1] - 1, ratio[2] - 1, -1), "mean target robust accuracy by retraining: "
        + ", ".join(f"{k} {v:.3f}" for k, v in means.items()),
    ))  # fmt: skip
    robust_ratio = seed_bootstrap(
        one_per_source, lambda f: scheme_ratio(f, source, claims["rrm"], claims["robust"]), **boot
    )
    time_ratio = seed_bootstrap(
        one_per_source, lambda f: scheme_ratio(f, "train_cpu_seconds", claims["rrm"], claims["robust"]), **boot
    )
    good = robust_ratio[1] >= r["rrm_min_robust_ratio"] and time_ratio[2] <= r["rrm_max_time_ratio"]
    bad = robust_ratio[2] < r["rrm_min_robust_ratio"] or time_ratio[1] > r["rrm_max_time_ratio"]
    verdict = "inconclusive" if not all(map(np.isfinite, (*robust_ratio, *time_ratio))) else (
        "reproduced" if good else ("not reproduced" if bad else "inconclusive"))
    per_scheme = one_per_source.groupby("scheme")[[source, "source_clean_accuracy", "train_cpu_seconds"]].mean()
    shown = [s for s in (claims["standard"], claims["robust"], *claims["fast"], claims["rrm"]) if s in per_scheme.index]
    rows.append(_claim(
        experiment, "rrm_fraction_of_time", "robust representation matching reaches adversarial training's "
        "robustness at a fraction of its training time", "Vaishnavi et al., Table 1",
        f"source robust accuracy (PGD, eps {eps:g}) of {claims['rrm']} over {claims['robust']}", *robust_ratio,
        f"ratio >= {r['rrm_min_robust_ratio']:g} and training CPU-time ratio <= {r['rrm_max_time_ratio']:g} "
        "(whole intervals)", verdict,
        f"CPU-time ratio {_fmt(*time_ratio).lstrip('+')} (teacher not counted); per scheme robust / clean accuracy, "
        "CPU s: " + "; ".join(f"{k} {per_scheme.loc[k, source]:.2f} / "
                              f"{per_scheme.loc[k, 'source_clean_accuracy']:.2f}, "
                              f"{per_scheme.loc[k, 'train_cpu_seconds']:.0f}" for k in shown),
    ))  # fmt: skip
    return rows


ROBUSTNESS_CLAIM_IDS = [
    ("robustness_transfers", "improving source robustness increases target robustness", "Kopetzki et al., abstract"),
    ("retraining_minor", "target retraining has a minor influence on target robustness", "Kopetzki et al., abstract"),
    ("rrm_fraction_of_time", "robust representation matching reaches adversarial training's robustness at a "
     "fraction of its training time", "Vaishnavi et al., Table 1"),
]  # fmt: skip


INTERACTION_CLAIM_IDS = [
    ("attack_changes_high_orders", "adversarial perturbations mainly change high-order interactions",
     "Ren et al. 2021, abstract"),
    ("at_lower_high_order_share", "adversarially trained models rely less on high-order interactions",
     "Ren et al. 2021, abstract"),
]  # fmt: skip


def _extent(profiles: pd.DataFrame) -> str:
    """'<seeds> seeds, <images> images' of a group's profile rows."""
    return f"{profiles['seed'].nunique()} seeds, {len(profiles.drop_duplicates(['seed', 'image']))} images"


def interaction_claims(
    experiment: str, profiles: pd.DataFrame, claims: dict[str, Any], c: dict[str, Any]
) -> list[dict]:
    """The two claims of Ren et al. on one interactions experiment (profile rows with side, group, seed),
    intervals from a two-level bootstrap (seeds, then images; advtransfer.interactions):

    - per side (source task, target task), the standard model's attack-induced change |I^(m)(x_adv) - I^(m)(x)|
      at the high orders (m / n >= ``claims["high"]``) over that at the low orders (m / n <= ``claims["low"]``):
      reproduced when the interval lies above 1, not reproduced below;
    - per robust scheme, on the source task: its share of the clean strength at the high orders minus the
      standard model's: reproduced when the interval lies below 0, not reproduced above."""
    from advtransfer.interactions import change_ratio_estimate, share_difference_estimate

    boot = dict(n_boot=c["n_boot"], level=c["level"], seed=c["seed"])
    high, low, standard = claims["high"], claims["low"], claims["standard"]
    rows = []
    for side in ("source", "target"):
        frame = profiles[(profiles["side"] == side) & (profiles["group"] == standard)]
        if not len(frame):
            continue
        value = change_ratio_estimate(frame, high, low, **boot)
        rows.append(_claim(
            experiment, f"attack_changes_high_orders_{side}", INTERACTION_CLAIM_IDS[0][1], INTERACTION_CLAIM_IDS[0][2],
            f"{standard} models on the {side} task: mean attack-induced change of I^(m) at m/n >= {high:g} over "
            f"that at m/n <= {low:g}", *value, "interval above 1", interval_verdict(value[1] - 1, value[2] - 1, 1),
            _extent(frame),
        ))  # fmt: skip
    base = profiles[(profiles["side"] == "source") & (profiles["group"] == standard)]
    for robust in claims["robust"]:
        frame = profiles[(profiles["side"] == "source") & (profiles["group"] == robust)]
        if not len(frame) or not len(base):
            continue
        value = share_difference_estimate(frame, base, high, **boot)
        rows.append(_claim(
            experiment, f"at_lower_high_order_share_{robust}", INTERACTION_CLAIM_IDS[1][1], INTERACTION_CLAIM_IDS[1][2],
            f"share of the clean interaction strength at m/n >= {high:g}: {robust} minus {standard} (source task)",
            *value, "interval below 0", interval_verdict(value[1], value[2], -1),
            f"{robust}: {_extent(frame)}; {standard}: {_extent(base)}",
        ))  # fmt: skip
    return rows


SELECTION_CLAIM_IDS = [
    ("tau_selects", "more adversarially transferable sources transfer knowledge better, so tau1 tau2 ranks candidate "
     "sources by their transfer", "Liang et al. 2021, Section 4.2, as a model-selection score"),
    ("estimator_selects", "a transferability estimator ranks candidate sources by their transfer",
     "the estimator's paper (LEEP, NCE, H-score, shrinkage H-score, LogME, N-LEEP, TransRate, GBC, SFDA)"),
    ("tau_beats_estimators", "tau1 tau2 ranks candidate sources better than the best transferability estimator",
     "this project's question: adversarial transferability next to the practitioners' estimators"),
]  # fmt: skip


def selection_claims(
    experiment: str, candidates: pd.DataFrame, agreement: pd.DataFrame, outcome: str, c: dict[str, Any]
) -> list[dict]:
    """The model-selection claims on one experiment: its candidates (scores.csv: one row per candidate with every
    score, the outcome and the bootstrap ``cluster``) and their agreement table (advtransfer.selection.agreement,
    with this ``outcome``'s rows for tau1_tau2 and every estimator), judged on the weighted Kendall
    (scipy.stats.weightedtau) of each score with ``outcome`` and its cluster-bootstrap interval: tau1 tau2 and each
    estimator are reproduced when the interval lies above 0, not reproduced below; tau1 tau2 minus the estimator
    with the highest point value (a paired bootstrap on the same draws), reproduced above 0 (tau wins), not
    reproduced below (tau loses). Every verdict needs the design check first: the outcome must separate the
    scenario's closest and farthest source by ``c["min_separation"]`` seed standard deviations (else
    inconclusive); a block without the scenario's sources (a zoo alone) has no seeds to check against, and its
    note says so."""
    from advtransfer.selection import ESTIMATORS, weighted_kendall_difference

    boot = dict(n_boot=c["n_boot"], level=c["level"], seed=c["seed"])
    table = agreement[agreement["outcome"] == outcome].set_index("score").loc[["tau1_tau2", *ESTIMATORS]]
    extent = f"{int(table.loc['tau1_tau2', 'n'])} candidates, {int(table.loc['tau1_tau2', 'n_clusters'])} clusters"
    sources = candidates[candidates["kind"] == "scenario"]
    if len(sources):
        adequate, design_note = _design_check(outcome_separation(sources, [outcome]).iloc[0], outcome, c)
        extent += f"; {design_note}"
    else:
        adequate = True
        extent += "; no design check (no seeds: a zoo alone)"

    def verdict(lo: float, hi: float) -> str:
        return interval_verdict(lo, hi, 1) if adequate else "inconclusive"

    rows = []
    for score in table.index:
        r = table.loc[score]
        claim_id, claim, paper = SELECTION_CLAIM_IDS[0 if score == "tau1_tau2" else 1]
        rows.append(_claim(
            experiment, claim_id if score == "tau1_tau2" else f"{claim_id}_{score}", claim, paper,
            f"weighted Kendall of {score} with {outcome}", r.weighted_kendall, r.weighted_kendall_lo,
            r.weighted_kendall_hi, "interval above 0, and the design check passed",
            verdict(r.weighted_kendall_lo, r.weighted_kendall_hi), extent,
        ))  # fmt: skip
    estimated = table.loc[list(ESTIMATORS), "weighted_kendall"].astype(float).dropna()
    if estimated.empty:
        return rows
    best = estimated.idxmax()
    value = weighted_kendall_difference(candidates, "tau1_tau2", best, outcome, **boot)
    rows.append(_claim(
        experiment, SELECTION_CLAIM_IDS[2][0], SELECTION_CLAIM_IDS[2][1], SELECTION_CLAIM_IDS[2][2],
        f"weighted Kendall with {outcome}: tau1_tau2 minus {best} (the best estimator here)", *value,
        "interval above 0, and the design check passed", verdict(value[1], value[2]), extent,
    ))  # fmt: skip
    return rows


def not_run_claims(experiment: str, claim_ids: list[tuple[str, str, str]]) -> list[dict]:
    """Rows for the claims of an experiment this run did not include: inconclusive, saying how to run it."""
    return [
        _claim(experiment, claim_id, claim, paper, f"not measured: add {experiment} to `experiments`",
               math.nan, math.nan, math.nan, "", "inconclusive")  # fmt: skip
        for claim_id, claim, paper in claim_ids
    ]


SYNTHETIC_CLAIM_IDS = [
    ("prop1", "tau1 and tau2 lie in [0, 1]", "Proposition 1"),
    ("thm1", "Theorem 1's identity holds", "Theorem 1"),
    ("thm2", "||J_T - A J_S||^2 is below the Theorem 2 bound", "Theorem 2"),
    ("thm2_lipschitz", "the Theorem 2 bound is below its Lipschitz form", "Theorem 2"),
    ("thm3", "the loss of g o f_S is below the Theorem 3 bound", "Theorem 3"),
    ("tau1_falls", "tau1 falls as t grows", "Section 4.1, Figure 2"),
    ("tau2_falls", "tau2 falls as t grows", "Section 4.1, Figure 2"),
    ("alpha_falls", "alpha falls as t grows", "Section 4.1, Figure 2"),
    ("loss_rises", "the transferred loss rises as t grows", "Section 4.1, Figure 2"),
    ("prop2", "tau1 tracks alpha", "Proposition 2, Figure 2"),
]
SCENARIO_CLAIM_IDS = [
    ("closer_more_transferable", "the closer source is more adversarially transferable", "Section 4.2"),
    ("transfers_knowledge", "the more adversarially transferable source transfers knowledge better",
     "Section 4.2, Figure 3"),
    ("tau1_not_sufficient", "tau1 alone is not sufficient", "Section 4.2, Figure 3b"),
]  # fmt: skip


# ------------------------------------------------------------------------------------------- report


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claim rows got each verdict (every verdict present, zero included)."""
    return {v: int((claims["verdict"] == v).sum()) for v in VERDICTS}


def report_markdown(
    claims: pd.DataFrame, design: pd.DataFrame, c: dict[str, Any], spread: pd.DataFrame | None = None
) -> str:
    """results/reproduction.md: the criteria, the verdict counts, one table row per claim, the design checks
    (``design``: scenarios, :func:`advtransfer.stats.outcome_separation`; ``spread``: attributes experiments,
    :func:`advtransfer.stats.outcome_spread`)."""
    pct = f"{100 * c['level']:.0f}%"
    counts = verdict_counts(claims)
    lines = [
        "# Reproduction: claims of Liang et al. (ICML 2021) against this run's measurements",
        "",
        "Written by the workflow's `reproduction` rule from this run's results; nothing here is typed by hand.",
        f"Verdict criteria, declared in config (`reproduction`) before the run: trends and correlations are "
        f"Spearman rho with a {pct} cluster-bootstrap interval over seeds ({c['n_boot']} draws, seed {c['seed']}); "
        f"*reproduced* when the whole interval lies beyond {c['min_correlation']:g} on the claimed side, "
        f"*not reproduced* when it lies wholly on the other side, *inconclusive* otherwise. Identities hold to "
        f"a relative {c['identity_rtol']:g}; bounds and ranges must hold on every row. A knowledge-transfer claim "
        f"is inconclusive when its outcome does not separate the closest and the farthest source by "
        f"{c['min_separation']:g} seed standard deviations (design check below).",
        "",
        "**Verdicts:** " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS) + ".",
        "",
        "| experiment | claim | paper | measurement | value | criterion | verdict "
        "| our design vs the paper, ablations |",
        "|:---|:---|:---|:---|:---|:---|:---|:---|",
    ]
    for _, r in claims.iterrows():
        if r["claim_id"] in ("prop1",) and math.isfinite(r["lo"]):
            value = f"[{r['lo']:.4g}, {r['hi']:.4g}]"
        elif r["claim_id"] in ("thm1", "thm2", "thm2_lipschitz", "thm3") and math.isfinite(r["value"]):
            value = f"{r['value']:.3g}"
        else:
            value = _fmt(r["value"], r["lo"], r["hi"])
        cells = [r["experiment"], r["claim"], r["paper"], r["measurement"], value, r["criterion"],
                 f"**{r['verdict']}**", r["note"]]  # fmt: skip
        lines.append("| " + " | ".join(str(x).replace("|", r"\|") for x in cells) + " |")
    if len(design):
        lines += [
            "",
            "## Design checks (measured before any correlation)",
            "",
            "Can each scenario answer its question? Each knowledge outcome's closest-source mean minus its "
            "farthest-source mean, in units of the pooled seed-to-seed standard deviation.",
            "",
            "| scenario | outcome | closest | farthest | difference | seed SD | separation (SDs) | adequate |",
            "|:---|:---|:---|:---|---:|---:|---:|:---|",
        ]
        for _, r in design.iterrows():
            ok = "yes" if np.isfinite(r["separation"]) and r["separation"] >= c["min_separation"] else "no"
            lines.append(
                f"| {r['scenario']} | {r['outcome']} | {r['closest']} ({r['closest_mean']:.3f}) | "
                f"{r['farthest']} ({r['farthest_mean']:.3f}) | {r['difference']:+.3f} | {r['seed_sd']:.4f} | "
                f"{r['separation']:.1f} | {ok} |"
            )
    if spread is not None and len(spread):
        lines += [
            "",
            "Attributes experiments: how much the attributes' outcome means differ, in standard errors of a seed "
            "mean (about 1 when they differ only by seed noise; the square root of the one-way ANOVA F).",
            "",
            "| experiment | outcome | attributes | seeds | SD across attributes | seed SD | spread | ANOVA p "
            "| adequate |",
            "|:---|:---|---:|---:|---:|---:|---:|---:|:---|",
        ]
        for _, r in spread.iterrows():
            ok = "yes" if np.isfinite(r["spread"]) and r["spread"] >= c["min_separation"] else "no"
            lines.append(
                f"| {r['experiment']} | {r['outcome']} | {int(r['n_sources'])} | {int(r['n_seeds'])} | "
                f"{r['between_sd']:.4f} | {r['seed_sd']:.4f} | {r['spread']:.1f} | {r['anova_p']:.2g} | {ok} |"
            )
    return "\n".join(lines) + "\n"
