"""Rule selection_figure: every score against the outcome per candidate; each score's weighted Kendall with its
interval, and against its cost."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.model_selection.figures import selection_agreement_figure, selection_scores_figure
from advtransfer.plots import save_figure

p = sm.params
candidates, agreement = load_csv(sm.input.scores), load_csv(sm.input.agreement)
level = p.level  # the summary's bootstrap level
save_figure(selection_scores_figure(candidates, agreement, outcome=p.outcome, title=p.title, level=level),
            sm.output.scores_png, sm.output.scores_pdf)  # fmt: skip
save_figure(selection_agreement_figure(agreement, outcome=p.outcome, title=p.title, level=level),
            sm.output.agreement_png, sm.output.agreement_pdf)  # fmt: skip
