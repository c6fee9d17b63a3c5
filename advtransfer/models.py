"""The networks of the experiments, and ``build_model``, which turns a model spec into a classifier.

The feature protocol. Every image classifier built here has ``features(x) -> (B, m)``, ``head`` (the
nn.Linear(m, num_classes) that makes the logits), ``feature_dim == m`` and ``forward(x)`` (the logits,
equal to ``head(features(x))`` for the default features). Linear probes (``advtransfer.probe``) and the
metrics (``inference_graph(model, "features")``, a torch.fx trace) only use ``features``. Features are:

- by default the penultimate representation: the input of the network's final classification
  nn.Linear. The built-ins (``advtransfer.registry.MODELS``; ``FeatureClassifier`` subclasses, whose
  ``forward`` is defined once as ``head(features(x))``) and factories returning a model with a
  ``features`` method and a Linear ``head`` define it themselves and are returned as they are. Other
  networks are wrapped in ``Classifier``: that Linear becomes ``head`` and is replaced by nn.Identity in
  the wrapped network, whose output is then the features. The final Linear is timm's
  ``get_classifier()`` for ``timm:`` models, otherwise the last nn.Linear (``named_modules`` order) with
  ``num_classes`` outputs; a network without one needs a named layer;
- with ``features: <layer>`` (a name from ``named_modules()``, e.g. ``layer3``) that layer's output,
  flattened to (B, m), taken by a torch.fx graph (torchvision's ``create_feature_extractor``); ``forward``
  is still the whole network and ``head`` its final Linear (None if it has none).

torchvision architectures expect 3 channels: ``Classifier`` repeats a 1-channel input 3 times in
``forward`` and ``features``. timm models and factories are built for ``in_channels`` themselves.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import fx, nn

from advtransfer.io import load_json, load_model
from advtransfer.registry import MODEL_PREFIXES, MODELS, load_object

log = logging.getLogger(__name__)


class FeatureClassifier(nn.Module):
    """The feature protocol (module docstring) as a base class: a subclass defines ``features(x) -> (B, m)``
    and sets ``head`` (the nn.Linear(m, num_classes)) and ``feature_dim`` (m); ``forward(x)`` is
    ``head(features(x))``, defined once here. The base holds no parameters or buffers, so a subclass's
    state-dict keys are its own modules' (weights files written before it existed still load)."""

    head: nn.Linear
    feature_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define features(x)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SigmoidMLP(FeatureClassifier):
    """One-hidden-layer sigmoid network x -> W2 sigmoid(W1 x + b1) + b2 (the models of Section 4.1)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.head = nn.Linear(n_hidden, n_out)
        self.feature_dim = n_hidden

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations sigmoid(W1 x + b1), what a last-layer refit stacks on."""
        return torch.sigmoid(self.hidden(x))


# Largest |sigmoid''(z)| = 1 / (6 sqrt 3), reached at sigmoid(z) = 1/2 +- 1/(2 sqrt 3).
SIGMOID_SECOND_DERIVATIVE_MAX = 1.0 / (6.0 * 3.0**0.5)


def sigmoid_mlp_smoothness(model: SigmoidMLP) -> torch.Tensor:
    """A smoothness constant beta of a SigmoidMLP: ||J(x) - J(x')||_2 <= beta ||x - x'|| for all x, x'.

    J(x) = W2 diag(sigmoid'(W1 x + b1)) W1 and |sigmoid'(a) - sigmoid'(b)| <= c |a - b| with
    c = max |sigmoid''|, so beta = c ||W2||_2 ||W1||_2 max_k ||w1_k|| (rows w1_k of W1).
    """
    w1, w2 = model.hidden.weight.detach().double(), model.head.weight.detach().double()
    return (
        SIGMOID_SECOND_DERIVATIVE_MAX
        * torch.linalg.matrix_norm(w2, ord=2)
        * torch.linalg.matrix_norm(w1, ord=2)
        * w1.norm(dim=1).max()
    )


# --------------------------------------------------------------------------------------------------
# Image classifiers of the data-distribution experiments (Section 4.2).
#
# Every classifier follows the feature protocol (module docstring). Construction draws from torch's
# global RNG and takes no seed: callers seed it first (``torch.manual_seed(seed)`` or
# ``with torch.random.fork_rng(): torch.manual_seed(seed); ...``), so the same seed builds bit-identical
# initial weights.
# --------------------------------------------------------------------------------------------------


