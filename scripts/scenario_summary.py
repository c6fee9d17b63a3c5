"""Rule scenario_summary: one row per source and seed; the design check (does each knowledge outcome
span the sources by more than the seed noise?); rank correlations of every
adversarial metric with every knowledge outcome; tables."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.io import json_scalars as scalars
from advtransfer.io import load_json, save_csv
from advtransfer.designs import ADVERSARIAL_METRICS
from advtransfer.families.scenarios.tables import scenario_table
from advtransfer.stats import outcome_separation, rank_correlations
from advtransfer.tables import write_table

p = sm.params
target = {c.lower() for c in p.target_classes}
rows = []
for job, metrics_path, probe_path, finetune_path, source_path, reference_path in zip(
    p.rows, sm.input.metrics, sm.input.probes, sm.input.finetunes, sm.input.sources, sm.input.references
):
    info, reference = load_json(source_path), load_json(reference_path)  # its own reference (paired_reference)
    rows.append(
        {
            "scenario": sm.wildcards.scenario,
            "source": job["source"],
            "seed": int(job["seed"]),
            "source_classes": "|".join(info["classes"]),
            "outside_fraction": sum(c.lower() not in target for c in info["classes"]) / len(info["classes"]),
            "source_val_accuracy": info["val_accuracy"],
            **scalars(metrics_path, ADVERSARIAL_METRICS),
            **scalars(probe_path, ("probe_accuracy",)),
            **scalars(finetune_path, ("finetune_accuracy",)),
            "reference_val_accuracy": reference["val_accuracy"],
        }
    )
summary = pd.DataFrame(rows).sort_values(["outside_fraction", "source", "seed"], ignore_index=True)
design = outcome_separation(summary, p.outcomes)
correlations = pd.concat(
    [
        rank_correlations(summary, list(ADVERSARIAL_METRICS), outcome=o, cluster="seed", n_boot=p.n_boot, seed=0)
        for o in p.outcomes
    ],
    ignore_index=True,
)
save_csv(sm.output.summary, summary)
save_csv(sm.output.design, design)
save_csv(sm.output.correlations, correlations)
chosen = design.set_index("outcome").loc[p.outcome]
notes = [
    f"Design check (before any correlation): the sources' mean {p.outcome} spans {chosen.difference:.3f} "
    f"({chosen.highest} {chosen.highest_mean:.3f} to {chosen.lowest} {chosen.lowest_mean:.3f}), "
    f"{chosen.separation:.1f} seed standard deviations (pooled seed SD {chosen.seed_sd:.4f}); every outcome's "
    "separation is in design.csv."
]
if summary["features_underdetermined"].any():
    n, m = int(summary["n_metric_images"].min()), int(summary["feature_dim"].max())
    notes.append(
        f"tau2 at the source's features is under-determined here: its alignment matrix A is fitted from "
        f"N = {n} images for m = {m} feature dimensions (N < 5 m); the logits variant is not."
    )
    log.warning(notes[-1])
tables = scenario_table(summary, correlations, outcome=p.outcome, outcomes=p.outcomes, notes=notes)
write_table(sm.output.table_md, sm.output.table_tex, tables)
log.info("design check:\n%s", design.to_string())
log.info("\n%s", correlations.to_string())
