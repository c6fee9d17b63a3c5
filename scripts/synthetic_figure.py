"""Rule synthetic_figure: Figure 2 as PNG and PDF."""

import _library_path  # noqa: F401 - this checkout's advtransfer first on sys.path
import pandas as pd

from advtransfer.plots import figure2, save_figure
from advtransfer.runtime import configure

sm = snakemake  # noqa: F821 - injected by Snakemake
configure(sm.log[0], sm.threads)
save_figure(figure2(pd.read_csv(sm.input.summary)), sm.output.png, sm.output.pdf)
