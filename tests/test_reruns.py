"""Partial reruns after edits: exactly the jobs that depend on a changed value or module rerun."""

from __future__ import annotations

import pytest

from tests.test_workflow import job_counts
from tests.workflow_helpers import TINY, snakemake

pytestmark = pytest.mark.workflow

# the finished tiny run's own configs and experiments (another experiment list would rerun the report)
CONFIGS = TINY[: TINY.index("--config")]
BOTH = TINY[TINY.index("--config") :]


@pytest.fixture(scope="module")
def done(tiny_run):
    """The finished tiny run (dry runs only here: every edit below is undone)."""
    return tiny_run


def planned(work, *extra: str) -> dict[str, int]:
    out = snakemake(work, "-n", "--quiet", "rules", *CONFIGS, *extra, *BOTH).stdout
    return {} if "Nothing to be done" in out else job_counts(out)


def override(work, name: str, text: str) -> tuple[str, ...]:
    """--configfile arguments with one more file on top of the tiny configs (not written into configs/)."""
    (work / name).write_text(text)
    return (*CONFIGS, name)


def planned_after_editing(work, module: str) -> dict[str, int]:
    """The jobs a dry run plans after appending a comment to advtransfer/<module>.py (edit undone after);
    ``module`` may be inside a subpackage ('data/domains')."""
    path = work / "advtransfer" / f"{module}.py"
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        return planned(work)
    finally:
        path.write_text(original)


def test_second_run_with_nothing_changed_runs_nothing(done):
    assert planned(done) == {}


def test_changing_pgd_eps_reruns_only_attack_and_what_follows(done):
    args = override(done, "eps.yaml", "scenarios: {tinydigits: {attack: {eps: 0.05}}}\n")
    out = snakemake(done, "-n", "--quiet", "rules", *args, *BOTH).stdout
    assert job_counts(out) == {
        "attack": 4 + 2, "metrics": 4 + 2,  # the scenario's sources and the model-selection zoo (its settings)
        "scenario_summary": 1, "scenario_figure": 1, "reproduction": 1, "all": 1,
        "interactions_summary": 1, "interactions_figure": 1,  # its view reads the scenario's tau
        "selection_summary": 1, "selection_figure": 1,
        "claims": 3,  # the scenario's (its block changed), and those reading the rerun interactions and selection
    }  # fmt: skip


def test_changing_training_epochs_reruns_training_and_downstream_only_in_that_scenario(done):
    args = override(done, "epochs.yaml", "scenarios: {tinydigits: {train: {epochs: 3}}}\n")
    out = snakemake(done, "-n", "--quiet", "rules", *args, *BOTH).stdout
    assert job_counts(out) == {
        "train": 4 + 1,  # 2 sources x 2 seeds + the reference
        "attack": 4,
        "metrics": 4 + 2,  # and the model-selection zoo's, against the retrained reference
        "probe": 4,
        "finetune": 4,
        "scenario_summary": 1,
        "scenario_figure": 1,
        "interactions": 4,  # the interactions view's profiles of the retrained sources
        "interactions_summary": 1,
        "interactions_figure": 1,
        "selection_scores": 4,  # the retrained sources' estimators
        "selection_summary": 1,
        "selection_figure": 1,
        "claims": 3,  # the scenario's (its block changed), the interactions' and the model selection's
        "reproduction": 1,
        "all": 1,
    }


def test_editing_a_library_module_reruns_the_jobs_that_import_it(done):
    counts = planned_after_editing(done, "metrics")
    # the metrics jobs (4 digits + 6 attribute + 6 robustness + 8 crossed evaluations) and the tasks' tau matrix
    # import advtransfer.metrics; so does the whole synthetic chain (advtransfer.synthetic imports it). Training,
    # attacks, probes and robustness evaluations do not.
    assert counts == {
        "metrics": 4 + 6 + 6 + 2 + 8,  # and the model-selection zoo's
        "scenario_summary": 2,
        "scenario_figure": 1,
        "robustness_summary": 1,
        "robustness_figure": 1,
        "attributes_summary": 1,
        "attributes_figure": 1,
        "task_tau": 1,
        "task_trees": 1,
        "task_figure": 1,
        "synthetic_data": 1,
        "synthetic_target": 1,
        "synthetic_sweep": 2,
        "synthetic_summary": 1,
        "synthetic_figure": 1,
        "interactions_summary": 1,  # its view reads the scenario summary
        "interactions_figure": 1,
        "selection_summary": 2,  # each reads its scenario's summary (and tinyselection the zoo's metrics)
        "selection_figure": 1,
        "added_value_summary": 1,  # it reads tinycrossedsel's scores
        "added_value_figure": 1,
        "claims": 8,  # every experiment's: each reads a table that was rebuilt
        "reproduction": 1,
        "all": 1,
    }
    assert planned(done) == {}  # restored: nothing to do again


