"""Rule reproduction: results/reproduction.md and .csv, gathered from the run's experiments' claims, checks and
fidelity tables (each written by its family's `claims` job)."""

from _job import log, sm  # noqa: I001 - the preamble first

from pathlib import Path

import pandas as pd

from advtransfer import reproduction as rp
from advtransfer.claims import CHECK_COLUMNS, CLAIM_COLUMNS
from advtransfer.fidelity import FIDELITY_COLUMNS
from advtransfer.io import atomic_path, save_csv, load_csv


def gather(paths, columns):
    frames = [load_csv(path, keep_default_na=False, na_values=[""]) for path in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


claims = gather(sm.input.claims, CLAIM_COLUMNS)
checks = gather(sm.input.checks, CHECK_COLUMNS)
fidelity = gather(sm.input.fidelity, FIDELITY_COLUMNS)
save_csv(sm.output.csv, claims)
with atomic_path(sm.output.md) as tmp:
    Path(tmp).write_text(rp.report_markdown(claims, checks, fidelity, sm.params.protocol, sm.params.not_run),
                         encoding="utf-8")  # fmt: skip
log.info("verdicts: %s; checks: %s", rp.verdict_counts(claims), rp.check_counts(checks))
