"""Small helpers shared by the library tests."""

from __future__ import annotations

import torch
from torch import nn


def frozen(net: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``net`` in ``dtype``, eval mode, parameters without gradients."""
    net = net.to(dtype).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
