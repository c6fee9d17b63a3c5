"""Rule task_figure: Figure 4 (the task trees from adversarial transferability and from knowledge transfer,
side by side, coloured by kind) with the Figure 5 entropy curves (PNG and PDF)."""

from _job import sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.io import load_csv

from advtransfer.affinity import safe_linkage
from advtransfer.families.tasks.summary import task_views
from advtransfer.families.tasks.figures import figure4
from advtransfer.plots import save_figure

p, c = sm.params, sm.params.clustering
tasks, kinds = list(p.kinds), dict(p.kinds)
affinity = load_csv(sm.input.affinity) if sm.input.affinity else None
views, reference_name, reference = task_views(load_csv(sm.input.atm), load_csv(sm.input.tau), affinity, tasks)
trees = load_csv(sm.input.trees)
first = p.primary_name  # the declared primary view of the claim (config claims.tasks.tasks_agree)
claims = load_csv(sm.input.claims)
row = claims[(claims["claim_id"] == "tasks_agree") & (claims["role"] == "primary")]
statistic = (f"\nMantel: Spearman {row['value'].iloc[0]:+.2f} with the affinity ('{p.primary_normalisation}' "
             f"normalisation), p = {row['p_value'].iloc[0]:.2g}: {row['verdict'].iloc[0]}" if len(row) else "")
links = {f"adversarial transferability, declared primary view: {first}{statistic}":
         safe_linkage(views[first], c["method"], c["metric"])[0],
         reference_name: safe_linkage(reference, c["method"], c["metric"])[0]}  # fmt: skip
entropy = pd.concat([
    trees[["view", "k", "entropy"]],
    trees[trees["view"] == first][["k", "reference_entropy"]].rename(columns={"reference_entropy": "entropy"})
    .assign(view=reference_name),
], ignore_index=True)  # fmt: skip
title = (f"{sm.wildcards.tasks}: task trees from adversarial transferability (left) and from {reference_name} "
         f"(middle), {len(tasks)} tasks coloured by kind")  # fmt: skip
save_figure(figure4(links, tasks, kinds, entropy, title), sm.output.png, sm.output.pdf)