class ResNet18Cifar(FeatureClassifier):
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 conv1 without bias, no max pool.

    ``features`` is the 512-d output of the global average pool (flattened); ``head`` is the final fc.
    State-dict keys: ``backbone.*`` (torchvision's names, fc excluded) and ``head.*``.
    """

    feature_dim = 512

    def __init__(self, num_classes: int, in_channels: int = 3, image_size: int | None = None):
        """``image_size`` is accepted for the registry's factory signature: any size works."""
        super().__init__()
        from torchvision.models import resnet18

        backbone = resnet18(weights=None, num_classes=num_classes)
        backbone.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
        backbone.maxpool = nn.Identity()
        self.head = backbone.fc
        backbone.fc = nn.Identity()
        self.backbone = backbone

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)  # fc is Identity: avgpool + flatten output, (B, 512)


class SmallCNN(FeatureClassifier):
    """A small CNN for 28x28 / 8x8 grayscale (any size works) that trains on a CPU in minutes.

    Two blocks conv3x3 -> BatchNorm -> ReLU (each followed by a 2x2 max pool while the feature map is at
    least 12 pixels wide: 28 -> 14 -> 7, 32 -> 16 -> 8, 8 stays 8), adaptive average pool to 2x2,
    flatten, Linear(4 * 2 * width, hidden) -> ReLU = ``features`` (m = hidden), then ``head``.
    """

    def __init__(
        self, num_classes: int, in_channels: int = 1, image_size: int = 28, width: int = 32, hidden: int = 128
    ):
        super().__init__()
        layers: list[nn.Module] = []
        size, channels = image_size, in_channels
        for out in (width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            if size >= 12:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * channels, hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNNNarrow(SmallCNN):
    """SmallCNN at a quarter of its width (8 and 16 channels): the same features protocol, less capacity."""

    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 28):
        super().__init__(num_classes, in_channels, image_size, width=8)


class Classifier(nn.Module):
    """A network made to follow the feature protocol (module docstring).

    ``net`` is the network with its final classification Linear replaced by nn.Identity, so ``net(x)`` is
    the penultimate representation; ``head`` is that Linear and ``head_name`` its name in the network's
    own state dict (what weights files call it). A network without one keeps its own output layer
    (``head`` is None) and needs ``layer``, the named feature layer. ``gray_to_rgb`` repeats a 1-channel
    input 3 times (torchvision architectures). State-dict keys: ``net.*`` and ``head.*``.
    """

    def __init__(
        self,
        net: nn.Module,
        head_name: str | None,
        *,
        input_shape: tuple[int, int, int],
        layer: str | None = None,
        gray_to_rgb: bool = False,
    ):
        super().__init__()
        head = None if head_name is None else net.get_submodule(head_name)
        if head_name is not None:
            net.set_submodule(head_name, nn.Identity())
        self.net, self.head = net, head
        self.head_name, self.layer, self.gray_to_rgb = head_name, layer, gray_to_rgb
        self._trace_layer()
        self.feature_dim = head.in_features if layer is None else self._measure(input_shape)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._rgb(x)
        if self.layer is None:
            return self.net(x)
        return self._graphs[self.training].forward(x)["features"].flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(self._rgb(x))
        return z if self.head is None else self.head(z)

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if self.gray_to_rgb else x

    def _trace_layer(self):
        """``_graphs``: torch.fx graphs x -> {"features": output of ``layer``} of ``net`` in eval and train
        mode (indexed by ``training``), sharing ``net``'s modules; not submodules, so not in the state dict."""
        from torchvision.models.feature_extraction import create_feature_extractor

        self._graphs = None
        if self.layer is not None:
            with _kept_flags(self.net):
                dual = create_feature_extractor(self.net, {self.layer: "features"}, suppress_diff_warning=True)
            self._graphs = (fx.GraphModule(dual, dual.eval_graph), fx.GraphModule(dual, dual.train_graph))

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._trace_layer()  # the graphs hold the buffers they read, which a device or dtype change replaces
        return self

    @torch.no_grad()
    def _measure(self, input_shape: tuple[int, int, int]) -> int:
        with frozen_on(self, torch.device("cpu")) as model:
            return model.features(torch.zeros(1, *input_shape)).shape[1]


_SPEC_DEFAULTS: dict[str, Any] = {"name": None, "weights": None, "features": None, "pretrained": False}
_SPEC_TYPES = {
    "name": ((str,), "a string"),
    "weights": ((str, os.PathLike, type(None)), "a file path or null"),
    "features": ((str, type(None)), "a layer name or null"),
    "pretrained": ((bool,), "true or false"),
}


