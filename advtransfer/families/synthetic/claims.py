"""The synthetic experiment's claims and checks (Section 4.1, Figure 2; Proposition 1, Theorems 1-3), from the
sweep (results/synthetic/sweep.csv: one row per t, draw of V and sample D). No torch.

The units of the trend claims are the values of t (the design variable): a view's test is
:func:`advtransfer.claims.rank_association` of a quantity with t (or with alpha) within each draw of V, the
draws being the seeds; the null relabels the t values, each keeping all its draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C
from advtransfer.fidelity import aspect, fidelity_frame, view_result

PAPER = "Liang et al. 2021"
CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("tau1_falls", "tau1 falls as the source moves away from the target (t grows)",
                    f"{PAPER}, Section 4.1, Figure 2"),
        C.ClaimSpec("tau2_falls", "tau2 falls as the source moves away from the target (t grows)",
                    f"{PAPER}, Section 4.1, Figure 2"),
        C.ClaimSpec("alpha_falls", "alpha falls as the source moves away from the target (t grows)",
                    f"{PAPER}, Section 4.1, Figure 2"),
        C.ClaimSpec("loss_rises", "the transferred loss rises as t grows", f"{PAPER}, Section 4.1, Figure 2"),
        C.ClaimSpec("tau1_tracks_alpha", "tau1 tracks alpha, the normalised cross adversarial loss",
                    f"{PAPER}, Proposition 2, Figure 2"),
    )
}  # fmt: skip
SWEEP_COLUMNS = ("t", "seed", "split", "tau1", "tau2", "tau2_unclamped", "alpha", "tau2_reverse", "grad_diff",
                 "thm1_lhs", "thm1_rhs", "thm1_gap", "thm2_bound", "thm2_bound_lipschitz", "transfer_loss_lastlayer",
                 "transfer_loss_affine", "thm3_bound")  # fmt: skip


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    return {"sweep": f"results/{name}/sweep.csv"}


def _view_frame(sweep: pd.DataFrame, view: Mapping[str, Any]) -> pd.DataFrame:
    frame = sweep[sweep["split"] == view.get("sample", "train")]
    if view.get("t_max") is not None:
        frame = frame[frame["t"] <= float(view["t_max"]) + 1e-12]
    return frame


def _measure(sweep: pd.DataFrame, settings: dict[str, Any]):
    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        frame = _view_frame(sweep, view)
        result = C.rank_association(frame, view["metric"], view["against"], unit="t", seed="seed", **settings)
        t_range = f"t <= {view['t_max']:g}" if view.get("t_max") is not None else "every t"
        text = (f"Spearman of {view['metric']} with {view['against']} across the {result.n_units} values of t within "
                f"each draw of V, mean over the {result.n_seeds} draws; {view.get('sample', 'train')} sample, "
                f"{t_range}")  # fmt: skip
        return result, text, ""

    return measure


def checks(name: str, sweep: pd.DataFrame, protocol: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Proposition 1's range, Theorem 1's identity and the Theorem 2 / 3 bounds on every row of both samples."""
    n = len(sweep)
    values = sweep[["tau1", "tau2_unclamped"]].to_numpy(dtype=float)
    tol, rtol = protocol["range_tolerance"], protocol["identity_rtol"]
    outside = int(((values < -tol) | (values > 1 + tol)).any(axis=1).sum())
    rows = [C.check_row(
        name, "prop1", "tau1 and tau2 lie in [0, 1]", f"{PAPER}, Proposition 1",
        f"min and max of tau1 and of tau2 before the clamp to [0, 1] over {n} rows (both samples D)", values.min(),
        f"every value in [-{tol:g}, 1 + {tol:g}]; max {values.max():.6g}", n, outside,
    )]  # fmt: skip
    rel = np.abs(sweep["thm1_gap"].to_numpy(dtype=float))
    rows.append(C.check_row(
        name, "thm1", "||grad f_T - A grad f_S||^2 = E[(1 - tau1(x) tau2) ||grad f_T(x)||^2] (m = d = 1)",
        f"{PAPER}, Theorem 1", f"largest |difference| of the two sides over E ||grad f_T||^2 over {n} rows, on the "
        "first output of f_S and f_T (the identity is the scalar case)", rel.max(), f"<= {rtol:g} on every row", n,
        int((rel > rtol).sum()),
    ))  # fmt: skip
    for check_id, text, ratio_of, bound, paper in (
        ("thm2", "||J_T - A J_S||^2 is below the Theorem 2 bound", "grad_diff", "thm2_bound", "Theorem 2"),
        ("thm2_lipschitz", "the Theorem 2 bound is below its Lipschitz form", "thm2_bound", "thm2_bound_lipschitz",
         "Theorem 2"),
        ("thm3", "the loss of g o f_S is below the Theorem 3 bound", "transfer_loss_affine", "thm3_bound", "Theorem 3"),
    ):  # fmt: skip
        ratio = sweep[ratio_of].to_numpy(dtype=float) / sweep[bound].to_numpy(dtype=float)
        rows.append(C.check_row(
            name, check_id, text, f"{PAPER}, {paper}", f"largest ratio {ratio_of} / {bound} over {n} rows (both "
            "samples D)", ratio.max(), f"ratio <= 1 on every row; median {np.median(ratio):.3g}", n,
            int((ratio > 1 + 1e-12).sum()),
        ))  # fmt: skip
    return rows


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame) -> pd.DataFrame:
    data, sweep = block["data"], block["sweep"]
    ts = sweep["t"]
    return fidelity_frame(name, [
        aspect("data", "x in R^30, mixture of 3 Gaussians; y = sum of 100 RBFs in R^10; N = 1200",
               f"x in R^{data['dim']}, mixture of {data['n_clusters']} Gaussians; y = sum of {data['n_rbf']} RBFs in "
               f"R^{data['out_dim']}; N = {data['n_samples']}"),
        aspect("model", "one hidden layer of sigmoid units", "one hidden layer of sigmoid units",
               ablation=f"{block['target']['hidden']} hidden units"),
        aspect("scale t", "t in [0, 1] (text); the paper's code reached t = 4.5",
               f"{len(ts)} values in [{min(ts):g}, {max(ts):g}]",
               view_result(claims, "tau1_falls", t_max=1.0) and "tau1 vs t on t <= 1: "
               + view_result(claims, "tau1_falls", t_max=1.0)),
        aspect("draws of V", "one", f"{len(sweep['seeds'])} (the seeds of the tests)"),
        aspect("tau2 direction", "from T to S (the paper's code)", "from S to T (Definition 3)",
               view_result(claims, "tau2_falls", metric="tau2_reverse") and "tau2 from T to S vs t: "
               + view_result(claims, "tau2_falls", metric="tau2_reverse")),
        aspect("sample D", "the training sample", "the training sample",
               ablation=view_result(claims, "loss_rises", sample="heldout") and "transferred loss vs t on the "
               "held-out sample: " + view_result(claims, "loss_rises", sample="heldout")),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv, checks.csv and fidelity.csv of the synthetic experiment."""
    sweep = frames["sweep"]
    missing = [k for k in SWEEP_COLUMNS if k not in sweep.columns]
    if missing:
        raise ValueError(f"the sweep lacks columns {missing}")
    measure, rows = _measure(sweep, C.test_settings(protocol)), []
    for cid, declaration in declared.items():
        rows += C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]))
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame(checks(name, sweep, protocol)),
            "fidelity": fidelity(name, block, table)}  # fmt: skip


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    n_t, n_seeds = len(block["sweep"]["t"]), len(block["sweep"]["seeds"])
    return [C.ClaimDesign(name, cid, "rank", n_t, n_seeds, d["direction"], float(d.get("min_effect", 0.0)),
                          y_design=d["primary"]["against"] == "t") for cid, d in declared.items()]  # fmt: skip
