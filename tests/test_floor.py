"""The floor benchmark's arithmetic (benchmarks/floor.py, issue 28): Snakemake's job records of a finished run,
a script's imports, and the floor report on hand-made jobs. No timing assertions."""

from __future__ import annotations

import pytest

from benchmarks import floor
from tests.workflow_helpers import REPO


def test_floor_report_by_hand():
    jobs = [{"rule": "train", "start": 0.0, "end": 5.0, "wall": 5.0},
            {"rule": "train", "start": 0.0, "end": 3.0, "wall": 3.0},
            {"rule": "split", "start": 5.0, "end": 6.0, "wall": 1.0}]  # fmt: skip
    report = floor.floor_report(jobs, {"train": 2.0, "split": 1.5}, cores=2)
    # train: start-up 2 + 2, work 3 + 1; split: start-up capped at its wall (1), work 0
    assert report["rules"]["train"] == {"jobs": 2, "startup": 4.0, "work": 4.0}
    assert report["rules"]["split"] == {"jobs": 1, "startup": 1.0, "work": 0.0}
    assert report["work"] == 4.0 and report["floor"] == 2.0 and report["wall"] == 6.0
    assert report["wall_over_floor"] == pytest.approx(3.0)


def test_the_benchmarked_run_copies_the_whole_workflow():
    from benchmarks import main_job
    from tests.workflow_helpers import COPIED

    assert set(COPIED) - {"tests/configs"} <= set(main_job.COPIED)


def test_the_start_up_probes_run():
    modules = floor.script_imports(REPO / "scripts" / "split.py")
    for probe in (floor.startup_seconds, floor.served_startup_seconds):
        seconds = probe(modules, repeats=1)
        assert 0 < seconds < float("inf")


def test_a_job_with_two_outputs_is_one_record(tmp_path):
    import base64
    import json

    folder = tmp_path / ".snakemake" / "metadata"
    folder.mkdir(parents=True)
    records = {"m.json": (0.0002, 5.0, 1), "m.safetensors": (0.0001, 5.0, 1), "other.json": (5.0, 6.0, 2)}
    for output, (start, end, job_hash) in records.items():
        name = base64.b64encode(output.encode()).decode()
        (folder / name).write_text(json.dumps({"rule": "train", "job_hash": job_hash, "starttime": start,
                                               "endtime": end, "code": '"../scripts/train.py"'}))  # fmt: skip
    jobs = sorted(floor.job_records(tmp_path), key=lambda j: j["start"])
    assert [(j["start"], j["end"]) for j in jobs] == [(0.0001, 5.0), (5.0, 6.0)]
    assert jobs[0]["wall"] == pytest.approx(4.9999) and jobs[0]["script"] == "../scripts/train.py"


def test_script_imports_follow_the_preamble():
    modules = floor.script_imports(REPO / "scripts" / "attack.py")
    assert "torch" in modules and "advtransfer.attacks" in modules and "advtransfer.runtime" in modules
    assert "_job" not in modules
    modules = floor.script_imports(REPO / "scripts" / "task_tau.py")  # through the helper _tasks
    assert "_tasks" not in modules and "advtransfer.tasks" in modules and "advtransfer.runtime" in modules


@pytest.mark.workflow
def test_job_records_of_the_tiny_run_match_its_benchmark_files(tiny_run):
    jobs = floor.job_records(tiny_run)
    benchmarks = list((tiny_run / "results").glob("**/benchmarks/*.tsv"))
    # every job with a benchmark file has a record; rule `all` and the like have neither
    assert len(jobs) >= len(benchmarks) > 50
    assert all(j["end"] >= j["start"] for j in jobs)
    train = [j for j in jobs if j["rule"] == "train"]
    assert train and all(j["script"] == "../scripts/train.py" for j in train)
