"""Rule claims: an experiment's claims.csv, checks.csv and fidelity.csv from its family's claims module (the
declared claims judged on the experiment's tables through the one claims protocol, advtransfer/claims.py)."""

from _job import log, sm  # noqa: I001 - the preamble first

import importlib


from advtransfer.io import save_csv, load_csv

family = importlib.import_module(sm.params.family_module)
frames = {key: load_csv(path) for key, path in sm.input.items()}
out = family.claims(sm.wildcards.exp, dict(sm.params.block), frames, dict(sm.params.declared), dict(sm.params.protocol))
for kind in ("claims", "checks", "fidelity"):
    save_csv(getattr(sm.output, kind), out[kind])
table = out["claims"]
log.info("claims:\n%s", table[["claim_id", "role", "value", "p_value", "p_adjusted", "verdict"]].to_string())
