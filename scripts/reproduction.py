"""Rule reproduction: results/reproduction.md and .csv, every claim of the paper against this run's
measurements, with verdicts from the config's declared criteria."""

from _job import log, sm  # noqa: I001 - the preamble first

from pathlib import Path

import pandas as pd

from advtransfer import reproduction as rp
from advtransfer.io import atomic_path, save_csv

p = sm.params
criteria = dict(p.criteria)
claims, designs, spreads = [], [], []
if sm.input.sweep:
    claims += rp.synthetic_claims(pd.read_csv(sm.input.sweep[0]), criteria)
else:
    claims += rp.not_run_claims("synthetic", rp.SYNTHETIC_CLAIM_IDS)
for (scenario, outcome), summary_path, design_path in zip(p.scenarios, sm.input.summaries, sm.input.designs):
    design = pd.read_csv(design_path)
    claims += rp.scenario_claims(scenario, pd.read_csv(summary_path), design, outcome, criteria)
    designs.append(design.assign(scenario=scenario))
if not p.scenarios:
    claims += rp.not_run_claims("a scenario (e.g. digits)", rp.SCENARIO_CLAIM_IDS)
for (experiment, outcome), summary_path, design_path, check_path in zip(
    p.attributes, sm.input.attribute_summaries, sm.input.attribute_designs, sm.input.attribute_checks
):
    design = pd.read_csv(design_path)
    claims += rp.attribute_claims(
        experiment, pd.read_csv(summary_path), design, pd.read_csv(check_path), outcome, criteria
    )
    spreads.append(design.assign(experiment=experiment))
for experiment, trees_path in zip(p.tasks, sm.input.task_trees):
    claims += rp.task_claims(experiment, pd.read_csv(trees_path), criteria)
# families that write their own claims
for claims_path in [*sm.input.robustness_claims, *sm.input.interaction_claims, *sm.input.selection_claims]:
    claims += pd.read_csv(claims_path, keep_default_na=False, na_values=[""]).to_dict("records")
if not p.interactions:
    claims += rp.not_run_claims("an interactions experiment (e.g. digits_interactions)", rp.INTERACTION_CLAIM_IDS)
if not p.selection:
    claims += rp.not_run_claims("a model-selection experiment (e.g. digits_selection)", rp.SELECTION_CLAIM_IDS)
if not p.robustness:
    claims += rp.not_run_claims("a robustness experiment (e.g. digits_robustness)", rp.ROBUSTNESS_CLAIM_IDS)
if not p.tasks:
    claims += rp.not_run_claims("a tasks experiment (e.g. shapes_tasks)", rp.TASK_CLAIM_IDS)
if not p.attributes:
    claims += rp.not_run_claims("an attributes experiment (e.g. shapes_attributes)", rp.ATTRIBUTE_CLAIM_IDS)
claims = pd.DataFrame(claims, columns=rp.COLUMNS)
design = pd.concat(designs, ignore_index=True) if designs else pd.DataFrame()
spread = pd.concat(spreads, ignore_index=True) if spreads else pd.DataFrame()
save_csv(sm.output.csv, claims)
with atomic_path(sm.output.md) as tmp:
    Path(tmp).write_text(rp.report_markdown(claims, design, criteria, spread), encoding="utf-8")
log.info("verdicts: %s", rp.verdict_counts(claims))
