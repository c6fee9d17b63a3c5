"""Knowledge transfer among attributes (Section 4.3, Table 1). No torch.

An attributes block trains one binary classifier per attribute (each a data set labelling the same images:
``shapes_is_large``, ``celeba_smiling``, ...) and seed, and an identity classifier as the reference (e.g.
``shapes_identity``: shape x hue bin x scale bin; ``celeba_identity``). Every attribute model is evaluated
against the reference by the generic stages (virtual adversarial PGD, tau1 / tau2 / alpha at features and
logits, cross adversarial loss) and by identity probes on its frozen features, scored on held-out images of
the same identities. The paper asks whether the attributes whose models are more adversarially
transferable to the identity model transfer knowledge to identity better; on the shapes world the truth is
known by construction (which attributes define identity), so the analysis also asks whether each metric
ranks the identity-defining attributes above the nuisance ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from advtransfer.names import class_names, image_set
from advtransfer.scenarios import few_shot_column, transfer_jobs

# Direction of "more transferable" for each metric: higher is more, except the reference's accuracy at the
# source's adversarial examples (lower = the examples hurt the reference more).
_LOWER_IS_MORE = frozenset({"reference_adv_accuracy"})


def attribute_name(dataset: str) -> str:
    """The attribute a data set labels: its name without the image set's prefix (``shapes_is_red`` -> ``is_red``)."""
    return dataset.removeprefix(f"{image_set(dataset)}_")


def target_classes(block: dict[str, Any]) -> list[str]:
    """The reference's classes: ``target.classes``, or every class of the target data set when null."""
    classes = block["target"].get("classes")
    return list(classes) if classes else list(class_names(block["target"]["dataset"]))


def knowledge_outcomes(block: dict[str, Any]) -> list[str]:
    """The knowledge-transfer columns of an attributes summary: the k-shot identity probes by ascending k,
    then the probe on all labelled target images (target test accuracies)."""
    return [few_shot_column(k) for k in sorted(block["probe"]["shots"])] + ["probe_accuracy"]


def config_problems(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each problem of a validated attributes block the schema cannot express."""
    problems = []
    unknown = sorted(set(block["identity_defining"]) - set(block["source_datasets"]))
    if unknown:
        problems.append(("identity_defining", f"{unknown} are not among source_datasets"))
    names = [attribute_name(d) for d in block["source_datasets"]]
    if len(set(names)) != len(names):
        problems.append(("source_datasets", f"two data sets name the same attribute: {names}"))
    shared = [d for d in block["source_datasets"] if image_set(d) == image_set(block["target"]["dataset"])]
    if shared and block["split"]["source_pool_fraction"] is None:
        problems.append(("split.source_pool_fraction", f"{shared} label the target's images; set a fraction (e.g. "
                         "0.5) so the identity reference and probes get images no attribute model saw"))  # fmt: skip
    if block["outcome"] not in knowledge_outcomes(block):
        problems.append(("outcome", f"{block['outcome']!r} is not one of {knowledge_outcomes(block)}"))
    return problems


def network_jobs(block: dict[str, Any]) -> dict[str, Any]:
    """The normalised network jobs (rules/common.smk, NETWORKS) of one attributes block: one source per
    attribute data set (all its classes) and seed, the identity reference, one evaluation per source."""
    sources = {attribute_name(d): (d, list(class_names(d))) for d in block["source_datasets"]}
    target = {**block["target"], "classes": target_classes(block)}
    return transfer_jobs({**block, "target": target}, sources)


def direction(metric: str) -> int:
    """+1 when a larger value of ``metric`` means more transferable (or more knowledge), -1 when smaller."""
    return -1 if metric in _LOWER_IS_MORE else 1


def attribute_means(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per attribute (``source``): ``defines_identity``, ``n_seeds`` and the mean and std (ddof 1) over seeds
    of each of ``columns`` (``{c}_mean``, ``{c}_std``)."""
    grouped = summary.groupby("source", sort=True)
    out = pd.DataFrame({"defines_identity": grouped["defines_identity"].first(), "n_seeds": grouped["seed"].nunique()})
    for c in columns:
        out[f"{c}_mean"] = grouped[c].mean()
        out[f"{c}_std"] = grouped[c].std(ddof=1)
    return out.reset_index()


def top_attributes(summary: pd.DataFrame, rank_by: str, outcome: str, k: int = 5) -> pd.DataFrame:
    """Table 1: the ``k`` attributes most adversarially transferable by ``rank_by`` (seed means), with their
    knowledge transfer ``outcome`` and its rank among ALL attributes (1 = best)."""
    means = attribute_means(summary, [rank_by, outcome])
    means["metric_rank"] = (direction(rank_by) * means[f"{rank_by}_mean"]).rank(ascending=False, method="min")
    means["outcome_rank"] = means[f"{outcome}_mean"].rank(ascending=False, method="min")
    return means.sort_values(["metric_rank", "source"]).head(k).reset_index(drop=True)


def auc_above(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random ``positive`` score > a random ``negative`` one), ties counting one half (the Mann-Whitney U
    statistic over n_pos n_neg); 1: every positive above every negative, 0.5: no separation. NaN if empty."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        return float("nan")
    diff = positive[:, None] - negative[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def defining_rank_check(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Do the identity-defining attributes rank above the nuisance ones, by each of ``columns``?

    Per column, on the seed means of each attribute, oriented so that larger = more transferable
    (:func:`direction`): ``auc`` = :func:`auc_above` (defining vs nuisance), ``auc_seed_min`` /
    ``auc_seed_max`` over the seeds taken one at a time, ``defining_mean_rank`` / ``nuisance_mean_rank``
    (1 = most transferable), and ``top_hits``: how many of the n_defining top-ranked attributes define
    identity (n_defining when the ranking puts every defining attribute first).
    """
    defining = summary["defines_identity"].astype(bool)
    n_def = int(summary.loc[defining, "source"].nunique())
    rows = []
    for c in columns:
        oriented = summary.assign(_v=direction(c) * summary[c].astype(float))
        means = oriented.groupby("source").agg(v=("_v", "mean"), d=("defines_identity", "first"))
        ranks = means["v"].rank(ascending=False, method="average")
        per_seed = [
            auc_above(g.loc[g["defines_identity"].astype(bool), "_v"], g.loc[~g["defines_identity"].astype(bool), "_v"])
            for _, g in oriented.groupby("seed")
        ]
        top = means["v"].sort_values(ascending=False, kind="stable").index[:n_def]
        rows.append(dict(
            metric=c,
            auc=auc_above(means.loc[means["d"].astype(bool), "v"], means.loc[~means["d"].astype(bool), "v"]),
            auc_seed_min=float(np.nanmin(per_seed)) if per_seed else np.nan,
            auc_seed_max=float(np.nanmax(per_seed)) if per_seed else np.nan,
            defining_mean_rank=float(ranks[means["d"].astype(bool)].mean()),
            nuisance_mean_rank=float(ranks[~means["d"].astype(bool)].mean()),
            top_hits=int(means.loc[top, "d"].astype(bool).sum()),
            n_defining=n_def,
            n_attributes=int(len(means)),
        ))  # fmt: skip
    return pd.DataFrame(rows)
