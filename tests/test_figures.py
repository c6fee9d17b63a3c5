"""The attributes, interactions and model-selection figures say what every mark is, and their names are readable:
chance lines, bands and thresholds are in the legends, point names do not overlap, constant scores are not drawn
as if they ranked anything."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from advtransfer import plots
from advtransfer.families.attributes.figures import attribute_figure, per_seed_aucs
from advtransfer.families.attributes.summary import defining_rank_check
from advtransfer.families.interactions.figures import interaction_figure
from advtransfer.families.model_selection.figures import selection_agreement_figure, selection_scores_figure
from advtransfer.stats import rank_correlations

ATTRIBUTES = {"is_red": True, "is_square": True, "is_large": True, "is_left": False, "textured": False,
              "bright_background": False}  # fmt: skip


def text_boxes(fig, ax, names):
    """Drawn extents of ``ax``'s texts that are one of ``names``, text only (an annotation's own extent includes
    its leader line)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text() in set(names)]


def assert_disjoint(boxes):
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)


def legend_text(legend) -> str:
    return "\n".join([legend.get_title().get_text(), *(t.get_text() for t in legend.get_texts())])


# --------------------------------------------------------------------------------------------- attributes


def attribute_summary(n_seeds: int = 3, seed: int = 0) -> pd.DataFrame:
    """attributes.csv's columns: one row per (attribute, seed); is_square and is_large land on one spot."""
    rng = np.random.default_rng(seed)
    base = {"is_red": 0.034, "is_square": 0.0089, "is_large": 0.0088, "is_left": 0.0033, "textured": 0.0017,
            "bright_background": 0.0002}  # fmt: skip
    rows = []
    for s in range(n_seeds):
        for name, defines in ATTRIBUTES.items():
            t = base[name] * (1 + 0.05 * rng.normal())
            rows.append(dict(source=name, seed=s, defines_identity=defines, tau1_tau2=t,
                             tau1=10 * t + 0.01 * rng.normal(), reference_adv_accuracy=0.3 - t + 0.01 * rng.normal(),
                             probe_accuracy_k10=0.11 + 2 * t + 0.002 * rng.normal()))  # fmt: skip
    return pd.DataFrame(rows)


def attribute_inputs(summary):
    metrics = ["tau1", "tau1_tau2", "reference_adv_accuracy"]
    correlations = rank_correlations(summary, metrics, outcome="probe_accuracy_k10", cluster="seed", n_boot=50)
    return correlations, defining_rank_check(summary, [*metrics, "probe_accuracy_k10"])


def attribute(summary, **kwargs):
    correlations, check = attribute_inputs(summary)
    return attribute_figure(summary, correlations, check, rank_by="tau1_tau2", outcome="probe_accuracy_k10",
                                  title="t", **kwargs)  # fmt: skip


def test_attribute_figure_draws_and_names_the_chance_accuracy():
    fig = attribute(attribute_summary(), n_classes=30)
    scatter = fig.axes[0]
    flat = [line for line in scatter.get_lines() if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2]
    assert any(line.get_ydata()[0] == pytest.approx(1 / 30) for line in flat)
    assert "chance: 1 / 30 identities = 0.033" in legend_text(scatter.get_legend())
    assert scatter.get_ylim()[0] < 1 / 30  # the line is inside the axes
    text = legend_text(scatter.get_legend())
    assert "mean over 3 seeds" in text and "min to max over seeds" in text


def test_attribute_figure_reads_the_class_count_from_a_column_and_says_when_it_has_none():
    summary = attribute_summary()
    assert "1 / 12 identities" in legend_text(attribute(summary.assign(reference_n_classes=12)).axes[0].get_legend())
    assert "not given" in legend_text(attribute(summary).axes[0].get_legend())


def test_attribute_labels_do_not_overlap_even_for_points_on_one_spot(tmp_path):
    fig = attribute(attribute_summary(), n_classes=30)
    scatter = fig.axes[0]
    names = sorted(t.get_text() for t in scatter.texts if t.get_text() in ATTRIBUTES)
    assert names == sorted(ATTRIBUTES)
    boxes = text_boxes(fig, scatter, ATTRIBUTES)
    assert len(boxes) == len(ATTRIBUTES)
    assert_disjoint(boxes)
    plots.save_figure(fig, tmp_path / "a.png", tmp_path / "a.pdf")  # a frozen layout still saves


