"""Rule interactions_figure: interaction strength and attack-induced change per order, per training scheme, on
the source and target tasks, and a scenario's sources' high-order share vs tau and knowledge transfer."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.interactions.figures import interaction_figure
from advtransfer.plots import save_figure

p = sm.params
summary = load_csv(sm.input.summary)
view = load_csv(sm.input.view)
n = summary.loc[summary["side"] != "scenario", ["n_seeds", "n_images"]].max()
title = (f"{p.title}: multi-order interactions (Ren et al. 2021) of {summary['group'].nunique()} model groups, "
         f"up to {n['n_seeds']} seeds and {n['n_images']} images each\n"
         "which orders of interaction do attacks change, and do robust models rely on low orders?")  # fmt: skip
level = p.level  # the summary's bootstrap level
save_figure(interaction_figure(summary, view, claims=p.claims, outcome=p.outcome, title=title, level=level),
            sm.output.png, sm.output.pdf)  # fmt: skip
