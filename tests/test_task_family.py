"""Knowledge transfer among tasks (Section 4.4, Figure 4) as a workflow family: the tree comparison on known
matrices, config checks, DAGs and a tiny end-to-end run producing every output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advtransfer import affinity
from advtransfer.affinity import compare_trees, square
from tests.test_workflow import job_counts
from tests.workflow_helpers import REPO, snakemake


def _grouped_matrix(groups: list[int], noise: float, seed: int) -> np.ndarray:
    """A matrix whose columns are alike within a group: column j = profile of its group + noise."""
    rng = np.random.default_rng(seed)
    profiles = rng.random((max(groups) + 1, len(groups)))
    return np.stack([profiles[g] + noise * rng.standard_normal(len(groups)) for g in groups], axis=1)


def test_compare_trees_finds_the_kinds_and_the_agreement():
    groups = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    kinds = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    view, reference = _grouped_matrix(groups, 0.01, 0), _grouped_matrix(groups, 0.01, 1)
    trees = compare_trees({"view": view}, reference, kinds, [2, 3], n_perm=50).set_index("k")
    assert trees.loc[3, "ari"] == 1.0 and trees.loc[3, "entropy"] == 0.0 and trees.loc[3, "reference_entropy"] == 0.0
    assert trees.loc[2, "entropy"] > 0  # two clusters cannot hold three kinds purely
    shuffled = compare_trees(
        {"view": view}, reference, list(np.random.default_rng(3).permutation(kinds)), [3], n_perm=50
    )
    assert shuffled["entropy"].iloc[0] > 0  # the same trees against scrambled kinds are not pure
    flat = view.copy()
    flat[:, 0] = 0.5  # a constant column: its correlation distance is undefined, so the euclidean metric is used
    fallback = compare_trees({"flat": flat}, reference, kinds, [2], n_perm=10)
    assert fallback["metric"].iloc[0] == "euclidean"


def test_square_orders_rows_and_columns_by_the_task_list():
    frame = pd.DataFrame(
        [dict(source=s, target=t, value=10 * i + j) for i, s in enumerate("ab") for j, t in enumerate("ab")]
    )
    assert square(frame, "value", ["b", "a"]).tolist() == [[11, 10], [1, 0]]


@pytest.mark.workflow
def test_unknown_task_stops_before_any_job_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  shapes_tasks:\n    tasks: [shape, colour, telepathy]\n")
    proc = snakemake(REPO, "-n", "--configfile", str(bad), check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "tasks.shapes_tasks.tasks" in message and "telepathy" in message, message


@pytest.mark.workflow
@pytest.mark.parametrize(("experiment", "n_tasks"), [("shapes_tasks", 9), ("shapes_tasks_full", 11)])
def test_dry_run_builds_the_task_dags(experiment, n_tasks):
    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules", "--config", f"experiments=[{experiment}]").stdout
    assert job_counts(out) == {"dataset": 1, "train_task": n_tasks, "task_atm": 1, "task_tau": 1, "task_affinity": 1,
                               "task_trees": 1, "task_figure": 1, "claims": 1, "reproduction": 1, "all": 1}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_tasks(tiny_run):
    return tiny_run / "results" / "tinytasks"


@pytest.mark.workflow
def test_tiny_tasks_run_produces_every_output(tiny_tasks):
    for name in ("atm.csv", "tau_matrix.csv", "affinity.csv", "trees.csv", "table.md", "table.tex", "figure4.png",
                 "figure4.pdf", "atm_gains.safetensors", "affinity_losses.safetensors"):  # fmt: skip
        assert (tiny_tasks / name).stat().st_size > 0, name
    tasks = ["colour", "mask", "position"]
    atm = pd.read_csv(tiny_tasks / "atm.csv")
    assert set(atm["eps"]) == {0.03, 0.06} and len(atm) == 2 * 9
    for _, group in atm.groupby(["eps", "target"]):  # each column of the ATM is a distribution over sources
        assert group["value"].sum() == pytest.approx(1.0) and (group["value"] > 0).all()
    affinity = pd.read_csv(tiny_tasks / "affinity.csv")
    assert np.allclose(affinity.groupby("target")["value"].sum(), 1.0) and (affinity["mean_loss"] >= 0).all()
    tau = pd.read_csv(tiny_tasks / "tau_matrix.csv")
    diagonal = tau[tau["source"] == tau["target"]]
    assert (diagonal["tau1"] == 1.0).all() and tau[["tau1", "tau2", "alpha"]].stack().between(0, 1).all()
    assert np.allclose(square(tau, "tau1", tasks), square(tau, "tau1", tasks).T)  # tau1 is symmetric
    trees = pd.read_csv(tiny_tasks / "trees.csv")
    assert {"ATM eps 0.03", "ATM eps 0.06", "tau1 tau2 (encoders)"} <= set(trees["view"])
    assert trees["ari"].between(-1, 1).all() and (trees["mantel_p"] > 0).all()
    assert "Adversarial transferability matrix" in (tiny_tasks / "table.md").read_text()


def test_normalisations_by_hand():
    from advtransfer.families.tasks.claims import normalise

    m = np.array([[0.5, 0.1, 0.3], [0.2, 0.6, 0.3], [0.3, 0.3, 0.4]])
    assert np.array_equal(normalise(m, "columns"), m)
    off = normalise(m, "offdiagonal")
    assert np.allclose(off.sum(axis=0), 1.0) and np.allclose(np.diag(off), 0.0)
    assert off[1, 0] == pytest.approx(0.2 / 0.5)
    ranks = normalise(m, "ranks")
    assert ranks[:, 0].tolist() == [0.0, 1.0, 2.0] and ranks[:, 2].tolist() == [1.5, 1.5, 0.0]  # a tie
    with pytest.raises(ValueError, match="normalisation"):
        normalise(m, "z")


def test_mantel_test_is_exact_for_few_tasks_and_agrees_with_the_families_mantel():
    from itertools import permutations

    from advtransfer.families.tasks.claims import mantel_test

    rng = np.random.default_rng(2)
    a = rng.random((6, 6))
    b = a + 0.3 * rng.random((6, 6))
    result = mantel_test(a, b, {"n_perm": 99, "perm_seed": 0, "alpha": 0.05})
    assert "all 720 relabellings" in result.test and result.min_p == pytest.approx(1 / 720)
    observed = affinity.mantel(a, b, n_perm=0)[0]
    null = [affinity.mantel(a, b[np.ix_(p, p)], n_perm=0)[0] for p in map(list, permutations(range(6)))]
    assert result.value == pytest.approx(observed)
    assert result.p_greater == pytest.approx(np.mean(np.asarray(null) >= observed - 1e-12))


def test_task_claims_follow_the_declared_primary_view():
    from advtransfer import claims as C
    from advtransfer import config as configuration
    from advtransfer.families.tasks import claims as family

    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
    block = config["tasks"]["shapes_tasks"]
    tasks = block["tasks"]
    rng = np.random.default_rng(0)
    base = rng.random((len(tasks), len(tasks)))

    def long(m, **extra):
        return pd.DataFrame([{"source": s, "target": t, "value": m[i, j], "tau1_tau2": m[i, j], "tau1": m[i, j],
                              **extra} for i, s in enumerate(tasks) for j, t in enumerate(tasks)])  # fmt: skip

    atm = pd.concat([long(base, eps=0.03), long(rng.random(base.shape), eps=0.06)], ignore_index=True)
    frames = {"atm": atm, "tau": long(base), "affinity": long(base + 0.1 * rng.random(base.shape))}
    declared = C.declarations(config["claims"]["tasks"], None)
    out = family.claims("x", block, frames, declared, {**config["reproduction"], "n_perm": 999})
    rows = out["claims"].set_index(["claim_id", "role"])
    primary = rows.loc[("tasks_agree", "primary")]
    assert primary["view"] == "matrix=atm, eps=0.03, normalisation=ranks" and primary["verdict"] == "reproduced"
    assert primary["p_value"] == pytest.approx(2 / 1000)  # the observed arrangement beats every random one
    assert family.view_name(declared["tasks_agree"]["primary"]) == "ATM eps 0.03"
    secondary = out["claims"][(out["claims"]["claim_id"] == "tasks_agree") & (out["claims"]["role"] == "secondary")]
    assert len(secondary) == len(declared["tasks_agree"]["secondary"])
    assert (secondary["p_adjusted"] >= secondary["p_value"]).all()


def test_zoo_entries_whose_model_does_not_fit_num_classes_name_the_key():
    """The zoo's rules across keys, checked before any job (the schema checks each key alone): a registry model
    needs num_classes, and num_classes makes a classifier (output: classes)."""
    from advtransfer import config as configuration
    from advtransfer.families.tasks import jobs as task_jobs

    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))
    block = config["tasks"]["taskonomy"]  # the old entry shape (package.module:function, no num_classes) passes
    assert task_jobs.config_problems(block, config) == []
    zoo = [dict(e) for e in block["zoo"]]
    zoo[0]["model"] = "torchvision:resnet18"
    zoo[1].update(model="small_cnn", num_classes=4)  # a dense_regression output
    zoo[5].update(model="torchvision:resnet18", num_classes=10)  # class_object: classes, as it should be
    problems = dict(task_jobs.config_problems({**block, "zoo": zoo}, config))
    assert list(problems) == ["zoo.0.num_classes", "zoo.1.output"]
    assert "'autoencoding'" in problems["zoo.0.num_classes"] and "give its num_classes" in problems["zoo.0.num_classes"]
    assert "output is classes, not 'dense_regression'" in problems["zoo.1.output"]


@pytest.mark.workflow
def test_a_user_zoo_runs_through_the_same_rules(tmp_path):
    """A zoo of user networks (module:function, one with local weights, and a model-registry classifier) on an
    imagefolder: ATM, tau matrix, trees and Figure 4, and no affinity (a zoo brings no labels)."""
    from PIL import Image
    from safetensors.torch import save_file

    from advtransfer.zoo import EXAMPLE_ZOO, example_regressor
    from tests.workflow_helpers import copy_workflow

    work = copy_workflow(tmp_path / "work")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                tmp_path / "images" / cls / f"{i}.png"
            )
    weights = tmp_path / "regressor.safetensors"
    save_file({k: v.contiguous() for k, v in example_regressor(seed=7).state_dict().items()}, str(weights))
    zoo = [dict(e) for e in EXAMPLE_ZOO]
    zoo[1]["weights"] = str(weights)
    zoo.append({"name": "cnn", "model": "small_cnn", "num_classes": 4, "kind": "semantic", "output": "classes"})
    entries = "".join(f"      - {{name: {e['name']}, model: '{e['model']}', kind: {e['kind']}, output: {e['output']}"
                      + (f", weights: '{e['weights']}'" if "weights" in e else "")
                      + (f", num_classes: {e['num_classes']}" if "num_classes" in e else "") + "}\n"
                      for e in zoo)  # fmt: skip
    (work / "zoo.yaml").write_text(
        "data: {root: data, mirrors: [], download: false}\n"
        "tasks:\n  zootasks:\n    zoo:\n" + entries
        + f"    images: {{dataset: 'imagefolder:{tmp_path / 'images'}', n_test: 6, image_size: 16}}\n"
        "    attack: {eps: [0.03], steps: 2, n_images: 6}\n"
        "    claims: {tasks_categories: {secondary: [{matrix: tau1_tau2}]}}\n"  # one eps: no eps 0.06 view
        "    tau: {n_images: 4, tol: 1.0e-3, max_iter: 10, batch_size: 4}\n"
        "    clustering: {ks: [2], n_perm: 10}\n"
    )  # fmt: skip
    snakemake(work, "--cores", "2", "--configfile", "zoo.yaml", "--config", "experiments=[zootasks]")
    out = work / "results" / "zootasks"
    for name in ("atm.csv", "tau_matrix.csv", "trees.csv", "table.md", "figure4.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "affinity.csv").exists() and not (out / "models").exists()
    atm = pd.read_csv(out / "atm.csv")
    assert set(atm["source"]) == {"classifier", "regressor", "segmenter", "cnn"}
    assert np.allclose(atm.groupby("target")["value"].sum(), 1.0)
    trees = pd.read_csv(out / "trees.csv")
    assert set(trees["view"]) == {"ATM eps 0.03", "tau1 (encoders)"}  # compared with the tau1 tau2 tree
    assert "tau1 tau2 (encoders)" in (out / "table.md").read_text()
    claims = pd.read_csv(work / "results" / "reproduction.csv")  # no knowledge-transfer claim without labels:
    assert set(claims[claims["experiment"] == "zootasks"]["claim_id"]) == {"tasks_categories"}  # the kinds only


def test_categories_test_min_p_is_the_designs_not_the_trees():
    """6 tasks, 3 kinds of 2: of the 6! relabellings, 3! x 2^3 = 48 keep the kinds' partition, so even a perfect
    tree reaches p = 48 / 720 at best (a design property); a tree that groups the kinds reaches it exactly, and
    one with lopsided clusters keeps that min p (its entropy is the finding, not the design's limit)."""
    from advtransfer.families.tasks.claims import categories_test

    kinds = ["a", "a", "b", "b", "c", "c"]
    settings = {"n_perm": 99, "perm_seed": 0, "alpha": 0.05}
    clustering = {"method": "average", "metric": "euclidean"}
    v = np.array([0.0, 0.1, 5.0, 5.1, 9.0, 9.1])
    grouped = np.exp(-np.abs(v[:, None] - v[None, :]))  # rows and columns alike within a kind
    result = categories_test(grouped, kinds, 3, clustering, settings)
    assert "all 720 relabellings" in result.test
    assert result.min_p == pytest.approx(48 / 720) and result.value == pytest.approx(0.0)
    assert result.p_less == pytest.approx(48 / 720)
    assert "needs more tasks per kind" in result.needed
    w = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 1000.0])
    lopsided = np.exp(-np.abs(w[:, None] - w[None, :]) / 100)
    other = categories_test(lopsided, kinds, 3, clustering, settings)
    assert other.min_p == pytest.approx(48 / 720) and other.value > 0
