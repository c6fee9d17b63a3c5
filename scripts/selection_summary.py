"""Rule selection_summary: one row per candidate with every score, its knowledge-transfer outcomes and what each
score cost (scores.csv); each score's agreement with each outcome, ranked, with cluster-bootstrap intervals and
its cost to rank all candidates (agreement.csv) and the tables; the claims are the `claims` job's."""

from _job import log, sm  # noqa: I001 - the preamble first

import math

import pandas as pd

from advtransfer import selection
from advtransfer.designs import ADVERSARIAL_METRICS
from advtransfer.io import json_scalars, load_json, save_csv, load_csv
from advtransfer.families.model_selection.jobs import zoo_candidate
from advtransfer.families.model_selection.tables import selection_tables
from advtransfer.tables import write_table

p = sm.params
rows = []
if p.scenario_sources:
    for _, r in load_csv(sm.input.scenario[0]).iterrows():
        rows.append({**r.to_dict(), "candidate": f"{r['source']}_seed{int(r['seed'])}", "kind": "scenario",
                     "cluster": f"seed{int(r['seed'])}"})  # fmt: skip
zoo_files = zip(p.zoo, sm.input.zoo_metrics, sm.input.zoo_probes, sm.input.zoo_finetunes or [None] * len(p.zoo))
for name, metrics_path, probe_path, finetune_path in zoo_files:
    rows.append({
        "candidate": zoo_candidate(name), "kind": "zoo", "source": name, "seed": math.nan,
        "cluster": f"zoo:{name}", **json_scalars(metrics_path, ADVERSARIAL_METRICS),
        **json_scalars(probe_path, ("probe_accuracy",)),
        **(json_scalars(finetune_path, ("finetune_accuracy",)) if finetune_path else {"finetune_accuracy": math.nan}),
    })  # fmt: skip
frame = pd.DataFrame(rows).set_index("candidate")
scores = pd.DataFrame([load_json(path) for path in sm.input.scores]).set_index("candidate")
# the scores job read the candidate's own sidecar and features: its feature width and validation accuracy win
frame = frame.drop(columns=[c for c in scores.columns if c in frame.columns]).join(scores, how="inner")
frame = frame.reset_index().astype({"source_val_accuracy": float})
missing = sorted(set(p.candidates) - set(frame["candidate"]))
if missing:
    raise ValueError(f"{sm.input.scenario or 'the zoo'}: no row for candidates {missing}")
costs = selection.score_costs(frame, [load_json(path) for path in sm.input.reference])
boot = {k: p.reproduction[k] for k in ("n_boot", "level", "seed")}
agreement = pd.concat(
    [selection.agreement(frame, list(selection.SCORES), o, **boot) for o in p.outcomes], ignore_index=True
).merge(costs[["score", "wall_seconds", "cpu_seconds"]], on="score")
agreement["rank"] = agreement.groupby("outcome")["weighted_kendall"].rank(ascending=False, method="min")
agreement = agreement.sort_values(["outcome", "rank"], kind="stable", ignore_index=True)
columns = ["candidate", "kind", "source", "seed", "cluster", *p.outcomes, *selection.SCORES,
           *[c for c in frame.columns if c.endswith("_seconds")]]  # fmt: skip
save_csv(sm.output.scores, frame[[c for c in columns if c in frame.columns]])
save_csv(sm.output.agreement, agreement)
write_table(sm.output.table_md, sm.output.table_tex, selection_tables(agreement, outcome=p.outcome))
log.info("agreement with %s:\n%s", p.outcome, agreement[agreement["outcome"] == p.outcome].to_string())
