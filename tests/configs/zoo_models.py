"""Model factories of the tiny model-selection zoo (tests/configs/tiny_selection.yaml): ``package.module:function``
entries of the model registry, called as function(num_classes=, in_channels=, image_size=)."""

from torch import nn


def tiny_mlp(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """A one-hidden-layer perceptron; its features are the hidden layer (the input of its last Linear)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * image_size**2, 24), nn.ReLU(), nn.Linear(24, num_classes)
    )
