"""Rule robustness_summary: robustness.csv (one row per source scheme, seed and retraining scheme: the source's
robustness on the source task, its training time, the retrained model's robustness on the target task, and
the source's tau1 / tau2 / alpha and cross adversarial loss against the target reference) and the tables; the
claims of Kopetzki et al. and the RRM paper are the `claims` job's."""

from _job import sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.families.robustness import summary as robustness
from advtransfer.families.robustness.jobs import RETRAIN_SCHEMES
from advtransfer.families.robustness.tables import robustness_tables
from advtransfer.io import json_scalars, load_json, save_csv
from advtransfer.designs import ADVERSARIAL_METRICS
from advtransfer.stats import rank_correlations
from advtransfer.tables import write_table

p = sm.params
keys = [(scheme, seed) for scheme in p.schemes for seed in p.seeds]
retrained = [(scheme, seed, retrain) for scheme, seed in keys for retrain in RETRAIN_SCHEMES]
metrics = {
    (e["scheme"], int(e["seed"])): json_scalars(path, ADVERSARIAL_METRICS)
    for e, path in zip(p.evaluations, sm.input.metrics)
}
summary = robustness.summary_frame(
    sources=dict(zip(keys, map(load_json, sm.input.sources))),
    robust_sources=dict(zip(keys, map(load_json, sm.input.robust_sources))),
    retrained=dict(zip(retrained, map(load_json, sm.input.retrained))),
    robust_targets=dict(zip(retrained, map(load_json, sm.input.robust_targets))),
    metrics=metrics,
)
summary.insert(0, "experiment", sm.wildcards.robustness)
eps = p.compared["eps"]
target = robustness.pgd_column("target", eps)
correlations = pd.concat(
    [rank_correlations(frame, list(ADVERSARIAL_METRICS), outcome=target, cluster="seed",
                       n_boot=p.n_boot, seed=0).assign(outcome=f"{target} after {retrain}")
     for retrain, frame in summary.groupby("retrain", sort=False)],
    ignore_index=True,
)  # fmt: skip
radius = [c for c in summary.columns if c.startswith("source_certified_accuracy_r")]
shown = ["source_clean_accuracy", robustness.pgd_column("source", eps), *radius[1:2], "train_cpu_seconds",
         "target_clean_accuracy", target, *[c.replace("source_", "target_") for c in radius[1:2]]]  # fmt: skip
save_csv(sm.output.summary, summary)
write_table(sm.output.table_md, sm.output.table_tex, robustness_tables(summary, correlations, columns=shown))
