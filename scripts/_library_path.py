"""Put this checkout's ``advtransfer`` first on sys.path, in whatever environment runs a rule's script.

Snakemake appends the scripts/ folder to sys.path; importing this module makes every script use the
library next to it (the code whose hash the rules track), not another installed copy.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
