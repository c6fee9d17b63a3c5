"""A tasks experiment's matrices as the views its trees, claims and figure compare. No torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advtransfer.affinity import square


def task_views(atm, tau, affinity, tasks: Sequence[str]) -> tuple[dict[str, np.ndarray], str, np.ndarray]:
    """The family's matrices from its tables (atm.csv, tau_matrix.csv, affinity.csv or None for a zoo): the
    adversarial views {"ATM eps <e>": ..., "tau1 tau2 (encoders)", "tau1 (encoders)"}, the reference's name
    and matrix. The reference is the knowledge-transfer affinity; a zoo has none (no labels), so its ATM views
    are compared with the tau1 tau2 view, which then leaves the views."""
    views = {f"ATM eps {eps:g}": square(group, "value", tasks) for eps, group in atm.groupby("eps")}
    views["tau1 tau2 (encoders)"] = square(tau, "tau1_tau2", tasks)
    views["tau1 (encoders)"] = square(tau, "tau1", tasks)
    if affinity is not None:
        return views, "knowledge transfer (affinity)", square(affinity, "value", tasks)
    return views, "tau1 tau2 (encoders)", views.pop("tau1 tau2 (encoders)")
