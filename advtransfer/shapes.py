"""The shapes world: procedurally rendered images whose factors of variation are known by construction.

In the spirit of dSprites / 3dshapes, every image shows one main object on a background, sometimes with a
second object that occludes it or is occluded by it. Independent factors, drawn from a seeded generator:

- ``shape``: square, circle, triangle, cross, ell (index into :data:`SHAPES`);
- ``hue`` in [0, 1) (the object's colour, HSV with saturation 0.85 and value 0.9);
- ``scale`` in [0.25, 0.6]: the object's half-size as a fraction of the half-width of the image;
- ``rotation`` in [0, 90) degrees (counter-clockwise);
- ``x``, ``y`` in [-0.45, 0.45]: the centre, as a fraction of the half-width (y grows downwards);
- ``background`` in [0.1, 0.5]: grey level of the background; ``texture`` in {0, 1}: diagonal stripes;
- nuisances: ``noise`` in [0, 0.08] (std of Gaussian pixel noise) and ``light`` in [0, 360) degrees (the
  direction of a +-15 % brightness gradient);
- ``second`` in {0, 1}: a second object (its own random shape, hue, a smaller scale and position) is drawn;
  ``front`` in {0, 1}: whether the main object is in front of it (0 when there is none).

``render`` returns the images together with each image's factors, its foreground mask (pixels of any
object), the visible part of the main object, an edge map (pixels whose object label differs from a
4-neighbour's) and a depth map (0 background, 1 the object behind, 2 the object in front or a single
object). Rendering is vectorised over the batch and anti-aliased by 2x2 supersampling; the same seed gives
the same images on every machine (the factors come from a torch.Generator on the CPU).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from advtransfer.registry import SHAPE_NAMES, SHAPES_ATTRIBUTES, SHAPES_HUE_BINS, SHAPES_LABELLINGS

SHAPES = SHAPE_NAMES  # ("square", "circle", "triangle", "cross", "ell"), the class order
FACTORS = ("shape", "hue", "scale", "rotation", "x", "y", "background", "texture", "noise", "light", "second", "front")
SIZE = 32  # the registered data set's images are SIZE x SIZE RGB
_log = logging.getLogger(__name__)
SPLIT_SIZES = {"train": 10000, "test": 2000}
SPLIT_SEEDS = {"train": 0, "test": 1}  # different generators: no image of one split is drawn for another
_CHUNK = 1000


@dataclass
class ShapesBatch:
    """A rendered batch: ``images`` uint8 (N, 3, H, W); ``factors`` name -> (N,) tensor (``shape``,
    ``texture``, ``second``, ``front`` int64, the rest float64); ``mask`` (pixels of any object), ``main``
    (visible pixels of the main object) and ``edges`` bool (N, H, W); ``depth`` int64 (N, H, W)."""

    images: torch.Tensor
    factors: dict[str, torch.Tensor]
    mask: torch.Tensor
    main: torch.Tensor
    edges: torch.Tensor
    depth: torch.Tensor


def draw_factors(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Independent factors of ``n`` images (module docstring), in a fixed order of draws from ``generator``."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)

    factors = {
        "shape": torch.randint(len(SHAPES), (n,), generator=generator),
        "hue": uniform(0.0, 1.0),
        "scale": uniform(0.25, 0.6),
        "rotation": uniform(0.0, 90.0),
        "x": uniform(-0.45, 0.45),
        "y": uniform(-0.45, 0.45),
        "background": uniform(0.1, 0.5),
        "texture": torch.randint(2, (n,), generator=generator),
        "noise": uniform(0.0, 0.08),
        "light": uniform(0.0, 360.0),
        "second": torch.randint(2, (n,), generator=generator),
        "front": torch.randint(2, (n,), generator=generator),
    }
    factors["front"] = factors["front"] * factors["second"]
    # the second object's own appearance (not factors of the main object; drawn after them)
    factors["_shape2"] = torch.randint(len(SHAPES), (n,), generator=generator)
    factors["_hue2"] = uniform(0.0, 1.0)
    factors["_scale2"] = uniform(0.2, 0.35)
    factors["_rotation2"] = uniform(0.0, 90.0)
    factors["_x2"] = uniform(-0.5, 0.5)
    factors["_y2"] = uniform(-0.5, 0.5)
    return factors


def _square(u, v):
    return (u.abs() <= 1) & (v.abs() <= 1)


def _circle(u, v):
    return u * u + v * v <= 1


def _triangle(u, v):  # apex up, centroid near the origin
    sqrt3 = math.sqrt(3.0)
    return (v <= 0.75) & (sqrt3 * u - v <= 1.0) & (-sqrt3 * u - v <= 1.0)


def _cross(u, v):
    au, av = u.abs(), v.abs()
    return ((au <= 1 / 3) & (av <= 1)) | ((av <= 1 / 3) & (au <= 1))


def _ell(u, v):
    return ((u >= -1) & (u <= -1 / 3) & (v.abs() <= 1)) | ((u.abs() <= 1) & (v >= 1 / 3) & (v <= 1))


_INSIDE = (_square, _circle, _triangle, _cross, _ell)  # in the order of SHAPES


def inside(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether the points (u, v) of each image (B, P), in the object's own frame (half-size 1, y down),
    lie inside its shape (index into SHAPES, (B,)); each shape's test runs on its own images only."""
    out = torch.zeros(u.shape, dtype=torch.bool)
    for index, test in enumerate(_INSIDE):
        rows = torch.nonzero(shape == index).flatten()
        if len(rows):
            out[rows] = test(u[rows], v[rows])
    return out


