"""The shapes world: deterministic rendering whose masks, edges and depth follow the factors."""

from __future__ import annotations

import pytest
import torch

from advtransfer import shapes
from advtransfer.data import load_split


def factors(n: int, **fixed) -> dict[str, torch.Tensor]:
    """Factors of n images drawn with seed 0, some set by hand (scalars broadcast; 'second' off by default)."""
    f = shapes.draw_factors(n, torch.Generator().manual_seed(0))
    fixed = {"second": 0, "front": 0, "noise": 0.0, "rotation": 0.0, **fixed}
    for key, value in fixed.items():
        f[key] = torch.full_like(f[key], value) if not torch.is_tensor(value) else value.to(f[key].dtype)
    return f


def test_rendering_is_deterministic_and_seeded():
    a, b, c = shapes.render(30, seed=5), shapes.render(30, seed=5), shapes.render(30, seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.mask, b.mask) and torch.equal(a.depth, b.depth)
    assert all(torch.equal(a.factors[k], b.factors[k]) for k in shapes.FACTORS)
    assert not torch.equal(a.images, c.images)
    assert a.images.dtype == torch.uint8 and a.images.shape == (30, 3, shapes.SIZE, shapes.SIZE)
    assert set(a.factors) == set(shapes.FACTORS)


def test_factors_lie_in_their_ranges_and_front_needs_a_second_object():
    f = shapes.render(500, seed=1).factors
    assert set(f["shape"].tolist()) == set(range(len(shapes.SHAPES)))
    assert 0.25 <= f["scale"].min() and f["scale"].max() <= 0.6 and 0 <= f["rotation"].min() < f["rotation"].max() < 90
    assert (f["front"] <= f["second"]).all() and 0 < f["second"].float().mean() < 1


@pytest.mark.parametrize("shape", range(5))
def test_mask_area_grows_with_scale(shape):
    areas = [
        shapes.render_factors(factors(4, shape=shape, scale=s, x=0.0, y=0.0)).mask.sum(dim=(1, 2)).float().mean()
        for s in (0.3, 0.45, 0.6)
    ]
    assert areas[0] < areas[1] < areas[2]
    assert float(areas[2] / areas[0]) == pytest.approx(4.0, rel=0.25)  # area ~ scale^2


def test_square_fills_its_box_and_the_position_moves_the_centroid():
    size = shapes.SIZE
    square = shapes.render_factors(factors(1, shape=0, scale=0.5, x=0.0, y=0.0))
    assert int(square.mask.sum()) == pytest.approx((0.5 * size) ** 2, rel=0.1)  # half-width 0.5 of the half-image
    cols = torch.arange(size, dtype=torch.float64) + 0.5
    for x in (-0.4, 0.0, 0.3):
        for y in (-0.3, 0.2):
            mask = shapes.render_factors(factors(1, shape=1, scale=0.3, x=x, y=y)).mask[0].double()
            cx = (mask.sum(0) * cols).sum() / mask.sum()
            cy = (mask.sum(1) * cols).sum() / mask.sum()
            assert float(cx) == pytest.approx((x + 1) / 2 * size, abs=0.5)
            assert float(cy) == pytest.approx((y + 1) / 2 * size, abs=0.5)


def test_rotation_turns_the_square():
    upright = shapes.render_factors(factors(1, shape=0, scale=0.5, x=0.0, y=0.0, rotation=0.0)).mask[0]
    turned = shapes.render_factors(factors(1, shape=0, scale=0.5, x=0.0, y=0.0, rotation=45.0)).mask[0]
    assert int(upright.sum()) == pytest.approx(int(turned.sum()), rel=0.1)  # same area
    width = lambda m: int(m.any(dim=0).sum())  # noqa: E731
    assert width(turned) == pytest.approx(width(upright) * 2**0.5, abs=2)  # the diagonal spans the image


def test_edges_outline_the_objects_and_depth_orders_them():
    n = 6
    f = factors(n, shape=0, scale=0.45, x=0.0, y=0.0, second=1, front=torch.tensor([1, 0, 1, 0, 1, 0]))
    f["_x2"], f["_y2"], f["_scale2"] = torch.full((n,), 0.2), torch.full((n,), 0.2), torch.full((n,), 0.3)
    batch = shapes.render_factors(f)
    front = f["front"] == 1
    # the main object in front keeps its whole square; behind, the second object hides part of it
    assert (batch.main[front].sum(dim=(1, 2)) > batch.main[~front].sum(dim=(1, 2)).max()).all()
    assert (batch.depth[front][batch.main[front]] == 2).all() and (batch.depth[~front][batch.main[~front]] == 1).all()
    assert (batch.depth[~batch.mask] == 0).all() and (batch.depth[batch.mask] > 0).all()
    # edges: only at label changes, around every object, none in the flat background far from it
    assert batch.edges.any(dim=(1, 2)).all()
    grown = torch.nn.functional.max_pool2d(batch.mask.float()[:, None], 3, 1, 1)[:, 0] > 0
    assert not (batch.edges & ~grown).any()


def test_registered_data_set_reads_through_the_platform(tmp_path):
    images, labels, names = load_split("shapes", tmp_path, "test")
    assert names == shapes.SHAPES and images.shape == (2000, 3, 32, 32) and images.dtype == torch.uint8
    assert set(labels.tolist()) == set(range(5))
    train, _, _ = load_split("shapes", tmp_path, "train")
    assert len(train) == 10000
    rows = {bytes(img.numpy().tobytes()) for img in train}
    assert not any(bytes(img.numpy().tobytes()) in rows for img in images)  # no test image is a train image


