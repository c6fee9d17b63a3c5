"""The end-of-run summary (advtransfer.run_summary): experiments, their figures and tables, verdict counts."""

from advtransfer import claims, run_summary
from advtransfer.io import atomic_path


def test_summary_lists_existing_figures_and_tables_and_counts_verdicts(tmp_path):
    (tmp_path / "results/a").mkdir(parents=True)
    for name in ("figure.png", "table.md", "summary.csv"):
        (tmp_path / "results/a" / name).write_text("x")
    with atomic_path(tmp_path / "results/reproduction.csv") as tmp:  # as the reproduction job writes it
        tmp.write_text(
            "experiment,claim_id,role,verdict\na,c1,primary,reproduced\na,c1,secondary,inconclusive\n"
            "a,c2,primary,inconclusive\nb,c3,primary,reproduced\nb,c4,primary,underpowered\n"
        )
    outputs = {"a": ["results/a/figure.png", "results/a/figure.pdf", "results/a/table.md", "results/a/summary.csv",
                     "results/a/missing.png"], "b": ["results/b/x.csv"]}  # fmt: skip
    text = run_summary.run_summary(["a", "b"], outputs, root=tmp_path)
    assert "  a" in text and "results/a/" in text and "figures: figure.png\n" in text
    assert "tables:  table.md, summary.csv" in text and "missing.png" not in text
    assert "results/reproduction.md (2 reproduced, 0 not reproduced, 1 inconclusive, 1 underpowered)" in text
    assert "make report" in text


def test_without_a_reproduction_file_there_are_no_counts(tmp_path):
    assert "Claims vs findings" not in run_summary.run_summary(["a"], {"a": []}, root=tmp_path)


def test_verdicts_are_the_claims_protocols():
    assert run_summary.VERDICTS == claims.VERDICTS


def test_a_reproduction_file_changed_after_its_job_is_not_counted(tmp_path):
    with atomic_path(tmp_path / "results/reproduction.csv") as tmp:
        tmp.write_text("experiment,claim_id,role,verdict\na,c1,primary,inconclusive\n")
    path = tmp_path / "results/reproduction.csv"
    path.write_text(path.read_text().replace("inconclusive", "reproduced"))
    text = run_summary.run_summary(["a"], {"a": []}, root=tmp_path)
    assert "Claims vs findings: not counted:" in text and "its content changed" in text
    assert "1 reproduced" not in text