def _object(shape, scale, rotation_deg, cx, cy, gx, gy) -> torch.Tensor:
    """Coverage (B, P) of an object given by per-image tensors, on the grid points (gx, gy) (P,)."""
    theta = torch.deg2rad(rotation_deg).float()[:, None]
    cx, cy, scale = cx.float(), cy.float(), scale.float()
    dx, dy = gx[None, :] - cx[:, None], gy[None, :] - cy[:, None]
    cos, sin = torch.cos(theta), torch.sin(theta)
    u = (cos * dx + sin * dy) / scale[:, None]  # rotate the point by -theta: the object by +theta
    v = (-sin * dx + cos * dy) / scale[:, None]
    return inside(shape, u, v)


def _hsv_to_rgb(h: torch.Tensor, s: float, v: float) -> torch.Tensor:
    """(B,) hues in [0, 1) -> (B, 3) RGB in [0, 1] (the standard HSV cone)."""
    k = (torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype)[None, :] + 6.0 * h[:, None]) % 6.0
    return v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def _render_chunk(f: dict[str, torch.Tensor], size: int, noise: torch.Tensor) -> ShapesBatch:
    n, hi = len(f["shape"]), 2 * size
    coords = (torch.arange(hi, dtype=torch.float32) + 0.5) / hi * 2 - 1  # supersampled pixel centres in [-1, 1]
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    gx, gy = gx.reshape(-1), gy.reshape(-1)
    main = _object(f["shape"], f["scale"], f["rotation"], f["x"], f["y"], gx, gy)
    other = _object(f["_shape2"], f["_scale2"], f["_rotation2"], f["_x2"], f["_y2"], gx, gy) & (
        f["second"][:, None] == 1
    )
    front = f["front"][:, None] == 1
    main_visible = main & (front | ~other)
    other_visible = other & ~main_visible
    # object label per supersampled pixel: 0 background, 1 main, 2 second
    label = torch.where(main_visible, 1, torch.where(other_visible, 2, 0)).reshape(n, hi, hi)

    background = f["background"].float()[:, None] * torch.ones_like(gx)[None, :]
    stripes = (torch.sin(12.0 * math.pi * (gx + gy) / 2) > 0).float()
    background = background + 0.2 * f["texture"].float()[:, None] * (stripes[None, :] - 0.5)
    rgb = background[:, None, :].expand(n, 3, -1).clone()
    colour_main = _hsv_to_rgb(f["hue"].float(), 0.85, 0.9)
    colour_other = _hsv_to_rgb(f["_hue2"].float(), 0.85, 0.9)
    flat = label.reshape(n, 1, -1)
    rgb = torch.where(flat == 1, colour_main[:, :, None], rgb)
    rgb = torch.where(flat == 2, colour_other[:, :, None], rgb)
    phi = torch.deg2rad(f["light"]).float()[:, None]
    rgb = rgb * (1 + 0.15 * (torch.cos(phi) * gx[None, :] + torch.sin(phi) * gy[None, :]))[:, None, :]
    image = F.avg_pool2d(rgb.reshape(n, 3, hi, hi), 2)  # 2x2 supersampling -> (n, 3, size, size)
    image = image + f["noise"].float()[:, None, None, None] * noise
    images = (image.clamp(0, 1) * 255).round().to(torch.uint8)

    # masks and depth at the output resolution: a pixel belongs to what covers most of its 4 sub-pixels
    def majority(m: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(m.float()[:, None], 2)[:, 0] > 0.5

    main_px, other_px = majority(label == 1), majority(label == 2)
    mask = main_px | other_px
    ids = torch.where(main_px, 1, torch.where(other_px, 2, 0))
    edges = torch.zeros_like(mask)
    edges[:, 1:, :] |= ids[:, 1:, :] != ids[:, :-1, :]
    edges[:, :-1, :] |= ids[:, :-1, :] != ids[:, 1:, :]
    edges[:, :, 1:] |= ids[:, :, 1:] != ids[:, :, :-1]
    edges[:, :, :-1] |= ids[:, :, :-1] != ids[:, :, 1:]
    main_front = (f["front"] == 1) | (f["second"] == 0)
    depth_main = torch.where(main_front, 2, 1)[:, None, None]
    depth_other = torch.where(main_front, 1, 2)[:, None, None]
    depth = torch.where(main_px, depth_main, torch.where(other_px, depth_other, 0))
    return ShapesBatch(images, {k: v for k, v in f.items() if not k.startswith("_")}, mask, main_px, edges, depth)


def render(n: int, seed: int, size: int = SIZE) -> ShapesBatch:
    """Render ``n`` images (``size`` x ``size`` RGB) with factors drawn from torch.Generator(``seed``)."""
    if n < 1 or size < 8:
        raise ValueError(f"shapes.render: need n >= 1 and size >= 8, got n={n}, size={size}")
    generator = torch.Generator().manual_seed(int(seed))
    return render_factors(draw_factors(n, generator), size, generator)


def render_factors(
    factors: dict[str, torch.Tensor], size: int = SIZE, generator: torch.Generator | None = None
) -> ShapesBatch:
    """Render the images of given factors (every key ``draw_factors`` returns, the second object's
    appearance under ``_``-prefixed keys), pixel noise from ``generator``; in chunks of 1000 images."""
    n = len(factors["shape"])
    noise = torch.randn(n, 3, size, size, generator=generator, dtype=torch.float32)
    parts = [
        _render_chunk({k: v[i : i + _CHUNK] for k, v in factors.items()}, size, noise[i : i + _CHUNK])
        for i in range(0, n, _CHUNK)
    ]
    return ShapesBatch(
        images=torch.cat([p.images for p in parts]),
        factors={k: torch.cat([p.factors[k] for p in parts]) for k in parts[0].factors},
        mask=torch.cat([p.mask for p in parts]),
        main=torch.cat([p.main for p in parts]),
        edges=torch.cat([p.edges for p in parts]),
        depth=torch.cat([p.depth for p in parts]),
    )


def hue_bin(hue: torch.Tensor) -> torch.Tensor:
    """Index into SHAPES_HUE_BINS (red, green, blue): bins of width 1/3 centred on hues 0, 1/3 and 2/3."""
    return (((hue + 1 / 6) % 1.0) * len(SHAPES_HUE_BINS)).long().clamp_max(len(SHAPES_HUE_BINS) - 1)


def is_large(f):
    return f["scale"] > 0.425  # the middle of the scale range


def identity(f: dict[str, torch.Tensor]) -> torch.Tensor:
    """shape x hue bin x scale bin (small / large), in the order of the registry's identity classes."""
    return (f["shape"] * len(SHAPES_HUE_BINS) + hue_bin(f["hue"])) * 2 + is_large(f).long()


# attribute -> (N,) bool of the factors; the first six define the identity, the others are nuisance
ATTRIBUTES = {
    "is_large": is_large,
    "is_square": lambda f: f["shape"] == 0,
    "is_circle": lambda f: f["shape"] == 1,
    "is_triangle": lambda f: f["shape"] == 2,
    "is_red": lambda f: hue_bin(f["hue"]) == 0,
    "is_blue": lambda f: hue_bin(f["hue"]) == 2,
    "is_left": lambda f: f["x"] < 0,
    "is_top": lambda f: f["y"] < 0,
    "rotated_over_45": lambda f: f["rotation"] > 45,
    "textured": lambda f: f["texture"] == 1,
    "bright_background": lambda f: f["background"] > 0.3,
    "noisy": lambda f: f["noise"] > 0.04,
    "has_second": lambda f: f["second"] == 1,
    "lit_from_left": lambda f: torch.cos(torch.deg2rad(f["light"])) < 0,
}
DEFINES_IDENTITY = frozenset({"is_large", "is_square", "is_circle", "is_triangle", "is_red", "is_blue"})
assert tuple(ATTRIBUTES) == SHAPES_ATTRIBUTES


def labels(factors: dict[str, torch.Tensor], labelling: str) -> torch.Tensor:
    """int64 labels of a labelling of the registry (SHAPES_LABELLINGS): 'shape', 'identity' or an attribute
    (0 no, 1 yes)."""
    if labelling == "shape":
        return factors["shape"].clone()
    if labelling == "identity":
        return identity(factors)
    if labelling in ATTRIBUTES:
        return ATTRIBUTES[labelling](factors).long()
    raise ValueError(f"shapes: unknown labelling {labelling!r}; use one of {list(SHAPES_LABELLINGS)}")


@functools.lru_cache(maxsize=2)
def split_batch(split: str, size: int = SIZE) -> ShapesBatch:
    """The registered data set's ``split`` ('train': 10,000 images; 'test': 2,000), rendered once per
    process (a job reading train and validation images renders the train split once); do not modify it."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"shapes: unknown split {split!r}; use one of {tuple(SPLIT_SIZES)}")
    return render(SPLIT_SIZES[split], SPLIT_SEEDS[split], size)


@functools.cache
def _renderer_fingerprint() -> str:
    """Hash of this module's source and the split sizes and seeds: a cache of rendered splits is valid for
    exactly this renderer (an edit here renders afresh, never reuses old images)."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(repr((SPLIT_SIZES, SPLIT_SEEDS, SIZE)).encode())
    return digest.hexdigest()[:16]


def cache_path(data_root: str | os.PathLike, split: str) -> Path:
    """Where the rendered ``split`` is cached under ``data_root``: shapes/<split>_<renderer fingerprint>."""
    return Path(data_root) / "shapes" / f"{split}_{_renderer_fingerprint()}.safetensors"


_BATCH_FIELDS = ("images", "mask", "main", "edges", "depth")


@functools.lru_cache(maxsize=2)
def cached_split(data_root: str, split: str) -> ShapesBatch:
    """``split_batch(split)``, read from its cache under ``data_root`` (rendering takes about 30 s for the
    train split on a laptop core; reading the cache, well under one). A missing cache is rendered and
    written atomically (an unwritable ``data_root`` only logs a warning); an unreadable one is rendered
    and replaced."""
    from advtransfer.io import load_tensors, save_tensors

    path = cache_path(data_root, split)
    if path.is_file():
        try:
            stored = load_tensors(path, required=_BATCH_FIELDS)
        except ValueError as err:
            _log.warning("%s; rendering afresh", err)
        else:
            factors = {k.removeprefix("factor_"): v for k, v in stored.items() if k.startswith("factor_")}
            return ShapesBatch(factors=factors, **{k: stored[k] for k in _BATCH_FIELDS})
    batch = split_batch(split)
    tensors = {**{k: getattr(batch, k) for k in _BATCH_FIELDS}, **{f"factor_{k}": v for k, v in batch.factors.items()}}
    try:
        save_tensors(path, tensors, metadata={"split": split, "renderer": _renderer_fingerprint()})
    except OSError as err:
        _log.warning(
            "cannot cache the rendered shapes %s split at %s (%s); it is rendered in every job", split, path, err
        )
    return batch


def read_shapes(
    data_root: Path, split: str, *, verify: bool, seed: int, test_fraction: float, labelling: str = "shape"
):
    """Registry reader of ``shapes`` and ``shapes_<labelling>`` (advtransfer.registry): the split's images
    and their labels under ``labelling`` (the same images for every labelling), from the rendering cached
    under ``data_root`` (:func:`cached_split`; the `dataset` job writes it before any other job reads it).

    ``verify``, ``seed`` and ``test_fraction`` do not apply (the splits are fixed renderings, seeds 0 and 1)."""
    batch = cached_split(str(data_root), split)
    return batch.images.clone(), labels(batch.factors, labelling)
