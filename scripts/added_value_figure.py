"""Rule added_value_figure: the outcome against the leading scores by overlap level, and every score's added
value over the design with its interval and cost (advtransfer.families.added_value.figures)."""

from _job import sm  # noqa: I001 - the preamble first

from advtransfer.families.added_value.figures import added_value_figure
from advtransfer.io import load_csv
from advtransfer.plots import save_figure

p = sm.params
fig = added_value_figure(load_csv(sm.input.sources), load_csv(sm.input.added_value), load_csv(sm.input.agreement),
                         p.outcome, p.estimator, p.title)  # fmt: skip
save_figure(fig, sm.output.png, sm.output.pdf)
