"""A user's own model factory, named in config as ``tests.example_factory:small_net`` (test_extending)."""

from torch import nn


def small_net(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """conv -> ReLU (module '1') -> 4x4 average pool -> 16 units -> ReLU -> logits; any image size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 16),
        nn.ReLU(),
        nn.Linear(16, num_classes),
    )
