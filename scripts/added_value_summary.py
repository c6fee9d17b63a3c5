"""Rule added_value_summary: the crossed design's (source, seed) rows with their design factors (sources.csv) and,
for every score of the selection block against every knowledge outcome, its added value over the design
(added_value.csv: within-level Spearman and its permutation test, partial Spearman, leave-one-source-out gain)."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer import selection
from advtransfer.added_value import added_value_table
from advtransfer.families.added_value.jobs import FACTORS, LEVEL
from advtransfer.io import load_csv, save_csv

p = sm.params
scores = load_csv(sm.input.scores)
absent = [c for c in ["candidate", "kind", "source", "seed", *p.outcomes, *selection.SCORES] if c not in scores]
if absent:
    raise ValueError(f"{sm.input.scores}: no columns {absent}")
rows = scores[scores["kind"] == "scenario"].copy()
factors = pd.DataFrame.from_dict(dict(p.factors), orient="index").rename_axis("source").reset_index()
missing = sorted(set(rows["source"]) ^ set(factors["source"]))
if missing:
    raise ValueError(f"{sm.input.scores}: its sources and the scenario's config differ in {missing}")
rows = rows.astype({"seed": int}).merge(factors, on="source", how="left")
columns = ["candidate", "source", "seed", *[f for f in FACTORS if f != "seed"], *p.outcomes, *selection.SCORES]
rows = rows[columns].sort_values([LEVEL, "source", "seed"], ascending=[False, True, True], ignore_index=True)
table = added_value_table(rows, list(selection.SCORES), list(p.outcomes), LEVEL, list(p.known), **dict(p.settings))
save_csv(sm.output.sources, rows)
save_csv(sm.output.added_value, table)
log.info("levels: %s", rows.groupby(LEVEL)["source"].nunique().to_dict())
log.info("\n%s", table.to_string())
