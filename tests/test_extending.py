"""The open platform: docs/extending.md's worked example as written (an imagefolder: data set with a
torchvision: model), timm: and package.module:function models with features at a named layer, and the
config checks of data-set, model and objective names against the registries."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from advtransfer.registry import MODELS, OBJECTIVES
from tests.test_workflow import job_counts
from tests.workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

DOC = (REPO / "docs" / "extending.md").read_text()

# Two more scenarios on the example's images: a timm model and a factory by import path, each with its
# features at a named layer (the metrics and the probe then work on that layer).
MORE_MODELS = """
scenarios:
  shapestimm:
    source_dataset: imagefolder:my_images
    sources: {outside0: [circle, square], outside100: [triangle, cross]}
    target: {dataset: imagefolder:my_images, classes: [circle, square], domain: identity}
    split: {source_pool_fraction: 0.5, val_fraction: 0.25, seed: 0}
    model: {name: "timm:resnet10t", features: layer3}
    image_size: 32
    channels: 3
    seeds: [0]
    train: {epochs: 1, batch_size: 8, lr: 0.01}
    attack: {eps: 0.03, steps: 2, step_size: 0.01, n_images: 8}
    metrics: {tol: 1.0e-3, max_iter: 20, batch_size: 8}
    probe: {max_iter: 50, shots: [2, 5], draws: 2}   # k-shot probes need k labelled images per class
    finetune: {epochs: 1, batch_size: 8}
  shapesfactory:
    source_dataset: imagefolder:my_images
    sources: {outside0: [circle, square], outside100: [triangle, cross]}
    target: {dataset: imagefolder:my_images, classes: [circle, square]}
    split: {source_pool_fraction: 0.5, val_fraction: 0.25, seed: 0}
    model: {name: "tests.fixtures_models:tiny_classifier", features: "1"}
    image_size: 16
    channels: 1
    seeds: [0]
    train: {epochs: 1, batch_size: 8, lr: 0.01}
    attack: {eps: 0.03, steps: 2, step_size: 0.01, n_images: 8}
    metrics: {tol: 1.0e-3, max_iter: 20, batch_size: 8}
    probe: {max_iter: 50, shots: [2, 5], draws: 2}   # k-shot probes need k labelled images per class
    finetune: {epochs: 1, batch_size: 8}
"""


def doc_block(language: str, first_line: str) -> str:
    """The fenced ``language`` block of docs/extending.md whose first line is ``first_line``."""
    for block in re.findall(rf"```{language}\n(.*?)```", DOC, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/extending.md has no {language} block starting with {first_line!r}")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A copy of the workflow after running the worked example, plus the timm and factory scenarios."""
    work = copy_workflow(tmp_path_factory.mktemp("extending"))
    (work / "tests" / "fixtures_models.py").write_text((REPO / "tests" / "fixtures_models.py").read_text())
    (work / "make_images.py").write_text(doc_block("python", "# make_images.py"))
    (work / "my_scenario.yaml").write_text(doc_block("yaml", "experiments: [myshapes]"))
    (work / "more.yaml").write_text(MORE_MODELS)
    subprocess.run([sys.executable, "make_images.py"], cwd=work, check=True)
    command = doc_block("bash", ".venv/bin/python make_images.py").splitlines()[1].split()
    assert command[1:] == ["--cores", "2", "--configfile", "my_scenario.yaml"], command
    snakemake(work, *command[1:], "more.yaml", "--config", "experiments=[myshapes,shapestimm,shapesfactory]")
    return work


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["myshapes", "shapestimm", "shapesfactory"])
def test_scenarios_on_an_image_folder_run_end_to_end(example, scenario):
    out = example / "results" / scenario
    for name in ("summary.csv", "correlations.csv", "table.md", "figure3.png"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.source) == {"outside0", "outside100"}
    assert summary.outside_fraction.tolist() == [0.0, 1.0]
    for column in ("tau1", "tau2", "alpha", "probe_accuracy", "reference_adv_accuracy"):
        assert summary[column].between(0, 1).all(), column
    assert summary.n_images.eq(8).all()


