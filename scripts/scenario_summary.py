"""Rule scenario_summary: one row per source and seed, rank correlations with probe accuracy, tables."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.io import load_json, save_csv
from advtransfer.stats import rank_correlations
from advtransfer.tables import scenario_table, write_table

# tau1, tau2, tau1_tau2, alpha: at the source's features (the theory's f_S); *_logits: at its logits.
ADVERSARIAL_METRICS = [
    "tau1", "tau2", "tau1_tau2", "alpha",
    "tau1_logits", "tau2_logits", "tau1_tau2_logits", "alpha_logits",
    "cross_adv_loss", "reference_adv_accuracy",
]  # fmt: skip

target = {c.lower() for c in sm.params.target_classes}
reference = load_json(sm.input.reference)
rows = []
for job, metrics_path, probe_path, source_path in zip(sm.params.rows, sm.input.metrics, sm.input.probes, sm.input.sources):
    info = load_json(source_path)
    rows.append(
        {
            "scenario": sm.wildcards.scenario,
            "source": job["source"],
            "seed": int(job["seed"]),
            "source_classes": "|".join(info["classes"]),
            "outside_fraction": sum(c.lower() not in target for c in info["classes"]) / len(info["classes"]),
            "source_val_accuracy": info["val_accuracy"],
            **load_json(metrics_path),
            **load_json(probe_path),
            "reference_val_accuracy": reference["val_accuracy"],
        }
    )
summary = pd.DataFrame(rows).sort_values(["outside_fraction", "source", "seed"], ignore_index=True)
correlations = rank_correlations(summary, ADVERSARIAL_METRICS, outcome="probe_accuracy", cluster="seed", n_boot=sm.params.n_boot, seed=0)
save_csv(sm.output.summary, summary)
save_csv(sm.output.correlations, correlations)
notes = []
if summary["features_underdetermined"].any():
    n, m = int(summary["n_metric_images"].min()), int(summary["feature_dim"].max())
    notes.append(
        f"tau2 at the source's features is under-determined here: its alignment matrix A is fitted from "
        f"N = {n} images for m = {m} feature dimensions (N < 5 m); the logits variant is not."
    )
    log.warning(notes[-1])
write_table(sm.output.table_md, sm.output.table_tex, scenario_table(summary, correlations, notes=notes))
log.info("\n%s", correlations.to_string())
