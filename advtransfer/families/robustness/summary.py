"""A robustness experiment's summary: robustness.csv, one row per source scheme, seed and retraining scheme.
No torch."""

from __future__ import annotations

import math

import pandas as pd

from advtransfer.families.robustness.jobs import RETRAIN_SCHEMES


def pgd_column(side: str, eps: float) -> str:
    """The robustness.csv column of ``side``'s (source / target) accuracy under PGD at ``eps``."""
    return f"{side}_pgd_accuracy_eps{eps:g}"


def summary_frame(
    sources: dict, robust_sources: dict, retrained: dict, robust_targets: dict, metrics: dict
) -> pd.DataFrame:
    """robustness.csv: one row per (scheme, seed, retraining scheme). ``sources`` / ``robust_sources`` map
    (scheme, seed) to the source's sidecar / robustness; ``retrained`` / ``robust_targets`` map (scheme,
    seed, retrain) to the target model's sidecar / robustness; ``metrics`` maps (scheme, seed) to the
    generic metrics (tau1, tau2, alpha at features and logits, cross adversarial loss, ...)."""
    rows = []
    for (scheme, seed, retrain), target in robust_targets.items():
        info, model = sources[(scheme, seed)], retrained[(scheme, seed, retrain)]
        rows.append({
            "scheme": scheme, "seed": int(seed), "retrain": retrain, "objective": info["objective"],
            "source_val_accuracy": info["val_accuracy"], "train_wall_seconds": info["wall_seconds"],
            "train_cpu_seconds": info.get("cpu_seconds", math.nan),
            **{f"source_{k}": v for k, v in robust_sources[(scheme, seed)].items() if k not in ("n_images", "seconds")},
            "target_val_accuracy": model["val_accuracy"], "retrain_wall_seconds": model["wall_seconds"],
            "retrain_cpu_seconds": model["cpu_seconds"],
            **{f"target_{k}": v for k, v in target.items() if k not in ("n_images", "seconds")},
            **{k: v for k, v in metrics[(scheme, seed)].items() if isinstance(v, (int, float))},
        })  # fmt: skip
    order = {"retrain": {r: i for i, r in enumerate(RETRAIN_SCHEMES)}}
    frame = pd.DataFrame(rows)
    return frame.sort_values(["scheme", "retrain", "seed"],
                             key=lambda c: c.map(order[c.name]) if c.name in order else c,
                             ignore_index=True)  # fmt: skip
