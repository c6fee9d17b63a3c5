"""Rule synthetic_summary: collect the per-seed sweeps; mean and 95% interval across seeds per t."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path
import pandas as pd

from advtransfer.io import save_csv
from advtransfer.runtime import configure
from advtransfer.stats import summarise

sm = snakemake  # noqa: F821 - injected by Snakemake
log = configure(sm.log[0], sm.threads)
sweep = pd.concat([pd.read_csv(path) for path in sm.input], ignore_index=True).sort_values(["t", "seed"])
metrics = [c for c in sweep.columns if c not in ("t", "seed")]
summary = summarise(sweep, "t", metrics)
save_csv(sm.output.sweep, sweep)
save_csv(sm.output.summary, summary)
log.info("%d rows over %d values of t and %d seeds", len(sweep), sweep.t.nunique(), sweep.seed.nunique())
