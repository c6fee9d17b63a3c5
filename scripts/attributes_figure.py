"""Rule attributes_figure: the attributes' adversarial transferability vs knowledge transfer to identity, and
whether each measure ranks the identity-defining attributes first (PNG and PDF)."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.attributes.figures import attribute_figure
from advtransfer.plots import save_figure

p = sm.params
title = (
    f"{sm.wildcards.attributes}: {p.n_attributes} attribute classifiers against the {p.target} reference\n"
    "are the attributes more adversarially transferable to identity the ones that transfer knowledge to identity "
    "better?"
)
fig = attribute_figure(
    load_csv(sm.input.summary), load_csv(sm.input.correlations), load_csv(sm.input.check),
    rank_by=p.rank_by, outcome=p.outcome, title=title,
)  # fmt: skip
save_figure(fig, sm.output.png, sm.output.pdf)
