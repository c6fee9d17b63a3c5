"""Rule synthetic_figure: Figure 2 as PNG and PDF."""

from _job import sm  # noqa: I001 - the preamble first


from advtransfer.io import load_csv

from advtransfer.families.synthetic.figures import figure2
from advtransfer.plots import save_figure

save_figure(figure2(load_csv(sm.input.summary)), sm.output.png, sm.output.pdf)
