"""Models: shapes, the feature protocol (built-ins, torchvision:, timm:, factories, named feature
layers), the CIFAR ResNet stem, seeding, local weights (read safely), reloading from a sidecar, errors."""

import collections
import copy
import logging
import re
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from advtransfer import registry
from advtransfer.io import save_model
from advtransfer.models import (
    MODELS,
    Classifier,
    SmallCNN,
    build_model,
    frozen_on,
    inference_graph,
    load_classifier,
    read_weights,
)
from advtransfer.runtime import resolve_device

CASES = [(3, 32), (1, 28), (1, 8)]
FEATURE_DIM = {"resnet18_cifar": 512, "small_cnn": 128, "small_cnn_narrow": 128, "lipschitz_mlp": 128}


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


# ------------------------------------------------------------------------- the open forms of a model

FACTORY = "tests.fixtures_models:tiny_classifier"


def check_protocol(model: nn.Module, x: torch.Tensor, num_classes: int, feature_dim: int):
    """features (B, m), head nn.Linear(m, classes), forward == head(features) in eval mode."""
    model.eval()
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (len(x), num_classes)
    assert feats.shape == (len(x), feature_dim) and model.feature_dim == feature_dim
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (feature_dim, num_classes)
    torch.testing.assert_close(model.head(feats), logits)


def test_registry_is_the_only_list_of_built_ins():
    assert MODELS is registry.MODELS


@pytest.mark.parametrize("channels", [3, 1])
def test_torchvision_model_follows_the_protocol(channels):
    """The input of resnet18's fc is the features; a 1-channel input is repeated to the 3 it expects."""
    torch.manual_seed(0)
    model = build_model("torchvision:resnet18", 5, channels, 32)
    assert isinstance(model, Classifier) and model.head_name == "fc" and isinstance(model.net.fc, nn.Identity)
    assert {k.split(".")[0] for k in model.state_dict()} == {"net", "head"}
    x = torch.rand(2, channels, 32, 32)
    check_protocol(model, x, 5, 512)
    if channels == 1:
        with torch.no_grad():
            torch.testing.assert_close(model(x), model.head(model.net(x.repeat(1, 3, 1, 1))))


def test_named_feature_layer_and_inference_graphs():
    """features: layer3 is resnet18's layer3 output flattened; forward is still the whole network; both
    torch.fx inference graphs (named layer and default features) compute the same functions."""
    torch.manual_seed(0)
    model = build_model({"name": "torchvision:resnet18", "features": "layer3"}, 5, 3, 32).eval()
    net, x = model.net, torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        stem = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        expected = net.layer3(net.layer2(net.layer1(stem))).flatten(1)
        torch.testing.assert_close(model.features(x), expected)
        torch.testing.assert_close(model(x), model.head(net(x)))
    assert model.feature_dim == 256 * 2 * 2 and model.head.out_features == 5
    default = build_model("torchvision:resnet18", 5, 3, 32).eval()
    for m in (model, default):
        for output, reference in (("features", m.features), ("logits", m)):
            graph = inference_graph(m, output)
            assert not any(isinstance(b, nn.BatchNorm2d) for b in graph.modules())
            with torch.no_grad():
                torch.testing.assert_close(graph(x), reference(x), rtol=1e-4, atol=1e-5)
    # train mode, a mixed state kept through a dtype change (the layer's graphs are rebuilt), copies
    model.train()
    model.net.bn1.eval()
    model.double()
    assert model.training and not model.net.bn1.training
    assert model.features(x.double()).shape == (2, 1024)
    assert copy.deepcopy(model).eval().features(x.double()).dtype == torch.float64


def test_timm_model_follows_the_protocol():
    pytest.importorskip("timm")
    torch.manual_seed(0)
    model = build_model("timm:test_resnet", 4, 1, 32)  # tiny, randomly initialised
    assert isinstance(model, Classifier) and model.head_name == "fc"
    check_protocol(model, torch.rand(2, 1, 32, 32), 4, model.head.in_features)


def test_factory_model_follows_the_protocol():
    torch.manual_seed(0)
    model = build_model(FACTORY, 3, 1, 8)
    assert isinstance(model, Classifier) and model.head_name == "4"
    check_protocol(model, torch.rand(2, 1, 8, 8), 3, 16)
    layered = build_model({"name": FACTORY, "features": "1"}, 3, 1, 8)  # the ReLU: 4 x 8 x 8
    with torch.no_grad():
        assert layered.eval().features(torch.rand(2, 1, 8, 8)).shape == (2, 256) and layered.feature_dim == 256
    # a factory whose model follows the protocol itself is returned as it is
    assert type(build_model("advtransfer.models:SmallCNN", 3, 1, 8)) is SmallCNN


