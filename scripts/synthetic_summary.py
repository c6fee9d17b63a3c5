"""Rule synthetic_summary: collect the per-seed sweeps; mean and 95% interval across seeds per sample D and t."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.io import save_csv, load_csv
from advtransfer.stats import summarise

sweep = pd.concat([load_csv(path) for path in sm.input], ignore_index=True)
sweep = sweep.sort_values(["split", "t", "seed"], kind="stable", ignore_index=True)
metrics = [c for c in sweep.columns if c not in ("t", "seed", "split")]
summary = summarise(sweep, ["split", "t"], metrics)
save_csv(sm.output.sweep, sweep)
save_csv(sm.output.summary, summary)
log.info("%d rows over %d values of t and %d seeds", len(sweep), sweep.t.nunique(), sweep.seed.nunique())
