"""Rule toy_values: each source's score and outcome per seed, sharing a known effect (seeded from config)."""

import sys  # noqa: I001 - the preamble first
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "scripts"))  # the shared job preamble of scripts/_job.py
from _job import sm  # noqa: E402, I001 - the preamble first

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from advtransfer.io import save_csv  # noqa: E402

block = sm.params.block
rows = []
for seed in block["seeds"]:
    rng = np.random.default_rng(seed)
    for s in range(block["n_sources"]):
        rows.append({"source": f"s{s}", "seed": seed, "score": block["effect"] * s + rng.normal(),
                     "outcome": block["effect"] * s + rng.normal()})  # fmt: skip
save_csv(sm.output[0], pd.DataFrame(rows))
