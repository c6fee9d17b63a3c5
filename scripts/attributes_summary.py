"""Rule attributes_summary: one row per attribute and seed (attributes.csv); the design check (do the
attributes' knowledge outcomes differ by more than the seed noise?); rank correlations of every adversarial
metric with every outcome over ALL attributes; whether the identity-defining attributes rank first by each
metric; Table 1 analog (table.md / .tex)."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.io import json_scalars, load_json, save_csv
from advtransfer.designs import ADVERSARIAL_METRICS
from advtransfer.families.attributes.summary import defining_rank_check
from advtransfer.families.attributes.tables import attribute_table
from advtransfer.stats import outcome_separation, rank_correlations
from advtransfer.tables import write_table

p = sm.params
reference = load_json(sm.input.reference)
rows = []
for job, metrics_path, probe_path, source_path in zip(p.rows, sm.input.metrics, sm.input.probes, sm.input.sources):
    info = load_json(source_path)
    rows.append(
        {
            "experiment": sm.wildcards.attributes,
            "source": job["source"],
            "seed": int(job["seed"]),
            "dataset": info["dataset"],
            "defines_identity": job["source"] in p.identity_defining,
            "source_val_accuracy": info["val_accuracy"],
            **json_scalars(metrics_path, ADVERSARIAL_METRICS),
            **json_scalars(probe_path, ("probe_accuracy",)),
            "reference_val_accuracy": reference["val_accuracy"],
            "reference_n_classes": len(reference["classes"]),
        }
    )
summary = pd.DataFrame(rows).sort_values(["source", "seed"], ignore_index=True)
metrics = list(ADVERSARIAL_METRICS)
design = outcome_separation(summary, p.outcomes)
correlations = pd.concat(
    [rank_correlations(summary, metrics, outcome=o, cluster="seed", n_boot=p.n_boot, seed=0) for o in p.outcomes],
    ignore_index=True,
)
check = defining_rank_check(summary, [*metrics, *p.outcomes])
save_csv(sm.output.summary, summary)
save_csv(sm.output.design, design)
save_csv(sm.output.correlations, correlations)
save_csv(sm.output.check, check)
chosen = design.set_index("outcome").loc[p.outcome]
notes = [
    f"Design check (before any correlation): the {int(chosen.n_units)} attributes' mean {p.outcome} spans "
    f"{chosen.difference:.3f} ({chosen.highest} {chosen.highest_mean:.3f} to {chosen.lowest} "
    f"{chosen.lowest_mean:.3f}), {chosen.separation:.1f} seed standard deviations (one-way ANOVA p = "
    f"{chosen.anova_p:.2g}); every outcome's separation is in design.csv.",
    f"Reference: identity classifier, validation accuracy {reference['val_accuracy']:.3f} over "
    f"{len(reference['classes'])} identities (chance {1 / len(reference['classes']):.3f}). Knowledge transfer: "
    "identity probes on each frozen attribute model's features, scored on held-out images of the same identities.",
]
tables = attribute_table(
    summary, correlations, check, rank_by=p.rank_by, outcome=p.outcome, outcomes=p.outcomes, top=p.top, notes=notes
)
write_table(sm.output.table_md, sm.output.table_tex, tables)
log.info("design check:\n%s", design.to_string())
log.info("identity-defining attributes first?\n%s", check.to_string())
