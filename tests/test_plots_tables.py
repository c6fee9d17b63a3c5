"""Figure 3 and the scenario tables (Section 4.2) render from a synthetic per-(source, seed) summary."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from advtransfer.families.scenarios.figures import FIGURE3_BAR_METRICS, FIGURE3_SCATTER_METRICS, figure3
from advtransfer.families.scenarios.tables import scenario_table
from advtransfer.plots import save_figure
from advtransfer.stats import rank_correlations
from advtransfer.tables import TABLE_COLUMNS, write_table

METRICS = ["tau1", "tau2", "tau1_tau2", "alpha", "cross_adv_loss"]
SOURCES = ["animals0", "animals25", "animals50", "animals75", "animals100"]  # by name: 0, 100, 25, 50, 75


def summary_frame(n_seeds: int, seed: int = 0) -> pd.DataFrame:
    """The per-scenario summary's columns, one row per (source, seed), rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        for name, frac in zip(SOURCES, [0.0, 0.25, 0.5, 0.75, 1.0]):
            t = float(np.clip(0.8 - 0.5 * frac + rng.normal(0, 0.05), 0, 1))
            tau2 = float(np.clip(0.9 * t + rng.normal(0, 0.05), 0, 1))
            rows.append(dict(
                scenario="cifar10_stl10", source=name, seed=s, source_classes="cat|dog|airplane",
                outside_fraction=frac, source_val_accuracy=0.9, tau1=t, tau2=tau2, tau1_tau2=t * tau2,
                alpha=float(np.clip(t - 0.2, 0, 1)), cross_adv_loss=3 * t + rng.normal(0, 0.2),
                tau1_logits=0.9 * t, tau2_logits=0.8 * tau2, alpha_logits=float(np.clip(t - 0.1, 0, 1)),
                reference_adv_accuracy=0.3, reference_clean_accuracy=0.9,
                probe_accuracy=0.5 + 0.4 * t + rng.normal(0, 0.03), probe_cross_entropy=1 - t,
                lambda_s=0.5, lambda_t=0.4,
            ))  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def three_seeds():
    summary = summary_frame(3)
    return summary, rank_correlations(summary, METRICS, n_boot=200)


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def panel(fig, label: str):
    """The axes figure3 labels ``label`` ('bars:<column>', 'scatter:<metric>', 'key')."""
    (ax,) = [ax for ax in fig.axes if ax.get_label() == label]
    return ax


# --------------------------------------------------------------------------------------------- figure