def test_editing_a_plotting_module_reruns_only_figures(done):
    assert planned_after_editing(done, "plots") == {
        "synthetic_figure": 1, "scenario_figure": 1, "attributes_figure": 1, "task_figure": 1, "robustness_figure": 1,
        "interactions_figure": 1, "selection_figure": 1, "added_value_figure": 1, "all": 1,
    }  # fmt: skip


def test_editing_a_module_inside_a_subpackage_reruns_the_jobs_that_import_it(done):
    counts = planned_after_editing(done, "data/domains")
    # advtransfer.data (whose __init__ imports data.domains) is imported by the dataset, split and train
    # scripts, by attack, metrics, probe and finetune through scripts/_target.py, and by the tasks' scripts
    # through advtransfer.tasks; nothing synthetic uses it.
    assert counts == {
        "dataset": 2,  # digits and the shapes world
        # digits, the attributes' 3 sources and the identity target, the robustness block's shared source split
        # and its target, the crossed block's 4 sources and its target
        "split": 2 + 1 + 3 + 1 + 1 + 1 + 5,
        "train": 4 + 1 + 6 + 1 + 6 + 1 + 8 + 2,  # the crossed block: 8 sources, a reference per seed
        "attack": 4 + 6 + 6 + 2 + 8,  # + the model-selection zoo's evaluations, the crossed block's
        "metrics": 4 + 6 + 6 + 2 + 8,
        "probe": 4 + 6 + 2 + 8,
        "finetune": 4 + 2 + 8,
        "retrain": 18,
        "robust_eval": 6 + 18,
        "robustness_summary": 1,
        "robustness_figure": 1,
        "scenario_summary": 2,
        "scenario_figure": 1,
        "attributes_summary": 1,
        "attributes_figure": 1,
        "train_task": 3,
        "task_atm": 1,
        "task_tau": 1,
        "task_affinity": 1,
        "task_trees": 1,
        "task_figure": 1,
        "interactions": 6 + 6 + 4,  # every model the interactions block analyses, and its images
        "interactions_summary": 1,
        "interactions_figure": 1,
        "selection_scores": 4 + 2 + 8,  # every candidate's estimators read the target images
        "selection_summary": 2,
        "selection_figure": 1,
        "added_value_summary": 1,
        "added_value_figure": 1,
        "claims": 7,  # every experiment's but the synthetic one
        "reproduction": 1,
        "all": 1,
    }
    assert planned(done) == {}


def test_changing_the_certification_reruns_only_the_robustness_evaluations(done):
    args = override(done, "rs.yaml", "robustness: {tinyrobustness: {evaluation: {smoothing: {n: 60}}}}\n")
    out = snakemake(done, "-n", "--quiet", "rules", *args, *BOTH).stdout
    # 6 sources on the source task + 6 x 3 retrained models on the target task; no training, no retraining
    assert job_counts(out) == {
        "robust_eval": 6 + 18, "robustness_summary": 1, "robustness_figure": 1, "claims": 1, "reproduction": 1,
        "all": 1,
    }  # fmt: skip


def test_editing_the_training_schemes_reruns_only_the_models_trained_with_them(done):
    counts = planned_after_editing(done, "robust")
    # advtransfer/robust.py holds pgd_at and rrm (not ce): their 4 sources retrain, and every adv_finetune
    # (objective pgd_at) retrains; the ce sources, the reference and the other families stay
    assert counts == {
        "train": 4,
        "attack": 4,
        "metrics": 4,
        "retrain": 4 * 3 + 2,  # the 4 sources' three retrainings, and the ce sources' adv_finetune
        "robust_eval": 4 + 4 * 3 + 2,
        "robustness_summary": 1,
        "robustness_figure": 1,
        "interactions": 4 + 4,  # the 4 sources and their fine-tuned models (the block analyses finetune)
        "interactions_summary": 1,
        "interactions_figure": 1,
        "claims": 2,  # the robustness and the interactions experiments'
        "reproduction": 1,
        "all": 1,
    }
