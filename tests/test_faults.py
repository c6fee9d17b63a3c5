"""Fault injection: every kind of bad input or tampered result either reruns correctly or stops naming the
culprit; nothing exits 0 with wrong numbers. Config values (every hole a careless user finds), config files
(duplicated keys, YAML errors), results changed behind the workflow's back (emptied, edited with the
modification time kept, NaN), inputs the workflow must track (local weights). Kill-and-resume is in
tests/test_reliability.py, image folders in tests/test_extending.py, refused pickles in tests/test_models.py."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil

import pandas as pd
import pytest
import torch

from advtransfer import claims, families
from advtransfer import config as configuration
from advtransfer.io import (
    check_digest,
    digest_path,
    json_scalars,
    load_csv,
    load_json,
    load_tensors,
    save_csv,
    save_json,
    save_tensors,
)
from tests.workflow_helpers import REPO, TINY, snakemake

CONFIGS = TINY[: TINY.index("--config")]
EXPERIMENTS = TINY[TINY.index("--config") :]
BASE = configuration.load([REPO / "config.yaml", REPO / "tests/configs/tiny_digits.yaml",
                           REPO / "tests/configs/tiny_attributes.yaml"])  # fmt: skip


def config_message(config: dict) -> str:
    """The message the workflow stops with for ``config`` (rules/common.smk's checks, in their order)."""
    try:
        configuration.validate(config)
    except ValueError as err:
        return str(err)
    table = families.table(config)
    families.normalise(config, table)
    problems = [*families.config_problems(config, table), *claims.family_claims_problems(config, table)]
    assert problems, "accepted"
    return "\n".join(f"config key {key}: {problem}" for key, problem in problems)


DIGITS = ("scenarios", "tinydigits")


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [
        ((*DIGITS, "model"), None, "scenarios.tinydigits.model: a model name"),
        ((*DIGITS, "model"), ["small_cnn"], "scenarios.tinydigits.model: a model name"),
        ((*DIGITS, "model"), 3, "scenarios.tinydigits.model: a model name"),
        ((*DIGITS, "model"), {"name": "small_cnn", "weigths": "w.pt"},
         "model: Additional properties are not allowed ('weigths'"),
        (("attributes", "tinyattributes", "reference_train"), "fast",
         "attributes.tinyattributes.reference_train: training of"),
        ((*DIGITS, "attack", "eps"), math.nan, "scenarios.tinydigits.attack.eps: nan is not a finite number"),
        ((*DIGITS, "train", "lr"), math.inf, "scenarios.tinydigits.train.lr: inf is not a finite number"),
        ((*DIGITS, "split", "source_pool_fraction"), math.nan, "split.source_pool_fraction: nan is not a finite"),
        ((*DIGITS, "probe", "l2"), -math.inf, "scenarios.tinydigits.probe.l2: -inf is not a finite number"),
        ((*DIGITS, "seeds"), [0, 10**20], "scenarios.tinydigits.seeds.1: 100000000000000000000 is too large"),
        ((*DIGITS, "seeds"), [2**32], "scenarios.tinydigits.seeds.0: 4294967296 is greater than the maximum"),
        ((*DIGITS, "reference_trian"), {},
         "scenarios.tinydigits: Additional properties are not allowed ('reference_trian'"),
        ((*DIGITS, "source_dataset"), "imagefolder:no/such/folder",
         "scenarios.tinydigits.source_dataset: 'imagefolder:"),
        (("families",), "my_family", "config key families: 'my_family' is not of type 'array'"),
        (("families",), [{"name": "mine"}], "config key families[0]: 'module' is a required property"),
        ((*DIGITS, "claims"), {"closer_more_transferable": {"primary": {"metirc": "tau1"}}},
         "closer_more_transferable.primary: unknown view key 'metirc'"),
    ],
)  # fmt: skip
def test_every_bad_config_value_stops_with_a_short_message_naming_its_key(where, value, named):
    config = copy.deepcopy(BASE)
    node = config
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    message = config_message(config)
    assert named in message, message
    assert len(message) < 400 and "Traceback" not in message, message  # the culprit, not the schema


def test_an_unknown_training_objective_parameter_is_refused_before_any_job():
    """Read from the objective's source (no torch at start-up); before, it was a TypeError inside training."""
    config = configuration.load([REPO / "config.yaml"])
    config["robustness"]["digits_robustness"]["schemes"]["pgd_at"]["params"]["step"] = 3
    message = config_message(config)
    assert message.startswith(
        "config key robustness.digits_robustness.schemes.pgd_at.params: 'step' is not a "
        "parameter of objective 'pgd_at'; it takes eps, steps, step_size, step_factor"
    ), message


