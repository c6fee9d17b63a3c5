"""Rule scenario_summary: one row per source and seed, rank correlations with probe accuracy, tables."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path
import re

import pandas as pd

from advtransfer.io import load_json, save_csv
from advtransfer.runtime import configure
from advtransfer.stats import rank_correlations
from advtransfer.tables import scenario_table, write_table

ADVERSARIAL_METRICS = ["tau1", "tau2", "tau1_tau2", "alpha", "cross_adv_loss"]

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
target = {c.lower() for c in sm.params.target_classes}
reference = load_json(sm.input.reference)
rows = []
for metrics_path, probe_path, source_path in zip(sm.input.metrics, sm.input.probes, sm.input.sources):
    source, seed = re.fullmatch(r"(\w+?)_seed(\d+)\.json", metrics_path.split("/")[-1]).groups()
    info = load_json(source_path)
    rows.append(
        {
            "scenario": sm.wildcards.scenario,
            "source": source,
            "seed": int(seed),
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
write_table(sm.output.table_md, sm.output.table_tex, scenario_table(summary, correlations))
log.info("\n%s", correlations.to_string())