def test_a_scenario_on_the_shapes_world_builds_its_dag(tmp_path):
    """Registered once, the data set serves every family: here a data-distribution scenario by shape."""
    from tests.workflow_helpers import REPO, snakemake

    (tmp_path / "shapes.yaml").write_text(
        """
experiments: [shapesworld]
scenarios:
  shapesworld:
    source_dataset: shapes
    sources: {outside0: [square, circle], outside50: [square, cross], outside100: [triangle, ell]}
    target: {dataset: shapes, classes: [square, circle], domain: blur}
    split: {source_pool_fraction: 0.5, val_fraction: 0.1, max_train_per_class: 100, max_test_per_class: 50}
    model: small_cnn
    image_size: 32
    channels: 3
    seeds: [0, 1]
    train: {epochs: 1, batch_size: 32, lr: 0.05}
    attack: {eps: 0.03, steps: 2, step_size: 0.01, n_images: 16}
    metrics: {n_images: 16}
"""
    )
    out = snakemake(REPO, "-n", "--quiet", "rules", "--configfile", str(tmp_path / "shapes.yaml")).stdout
    assert "train" in out and "scenario_summary" in out and "reproduction" in out


def test_labellings_are_the_factors_and_share_the_images(tmp_path):
    from advtransfer.registry import DATASETS, SHAPES_LABELLINGS

    batch = shapes.render(400, seed=2)
    f = batch.factors
    assert torch.equal(shapes.labels(f, "is_left"), (f["x"] < 0).long())
    assert torch.equal(shapes.labels(f, "rotated_over_45"), (f["rotation"] > 45).long())
    identity = shapes.labels(f, "identity")
    names = DATASETS["shapes_identity"].classes
    assert len(names) == 30 and identity.max() < 30
    for i in range(20):  # the identity's name spells its defining factors
        shape_name, hue_name, size_name = names[int(identity[i])].split("-")
        assert shape_name == shapes.SHAPES[int(f["shape"][i])]
        assert (size_name == "large") == bool(shapes.labels(f, "is_large")[i])
        assert (hue_name == "red") == bool(shapes.labels(f, "is_red")[i])
        assert (hue_name == "blue") == bool(shapes.labels(f, "is_blue")[i])
    assert shapes.DEFINES_IDENTITY < set(shapes.ATTRIBUTES) and len(shapes.ATTRIBUTES) >= 12
    for labelling, classes in SHAPES_LABELLINGS.items():
        assert int(shapes.labels(f, labelling).max()) < len(classes), labelling
    with pytest.raises(ValueError, match="unknown labelling"):
        shapes.labels(f, "is_purple")
    by_shape, _, _ = load_split("shapes", tmp_path, "test")
    by_size, sizes, size_names = load_split("shapes_is_large", tmp_path, "test")
    assert torch.equal(by_shape, by_size) and size_names == ("no", "yes") and set(sizes.tolist()) == {0, 1}


def test_two_labellings_of_the_same_images_get_disjoint_pools():
    from advtransfer.data import disjoint_pools
    from advtransfer.families.scenarios.jobs import network_jobs
    from advtransfer.names import image_set

    assert image_set("shapes_is_red") == image_set("shapes") == "shapes" and image_set("digits") == "digits"
    f = shapes.render(300, seed=4).factors
    source, _ = disjoint_pools(shapes.labels(f, "is_red"), 0.5, seed=0, stratify=False)
    _, target = disjoint_pools(shapes.labels(f, "identity"), 0.5, seed=0, stratify=False)
    assert not set(source.tolist()) & set(target.tolist()) and len(source) + len(target) == 300
    block = {
        "source_dataset": "shapes_is_red", "sources": {"red": ["no", "yes"]},
        "target": {"dataset": "shapes_identity", "classes": ["square-red-small", "circle-blue-large"],
                   "domain": "identity"},
        "split": {"source_pool_fraction": 0.5, "val_fraction": 0.1, "max_train_per_class": None,
                  "max_test_per_class": None, "seed": 0},
        "model": "small_cnn", "image_size": 32, "channels": 3, "seeds": [0], "reference_seed": 0,
        "objective": "ce", "train": {}, "attack": {}, "metrics": {}, "probe": {"shots": [5]}, "finetune": {},
    }  # fmt: skip
    splits = network_jobs("x", block, {})["splits"]
    assert splits["source_red"]["pool"]["stratify"] is False and splits["target"]["pool"]["side"] == "target"


def test_rendered_split_is_cached_once_and_read_back_identically(tmp_path, monkeypatch):
    from advtransfer import shapes

    shapes.cached_split.cache_clear()
    first = shapes.cached_split(str(tmp_path), "test")
    path = shapes.cache_path(tmp_path, "test")
    assert path.is_file() and path.parent == tmp_path / "shapes"
    shapes.cached_split.cache_clear()
    monkeypatch.setattr(shapes, "split_batch", lambda *a: (_ for _ in ()).throw(AssertionError("re-rendered")))
    again = shapes.cached_split(str(tmp_path), "test")  # read from the file, never rendered
    for field in ("images", "mask", "main", "edges", "depth"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    assert first.factors.keys() == again.factors.keys()
    assert all(torch.equal(first.factors[k], again.factors[k]) for k in first.factors)
    images, labels = shapes.read_shapes(tmp_path, "test", verify=True, seed=0, test_fraction=0.2, labelling="is_red")
    assert torch.equal(images, first.images) and torch.equal(labels, shapes.labels(first.factors, "is_red"))
    shapes.cached_split.cache_clear()
    path.write_bytes(b"truncated")  # an unreadable cache is rendered afresh and replaced
    monkeypatch.undo()
    assert torch.equal(shapes.cached_split(str(tmp_path), "test").images, first.images)
    assert path.stat().st_size > 1000
    shapes.cached_split.cache_clear()