def test_figure3_renders_and_saves_png_and_pdf(three_seeds, tmp_path):
    summary, correlations = three_seeds
    fig = figure3(summary, correlations, "CIFAR-10 to STL-10")
    save_figure(fig, tmp_path / "fig3.png", tmp_path / "fig3.pdf")
    assert (tmp_path / "fig3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "fig3.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig3.pdf", "fig3.png"]  # no temporary files left
    assert "CIFAR-10 to STL-10" in fig.get_suptitle() and "3 seeds" in fig.get_suptitle()


def test_figure3_orders_sources_by_outside_fraction_and_labels_them(three_seeds):
    summary, correlations = three_seeds
    fig = figure3(summary, correlations, "x")
    for column in [*FIGURE3_BAR_METRICS, "probe_accuracy"]:
        bars = panel(fig, f"bars:{column}")
        labels = [t.get_text() for t in bars.get_xticklabels()]
        assert [label.split(" (")[0] for label in labels] == SOURCES
        assert labels[1].endswith("(25%)")
        assert bars.get_ylabel() and bars.get_title().startswith("(a)")
    assert "knowledge transfer" in panel(fig, "bars:probe_accuracy").get_title()
    key = panel(fig, "key").get_legend()
    text = "\n".join(t.get_text() for t in key.get_texts()) + key.get_title().get_text()
    for what in ("mean over 3 seeds", "min to max", "single seeds", "seed 0", "animals25 (25% outside)", "colour"):
        assert what in text, what


def test_figure3_every_quantity_fills_its_own_axis():
    """tau1 tau2 (a product of two small values) and every other quantity: the tallest bar spans at least half
    of its panel's y axis (the old shared 0-1 axis drew tau1 tau2 at 2% of its height), and no two quantities'
    panels share a y axis."""
    summary = summary_frame(3).assign(tau1_tau2=lambda f: 0.02 * f["tau1_tau2"])  # values around 0.002-0.01
    fig = figure3(summary, rank_correlations(summary, METRICS, n_boot=50), "x")
    panels = [panel(fig, f"bars:{c}") for c in [*FIGURE3_BAR_METRICS, "probe_accuracy"]]
    for ax in panels:
        heights = [patch.get_height() for patch in ax.patches]
        low, high = ax.get_ylim()
        assert len(heights) == len(SOURCES) and max(heights) / (high - low) >= 0.5, ax.get_label()
        assert ax.get_ylabel(), ax.get_label()
    assert all(len(ax.get_shared_y_axes().get_siblings(ax)) == 1 for ax in panels)
    outcome = panel(fig, "bars:probe_accuracy")
    assert all(patch.get_hatch() for patch in outcome.patches) and outcome.get_ylim()[1] >= 1.0


def test_figure3_scatter_panels_show_one_point_per_source_and_seed_and_the_correlations(three_seeds):
    summary, correlations = three_seeds
    fig = figure3(summary, correlations, "x")
    scatters = [panel(fig, f"scatter:{metric}") for metric in FIGURE3_SCATTER_METRICS]
    for ax, metric in zip(scatters, FIGURE3_SCATTER_METRICS):
        points = np.concatenate([c.get_offsets() for c in ax.collections])
        assert len(points) == len(summary)
        assert sorted(points[:, 1]) == pytest.approx(sorted(summary["probe_accuracy"]))
        assert sorted(points[:, 0]) == pytest.approx(sorted(summary[metric]))
        row = correlations.set_index("metric").loc[metric]
        assert f"{row.spearman:+.2f} [{row.spearman_lo:+.2f}, {row.spearman_hi:+.2f}]" in ax.get_title()
        assert ax.get_xlabel()
    assert "probe accuracy" in scatters[0].get_ylabel()


def test_figure3_with_one_seed_and_nan_correlations(tmp_path):
    summary = summary_frame(1).assign(alpha=0.25)  # a constant metric: undefined correlation
    correlations = rank_correlations(summary, METRICS, n_boot=50)
    assert np.isnan(correlations.set_index("metric").loc["alpha", "spearman"])
    fig = figure3(summary, correlations, "one seed")
    save_figure(fig, tmp_path / "a.png", tmp_path / "a.pdf")
    text = "\n".join(titles(fig))
    assert "undefined" in text and "no interval: 1 seed" in text and "nan" not in text.lower()
    assert "one seed" in fig.get_suptitle()


def test_figure3_with_missing_correlation_rows():
    summary = summary_frame(2)
    correlations = rank_correlations(summary, ["tau1"], n_boot=20)
    assert "not computed" in "\n".join(titles(figure3(summary, correlations, "x")))


# --------------------------------------------------------------------------------------------- tables


def test_markdown_table_has_every_source_metric_and_correlation_in_order(three_seeds):
    summary, correlations = three_seeds
    md = scenario_table(summary, correlations)["md"]
    for name in SOURCES:
        assert re.search(rf"^\| {name} \|", md, flags=re.M), name
    for column, _, _ in TABLE_COLUMNS:
        assert (column in md) == (column in summary.columns), column
    positions = [md.index(f"| {name} |") for name in SOURCES]
    assert positions == sorted(positions)  # ordered by outside fraction, not by name
    group = summary[summary["source"] == "animals50"]["tau1"]
    assert f"{group.mean():.3f} ± {group.std():.3f}" in md
    row = correlations.set_index("metric").loc["tau2"]
    assert f"{row.spearman:+.2f} [{row.spearman_lo:+.2f}, {row.spearman_hi:+.2f}]" in md
    # well-formed: every line of a table has as many cells as its header
    for block in [b for b in md.split("\n\n") if b.startswith("|")]:
        counts = {line.count(" | ") for line in block.splitlines() if not line.startswith("|:") and "---" not in line}
        assert len(counts) == 1


def test_latex_table_is_well_formed(three_seeds):
    summary, correlations = three_seeds
    tex = scenario_table(summary, correlations)["tex"]
    code = [line for line in tex.splitlines() if not line.startswith("%")]
    assert code[0].startswith(r"\begin{tabular}")
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 2
    for block in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, flags=re.S):
        spec, body = block
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        assert rows and all(line.count("&") == len(spec) - 1 for line in rows)
    assert "probe\\_accuracy" in tex and r"\tau_1" in tex and r"\pm" in tex
    assert re.search(r"(?<!\\)%", "\n".join(code)) is None  # no unescaped % outside comments
    assert tex.count("$") % 2 == 0


