"""Model registry: the networks of the experiments, built from torch / torchvision parts."""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from advtransfer.io import load_json, load_model


class SigmoidMLP(nn.Module):
    """One-hidden-layer sigmoid network x -> W2 sigmoid(W1 x + b1) + b2 (the models of Section 4.1)."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.hidden = nn.Linear(n_in, n_hidden)
        self.head = nn.Linear(n_hidden, n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations sigmoid(W1 x + b1), what a last-layer refit stacks on."""
        return torch.sigmoid(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


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
# Every classifier exposes ``features(x) -> (B, m)``, the penultimate representation a linear probe
# stacks on, and ``head``, an nn.Linear(m, num_classes), with ``forward(x) == head(features(x))``.
# ``feature_dim`` is m. Construction draws from torch's global RNG and takes no seed: callers seed it
# first (``torch.manual_seed(seed)`` or ``with torch.random.fork_rng(): torch.manual_seed(seed); ...``),
# so the same seed builds bit-identical initial weights.
# --------------------------------------------------------------------------------------------------


class ResNet18Cifar(nn.Module):
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 conv1 without bias, no max pool.

    ``features`` is the 512-d output of the global average pool (flattened); ``head`` is the final fc.
    State-dict keys: ``backbone.*`` (torchvision's names, fc excluded) and ``head.*``.
    """

    feature_dim = 512

    def __init__(self, num_classes: int, in_channels: int = 3):
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallCNN(nn.Module):
    """A small CNN for 28x28 / 8x8 grayscale (any size works) that trains on a CPU in minutes.

    Two blocks conv3x3 -> BatchNorm -> ReLU (each followed by a 2x2 max pool while the feature map is at
    least 12 pixels wide: 28 -> 14 -> 7, 32 -> 16 -> 8, 8 stays 8), adaptive average pool to 2x2,
    flatten, Linear(4 * 2 * width, hidden) -> ReLU = ``features`` (m = hidden), then ``head``.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 28, width: int = 32, hidden: int = 128):
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {
    "resnet18_cifar": lambda num_classes, in_channels, image_size: ResNet18Cifar(num_classes, in_channels),
    "small_cnn": lambda num_classes, in_channels, image_size: SmallCNN(num_classes, in_channels, image_size),
}


def build_model(name: str, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Build a registered classifier (``MODELS``) for (in_channels, image_size, image_size) inputs.

    Initial weights come from torch's global RNG: seed it before calling (see the note above).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    for key, value, low in (("num_classes", num_classes, 2), ("in_channels", in_channels, 1), ("image_size", image_size, 4)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"build_model({name!r}): {key} must be an integer >= {low}, got {value!r}")
    return MODELS[name](num_classes, in_channels, image_size)


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
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
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
    """Rebuild a classifier from its safetensors file and JSON sidecar (key ``architecture`` holds
    build_model's arguments); returned in eval mode. Problems name the file."""
    sidecar = Path(path).with_suffix(".json")
    info = load_json(sidecar)
    try:
        model = build_model(**info["architecture"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{sidecar}: no usable 'architecture' entry ({err}); delete it and rerun") from err
    return load_model(path, model).eval()
