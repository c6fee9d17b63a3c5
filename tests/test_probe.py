"""Linear probes: separable data, frozen models (weights, batch-norm buffers, flags), sane losses."""

import math

import pytest
import torch

from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import build_model
from advtransfer.probe import LinearProbe, extract_features, fit_linear_probe


def _separable(n=300, m=20, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, m, generator=g) * 4
    y = torch.arange(n) % k
    return centres[y] + 0.5 * torch.randn(n, m, generator=g), y


def test_probe_separates_separable_features():
    x, y = _separable()
    probe = fit_linear_probe(x[:200], y[:200], l2=1e-4, max_iter=200, device="cpu")
    train_acc, train_ce = probe.evaluate(x[:200], y[:200])
    test_acc, test_ce = probe.evaluate(x[200:], y[200:])
    assert train_acc >= 0.99 and test_acc >= 0.99
    assert math.isfinite(test_ce) and test_ce < math.log(4) and train_ce < math.log(4)
    assert probe.predict_logits(x[:5]).shape == (5, 4) and probe.iterations >= 1


def test_probe_is_deterministic_and_round_trips(tmp_path):
    x, y = _separable(seed=1)
    a = fit_linear_probe(x, y, l2=1e-2, max_iter=50, device="cpu")
    b = fit_linear_probe(x, y, l2=1e-2, max_iter=50, device="cpu")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    save_tensors(tmp_path / "probe.safetensors", a.to_tensors())
    c = LinearProbe.from_tensors(load_tensors(tmp_path / "probe.safetensors"))
    assert torch.equal(c.predict_logits(x), a.predict_logits(x))


def test_probe_handles_constant_features_and_rejects_bad_labels():
    x, y = _separable(m=5)
    x = torch.cat([x, torch.ones(len(x), 1)], 1)  # a constant column must not produce NaN
    probe = fit_linear_probe(x, y, max_iter=50)
    assert torch.isfinite(probe.predict_logits(x)).all()
    with pytest.raises(ValueError, match="labels"):
        fit_linear_probe(x, y.float())


def test_frozen_model_is_untouched_by_features_and_probing():
    torch.manual_seed(0)
    model = build_model("small_cnn", 3, 1, 8).train()  # in train mode, as after training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert any("running_mean" in k for k in before) and any("num_batches_tracked" in k for k in before)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 8, 8, generator=g)
    y = torch.arange(40) % 3
    feats = extract_features(model, x, batch_size=16, device="cpu")
    assert feats.shape == (40, model.feature_dim) and feats.dtype == torch.float32
    probe = fit_linear_probe(feats, y, max_iter=50, device="cpu")
    _, ce = probe.evaluate(feats, y)
    assert math.isfinite(ce)
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "extract_features changed the model"
    # eval mode: features of a sample do not depend on the rest of its batch
    torch.testing.assert_close(extract_features(model, x[:3], 1, "cpu"), feats[:3])
    with torch.no_grad():
        torch.testing.assert_close(model.eval().features(x), feats)


# ------------------------------------------------------------------------ few-shot probes, fine-tuning


def test_few_shot_sets_are_per_class_seeded_and_differ_between_draws():
    from advtransfer.data import few_shot_sets

    labels = torch.tensor([0] * 30 + [1] * 12 + [2] * 20)[
        torch.randperm(62, generator=torch.Generator().manual_seed(1))
    ]
    sets = few_shot_sets(labels, 5, 4, seed=3)
    assert len(sets) == 4
    for positions in sets:
        assert torch.equal(positions, positions.sort().values) and len(positions.unique()) == 15
        assert torch.bincount(labels[positions], minlength=3).tolist() == [5, 5, 5]
    assert any(not torch.equal(sets[0], s) for s in sets[1:])
    again = few_shot_sets(labels, 5, 4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(sets, again))
    assert not all(torch.equal(a, b) for a, b in zip(sets, few_shot_sets(labels, 5, 4, seed=4)))
    with pytest.raises(ValueError, match="13-shot sets need 13 labelled samples of every class"):
        few_shot_sets(labels, 13, 1, seed=0)


def test_labelled_pool_is_train_and_validation_never_test():
    from advtransfer.data import labelled_pool

    split = {
        "train_idx": torch.tensor([4, 9, 2]), "train_y": torch.tensor([0, 1, 0]),
        "val_idx": torch.tensor([7]), "val_y": torch.tensor([1]),
        "test_idx": torch.tensor([0, 1]), "test_y": torch.tensor([1, 0]),
    }  # fmt: skip
    idx, y = labelled_pool(split)
    assert idx.tolist() == [4, 9, 2, 7] and y.tolist() == [0, 1, 0, 1]


def test_few_shot_probe_accuracy_rises_with_k_on_noisy_features():
    from advtransfer.data import few_shot_sets
    from advtransfer.probe import few_shot_accuracies

    g = torch.Generator().manual_seed(0)
    centres = 1.2 * torch.randn(4, 20, generator=g)
    labels = torch.arange(4).repeat(200)
    feats = centres[labels] + torch.randn(800, 20, generator=g)
    train, test = slice(0, 600), slice(600, 800)
    accuracy = {
        k: sum(few_shot_accuracies(feats[train], labels[train], feats[test], labels[test],
                                   few_shot_sets(labels[train], k, 5, seed=0), num_classes=4, l2=1e-2)) / 5
        for k in (1, 50)
    }  # fmt: skip
    assert 0.25 < accuracy[1] < accuracy[50] <= 1.0


def test_fine_tuning_trains_a_copy_and_leaves_the_source_file_alone(tmp_path):
    from advtransfer.io import save_model
    from advtransfer.models import load_classifier
    from advtransfer.probe import FineTuned
    from advtransfer.train import TrainContext, TrainSettings, train_classifier

    torch.manual_seed(0)
    source = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8)
    path = tmp_path / "source.safetensors"
    arch = {"name": "small_cnn", "num_classes": 3, "in_channels": 1, "image_size": 8}
    save_model(path, source, {"architecture": arch})
    before = path.read_bytes()
    loaded = load_classifier(path)
    original = {k: v.clone() for k, v in loaded.state_dict().items()}

    torch.manual_seed(1)
    model = FineTuned(loaded, num_classes=2, feature_dim=loaded.feature_dim)
    assert model.head.out_features == 2
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    train_classifier(model, x[:48], y[:48], x[48:], y[48:],
                     TrainSettings(epochs=2, batch_size=16, lr=0.05, momentum=0.9, weight_decay=0.0),
                     TrainContext(seed=0, device="cpu", progress=False))  # fmt: skip
    body = model.body.state_dict()
    changed = [k for k, v in original.items() if not k.startswith("head.") and not torch.equal(body[k], v)]
    assert any("body.0.weight" in k for k in changed)  # the first convolution was trained: the body moved
    assert all(torch.equal(body[k], v) for k, v in original.items() if k.startswith("head."))  # unused old head
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in original.items())  # the loaded source is untouched
    assert path.read_bytes() == before  # and so is its file


def test_too_few_labelled_target_images_for_the_k_shot_probes_is_named():
    from advtransfer.data import check_labelled_per_class

    split = {"train_idx": torch.arange(5), "train_y": torch.tensor([0, 0, 0, 1, 1]),
             "val_idx": torch.arange(5, 7), "val_y": torch.tensor([0, 1])}  # fmt: skip
    check_labelled_per_class(split, 3, ["cat", "dog"])
    with pytest.raises(ValueError, match=r"largest k = 4\) need 4 labelled target images per class, but \{'dog': 3\}"):
        check_labelled_per_class(split, 4, ["cat", "dog"])
