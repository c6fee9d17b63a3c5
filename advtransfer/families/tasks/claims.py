"""The tasks' claims (Liang et al. 2021, Section 4.4, Figures 4 and 5), from a tasks experiment's matrices
(results/<experiment>/atm.csv, tau_matrix.csv and, for the shapes world, affinity.csv). No torch.

The units are the tasks. ``tasks_agree``: the Spearman correlation of an adversarial view's off-diagonal
entries with the knowledge-transfer affinity's (a Mantel test: the tasks of the affinity are relabelled, rows
and columns together), after the view's declared column normalisation of both matrices. ``tasks_categories``
(Figure 5): the inner-category entropy of the view's task tree cut into k clusters, against the known kinds
(0 = every cluster one kind); the test relabels the kinds among the tasks.

Normalisations (per target column; the Mantel statistic compares off-diagonal entries only): ``columns``, the
matrices as stored (each column's principal eigenvector of the tournament, summing to 1 with the diagonal);
``offdiagonal``, each column renormalised to sum 1 over its off-diagonal entries; ``ranks``, the ranks of the
off-diagonal entries within each column, which do not depend on the clip of the ratio matrices
(advtransfer.affinity.DEFAULT_CLIP) and make the comparison purely ordinal, as Taskonomy's normalisation is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from advtransfer import affinity
from advtransfer import claims as C
from advtransfer.families.tasks.jobs import is_zoo, task_kinds, task_names
from advtransfer.fidelity import aspect, fidelity_frame, view_result

PAPER = "Liang et al. 2021"
CLAIMS = {
    spec.id: spec
    for spec in (
        C.ClaimSpec("tasks_agree", "tasks that are more adversarially transferable to each other transfer "
                    "knowledge to each other better", f"{PAPER}, Section 4.4, Figure 4"),
        C.ClaimSpec("tasks_categories", "the task tree from adversarial transferability groups the tasks by their "
                    "known categories (low inner-category entropy)", f"{PAPER}, Section 4.4, Figure 5"),
    )
}  # fmt: skip
NORMALISATIONS = ("columns", "offdiagonal", "ranks")
MATRICES = ("atm", "tau1_tau2", "tau1")


def claims_inputs(name: str, block: Mapping[str, Any]) -> dict[str, str]:
    files = {"atm": f"results/{name}/atm.csv", "tau": f"results/{name}/tau_matrix.csv"}
    if not is_zoo(block):
        files["affinity"] = f"results/{name}/affinity.csv"
    return files


def normalise(matrix: np.ndarray, how: str) -> np.ndarray:
    """A task matrix (rows: sources, columns: targets) under a column normalisation (module docstring)."""
    m = np.array(matrix, dtype=float)
    off = ~np.eye(len(m), dtype=bool)
    if how == "columns":
        return m
    if how == "offdiagonal":
        m[~off] = 0.0
        return m / m.sum(axis=0, keepdims=True)
    if how == "ranks":
        out = np.zeros_like(m)
        for j in range(len(m)):
            rows = np.flatnonzero(off[:, j])
            out[rows, j] = stats.rankdata(m[rows, j])
        return out
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {how!r}")


def view_matrix(frames: Mapping[str, pd.DataFrame], view: Mapping[str, Any], tasks: Sequence[str]) -> np.ndarray:
    """The adversarial matrix a view names: the ATM at ``eps``, or tau1 tau2 / tau1 between the encoders."""
    if view["matrix"] == "atm":
        atm = frames["atm"]
        part = atm[np.isclose(atm["eps"].astype(float), float(view["eps"]))]
        if part.empty:
            raise ValueError(f"the ATM has no eps {view['eps']} (has {sorted(atm['eps'].unique())})")
        return affinity.square(part, "value", tasks)
    if view["matrix"] in ("tau1_tau2", "tau1"):
        return affinity.square(frames["tau"], view["matrix"], tasks)
    raise ValueError(f"matrix must be one of {MATRICES}, got {view['matrix']!r}")


def mantel_test(a: np.ndarray, b: np.ndarray, settings: Mapping[str, Any]) -> C.TestResult:
    """Spearman of a's and b's off-diagonal entries; the null relabels b's tasks (rows and columns together)."""
    n = len(a)
    perms, exact = C.unit_permutations(np.zeros(n), settings["n_perm"], settings["perm_seed"])
    null = affinity._permuted_statistics(a, b, perms)
    p_greater, p_less = C.permutation_p(null)
    best = C.permutation_p(affinity._permuted_statistics(b, b, perms))[0]
    how = f"all {len(perms)} relabellings" if exact else f"{len(perms) - 1} random relabellings"
    return C.TestResult(float(null[0]), p_greater, p_less, best, f"Mantel test over {n} tasks: {how}", n, 1,
                        needed=C.needed_units([n], settings["alpha"] / 2, "tasks"))


