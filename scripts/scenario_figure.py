"""Rule scenario_figure: Figure 3 (metrics per source beside transferred accuracy; scatter) as PNG and PDF."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.scenarios.figures import figure3
from advtransfer.plots import save_figure

summary = load_csv(sm.input.summary)
title = (f"{sm.wildcards.scenario}: {sm.params.source_dataset} sources -> {sm.params.target_dataset} target "
         f"{sm.params.target_classes}")
fig = figure3(summary, load_csv(sm.input.correlations), title, outcome=sm.params.outcome)
save_figure(fig, sm.output.png, sm.output.pdf)
