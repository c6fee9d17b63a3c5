"""Rule task_trees: the agreement of each adversarial view's task tree with the knowledge-transfer tree and
with the known kinds (Figure 5), Mantel correlations, and the matrices as tables."""

from _job import log, sm  # noqa: I001 - the preamble first


from advtransfer.affinity import compare_trees
from advtransfer.families.tasks.summary import task_views
from advtransfer.io import save_csv, load_csv
from advtransfer.families.tasks.tables import task_tables
from advtransfer.tables import write_table

p, c = sm.params, sm.params.clustering
tasks, kinds = list(p.kinds), dict(p.kinds)
affinity = load_csv(sm.input.affinity) if sm.input.affinity else None
views, reference_name, reference = task_views(load_csv(sm.input.atm), load_csv(sm.input.tau), affinity, tasks)
trees = compare_trees(views, reference, [kinds[t] for t in tasks], c["ks"], method=c["method"], metric=c["metric"],
                      n_perm=c["n_perm"], seed=c["seed"])  # fmt: skip
save_csv(sm.output.trees, trees)
matrices = {f"Adversarial transferability matrix, {name} (column-normalised; larger = source's attacks hurt the target "
            "more)": m for name, m in views.items() if name.startswith("ATM")}  # fmt: skip
if affinity is not None:
    matrices["tau1 tau2 between the task encoders' features (source -> target)"] = views["tau1 tau2 (encoders)"]
    matrices["Knowledge-transfer affinity (column-normalised; larger = the target's decoder does better on the "
             "source's frozen encoder)"] = reference
else:
    matrices["tau1 tau2 between the networks' outputs (source -> target)"] = reference
notes = [f"Trees: {c['method']} linkage of the matrices' columns ({trees['metric'].iloc[0]} distance)."]
write_table(sm.output.table_md, sm.output.table_tex, task_tables(matrices, tasks, kinds, trees, notes, reference_name))
log.info("\n%s", trees.to_string())