def categories_test(matrix: np.ndarray, kinds: Sequence[str], k: int, clustering: Mapping[str, Any],
                    settings: Mapping[str, Any]) -> C.TestResult:  # fmt: skip
    """Inner-category entropy of the matrix's tree cut into k clusters; the null relabels the kinds. The smallest
    p the design allows is a property of the tasks and kinds, not of this tree: that of a perfect tree, one
    whose clusters are the kinds (a tree with lopsided clusters cannot reach it, and that is a finding)."""
    tree, _ = affinity.safe_linkage(matrix, clustering["method"], clustering["metric"])
    labels = affinity.cut_tree_labels(tree, k)
    kinds = np.asarray(list(kinds))
    perms, exact = C.unit_permutations(np.zeros(len(kinds)), settings["n_perm"], settings["perm_seed"])
    null = affinity.inner_category_entropies(labels, kinds[perms])
    p_greater, p_less = C.permutation_p(null)
    perfect = affinity.inner_category_entropies(kinds, kinds[perms])
    best = float(np.mean(perfect <= perfect.min() + 1e-12))
    how = f"all {len(perms)} relabellings" if exact else f"{len(perms) - 1} random relabellings"
    needed = f"needs more tasks per kind: even a tree whose clusters are the kinds reaches p {best:.3g}"
    return C.TestResult(float(null[0]), p_greater, p_less, best, f"relabelling the kinds of {len(kinds)} tasks: {how}",
                        len(kinds), 1, null_value=float(null.mean()), needed=needed)  # fmt: skip


def _measure(frames: Mapping[str, pd.DataFrame], block: Mapping[str, Any], settings: dict[str, Any]):
    kinds_map = task_kinds(block)
    tasks, kinds = list(kinds_map), list(kinds_map.values())
    reference = affinity.square(frames["affinity"], "value", tasks) if "affinity" in frames else None

    def measure(view: dict[str, Any]) -> tuple[C.TestResult, str, str]:
        matrix = view_matrix(frames, view, tasks)
        name = "ATM eps " + f"{float(view['eps']):g}" if view["matrix"] == "atm" else f"{view['matrix']} (encoders)"
        if "k" in view:
            result = categories_test(matrix, kinds, int(view["k"]), block["clustering"], settings)
            return result, (f"{name}: inner-category entropy (nats) of its task tree cut into {view['k']} clusters "
                            f"against the {len(set(kinds))} known kinds (null value: the mean over relabellings)"), ""
        how = view["normalisation"]
        result = mantel_test(normalise(matrix, how), normalise(reference, how), settings)
        return result, (f"{name} vs the knowledge-transfer affinity, both normalised by '{how}': Spearman of the "
                        "off-diagonal entries"), ""  # fmt: skip

    return measure