def test_a_duplicated_key_and_a_yaml_error_name_the_file_and_line(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("scenarios:\n  tinydigits:\n    sources:\n      outside0: ['0']\n      outside0: ['1']\n")
    with pytest.raises(ValueError, match=r"twice.yaml, line 5, .*'outside0' is given twice .*first on line 4"):
        configuration.read_yaml(twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("device: cpu\nscenarios: {tinydigits: {seeds: [0, 1}\n")
    with pytest.raises(ValueError, match=r"broken.yaml, line 2, column \d+: not valid YAML"):
        configuration.read_yaml(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- device: cpu\n")
    with pytest.raises(ValueError, match=r"list.yaml: a config file holds a mapping"):
        configuration.load([listed])


# --------------------------------------------------------------------------- results checked when read
def test_every_result_reader_refuses_content_its_writer_did_not_record(tmp_path):
    """A result emptied, edited with its modification time kept, or written by hand is named on read."""
    writers = {
        "r.json": (lambda p: save_json(p, {"tau1": 0.5}), load_json),
        "r.safetensors": (lambda p: save_tensors(p, {"x": torch.ones(3)}), load_tensors),
        "r.csv": (lambda p: save_csv(p, pd.DataFrame({"a": [1.0]})), load_csv),
    }
    for name, (write, read) in writers.items():
        path = tmp_path / name
        write(path)
        read(path)  # as written: accepted
        stat = path.stat()
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1  # one bit, mtime kept
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(ValueError, match=rf"{name}: its content changed after the job that wrote it"):
            read(path)
        path.write_text("{}")
        with pytest.raises(ValueError, match=rf"{name}: its content changed.*snakemake --cores 1 --force"):
            read(path)
        digest_path(path).unlink()
        with pytest.raises(ValueError, match=rf"{name}: no content digest recorded"):
            read(path)
    write, _ = writers["r.json"]
    write(tmp_path / "again.json")
    check_digest(tmp_path / "again.json")  # rewriting records the new digest


def test_a_result_with_a_missing_or_non_finite_value_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "metrics.json"
    save_json(path, {"tau1": 0.5, "tau2": float("nan"), "runs": [1.0, float("nan")]})
    with pytest.raises(ValueError, match=r"metrics.json: tau2 = nan \(not finite\)"):
        json_scalars(path)
    save_json(path, {"tau1": 0.5})
    with pytest.raises(ValueError, match=r"metrics.json: missing tau2 \(has tau1\)"):
        json_scalars(path, ("tau1", "tau2"))
    assert json_scalars(path, ("tau1",)) == {"tau1": 0.5}


# ------------------------------------------------------------------ the same faults in a finished run


@pytest.fixture
def finished(tiny_run, tmp_path):
    """A private copy of the finished tiny run (results, Snakemake's records, modification times kept)."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    return work


def run(work, *extra: str, check: bool = False):
    return snakemake(work, "--cores", "1", *CONFIGS, *extra, *EXPERIMENTS, check=check)


@pytest.mark.workflow
def test_an_emptied_result_stops_the_job_that_reads_it_naming_the_file(tiny_run, finished):
    metrics = finished / "results" / "tinydigits" / "metrics" / "outside0_seed0.json"
    metrics.write_text("{}\n")  # newer: Snakemake reruns what reads it
    proc = run(finished)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "results/tinydigits/metrics/outside0_seed0.json: its content changed" in said, said[-3000:]
    assert not (finished / "results" / "tinydigits" / "summary.csv").exists()  # nothing half-trusted left
    # the message's advice, then the usual command: the same numbers as the untouched run (timings aside)
    rewrite = "results/tinydigits/metrics/outside0_seed0.json"
    assert f"snakemake --cores 1 --force {rewrite}" in said
    snakemake(finished, "--cores", "1", "--force", rewrite, *CONFIGS, *EXPERIMENTS)
    run(finished, check=True)
    before, after = (load_csv(w / "results" / "tinydigits" / "summary.csv") for w in (tiny_run, finished))
    timings = [c for c in before if c.endswith("seconds")]
    pd.testing.assert_frame_equal(before.drop(columns=timings), after.drop(columns=timings))


@pytest.mark.workflow
def test_a_result_corrupted_with_its_time_kept_is_named_when_read(finished):
    probe = finished / "results" / "tinydigits" / "probes" / "outside100_seed1.json"
    stat = probe.stat()
    data = json.loads(probe.read_text())
    data["probe_accuracy"] = 0.99
    probe.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.utime(probe, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "Nothing to be done" in run(finished, "-n").stdout  # invisible to Snakemake's times...
    proc = run(finished, "--forcerun", "scenario_summary")  # ...but named by the first job that reads it
    assert proc.returncode != 0
    assert "results/tinydigits/probes/outside100_seed1.json: its content changed" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_local_weights_are_an_input_of_the_models_trained_from_them(finished):
    """Replacing a scenario's `model.weights` file retrains (only time is compared here, so the new config
    value itself triggers nothing)."""
    weights = finished / "w.safetensors"
    weights.write_bytes(b"any")
    (finished / "weights.yaml").write_text(
        "scenarios: {tinydigits: {model: {name: small_cnn, weights: w.safetensors}}}\n"
    )
    dry = ("-n", "--quiet", "rules", "--rerun-triggers", "mtime")
    planned = snakemake(finished, *dry, *CONFIGS, "weights.yaml", *EXPERIMENTS).stdout
    assert "train" in planned, planned
    os.utime(weights, (0, 0))  # older than every model: nothing to retrain
    planned = snakemake(finished, *dry, *CONFIGS, "weights.yaml", *EXPERIMENTS).stdout
    assert "Nothing to be done" in planned, planned


@pytest.mark.workflow
def test_a_duplicated_key_or_a_yaml_error_stops_the_workflow_naming_file_and_line(finished):
    (finished / "twice.yaml").write_text("scenarios:\n  tinydigits:\n    seeds: [0]\n    seeds: [0, 1]\n")
    proc = snakemake(finished, "-n", *CONFIGS, "twice.yaml", *EXPERIMENTS, check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "twice.yaml, line 4" in said and "given twice" in said, said
    config = finished / "config.yaml"
    config.write_text(config.read_text() + "\nbroken: [\n")
    proc = snakemake(finished, "-n", *CONFIGS, *EXPERIMENTS, check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config.yaml, line" in said and "not valid YAML" in said, said