def test_tables_with_one_seed_and_constant_metric():
    summary = summary_frame(1).assign(alpha=0.25)
    tables = scenario_table(summary, rank_correlations(summary, METRICS, n_boot=20))
    source_rows = [line for line in tables["md"].splitlines() if line.startswith("| animals")]
    assert len(source_rows) == 5 and not any("±" in line for line in source_rows)  # no std from one seed
    assert "n/a (constant)" in tables["md"] and "(no interval)" in tables["md"]
    assert "nan" not in tables["md"].lower() and "nan" not in tables["tex"].lower()


def test_write_table_writes_both_atomically(three_seeds, tmp_path):
    tables = scenario_table(*three_seeds)
    write_table(tmp_path / "t" / "s.md", tmp_path / "t" / "s.tex", tables)
    assert (tmp_path / "t" / "s.md").read_text(encoding="utf-8") == tables["md"]
    assert (tmp_path / "t" / "s.tex").read_text(encoding="utf-8") == tables["tex"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir() if not p.name.endswith(".sha256")) == ["s.md", "s.tex"]


def test_figure3_with_many_seeds_uses_one_marker_and_keeps_labels_inside(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    summary = summary_frame(10, seed=1)
    fig = figure3(summary, rank_correlations(summary, METRICS, n_boot=50), "ten seeds")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.savefig(tmp_path / "f.png", dpi=72)
    for ax in fig.axes:  # nothing (tick labels included) is cut off at the figure's edges
        box = ax.get_tightbbox(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 + 0.5 and box.y1 <= fig.bbox.y1 + 0.5
    assert "10 seeds" in fig.get_suptitle()


def test_notes_follow_the_tables(three_seeds):
    summary, correlations = three_seeds
    tables = scenario_table(summary, correlations, notes=["A is under-determined (N < 5 m)."])
    assert tables["md"].rstrip().endswith("Note: A is under-determined (N < 5 m).")
    assert "Note: A is under-determined" in tables["tex"]
    assert "Note:" not in scenario_table(summary, correlations)["md"]


def test_table_adds_the_k_shot_outcomes_and_the_outcome_matrix(three_seeds):
    from advtransfer.stats import rank_correlations

    summary, _ = three_seeds
    summary = summary.assign(probe_accuracy_k20=summary["probe_accuracy"] - 0.1,
                             probe_accuracy_k5=summary["probe_accuracy"] - 0.2)  # fmt: skip
    outcomes = ["probe_accuracy_k5", "probe_accuracy_k20", "probe_accuracy"]
    correlations = pd.concat([rank_correlations(summary, ["tau1", "alpha"], outcome=o, n_boot=50) for o in outcomes])
    tables = scenario_table(summary, correlations, outcome="probe_accuracy_k5", outcomes=outcomes, notes=["a note"])
    md = tables["md"]
    header = next(line for line in md.splitlines() if line.startswith("| source |"))
    assert header.index("probe_accuracy_k5") < header.index("probe_accuracy_k20") < header.index("| probe_accuracy |")
    assert "with probe_accuracy_k5 over all" in md and "| tau1 | probe_accuracy_k5 |" in md
    assert "| tau1 | probe_accuracy |" not in md  # the correlation table is the chosen outcome's
    assert "| metric | probe_accuracy_k5 | probe_accuracy_k20 | probe_accuracy |" in md  # the matrix
    assert md.rstrip().endswith("Note: a note") and r"5-shot acc." in tables["tex"]