def fidelity(name: str, block: Mapping[str, Any], claims: pd.DataFrame) -> pd.DataFrame:
    zoo = is_zoo(block)
    tasks = task_names(block)
    eps = block["attack"]["eps"]
    found = view_result(claims, "tasks_agree", eps=max(eps)) if len(eps) > 1 else ""
    return fidelity_frame(name, [
        aspect("tasks", "15 Taskonomy tasks (semantic, 2D, 3D)",
               f"{len(tasks)} tasks of a user's zoo" if zoo else f"{len(tasks)} shapes-world tasks "
               "(semantic, 2D, geometric)"),
        aspect("networks", "Taskonomy's released networks (ResNet-50 encoder, one each)",
               "the zoo's networks" if zoo else "one small encoder-decoder per task, trained here (one seed each)"),
        aspect("images", "1000 Taskonomy images", f"{block['attack']['n_images']} images"),
        aspect("attack", "virtual adversarial PGD Linf eps 0.03 and 0.06, 10 steps",
               f"PGD Linf on each network's own prediction, eps {', '.join(f'{e:g}' for e in eps)}, "
               f"{block['attack']['steps']} steps", ablation=f"ATM eps {max(eps):g}: {found}" if found else ""),
        aspect("knowledge transfer", "Taskonomy's affinity matrix", "none (a zoo brings no labels)" if zoo else
               "a decoder of every task trained on every frozen encoder, ordinal normalisation"),
        aspect("comparison", "the trees and their inner-category entropy (Figure 5)", "a Mantel test of the matrices "
               "(declared normalisation) and the entropy of the trees against the kinds, each a permutation test",
               differs=True),
    ])  # fmt: skip


def claims(name: str, block: Mapping[str, Any], frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Any],
           protocol: Mapping[str, Any]) -> dict[str, pd.DataFrame]:  # fmt: skip
    """claims.csv and fidelity.csv of one tasks experiment (a zoo has no affinity: no tasks_agree rows)."""
    measure, rows = _measure(frames, block, C.test_settings(protocol)), []
    for cid, declaration in declared.items():
        if cid == "tasks_agree" and "affinity" not in frames:
            continue
        rows += C.judge(name, CLAIMS[cid], declaration, measure, float(protocol["alpha"]))
    table = C.claims_frame(rows)
    return {"claims": table, "checks": C.checks_frame([]), "fidelity": fidelity(name, block, table)}


def claim_designs(name: str, block: Mapping[str, Any], declared: Mapping[str, Any],
                  config: Mapping[str, Any]) -> list[C.ClaimDesign]:  # fmt: skip
    n = len(task_names(block))
    return [C.ClaimDesign(name, cid, "matrix" if cid == "tasks_agree" else "categories", n, 1, d["direction"],
                          float(d.get("min_effect", 0.0)), n_positive=int(d["primary"].get("k", 0)))
            for cid, d in declared.items() if not (cid == "tasks_agree" and is_zoo(block))]  # fmt: skip


def view_name(view: Mapping[str, Any]) -> str:
    """The name the family's tables give a view's matrix (trees.csv ``view``): ``ATM eps 0.03``, ``tau1 tau2
    (encoders)`` or ``tau1 (encoders)``."""
    if view["matrix"] == "atm":
        return f"ATM eps {float(view['eps']):g}"
    return f"{view['matrix'].replace('_', ' ')} (encoders)"


def _run_mantel(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration (advtransfer.calibration) of ``tasks_agree``: two matrices over the design's tasks, unrelated
    under ``null``; the real test (ranks normalisation) and verdict on them."""
    from advtransfer.calibration import simulate_matrices

    a, b = simulate_matrices(design.n_units, null, rng, C.direction_sign(design.direction))
    return C.verdict(mantel_test(normalise(a, "ranks"), normalise(b, "ranks"), settings), design.direction,
                     design.min_effect, settings["alpha"])  # fmt: skip


def _run_categories(design: C.ClaimDesign, null: str | None, rng, settings) -> str:
    """Calibration of ``tasks_categories``: a matrix whose columns of one kind are alike (or not, under ``null``);
    the real entropy test and verdict on its tree."""
    n, k = design.n_units, max(2, design.n_positive or 3)
    kinds = [f"kind{i % k}" for i in range(n)]
    m = rng.normal(size=(n, n))
    if not null:
        profiles = rng.normal(size=(k, n)) * 2.0
        m = m + np.stack([profiles[i % k] for i in range(n)], axis=1)
    result = categories_test(m, kinds, k, {"method": "average", "metric": "correlation"}, settings)
    return C.verdict(result, design.direction, design.min_effect, settings["alpha"])


CALIBRATION_RUNNERS = {"matrix": _run_mantel, "categories": _run_categories}