@pytest.mark.slow
def test_named_feature_layer_is_what_the_probe_sees(example):
    """The factory's features are its module '1' (the ReLU: 4 channels x 16 x 16, flattened), not the 16
    pooled units its final Linear reads: the probe reports the dimension of the features it fitted."""
    summary = pd.read_csv(example / "results" / "shapesfactory" / "summary.csv")
    assert summary.feature_dim.eq(4 * 16 * 16).all()


def _scenario(**changes) -> str:
    block = {
        "source_dataset": "digits",
        "sources": "{a: ['0', '1']}",
        "target": "{dataset: digits, classes: ['0', '1']}",
        "split": "{source_pool_fraction: 0.5}",
        "model": "small_cnn",
        "image_size": "8",
        "channels": "1",
        "seeds": "[0]",
        "train": "{epochs: 1, batch_size: 8, lr: 0.1}",
        "attack": "{eps: 0.1, steps: 1, step_size: 0.1}",
        "metrics": "{}",
        "probe": "{}",
        **changes,
    }
    lines = "".join(f"    {key}: {value}\n" for key, value in block.items())
    return f"experiments: [mine]\nscenarios:\n  mine:\n{lines}"


@pytest.mark.parametrize(
    "model", sorted(MODELS) + ["torchvision:resnet18", "{name: 'timm:resnet10t', features: layer3}"]
)
def test_schema_accepts_every_registered_model_and_the_open_forms(tmp_path, model):
    (tmp_path / "ok.yaml").write_text(_scenario(model=model))
    out = snakemake(REPO, "-n", "--quiet", "rules", "--configfile", str(tmp_path / "ok.yaml")).stdout
    assert "train" in out


@pytest.mark.parametrize(
    ("change", "key", "choices"),
    [
        ({"source_dataset": "mnist"}, "scenarios.mine.source_dataset", "digits"),
        ({"target": "{dataset: svhn, classes: [a, b]}"}, "scenarios.mine.target.dataset", "fashion_mnist"),
        ({"model": "resnet999"}, "scenarios.mine.model", "small_cnn"),
        ({"model": "{name: vgg_tiny, weights: w.safetensors}"}, "scenarios.mine.model", "resnet18_cifar"),
        ({"objective": "hinge"}, "scenarios.mine.objective", ", ".join(sorted(OBJECTIVES))),
    ],
)
def test_unknown_name_stops_before_any_job_naming_the_key_and_the_choices(tmp_path, change, key, choices):
    (tmp_path / "bad.yaml").write_text(_scenario(**change))
    proc = snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config key {key}" in message and choices in message, message
    assert "Job stats" not in message


# ------------------------------------------------------------------------------- a family of one's own
HUBS = ("Snakefile", "rules/common.smk", "rules/networks.smk", "rules/reproduction.smk", "advtransfer/reproduction.py",
        "advtransfer/run_summary.py", "advtransfer/claims.py", "advtransfer/calibration.py", "scripts/claims.py",
        "scripts/reproduction.py")  # fmt: skip


def test_the_shared_hubs_name_no_family():
    """The workflow's hubs reach every family through the table of families (advtransfer/families/__init__.py)."""
    from advtransfer.families import BUILTIN

    words = {f.name for f in BUILTIN} | {f.key for f in BUILTIN} | {f.wildcard for f in BUILTIN if f.wildcard}
    words |= {"scenario", "attribute", "robust", "interaction", "selection", "synthetic", "digits", "shapes"}
    for hub in HUBS:
        text = (REPO / hub).read_text().lower()
        found = sorted(w for w in words if re.search(rf"\b{w}", text))
        assert not found, f"{hub} names {found}"


