"""Rule robustness_figure: robustness transfer, certified accuracy curves, the RRM panel and tau vs robustness
transfer (PNG and PDF)."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.robustness.figures import robustness_figure
from advtransfer.plots import save_figure

p = sm.params
summary = load_csv(sm.input.summary)
title = (f"{p.title}: {summary['scheme'].nunique()} source training schemes x {summary['seed'].nunique()} seeds, "
         f"{summary['retrain'].nunique()} retraining schemes on the target task\n"
         "does robustness transfer, and does adversarial transferability tell which source transfers it?")  # fmt: skip
save_figure(robustness_figure(summary, eps=p.claims["eps"], radii=p.radii, claims=p.claims, title=title),
            sm.output.png, sm.output.pdf)  # fmt: skip
