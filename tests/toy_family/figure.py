"""Rule toy_figure: the toy outcome against the toy score, one point per source and seed."""

import sys  # noqa: I001 - the preamble first
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "scripts"))  # the shared job preamble of scripts/_job.py
from _job import sm  # noqa: E402, I001 - the preamble first

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from advtransfer.plots import save_figure  # noqa: E402

values = pd.read_csv(sm.input[0])
fig = Figure(figsize=(4, 3), layout="constrained")
ax = fig.subplots()
ax.scatter(values["score"], values["outcome"], s=12)
ax.set(xlabel="toy score", ylabel="toy outcome", title="toy outcome against toy score (one point per source and seed)")
save_figure(fig, sm.output[0], sm.output[1])
