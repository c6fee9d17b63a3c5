"""Image transforms of the pipeline: uint8 -> float in [0, 1], resizing, channels, and target domains."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# torchvision's transforms are imported where used (about 2 s): a job whose images need no resize,
# channel conversion or blur never imports torchvision.

def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 -> float32 in [0, 1]; floating images are returned as float32 unchanged."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    if images.is_floating_point():
        return images.to(torch.float32)
    raise TypeError(f"to_float expects uint8 or floating images, got {images.dtype}")


def resize(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Resize (N, C, H, W) images to ``size`` (int: square) with antialiased bilinear interpolation
    (e.g. STL-10 96x96 -> 32x32); keeps the dtype (uint8 stays uint8)."""
    hw = [int(size), int(size)] if isinstance(size, (int, np.integer)) else [int(s) for s in size]
    if list(images.shape[-2:]) == hw:
        return images
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    return TF.resize(images, hw, interpolation=InterpolationMode.BILINEAR, antialias=True)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (N, C, H, W) images to ``channels`` (1 or 3): gray -> RGB repeats the channel, RGB -> gray
    uses the ITU-R 601-2 luma weights (torchvision's rgb_to_grayscale)."""
    c = images.shape[-3]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.repeat_interleave(3, dim=-3)
    if c == 3 and channels == 1:
        from torchvision.transforms.v2 import functional as TF

        return TF.rgb_to_grayscale(images, num_output_channels=1)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def _blur(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    return TF.gaussian_blur(x, kernel_size=[5, 5], sigma=[1.0, 1.0])


def _noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


DOMAINS: dict[str, tuple[str, object]] = {
    "identity": ("unchanged", lambda x, g: x),
    "invert": ("negative image: 1 - x (255 - x on uint8)", lambda x, g: 1.0 - x),
    "blur": ("Gaussian blur, 5x5 kernel, sigma 1 pixel", _blur),
    "contrast": ("contrast halved around mid-grey: 0.5 * x + 0.25", lambda x, g: 0.5 * x + 0.25),
    "noise": ("additive Gaussian noise, std 0.1 of the range, clipped; drawn from `seed`", _noise),
}


def apply_domain(images: torch.Tensor, domain: str, seed: int = 0) -> torch.Tensor:
    """Shift images into a target domain (deterministic for a given ``seed``); keeps shape and dtype.

    ``domain`` is one of ``DOMAINS`` (identity, invert, blur, contrast, noise) or several joined with '+'
    ('invert+blur'), applied left to right. Works on uint8 (0..255, rounded back) or float ([0, 1]) images.
    """
    steps = [s.strip() for s in str(domain).split("+")]
    unknown = [s for s in steps if s not in DOMAINS]
    if unknown:
        raise ValueError(f"unknown domain {unknown} in {domain!r}; available: {', '.join(DOMAINS)}")
    if steps == ["identity"]:
        return images
    gen = torch.Generator().manual_seed(int(seed))
    x = to_float(images)
    for s in steps:
        x = DOMAINS[s][1](x, gen)
    x = x.clamp(0.0, 1.0)
    if images.dtype == torch.uint8:
        return (x * 255.0).round().to(torch.uint8)
    return x.to(images.dtype)



def prepare_images(images: torch.Tensor, *, channels: int, size: int, domain: str = "identity", seed: int = 0):
    """uint8 images -> model inputs: channels, resize to size x size, domain shift, float in [0, 1]."""
    x = to_channels(images, channels)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = resize(x, size)
    return to_float(apply_domain(x, domain, seed))