class _Network(NamedTuple):
    net: nn.Module
    head_name: str | None  # its final classification Linear (None: it has none)
    protocol: bool  # follows the feature protocol itself
    gray_to_rgb: bool  # expects 3 channels and is given 1


def build_model(
    name: str | Mapping[str, Any], num_classes: int, in_channels: int, image_size: int, *, load_weights: bool = True
) -> nn.Module:
    """A classifier following the feature protocol (module docstring) for ``num_classes`` classes and
    (in_channels, image_size, image_size) inputs.

    ``name`` is a model spec: a model name or a dict {"name", "weights", "features", "pretrained"} (missing
    keys: None, None, False). Names: a built-in (``advtransfer.registry.MODELS``), ``torchvision:<arch>``,
    ``timm:<name>`` (needs timm) or ``package.module:function``, called as
    function(num_classes=, in_channels=, image_size=) and returning an nn.Module whose output is the
    logits. ``features`` names the feature layer; ``pretrained`` downloads torchvision's / timm's weights
    (the only download; the head is then new); ``weights`` is a local state dict (``read_weights``), not
    read when ``load_weights`` is false. Initial weights come from torch's global RNG: seed it first.
    """
    spec = _spec(name)
    name = spec["name"]
    for key, value, low in (
        ("num_classes", num_classes, 2), ("in_channels", in_channels, 1), ("image_size", image_size, 4)
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"build_model({name!r}): {key} must be an integer >= {low}, got {value!r}")
    network = _network(name, spec["pretrained"], num_classes, in_channels, image_size)
    model = _classifier(network, name, spec["features"], num_classes, (in_channels, image_size, image_size))
    if load_weights and spec["weights"] is not None:
        _assign_weights(model, spec["weights"])
    return model


