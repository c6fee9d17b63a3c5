"""Rule interactions_summary: interactions.csv (strength, normalised profile and attack-induced change per
order, with two-level bootstrap intervals), profiles.csv (every model's per-image rows; Ren et al.'s claims are
judged on it by the `claims` job), orders_vs_tau.csv (a scenario's sources: high-order share next to tau1 / tau2 /
alpha and the knowledge-transfer outcome) and the tables."""

from _job import log, sm  # noqa: I001 - the preamble first

import pandas as pd

from advtransfer import interactions, stats
from advtransfer.families.interactions.jobs import parse_name
from advtransfer.families.interactions.tables import interaction_tables
from advtransfer.tables import write_table
from advtransfer.io import save_csv, load_csv

p = sm.params
r = p.reproduction
experiment = sm.wildcards.interactions
frames = []
for name, path in zip(p.names, sm.input.profiles):
    side, group, seed = parse_name(name)
    frames.append(load_csv(path).assign(side=side, group=group, seed=seed))
profiles = pd.concat(frames, ignore_index=True)
summary = interactions.order_summary(profiles, r["n_boot"], r["level"], r["seed"])
shares = interactions.model_shares(profiles, p.claims["high"])
metrics = ["tau1", "tau2", "tau1_tau2", "alpha", "cross_adv_loss"]
view, correlations = pd.DataFrame(columns=["source", "seed", "high_order_share"]), pd.DataFrame()
if sm.input.scenario:
    scenario = load_csv(sm.input.scenario[0])
    ours = shares[shares["side"] == "scenario"].drop(columns="side").rename(columns={"group": "source"})
    view = ours.merge(scenario[["source", "seed", *metrics, p.outcome]], on=["source", "seed"], how="left")
    correlations = stats.rank_correlations(view, [*metrics, p.outcome], outcome="high_order_share", cluster="seed",
                                           n_boot=r["n_boot"], level=r["level"], seed=r["seed"])  # fmt: skip
    log.info("high-order share vs tau and %s:\n%s", p.outcome, correlations.to_string())
save_csv(sm.output.summary, summary)
save_csv(sm.output.profiles, profiles)
save_csv(sm.output.view, view)
write_table(sm.output.table_md, sm.output.table_tex,
            interaction_tables(summary, shares, view, correlations, p.claims))  # fmt: skip