def test_auc_panel_bars_are_the_mean_of_the_per_seed_dots():
    summary = attribute_summary(n_seeds=4, seed=3)
    correlations, check = attribute_inputs(summary)
    fig = attribute_figure(summary, correlations, check, rank_by="tau1_tau2", outcome="probe_accuracy_k10",
                                 title="t", n_classes=30)  # fmt: skip
    bars = fig.axes[1]
    for i, row in check.reset_index(drop=True).iterrows():
        seeds = per_seed_aucs(summary, row["metric"])
        assert len(seeds) == 4
        assert seeds.min() == pytest.approx(row["auc_seed_min"]) and seeds.max() == pytest.approx(row["auc_seed_max"])
        patch = bars.patches[i]
        end = patch.get_x() + patch.get_width()
        assert patch.get_x() == pytest.approx(0.5) and end == pytest.approx(seeds.mean())
        assert seeds.min() - 1e-12 <= end <= seeds.max() + 1e-12  # the bar lies within its own seeds' range
        dots = [line for line in bars.get_lines() if line.get_marker() == "o"][i]
        assert sorted(dots.get_xdata()) == pytest.approx(sorted(seeds))
    text = legend_text(bars.get_legend())
    for what in ("mean of the 4 per-seed AUCs", "AUC on one seed alone", "seed means", "0.5 = chance"):
        assert what in text, what


# --------------------------------------------------------------------------------------------- interactions


def interaction_inputs():
    rng = np.random.default_rng(0)
    ratios = (np.arange(8) + 0.5) / 8
    rows = []
    for side, group in itertools.product(["source", "target", "scenario"], ["ce", "pgd_at"]):
        profile, change = 2 - 2 * ratios + 0.1 * rng.normal(size=8), 0.1 + 0.2 * ratios
        rows += [dict(side=side, group=group if side != "scenario" else f"src{group}", order=int(8 * r),
                      order_ratio=r, n_seeds=2, n_images=16, profile=p, profile_lo=p - 0.2, profile_hi=p + 0.2,
                      change=c, change_lo=c - 0.05, change_hi=c + 0.05)
                 for r, p, c in zip(ratios, profile, change)]  # fmt: skip
    view = pd.DataFrame(dict(source=["a", "a", "b", "b"], seed=[0, 1, 0, 1],
                             high_order_share=[0.1, 0.2, 0.15, 0.12], tau1_tau2=[0.02, 0.01, 0.003, 0.001],
                             probe_accuracy_k5=[0.99, 0.97, 0.8, 0.78]))  # fmt: skip
    return pd.DataFrame(rows), view


CLAIMS = {"standard": "ce", "robust": ["pgd_at"], "high": 0.7, "low": 0.3}


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_interaction_figure_says_what_the_bands_and_dotted_lines_are(level):
    summary, view = interaction_inputs()
    fig = interaction_figure(summary, view, claims=CLAIMS, outcome="probe_accuracy_k5", title="t", level=level)
    (legend,) = fig.legends
    text = legend_text(legend)
    assert f"{100 * level:.0f}% two-level bootstrap interval" in text
    assert "seeds resampled, then images within each seed" in text
    assert "low r ≤ 0.3" in text and "high r ≥ 0.7" in text and "ce" in text and "pgd_at" in text
    for name in ("source:profile", "target:profile", "source:change", "target:change"):
        (ax,) = [a for a in fig.axes if a.get_label() == name]
        dotted = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
        assert dotted == [0.3, 0.7]
        assert len(ax.collections) == 2  # one band per group
        top = [child for child in ax.child_axes if child.get_xticks().tolist() == [0.3, 0.7]]
        assert top, name
        labels = [t.get_text() for t in top[0].get_xticklabels()]
        assert "low orders" in labels[0] and "high orders" in labels[1]
        assert ax.get_xlabel() and ax.get_ylabel()


# --------------------------------------------------------------------------------------------- selection


def selection_inputs(equal_costs: bool = False):
    from advtransfer import selection

    rng = np.random.default_rng(7)
    rows = []
    for seed, s in itertools.product(range(3), range(5)):
        quality = s + 0.3 * rng.normal()
        rows.append(dict(candidate=f"s{s}_seed{seed}", source=f"s{s}", seed=seed, cluster=f"seed{seed}",
                         kind="scenario", probe_accuracy_k5=0.75 + 0.05 * quality, good=quality))  # fmt: skip
    frame = pd.DataFrame(rows)
    for score in selection.SCORES:
        frame[score] = frame["good"] + 0.05 * rng.normal(size=len(frame))  # all agree closely: crowded names
    frame["feature_dim"], frame["parameter_count"] = 128.0, 52324.0  # constant scores
    agreement = selection.agreement(frame, list(selection.SCORES), "probe_accuracy_k5", n_boot=50)
    costs = np.ones(len(agreement)) if equal_costs else np.where(agreement["family"] == "adversarial", 57.0, 0.5)
    agreement = agreement.assign(cpu_seconds=costs, wall_seconds=costs)
    return frame, agreement


