"""Section 4.4 tasks on the shapes world: targets, inputs, task networks, per-image losses, training,
the own-prediction attack and readouts on frozen encoder maps. Small renders, 1-3 epochs: fast on a CPU."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from advtransfer import shapes, tasks
from advtransfer.train import TrainSettings

N = 40


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: small convolutions run no faster on more, and much slower on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batch() -> shapes.ShapesBatch:
    return shapes.render(N, seed=3)


@pytest.fixture(scope="module")
def networks() -> dict[str, tasks.TaskNetwork]:
    return {name: tasks.build_task_network(name, seed=0).eval() for name in tasks.TASKS}


def subset(b: shapes.ShapesBatch, rows) -> shapes.ShapesBatch:
    return shapes.ShapesBatch(
        b.images[rows], {k: v[rows] for k, v in b.factors.items()}, b.mask[rows], b.main[rows], b.edges[rows],
        b.depth[rows],
    )


def test_registry_has_the_eleven_tasks_of_each_kind():
    expected = {
        "semantic": {"shape", "identity", "colour"},
        "2d": {"autoencoding", "denoising", "edges"},
        "geometric": {"position", "scale", "rotation", "mask", "depth"},
    }
    for kind, names in expected.items():
        assert names <= {n for n, s in tasks.TASKS.items() if s.kind == kind}
    for name, spec in tasks.TASKS.items():
        assert spec.name == name and spec.output in tasks.OUTPUT_KINDS and spec.description
    with pytest.raises(ValueError, match="unknown task"):
        tasks.task_targets(shapes.render(2, 0), "nope")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tasks.TASKS["shape"].outputs = 3  # frozen
    assert "circle" in tasks.TASKS["rotation"].description


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_targets_have_the_task_shape_dtype_and_range(batch, name):
    spec, t = tasks.TASKS[name], tasks.task_targets(batch, name)
    size = shapes.SIZE
    if spec.output == "classes":
        assert t.dtype == torch.int64 and t.shape == (N,)
        assert 0 <= t.min() and t.max() < spec.outputs
    elif spec.output == "dense_classes":
        assert t.dtype == torch.int64 and t.shape == (N, size, size)
        assert 0 <= t.min() and t.max() < spec.outputs
    elif spec.output == "regression":
        assert t.dtype == torch.float32 and t.shape == (N, spec.outputs) and torch.isfinite(t).all()
    elif spec.output == "dense_regression":
        assert t.dtype == torch.float32 and t.shape == (N, spec.outputs, size, size)
        assert 0 <= t.min() and t.max() <= 1
    else:
        assert t.dtype == torch.float32 and t.shape == (N, 1, size, size)
        assert set(t.unique().tolist()) <= {0.0, 1.0}


def test_targets_follow_the_factors(batch):
    f = batch.factors
    torch.testing.assert_close(tasks.task_targets(batch, "position"), torch.stack([f["x"], f["y"]], 1).float())
    torch.testing.assert_close(tasks.task_targets(batch, "scale")[:, 0], f["scale"].float())
    assert 0.25 <= tasks.task_targets(batch, "scale").min() and tasks.task_targets(batch, "scale").max() <= 0.6
    rot = tasks.task_targets(batch, "rotation")
    torch.testing.assert_close(rot.norm(dim=1), torch.ones(N))
    theta = torch.deg2rad(f["rotation"]).float()
    torch.testing.assert_close(rot, torch.stack([torch.cos(4 * theta), torch.sin(4 * theta)], 1), atol=1e-5, rtol=0)
    assert torch.equal(tasks.task_targets(batch, "shape"), f["shape"])
    assert torch.equal(tasks.task_targets(batch, "identity"), shapes.labels(f, "identity"))
    assert torch.equal(tasks.task_targets(batch, "colour"), shapes.hue_bin(f["hue"]))
    assert torch.equal(tasks.task_targets(batch, "mask")[:, 0].bool(), batch.mask)
    assert torch.equal(tasks.task_targets(batch, "edges")[:, 0].bool(), batch.edges)
    assert torch.equal(tasks.task_targets(batch, "depth"), batch.depth)
    clean = batch.images.float() / 255
    assert torch.equal(tasks.task_targets(batch, "autoencoding"), clean)
    assert torch.equal(tasks.task_targets(batch, "denoising"), clean)


def test_rotation_target_is_periodic_in_90_degrees():
    f = shapes.draw_factors(2, torch.Generator().manual_seed(0))
    f["rotation"] = torch.tensor([0.0, 89.999999], dtype=torch.float64)
    rot = tasks.task_targets(shapes.render_factors(f), "rotation")
    torch.testing.assert_close(rot[0], rot[1], atol=1e-5, rtol=0)


def test_denoising_inputs_are_deterministic_noisy_and_per_image(batch):
    clean = tasks.task_inputs(batch, "autoencoding", seed=0)
    assert torch.equal(clean, batch.images.float() / 255)
    a, b = tasks.task_inputs(batch, "denoising", seed=0), tasks.task_inputs(batch, "denoising", seed=0)
    other = tasks.task_inputs(batch, "denoising", seed=1)
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert a.dtype == torch.float32 and a.shape == clean.shape and 0 <= a.min() and a.max() <= 1
    diff = a - clean
    assert diff.abs().mean() > 0.03 and 0.05 < diff.std() < 0.11  # std 0.1, less where clipped
    # an image's noise depends on its index only, not on the rest of the batch
    rows = torch.tensor([7, 2, 30])
    part = tasks.task_inputs(subset(batch, rows), "denoising", seed=0, indices=rows)
    assert torch.equal(part, a[rows])


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_network_output_matches_targets_and_loss_is_per_image(batch, networks, name):
    net, spec = networks[name], tasks.TASKS[name]
    x, t = tasks.task_inputs(batch, name, seed=0), tasks.task_targets(batch, name)
    with torch.no_grad():
        out = net(x)
        feats, enc = net.features(x), net.encode(x)
    if spec.output in ("classes", "dense_classes"):
        assert out.shape == (N, spec.outputs, *t.shape[1:])
    else:
        assert out.shape == t.shape
    assert enc.shape == (N, *net.map_shape) == (N, 64, 8, 8)
    assert feats.shape == (N, net.feature_dim)
    if not spec.dense:
        torch.testing.assert_close(net.head(feats), out)

    per_image = tasks.task_loss(name, out, t, reduction="none")
    mean = tasks.task_loss(name, out, t)
    assert per_image.shape == (N,) and mean.ndim == 0 and (per_image >= 0).all()
    torch.testing.assert_close(per_image.mean(), mean, rtol=1e-5, atol=1e-6)
    # against torch's own losses, and each image's loss does not depend on the other images
    reference = {
        "classes": lambda: F.cross_entropy(out, t),
        "dense_classes": lambda: F.cross_entropy(out, t),
        "regression": lambda: F.mse_loss(out, t),
        "dense_regression": lambda: F.mse_loss(out, t),
        "dense_binary": lambda: F.binary_cross_entropy_with_logits(out, t),
    }[spec.output]()
    torch.testing.assert_close(mean, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tasks.task_loss(name, out[3:4], t[3:4]), per_image[3], rtol=1e-5, atol=1e-6)


def test_encoders_are_the_same_for_every_task_and_seeded():
    a, b = tasks.build_task_network("shape", seed=4), tasks.build_task_network("depth", seed=4)
    c = tasks.build_task_network("shape", seed=5)
    sa, sb = a.encoder.state_dict(), b.encoder.state_dict()
    assert [(k, v.shape) for k, v in sa.items()] == [(k, v.shape) for k, v in sb.items()]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # same seed: same initial encoder
    assert not torch.equal(sa["0.weight"], c.encoder.state_dict()["0.weight"])
    assert str(a.encoder) == str(b.encoder)
    assert list(a.state_dict())[: len(sa)] == [f"encoder.{k}" for k in sa]
    assert set(a.state_dict()) == {f"encoder.{k}" for k in sa} | {"decoder.2.weight", "decoder.2.bias"}
    assert a.feature_dim == b.feature_dim == 256 and a.map_shape == b.map_shape == (64, 8, 8)
    state = torch.random.get_rng_state()
    tasks.build_task_network("mask", seed=1)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


@pytest.mark.parametrize(("name", "lr"), [("mask", 0.05), ("colour", 0.05)])
def test_training_lowers_the_validation_loss(name, lr):
    torch.manual_seed(0)
    data = shapes.render(360, seed=11)
    train, val = subset(data, slice(0, 280)), subset(data, slice(280, 360))
    net = tasks.build_task_network(name, seed=0)
    result = tasks.train_task_network(
        net, name, tasks.task_inputs(train, name, 0), tasks.task_targets(train, name),
        tasks.task_inputs(val, name, 1), tasks.task_targets(val, name),
        TrainSettings(epochs=2, batch_size=32, lr=lr, momentum=0.9, weight_decay=5e-4), seed=0, device="cpu",
    )  # fmt: skip
    assert result["val_loss"] < result["initial_val_loss"]
    assert len(result["history"]) == 2 and 1 <= result["best_epoch"] <= 2 and result["wall_seconds"] > 0
    assert result["val_loss"] == min(h["val_loss"] for h in result["history"])
    assert not net.training
    x_val, t_val = tasks.task_inputs(val, name, 1), tasks.task_targets(val, name)
    with torch.no_grad():  # the model holds the best epoch's weights
        assert math.isclose(tasks.task_loss(name, net(x_val), t_val).item(), result["val_loss"], rel_tol=1e-4)


def test_training_is_deterministic():
    data = shapes.render(64, seed=2)
    x, t = tasks.task_inputs(data, "scale", 0), tasks.task_targets(data, "scale")
    states = []
    for _ in range(2):
        net = tasks.build_task_network("scale", seed=0)
        tasks.train_task_network(
            net, "scale", x[:48], t[:48], x[48:], t[48:],
            TrainSettings(epochs=1, batch_size=16, lr=0.01, momentum=0.9, weight_decay=0.0), seed=3, device="cpu",
        )  # fmt: skip
        states.append(net.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("name", ["shape", "mask", "position", "depth", "denoising"])
def test_attack_stays_in_the_ball_and_raises_the_own_prediction_loss(batch, networks, name):
    net, eps = networks[name], 0.06
    x = tasks.task_inputs(batch, name, seed=0)[:16]
    x_adv = tasks.task_adversarial(
        net, name, x, eps, steps=5, step_size=0.02, generator=torch.Generator().manual_seed(0)
    )
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1
    assert not net.training
    with torch.no_grad():
        target = tasks.own_prediction(name, net(x))
        clean = tasks.task_loss(name, net(x), target, reduction="none")
        adv = tasks.task_loss(name, net(x_adv), target, reduction="none")
        noise = (x + eps * (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) - 1)).clamp(0, 1)
        random = tasks.task_loss(name, net(noise), target, reduction="none")
    assert adv.mean() > clean.mean() and adv.mean() > random.mean()
    again = tasks.task_adversarial(
        net, name, x, eps, steps=5, step_size=0.02, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(again, x_adv)  # seeded random start: reproducible


def test_own_prediction_targets():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert torch.equal(tasks.own_prediction("colour", logits), torch.tensor([1, 0]))
    dense = torch.tensor([[[[-0.5, 0.2]]]])
    assert torch.equal(tasks.own_prediction("mask", dense), torch.tensor([[[[0.0, 1.0]]]]))
    assert torch.equal(tasks.own_prediction("position", logits[:, :2]), logits[:, :2])


@pytest.mark.parametrize("target", ["colour", "edges", "position", "depth"])
def test_readout_on_frozen_maps(batch, networks, target):
    source = networks["shape"]
    before = {k: v.clone() for k, v in source.state_dict().items()}
    x = tasks.task_inputs(batch, target, seed=0)
    maps = tasks.encode_dataset(source, x, batch_size=16)
    assert maps.shape == (N, 64, 8, 8) and not maps.requires_grad
    t = tasks.task_targets(batch, target)
    readout = tasks.fit_readout(maps[:30], t[:30], target, epochs=2, lr=0.01, seed=0, batch_size=10)
    losses = tasks.readout_losses(readout, maps[30:], t[30:], target)
    assert (
        losses.shape == (10,) and losses.dtype == torch.float32 and (losses >= 0).all() and torch.isfinite(losses).all()
    )
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())  # the encoder stays frozen
    again = tasks.fit_readout(maps[:30], t[:30], target, epochs=2, lr=0.01, seed=0, batch_size=10)
    assert torch.equal(tasks.readout_losses(again, maps[30:], t[30:], target), losses)


def test_standardise_maps_uses_the_training_statistics_per_channel():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(20, 3, 4, 4, generator=g) * torch.tensor([1.0, 50.0, 0.01]).view(1, 3, 1, 1) + 7
    test = torch.randn(5, 3, 4, 4, generator=g)
    a, b = tasks.standardise_maps(train, test)
    torch.testing.assert_close(a.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(a.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    mean, std = train.mean(dim=(0, 2, 3), keepdim=True), train.std(dim=(0, 2, 3), keepdim=True)
    torch.testing.assert_close(b, (test - mean) / std)  # the test maps get the training statistics


def test_training_goes_through_the_shared_loop_and_rejects_augmentation():
    """train_task_network is train_classifier's loop (advtransfer.train.run_loop) on the task loss: settings from
    the block's train mapping; augmentation, which a dense task's targets would need too, is refused."""
    data = shapes.render(24, seed=2)
    x, t = tasks.task_inputs(data, "colour", 0), tasks.task_targets(data, "colour")
    block = {"epochs": 1, "batch_size": 8, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0}
    net = tasks.build_task_network("colour", seed=0)
    result = tasks.train_task_network(net, "colour", x[:16], t[:16], x[16:], t[16:], TrainSettings.from_config(block),
                                      seed=0, device="cpu")  # fmt: skip
    assert [list(h) for h in result["history"]] == [["epoch", "lr", "train_loss", "val_loss"]]
    augmented = TrainSettings.from_config({**block, "augment": True})
    with pytest.raises(ValueError, match="augment"):
        tasks.train_task_network(net, "colour", x[:16], t[:16], x[16:], t[16:], augmented, seed=0, device="cpu")