def test_built_in_with_a_named_layer_keeps_its_weights():
    torch.manual_seed(3)
    plain = build_model("small_cnn", 3, 1, 8)
    torch.manual_seed(3)
    layered = build_model({"name": "small_cnn", "features": "body.2"}, 3, 1, 8)
    assert isinstance(layered, Classifier) and layered.feature_dim == 32 * 8 * 8
    mapped = {f"net.{k}" if not k.startswith("head.") else k: v for k, v in plain.state_dict().items()}
    assert mapped.keys() == layered.state_dict().keys()
    assert all(torch.equal(v, layered.state_dict()[k]) for k, v in mapped.items())
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(layered.eval()(x), plain.eval()(x))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("vgg16", r"'vgg16'.*resnet18_cifar, small_cnn, small_cnn_narrow, 'torchvision:<name>', 'timm:<name>'"
                  r".*package\.module:function"),
        ("torchvision:resnet99", r"torchvision:resnet99.*did you mean.*resnet.*list_models"),
        ({"name": "torchvision:resnet18", "features": "layer9"}, r"layer9.*did you mean.*layer3.*layers: conv1, bn1"),
        ("torchvision:squeezenet1_0", r"no final nn\.Linear with 10 outputs.*features: <layer>.*classifier"),
        ({"name": "small_cnn", "pretrained": True}, r"pretrained is for torchvision: and timm:"),
        ({"name": "small_cnn", "weight": "w.pt"}, r"keys name, weights, features, pretrained"),
        ({"name": "small_cnn", "features": 3}, r"features must be a layer name"),
        ("builtins:dict", r"returned a dict, not an nn\.Module"),
        ("no_such_module:f", r"cannot import module"),
    ],
)
def test_bad_model_specs_raise_naming_them_and_the_choices(spec, expected):
    with pytest.raises(ValueError, match=expected):
        build_model(spec, 10, 3, 32)


def test_unknown_timm_model_and_missing_timm_raise(monkeypatch):
    pytest.importorskip("timm")
    with pytest.raises(ValueError, match=r"timm:resnet10tt.*did you mean.*resnet10t.*timm\.list_models"):
        build_model("timm:resnet10tt", 10, 3, 32)
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    with pytest.raises(ValueError, match="pip install timm"):
        build_model("timm:resnet10t", 10, 3, 32)


def test_pretrained_is_the_only_download(monkeypatch):
    """pretrained false builds with weights=None; pretrained true asks torchvision for its default weights
    (simulated here, no network) and puts a fresh Linear for num_classes in place of the 1000-class fc."""
    calls = []
    get_model = torchvision.models.get_model

    def recording(arch, weights=None, **kwargs):
        calls.append(weights)
        return get_model(arch, weights=None, **kwargs)  # never downloads

    monkeypatch.setattr(torchvision.models, "get_model", recording)
    build_model({"name": "torchvision:resnet18", "pretrained": False}, 5, 3, 32)
    model = build_model({"name": "torchvision:resnet18", "pretrained": True}, 5, 3, 32)
    assert calls == [None, torchvision.models.ResNet18_Weights.DEFAULT]
    assert (model.head.in_features, model.head.out_features) == (512, 5)


# ---------------------------------------------------------------------------------------- local weights


class WritesAMarker:
    """Unpickling this would create ``marker``: torch.load(weights_only=True) must refuse it."""

    marker = None

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class MyDict(collections.OrderedDict):
    pass


def factory_weights(seed: int = 1, num_classes: int = 3) -> dict[str, torch.Tensor]:
    """A state dict of the factory's network as its own code names it (head = module '4')."""
    from tests.fixtures_models import tiny_classifier

    torch.manual_seed(seed)
    return tiny_classifier(num_classes, 1, 8).state_dict()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_local_weights_load_into_the_wrapped_network(tmp_path, suffix):
    state = factory_weights()
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:  # .pth: wrapped as many training scripts save it
        torch.save(state if suffix == ".pt" else {"state_dict": state, "epoch": 3}, path)
    torch.manual_seed(0)
    model = build_model({"name": FACTORY, "weights": str(path)}, 3, 1, 8)
    assert torch.equal(model.net[0].weight, state["0.weight"]) and torch.equal(model.head.weight, state["4.weight"])
    assert torch.equal(model.head.bias, state["4.bias"])