def test_constant_scores_are_listed_not_plotted():
    frame, agreement = selection_inputs()
    fig = selection_scores_figure(frame, agreement, outcome="probe_accuracy_k5", title="t")
    labels = {ax.get_label() for ax in fig.axes if ax.get_visible()}
    assert "score:feature_dim" not in labels and "score:parameter_count" not in labels
    assert "score:tau1" in labels and "score:h_score" in labels
    (constant,) = [ax for ax in fig.axes if ax.get_label() == "constant"]
    text = "\n".join(t.get_text() for t in constant.texts)
    assert "not informative" in text and "feature_dim = 128" in text and "parameter_count = 52324" in text
    assert not constant.collections  # no points


def test_score_panels_have_axis_labels_and_a_key():
    frame, agreement = selection_inputs()
    fig = selection_scores_figure(frame, agreement, outcome="probe_accuracy_k5", title="t", level=0.9)
    panels = [ax for ax in fig.axes if ax.get_label().startswith("score:")]
    assert panels and all(ax.get_xlabel().endswith("(score value)") for ax in panels)
    left = [ax for ax in panels if ax.get_subplotspec().colspan.start == 0]
    assert left and all("5-shot probe accuracy" in ax.get_ylabel() for ax in left)
    assert "90% cluster-bootstrap interval" in fig.get_suptitle()
    (legend,) = fig.legends
    assert "title colour: adversarial" in legend_text(legend) and "seeds share the colour" in legend_text(legend)


@pytest.mark.parametrize("equal_costs", [False, True])
def test_agreement_names_do_not_overlap(equal_costs, tmp_path):
    frame, agreement = selection_inputs(equal_costs)
    fig = selection_agreement_figure(agreement, outcome="probe_accuracy_k5", title="t")
    cost = fig.axes[1]
    scored = agreement.dropna(subset=["weighted_kendall"])
    assert sorted(t.get_text() for t in cost.texts) == sorted(scored["score"])
    boxes = text_boxes(fig, cost, scored["score"])
    assert len(boxes) == len(scored)
    assert_disjoint(boxes)
    for box in boxes:  # every name inside the figure
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1
    plots.save_figure(fig, tmp_path / "a.png", tmp_path / "a.pdf")


def test_stacked_names_keep_their_points_order():
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ys = np.array([0.50, 0.505, 0.51, 0.502, 0.3, 0.9])
    xs = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    ax.scatter(xs, ys)
    ax.set(xlim=(0, 3), ylim=(0, 1))
    names = [f"name{i}" for i in range(len(xs))]
    plots.label_points(ax, xs, ys, names)
    boxes = text_boxes(fig, ax, names)
    assert_disjoint(boxes)
    column = np.argsort(ys[:4])
    assert np.all(np.diff([boxes[i].y0 for i in column]) > 0)  # the names stack in their points' order


# -------------------------------------------------------------------------------------------------- tasks


def test_figure4_titles_stay_inside_and_curves_that_coincide_stay_distinguishable():
    """A long primary-view title (view, Mantel statistic, p, verdict) once ran off the figure's left edge, and a
    tree that cuts like the reference's drew its entropy curve exactly under the reference's."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from scipy.cluster.hierarchy import linkage

    from advtransfer.families.tasks.figures import figure4

    tasks = ["a", "b", "c", "d", "e", "f"]
    kinds = dict(zip(tasks, ["semantic", "semantic", "2d", "2d", "geometric", "geometric"]))
    rng = np.random.default_rng(0)
    link = linkage(rng.normal(size=(6, 4)))
    long = ("adversarial transferability, declared primary view: ATM eps 0.03\nMantel: Spearman +0.49 with the "
            "affinity ('ranks' normalisation), p = 0.0006: reproduced")  # fmt: skip
    same = [0.8, 0.5, 0.2]
    entropy = pd.DataFrame({"view": ["x"] * 3 + ["y"] * 3 + ["reference"] * 3, "k": [2, 3, 4] * 3,
                            "entropy": [0.9, 0.7, 0.4] + same + same})  # fmt: skip
    fig = figure4({long: link, "knowledge transfer (affinity)": link}, tasks, kinds, entropy, title="t")
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for box in boxes:
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, box
    assert_disjoint(boxes)
    curve = fig.axes[-1]
    styles = [(line.get_marker(), line.get_linestyle(), line.get_markersize()) for line in curve.get_lines()]
    assert len(styles) == 3 and len(set(styles)) == 3
    assert [t.get_text() for t in curve.get_xticklabels()] == ["2", "3", "4"]
