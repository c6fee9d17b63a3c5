"""Preamble of every rule script: ``from _job import sm, log`` (first import of the script).

Puts this checkout's ``advtransfer`` first on sys.path (Snakemake appends scripts/ to sys.path; the
library next to it is the code whose hash the rules track, not another installed copy), takes the job's
``snakemake`` object (Snakemake defines it in the script it runs as __main__) and sends stdout, stderr
and logging to the rule's log with the rule's threads.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)

from advtransfer.jobserver import delegate, served  # noqa: E402

delegate()  # in a local run: the job server runs this script and this process exits with its status

import __main__  # noqa: E402
from advtransfer.runtime import configure  # noqa: E402

sm = __main__.snakemake
log = configure(sm.log[0], sm.threads)
log.info("started in the job server's fork" if served() else "started in its own process")

