"""Model factories the model tests name by import path (``tests.fixtures_models:tiny_classifier``)."""

from torch import nn


def tiny_classifier(num_classes: int, in_channels: int, image_size: int) -> nn.Sequential:
    """conv (module '0') -> ReLU ('1') -> 2x2 average pool -> flatten -> Linear(16, num_classes) ('4')."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )
