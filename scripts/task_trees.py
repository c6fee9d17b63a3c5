"""Rule task_trees: Figure 4 (task trees from adversarial transferability and from knowledge transfer, side
by side), the agreement of each adversarial view with the knowledge tree and with the known kinds (Figure 5),
Mantel correlations, and the matrices as tables."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer.affinity import compare_trees, safe_linkage, square
from advtransfer.io import save_csv
from advtransfer.plots import figure4, save_figure
from advtransfer.tables import task_tables, write_table

p, c = sm.params, sm.params.clustering
tasks, kinds = list(p.kinds), dict(p.kinds)
atm, tau = pd.read_csv(sm.input.atm), pd.read_csv(sm.input.tau)
views = {f"ATM eps {eps:g}": square(group, "value", tasks) for eps, group in atm.groupby("eps")}
views.update({"tau1 tau2 (encoders)": square(tau, "tau1_tau2", tasks), "tau1 (encoders)": square(tau, "tau1", tasks)})
if sm.input.affinity:  # the shapes world: knowledge transfer is the reference
    reference_name = "knowledge transfer (affinity)"
    knowledge = square(pd.read_csv(sm.input.affinity), "value", tasks)
else:  # a zoo brings no labels: the loss-based ATM views are compared with the tau view
    reference_name = "tau1 tau2 (encoders)"
    knowledge = views.pop(reference_name)
trees = compare_trees(views, knowledge, [kinds[t] for t in tasks], c["ks"], method=c["method"], metric=c["metric"],
                      n_perm=c["n_perm"], seed=c["seed"])  # fmt: skip
save_csv(sm.output.trees, trees)
first = next(iter(views))
links = {f"adversarial transferability ({first})": safe_linkage(views[first], c["method"], c["metric"])[0],
         reference_name: safe_linkage(knowledge, c["method"], c["metric"])[0]}  # fmt: skip
entropy = pd.concat([
    trees[["view", "k", "entropy"]],
    trees[trees["view"] == first][["k", "reference_entropy"]].rename(columns={"reference_entropy": "entropy"})
    .assign(view=reference_name),
], ignore_index=True)  # fmt: skip
title = (f"{sm.wildcards.tasks}: task trees from adversarial transferability (left) and from {reference_name} "
         f"(middle), {len(tasks)} tasks coloured by kind")  # fmt: skip
save_figure(figure4(links, tasks, kinds, entropy, title), sm.output.png, sm.output.pdf)
matrices = {f"Adversarial transferability matrix, {name} (column-normalised; larger = source's attacks hurt the target "
            "more)": m for name, m in views.items() if name.startswith("ATM")}  # fmt: skip
if sm.input.affinity:
    matrices["tau1 tau2 between the task encoders' features (source -> target)"] = views["tau1 tau2 (encoders)"]
    matrices["Knowledge-transfer affinity (column-normalised; larger = the target's decoder does better on the "
             "source's frozen encoder)"] = knowledge
else:
    matrices["tau1 tau2 between the networks' outputs (source -> target)"] = knowledge
notes = [f"Trees: {c['method']} linkage of the matrices' columns ({trees['metric'].iloc[0]} distance)."]
write_table(sm.output.table_md, sm.output.table_tex, task_tables(matrices, tasks, kinds, trees, notes, reference_name))
log.info("\n%s", trees.to_string())
