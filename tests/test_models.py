"""Model registry: shapes, the features/head contract, the CIFAR ResNet stem, seeding, errors."""

import pytest
import torch
from torch import nn

from advtransfer.models import MODELS, build_model, inference_graph, frozen_on
from advtransfer.runtime import resolve_device

CASES = [(3, 32), (1, 28), (1, 8)]
FEATURE_DIM = {"resnet18_cifar": 512, "small_cnn": 128}


@pytest.mark.parametrize("name", sorted(FEATURE_DIM))
@pytest.mark.parametrize("in_channels,image_size", CASES)
def test_output_and_feature_shapes(name, in_channels, image_size):
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels, image_size).eval()
    x = torch.rand(2, in_channels, image_size, image_size)
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (2, 7)
    assert feats.shape == (2, FEATURE_DIM[name]) == (2, model.feature_dim)
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (FEATURE_DIM[name], 7)
    torch.testing.assert_close(logits, model.head(feats))


def test_resnet18_cifar_stem():
    model = build_model("resnet18_cifar", 10, 1, 28)
    conv1 = model.backbone.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.padding == (1, 1)
    assert conv1.bias is None and conv1.in_channels == 1
    assert isinstance(model.backbone.maxpool, nn.Identity)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1  # only the head


def test_seeded_construction_is_reproducible():
    states = []
    for _ in range(2):
        torch.manual_seed(123)
        states.append(build_model("small_cnn", 3, 1, 8).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(124)
    other = build_model("small_cnn", 3, 1, 8).state_dict()
    assert not torch.equal(states[0]["head.weight"], other["head.weight"])


def test_unknown_name_and_bad_sizes_raise():
    with pytest.raises(ValueError, match="resnet18_cifar.*small_cnn|small_cnn.*resnet18_cifar"):
        build_model("vgg16", 10, 3, 32)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("small_cnn", 1, 1, 8)
    assert set(MODELS) == set(FEATURE_DIM)


def test_resolve_device_and_frozen_on_restores_flags():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu-please")
    model = build_model("small_cnn", 3, 1, 8).train()
    model.body[1].eval()  # a mixed state must come back exactly
    with frozen_on(model, torch.device("cpu")) as net:
        assert net is model and not any(m.training for m in net.modules())
    assert model.training and not model.body[1].training and model.body[4].training


@pytest.mark.parametrize("name, channels, size", [("small_cnn", 1, 28), ("resnet18_cifar", 3, 32)])
def test_inference_graph_keeps_the_function_and_removes_batchnorm(name, channels, size):
    """inference_graph: the same logits / features to float rounding, no BatchNorm left, the model untouched."""
    torch.manual_seed(0)
    model = build_model(name, 4, channels, size)
    with torch.no_grad():  # non-trivial running statistics, as after training
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(1))
    logits, features = inference_graph(model, "logits"), inference_graph(model, "features")
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(logits(x), model(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(features(x), model.features(x), rtol=1e-4, atol=1e-5)
    for graph in (logits, features):
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in graph.modules())
        assert not any(getattr(m, "inplace", False) for m in graph.modules())
    with pytest.raises(ValueError, match="output must be"):
        inference_graph(model, "penultimate")
