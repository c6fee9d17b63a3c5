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