@pytest.mark.slow
def test_a_family_of_ones_own_runs_end_to_end_without_editing_a_shared_file(tmp_path):
    """tests/toy_family is a whole family (jobs and claims modules, rules file, schema block, captions) registered
    by config alone, as docs/extending.md describes: its claim reaches results/reproduction.md through the one
    claims protocol and its figure the HTML report."""
    import shutil

    work = copy_workflow(tmp_path / "work")
    shutil.copytree(REPO / "tests" / "toy_family", work / "tests" / "toy_family")
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    snakemake(work, "--cores", "1", "--configfile", "tests/toy_family/config.yaml")
    assert all(p.read_bytes() == data for p, data in before.items())  # no file of the workflow was changed
    md = (work / "results" / "reproduction.md").read_text()
    assert "| mytoy | the toy score ranks the toy outcome | the toy paper, Figure 1 |" in md
    assert "**reproduced**" in md.split("## Claims")[1].split("##")[0]
    claims = pd.read_csv(work / "results" / "mytoy" / "claims.csv")
    assert claims["verdict"].tolist() == ["reproduced"] and claims["p_value"].iloc[0] < 0.025
    snakemake(work, "--report", "report.html", "--configfile", "tests/toy_family/config.yaml")
    html = (work / "report.html").read_text()
    assert "Toy family mytoy: the toy outcome against the toy score" in html and "toy.png" in html
    # the family's own checks run like a built-in family's: an empty seed list names the key
    (work / "bad.yaml").write_text("toy: {mytoy: {seeds: []}}\n")
    proc = snakemake(work, "-n", "--configfile", "tests/toy_family/config.yaml", "bad.yaml", check=False)
    assert proc.returncode != 0 and "config key toy.mytoy.seeds" in proc.stdout + proc.stderr


def test_a_family_entry_is_checked_before_anything_runs(tmp_path):
    """Every field of a family entry is used: its files must exist, its package import and the families it
    requires come before it; each problem names the entry's key."""
    from advtransfer.families import BUILTIN, from_config, table_problems

    assert list(table_problems(BUILTIN, REPO)) == []
    entry = {"name": "mine", "module": "no_such_package", "rules": "rules/mine.smk", "schema": "mine.schema.yaml",
             "captions": "report/mine", "requires": ["scenarios", "later"]}  # fmt: skip
    problems = dict(table_problems((*BUILTIN, from_config(entry)), REPO))
    assert sorted(problems) == ["families.mine.captions", "families.mine.module", "families.mine.requires",
                                "families.mine.rules", "families.mine.schema"]  # fmt: skip
    assert "'later' is not a family listed before 'mine'" in problems["families.mine.requires"]
    assert "does not exist" in problems["families.mine.rules"]


@pytest.mark.slow
def test_adding_changing_or_removing_an_image_reruns_what_reads_the_folder(example):
    """The folder's images are the `dataset` job's inputs and its marker records their digest: each change
    reruns the data set and everything downstream of it, and nothing else."""
    args = ("-n", "--quiet", "rules", "--configfile", "my_scenario.yaml", "more.yaml",
            "--config", "experiments=[myshapes,shapestimm,shapesfactory]")  # fmt: skip

    def planned() -> dict[str, int]:
        out = snakemake(example, *args).stdout
        return {} if "Nothing to be done" in out else job_counts(out)

    assert planned() == {}
    folder = example / "my_images" / "circle"
    first = sorted(folder.iterdir())[0]
    original = first.read_bytes()
    added = folder / "added.png"
    try:
        added.write_bytes(original)  # a new image
        jobs = planned()
        assert jobs.get("dataset") == 1 and jobs.get("split", 0) >= 1 and jobs.get("train", 0) >= 1, jobs
        added.unlink()
        assert planned() == {}  # the folder as it was
        first.unlink()  # an image removed
        assert planned().get("dataset") == 1
        first.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one image changed (and newer)
        assert planned().get("dataset") == 1
    finally:
        added.unlink(missing_ok=True)
        first.write_bytes(original)
        os.utime(first, (0, 0))  # older than the marker again, as before the test
