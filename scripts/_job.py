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

import __main__  # noqa: E402

from advtransfer.runtime import configure  # noqa: E402

sm = __main__.snakemake
log = configure(sm.log[0], sm.threads)


def target_images(part, indices):
    """Model inputs of ``indices`` of the target task's ``part`` ('train' or 'test'), in the target domain
    (attack, metrics and probe rules; params target, root, channels, image_size)."""
    from advtransfer.data import load_images

    p = sm.params
    return load_images(
        p.target["dataset"], p.root, part, indices,
        channels=p.channels, size=p.image_size, domain=p.target["domain"], seed=p.target["domain_seed"],
    )  # fmt: skip