def _spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """A model spec (a name or a dict) as a dict with every key of ``_SPEC_DEFAULTS``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or not set(spec) <= set(_SPEC_DEFAULTS):
        raise ValueError(f"model {spec!r}: expected a model name or a dict with keys {', '.join(_SPEC_DEFAULTS)}")
    spec = {**_SPEC_DEFAULTS, **spec}
    for key, (types, text) in _SPEC_TYPES.items():
        if not isinstance(spec[key], types):
            raise ValueError(f"model {spec['name']!r}: {key} must be {text}, got {spec[key]!r}")
    return spec


def _network(name: str, pretrained: bool, num_classes: int, in_channels: int, image_size: int) -> _Network:
    """The network ``name`` names, built for the given sizes."""
    if name.startswith("torchvision:"):
        return _torchvision(name, pretrained, num_classes, in_channels)
    if name.startswith("timm:"):
        return _timm(name, pretrained, num_classes, in_channels)
    if name not in MODELS and ":" not in name:
        choices = ", ".join([*sorted(MODELS), *(f"'{prefix}<name>'" for prefix in MODEL_PREFIXES)])
        raise ValueError(f"unknown model {name!r}; choose a built-in or a form: {choices} or 'package.module:function'")
    if pretrained:
        raise ValueError(f"model {name!r}: pretrained is for torchvision: and timm: models; give local weights instead")
    factory = load_object(MODELS.get(name, name))
    net = factory(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if not isinstance(net, nn.Module):
        raise ValueError(f"model {name!r}: the factory returned a {type(net).__name__}, not an nn.Module")
    protocol = _follows_protocol(net)
    return _Network(net, "head" if protocol else _final_linear(net, num_classes), protocol, False)


def _torchvision(name: str, pretrained: bool, num_classes: int, in_channels: int) -> _Network:
    import torchvision

    arch = name.removeprefix("torchvision:")
    archs = torchvision.models.list_models(module=torchvision.models)
    if arch not in archs:
        raise ValueError(
            f"unknown torchvision architecture in model {name!r}{_did_you_mean(arch, archs)}; "
            "the choices are torchvision.models.list_models(module=torchvision.models)"
        )
    if in_channels not in (1, 3):
        raise ValueError(f"model {name!r}: torchvision architectures take 1- or 3-channel images, not {in_channels}")
    if pretrained:
        net = _pretrained_torchvision(name, arch, num_classes)
    else:
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    return _Network(net, _final_linear(net, num_classes), False, in_channels == 1)


def _pretrained_torchvision(name: str, arch: str, num_classes: int) -> nn.Module:
    """torchvision's default weights for ``arch`` (a download), with a new final Linear for ``num_classes``."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    net = torchvision.models.get_model(arch, weights=weights)
    pretrained_classes = len(weights.meta["categories"])
    if pretrained_classes == num_classes:
        return net
    head_name = _final_linear(net, pretrained_classes)
    if head_name is None:
        raise ValueError(f"model {name!r}: no final nn.Linear to replace for {num_classes} classes")
    old = net.get_submodule(head_name)
    net.set_submodule(head_name, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
    return net


def _timm(name: str, pretrained: bool, num_classes: int, in_channels: int) -> _Network:
    try:
        import timm
    except ImportError as err:
        raise ValueError(f"model {name!r} needs timm, which is not installed: pip install timm") from err
    arch = name.removeprefix("timm:")
    if not timm.is_model(arch):
        hint = _did_you_mean(arch, timm.list_models())
        raise ValueError(f"unknown timm model in {name!r}{hint}; the choices are timm.list_models()")
    net = timm.create_model(arch, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels)
    classifier = net.get_classifier()
    is_head = isinstance(classifier, nn.Linear) and classifier.out_features == num_classes
    head_name = next((n for n, m in net.named_modules() if m is classifier), None) if is_head else None
    return _Network(net, head_name, False, False)


def _follows_protocol(net: nn.Module) -> bool:
    """Has a ``features`` method, a Linear ``head`` and ``feature_dim`` (the built-ins do)."""
    has_method = inspect.isfunction(getattr(type(net), "features", None))
    return has_method and isinstance(getattr(net, "head", None), nn.Linear) and hasattr(net, "feature_dim")


def _final_linear(net: nn.Module, num_classes: int) -> str | None:
    """The name of the last nn.Linear with ``num_classes`` outputs (``named_modules`` order), or None."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    return names[-1] if names else None


def _classifier(
    network: _Network, name: str, layer: str | None, num_classes: int, input_shape: tuple[int, int, int]
) -> nn.Module:
    """``network`` itself if it follows the protocol with default features, else wrapped in Classifier."""
    if network.protocol and layer is None:
        return network.net
    layers = [n for n, _ in network.net.named_modules() if n]
    shallow = [n for n in layers if n.count(".") <= 1]
    shown = _first(shallow, 20) + (" and deeper ones" if len(shallow) < len(layers) else "")
    if layer is None and network.head_name is None:
        raise ValueError(
            f"model {name!r} has no final nn.Linear with {num_classes} outputs to take features from; "
            f"name the feature layer with features: <layer> (its layers: {shown})"
        )
    if layer is not None and layer not in layers:
        hint = _did_you_mean(layer, layers)
        raise ValueError(f"model {name!r}: unknown feature layer {layer!r}{hint}; its layers: {shown}")
    net, head_name, _, gray_to_rgb = network
    return Classifier(net, head_name, input_shape=input_shape, layer=layer, gray_to_rgb=gray_to_rgb)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# --------------------------------------------------------------------------------------------------
# Local weights
# --------------------------------------------------------------------------------------------------


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a .safetensors file, or in a .pt / .pth / .bin file read by torch.load's
    ``weights_only`` unpickler (nothing else is ever unpickled); a {"state_dict": ...} or {"model": ...}
    wrapper is unwrapped. Anything but names -> tensors raises ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pt", ".pth", ".bin"):
        raise ValueError(f"{path}: weights must be a .safetensors file or a .pt / .pth / .bin state dict")
    try:
        if suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's weights_only refusal; its advice to unpickle is not ours
        reason = _unpickler_reason(str(err))
        raise ValueError(
            f"{path}: expected a plain state dict; torch.load(weights_only=True), which unpickles only tensors "
            f"and plain containers, refused it ({reason})"
        ) from err
    except (SafetensorError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable {suffix} state dict ({err})") from err
    if isinstance(state, Mapping):
        state = next((state[k] for k in ("state_dict", "model") if isinstance(state.get(k), Mapping)), state)
    named = isinstance(state, Mapping) and all(isinstance(k, str) for k in state)
    if not named or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (parameter names -> tensors), got a {type(state).__name__}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise ValueError(f"{path}: the weights hold NaN or infinite values ({_first(broken)}): the file is broken")
    return dict(state)


def _unpickler_reason(message: str) -> str:
    """Why torch's weights-only unpickler refused a file (e.g. "unsupported GLOBAL posix.system"), without the
    advice around it to unpickle anyway (weights_only=False runs whatever the file holds)."""
    found = re.search(r"GLOBAL\s+([\w.]+)", message)
    if found:
        return f"unsupported GLOBAL {found.group(1)}: the file asks to call code, not to build tensors"
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", message)
    return found.group(1).strip() if found else "it holds something other than tensors and plain containers"


def _assign_weights(model: nn.Module, path: str | os.PathLike):
    """Load ``read_weights(path)``, keyed as the network's own code names them, into ``model``.

    Head entries of another shape (another number of classes) are skipped and logged, leaving a fresh
    head (a fine-tuning start); any other missing, unexpected or mismatched entry raises ValueError.
    """
    state = read_weights(path)
    keys, head = _native_keys(model)
    own = model.state_dict()
    mismatched = [k for k in state if k in keys and state[k].shape != own[keys[k]].shape]
    skipped = [k for k in mismatched if head is not None and k.startswith(head)]
    problems = {
        "missing": [k for k in keys if k not in state],
        "unexpected": [k for k in state if k not in keys],
        "of another shape": [k for k in mismatched if k not in skipped],
    }
    found = "; ".join(f"{what}: {_first(names)}" for what, names in problems.items() if names)
    if found:
        raise ValueError(f"{path}: the weights do not match the model ({found})")
    if skipped:
        log.warning("%s: not loading %s (another number of classes): the head starts fresh", path, ", ".join(skipped))
    model.load_state_dict({**own, **{keys[k]: v for k, v in state.items() if k not in skipped}})


def _native_keys(model: nn.Module) -> tuple[dict[str, str], str | None]:
    """{key in the network's own state dict: key in ``model``'s} and the prefix of its head's keys."""
    if not isinstance(model, Classifier):
        return {k: k for k in model.state_dict()}, "head."
    keys = {k: f"net.{k}" for k in model.net.state_dict()}
    if model.head is None:
        return keys, None
    keys.update({f"{model.head_name}.{k}": f"head.{k}" for k in model.head.state_dict()})
    return keys, f"{model.head_name}."


def _first(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


@contextmanager
def frozen_on(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Yield ``model`` in eval mode on ``device`` without changing the caller's model.

    If the model already lives on ``device`` it is used in place and every submodule's training flag
    is restored on exit; otherwise a deep copy is moved there. Use under ``torch.no_grad()``.
    """
    params = list(model.parameters()) + list(model.buffers())
    here = all(_same_device(p.device, device) for p in params)
    if not here:
        yield copy.deepcopy(model).to(device).eval()
        return
    with _kept_flags(model):
        model.eval()
        yield model


@contextmanager
def _kept_flags(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's training flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


class _Features(nn.Module):
    """``model.features`` as a module's forward, so torch.fx can trace it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def inference_graph(model: nn.Module, output: str = "logits") -> nn.Module:
    """An eval-mode copy of ``model``'s x -> logits (or x -> ``features``) for Jacobian products: a torch.fx
    graph with every BatchNorm folded into the convolution or linear layer before it (torch.fx ``fuse``)
    and in-place activations made out-of-place; ``model`` is unchanged.

    The same function up to float rounding. Folding removes batch norm's backward and forward-mode work
    (as costly as SmallCNN's convolutions); without in-place ops ``torch.func.linearize`` can constant-fold
    the primal pass, so a traced jvp costs one forward pass instead of three (ResNet-18; see
    docs/performance.md). Models torch.fx cannot trace fail here with torch's message.
    """
    from torch.fx.experimental.optimization import fuse

    if output not in ("logits", "features"):
        raise ValueError(f"inference_graph: output must be 'logits' or 'features', got {output!r}")
    frozen = copy.deepcopy(model).eval()
    for module in frozen.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return fuse(_Features(frozen) if output == "features" else frozen, inplace=True)


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":
        ia = a.index if a.index is not None else torch.cuda.current_device()
        ib = b.index if b.index is not None else torch.cuda.current_device()
        return ia == ib
    return True


def load_classifier(path: str | os.PathLike) -> nn.Module:
    """Rebuild a classifier from its safetensors file and JSON sidecar; returned in eval mode.

    The sidecar's ``architecture`` entry holds build_model's arguments: {"name": model spec (a name or a
    dict), "num_classes", "in_channels", "image_size"}. Nothing is downloaded or read but the two files
    (``pretrained`` and ``weights`` are ignored). Problems name the file.
    """
    sidecar = Path(path).with_suffix(".json")
    info = load_json(sidecar)
    try:
        architecture = dict(info["architecture"])
        spec = {**_spec(architecture.pop("name")), "pretrained": False}
        model = build_model(spec, **architecture, load_weights=False)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{sidecar}: cannot rebuild the model of its 'architecture' entry ({err})") from err
    return load_model(path, model).eval()