def test_a_head_for_another_class_count_is_skipped_and_a_body_mismatch_raises(tmp_path, caplog):
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None, num_classes=10).state_dict()
    path = tmp_path / "resnet18.pt"
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="advtransfer"):
        model = build_model({"name": "torchvision:resnet18", "weights": str(path)}, 5, 3, 32)
    assert torch.equal(model.net.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert model.head.out_features == 5 and "fc.weight, fc.bias" in caplog.text and str(path) in caplog.text
    small = factory_weights()
    bad = {
        "shape": {**small, "0.weight": torch.zeros(4, 1, 5, 5)},
        "missing": {k: v for k, v in small.items() if k != "0.bias"},
        "unexpected": {**small, "extra.weight": torch.zeros(1)},
    }
    for what, tensors in bad.items():
        bad_path = tmp_path / f"{what}.safetensors"
        save_file(tensors, str(bad_path))
        key = {"shape": "0.weight", "missing": "0.bias", "unexpected": "extra.weight"}[what]
        with pytest.raises(ValueError, match=rf"{re.escape(str(bad_path))}.*do not match.*{key}"):
            build_model({"name": FACTORY, "weights": str(bad_path)}, 3, 1, 8)
    # not read at all without load_weights (rebuilding a trained model from its own file)
    build_model({"name": FACTORY, "weights": str(tmp_path / "gone.pt")}, 3, 1, 8, load_weights=False)


def test_unsafe_or_broken_weight_files_raise_naming_them(tmp_path):
    """Nothing but tensors and plain containers is unpickled: the marker a code-running pickle would
    write never appears."""
    WritesAMarker.marker = tmp_path / "marker"
    files = {
        "corrupt.pt": lambda p: p.write_bytes(b"not a checkpoint" * 8),
        "corrupt.safetensors": lambda p: p.write_bytes(b"not a checkpoint" * 8),
        "list.pt": lambda p: torch.save([1, 2], p),
        "subclass.pt": lambda p: torch.save(MyDict(w=torch.zeros(1)), p),
        "code.pth": lambda p: torch.save({"w": WritesAMarker()}, p),
        "code.bin": lambda p: torch.save(WritesAMarker(), p),
        "weights.pkl": lambda p: p.write_bytes(b"anything"),
    }
    for name, write in files.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(ValueError, match=r"state dict") as err:
            read_weights(path)
        assert str(path) in str(err.value)
        assert "weights_only=False" not in str(err.value)  # torch's advice to unpickle anyway is not passed on
        if name.startswith("code."):  # the unpickler's own reason: the global it refused
            assert "unsupported GLOBAL" in str(err.value), str(err.value)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            build_model({"name": FACTORY, "weights": str(path)}, 3, 1, 8)
    assert not WritesAMarker.marker.exists()


def test_weights_with_nan_are_refused_as_a_broken_file_not_a_divergence(tmp_path):
    state = factory_weights()
    state["0.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_file(state, str(path))
    with pytest.raises(ValueError, match=r"nan.safetensors: the weights hold NaN or infinite values \(0.weight\)"):
        read_weights(path)


# ------------------------------------------------------------------------------- reload from a sidecar


def test_load_classifier_rebuilds_a_spec_dict_without_reading_weights_or_downloading(tmp_path, monkeypatch):
    spec = {"name": FACTORY, "features": "1", "weights": str(tmp_path / "init.pt"), "pretrained": False}
    torch.save(factory_weights(seed=4), tmp_path / "init.pt")
    model = build_model(spec, 3, 1, 8)
    with torch.no_grad():
        model.head.weight.add_(1.0)  # as after training
    path = tmp_path / "model.safetensors"
    save_model(path, model, {"architecture": {"name": spec, "num_classes": 3, "in_channels": 1, "image_size": 8}})
    (tmp_path / "init.pt").unlink()  # the initial weights are not needed any more
    loaded = load_classifier(path)
    assert isinstance(loaded, Classifier) and loaded.layer == "1" and not loaded.training
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x), model.eval().features(x))
    # a sidecar asking for pretrained weights is rebuilt without them: no download
    monkeypatch.setattr(torchvision.models, "get_model_weights", lambda arch: pytest.fail("asked for a download"))
    resnet = build_model("torchvision:resnet18", 2, 3, 32)
    spec = {"name": "torchvision:resnet18", "pretrained": True}
    arch = {"name": spec, "num_classes": 2, "in_channels": 3, "image_size": 32}
    save_model(tmp_path / "resnet.safetensors", resnet, {"architecture": arch})
    assert load_classifier(tmp_path / "resnet.safetensors").head.out_features == 2


def test_load_classifier_reads_todays_sidecars(tmp_path):
    torch.manual_seed(0)
    model = build_model("small_cnn", 3, 1, 8)
    arch = {"name": "small_cnn", "num_classes": 3, "in_channels": 1, "image_size": 8}
    save_model(tmp_path / "m.safetensors", model, {"architecture": arch})
    loaded = load_classifier(tmp_path / "m.safetensors")
    assert type(loaded) is SmallCNN
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    save_model(tmp_path / "bad.safetensors", model, {"architecture": {**arch, "name": "nope"}})
    with pytest.raises(ValueError, match=r"bad\.json.*architecture.*unknown model 'nope'"):
        load_classifier(tmp_path / "bad.safetensors")
