"""Knowledge transfer among tasks (Section 4.4, Taskonomy-like) on the shapes world.

The paper's Section 4.4 takes Taskonomy's task networks (one encoder architecture for every task, a
task-specific decoder) and compares, for every pair of tasks, how well adversarial examples of the source
task's network transfer to the target task's network with how well the source encoder transfers knowledge
to the target task (a decoder of the target task trained on the FROZEN source encoder). Here the tasks are
read off the shapes world (:mod:`advtransfer.shapes`), whose factors are known by construction:

- semantic: ``shape`` (5 classes), ``identity`` (30 classes, shape x hue bin x scale bin), ``colour``
  (3 hue bins);
- 2d: ``autoencoding`` (reconstruct the image), ``denoising`` (reconstruct the clean image from a noisy
  one), ``edges`` (the edge map);
- geometric: ``position`` (x, y), ``scale``, ``rotation`` (cos 4 theta, sin 4 theta), ``mask`` (the
  foreground), ``depth`` (the occlusion order map).

:data:`TASKS` describes them; :func:`task_targets` and :func:`task_inputs` turn a rendered
:class:`~advtransfer.shapes.ShapesBatch` into a task's targets and inputs; :func:`build_task_network` builds
the shared encoder with the task's light decoder (:class:`TaskNetwork`); :func:`task_loss` is the task's
loss, per image with ``reduction="none"`` (what the adversarial-transferability matrix evaluates);
:func:`train_task_network` trains one network; :func:`task_adversarial` attacks one (PGD on the model's own
prediction); :func:`fit_readout` / :func:`readout_losses` train and score a target task's decoder on a
source encoder's frozen maps (:func:`encode_dataset`).

Construction draws from torch's global RNG, as in :mod:`advtransfer.models`, unless a ``seed`` is given
(then it runs under ``torch.random.fork_rng``); the encoder is built before the decoder, so networks of
different tasks built with the same seed start from the same encoder weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advtransfer import shapes
from advtransfer.attacks import pgd
from advtransfer.io import load_json, load_model
from advtransfer.models import frozen_on
from advtransfer.registry import DENOISING_STD, KINDS, OUTPUT_KINDS, TASKS, TaskSpec
from advtransfer.runtime import generator as seeded_generator
from advtransfer.runtime import resolve_device
from advtransfer.train import TrainLoop, TrainSettings, keep_best, make_optimizer, run_loop, steps_per_epoch

ENCODER_WIDTHS = (32, 64, 64)  # channels of the encoder's three conv blocks (32 -> 16 -> 8 pixels)
DECODER_WIDTH = 32  # channels between the dense decoder's two transposed convolutions
FEATURE_POOL = 2  # features / global heads: average pool of the encoder map to FEATURE_POOL x FEATURE_POOL


def task_spec(task: str | TaskSpec) -> TaskSpec:
    """The TaskSpec of ``task`` (a name in TASKS, or a TaskSpec, returned as it is)."""
    if isinstance(task, TaskSpec):
        return task
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; use one of {list(TASKS)}") from None


# ---------------------------------------------------------------------------------------------- data


def images_float(batch: shapes.ShapesBatch) -> torch.Tensor:
    """The batch's images as float32 in [0, 1], (N, 3, H, W)."""
    return batch.images.float() / 255.0


def task_targets(batch: shapes.ShapesBatch, task: str) -> torch.Tensor:
    """The targets of ``task`` for the images of ``batch`` (shapes and dtypes: :class:`TaskSpec`)."""
    spec, f = task_spec(task), batch.factors
    name = spec.name
    if name == "shape":
        return shapes.labels(f, "shape")
    if name == "identity":
        return shapes.labels(f, "identity")
    if name == "colour":
        return shapes.hue_bin(f["hue"])
    if name in ("autoencoding", "denoising"):
        return images_float(batch)
    if name == "edges":
        return batch.edges[:, None].float()
    if name == "position":
        return torch.stack([f["x"], f["y"]], dim=1).float()
    if name == "scale":
        return f["scale"][:, None].float()
    if name == "rotation":
        angle = 4.0 * torch.deg2rad(f["rotation"].double())
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1).float()
    if name == "mask":
        return batch.mask[:, None].float()
    if name == "depth":
        return batch.depth.long()
    raise AssertionError(f"task_targets: no targets for task {name!r}")  # every TASKS entry is handled above


def denoising_noise(
    indices: torch.Tensor, shape: tuple[int, ...], seed: int, std: float = DENOISING_STD
) -> torch.Tensor:
    """Gaussian noise of std ``std`` for the images ``indices`` (each (C, H, W) = ``shape``): image i's
    noise comes from its own torch.Generator seeded with (seed * 0x9E3779B1 + i) mod 2**32 (the CPU
    generator keeps 32 bits of a seed), so it does not depend on the other images."""
    out = torch.empty((len(indices), *shape), dtype=torch.float32)
    for row, index in enumerate(indices.tolist()):
        gen = torch.Generator().manual_seed((int(seed) * 0x9E3779B1 + int(index)) % 2**32)
        out[row] = torch.randn(shape, generator=gen, dtype=torch.float32)
    return std * out


def task_inputs(batch: shapes.ShapesBatch, task: str, seed: int, indices: torch.Tensor | None = None) -> torch.Tensor:
    """The network inputs of ``task``: float32 images in [0, 1], (N, 3, H, W). For ``denoising`` the image
    plus Gaussian noise (std DENOISING_STD) clipped to [0, 1], the noise of image ``indices[k]`` (default:
    its row k) drawn from its own generator seeded from (``seed``, index): deterministic, and the same
    for an image whatever else is in the batch. Other tasks ignore ``seed``."""
    x = images_float(batch)
    if task_spec(task).name != "denoising":
        return x
    indices = torch.arange(len(x)) if indices is None else torch.as_tensor(indices)
    if indices.shape != (len(x),):
        raise ValueError(f"task_inputs: indices must have shape ({len(x)},), got {tuple(indices.shape)}")
    return (x + denoising_noise(indices, tuple(x.shape[1:]), seed)).clamp(0.0, 1.0)


# -------------------------------------------------------------------------------------------- models


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def build_encoder(in_channels: int = 3, widths: tuple[int, int, int] = ENCODER_WIDTHS) -> nn.Sequential:
    """The encoder shared by every task: three blocks conv3x3 -> BatchNorm -> ReLU, the first two followed
    by a 2x2 max pool (32 -> 16 -> 8 pixels): (B, in_channels, H, W) -> (B, widths[-1], H / 4, W / 4)."""
    a, b, c = widths
    return nn.Sequential(*_block(in_channels, a), nn.MaxPool2d(2), *_block(a, b), nn.MaxPool2d(2), *_block(b, c))


def build_decoder(task: str, channels: int, pool: int = FEATURE_POOL) -> nn.Module:
    """The light decoder of ``task`` on a (B, channels, h, w) encoder map.

    ``classes`` / ``regression``: average pool to pool x pool, flatten, Linear(channels * pool**2, outputs)
    (pool 1 is a global average pool; the default 2 keeps the coarse position that ``position`` needs,
    which a global pool of a translation-equivariant map averages away). Dense outputs: ConvTranspose2d
    (4x4, stride 2) to DECODER_WIDTH channels -> BatchNorm -> ReLU -> ConvTranspose2d (4x4, stride 2) to
    ``outputs`` channels: (B, outputs, 4h, 4w)."""
    spec = task_spec(task)
    if spec.dense:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, DECODER_WIDTH, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(DECODER_WIDTH),
            nn.ReLU(),
            nn.ConvTranspose2d(DECODER_WIDTH, spec.outputs, 4, stride=2, padding=1),
        )
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(channels * pool * pool, spec.outputs))


class TaskNetwork(nn.Module):
    """The shared encoder (:func:`build_encoder`) with ``task``'s decoder (:func:`build_decoder`).

    ``encode(x)``: the encoder map (B, C, H/4, W/4) (C = ENCODER_WIDTHS[-1] = 64: (B, 64, 8, 8) at 32x32);
    ``features(x)``: that map average-pooled to ``pool`` x ``pool`` and flattened, (B, feature_dim) with
    feature_dim = C * pool**2 (256 by default), for probes and the tau metrics; ``forward(x)``: the
    decoder's output. For ``classes`` / ``regression`` tasks ``head`` is the decoder's final Linear and
    ``forward(x) == head(features(x))`` (the feature protocol of advtransfer.models); dense tasks have
    ``head = None``."""

    def __init__(self, task: str, image_size: int = shapes.SIZE, in_channels: int = 3, pool: int = FEATURE_POOL):
        super().__init__()
        if image_size % 4 or image_size < 8:
            raise ValueError(f"TaskNetwork: image_size must be a multiple of 4 and >= 8, got {image_size}")
        self.spec = task_spec(task)
        self.task = self.spec.name
        self.image_size = image_size
        self.pool = pool
        self.encoder = build_encoder(in_channels)
        channels = ENCODER_WIDTHS[-1]
        self.map_shape = (channels, image_size // 4, image_size // 4)
        self.feature_dim = channels * pool * pool
        self.decoder = build_decoder(self.task, channels, pool)

    @property
    def head(self) -> nn.Linear | None:
        """The decoder's final Linear (classes / regression tasks; a property, so the state dict names it
        once, as ``decoder.2``), None for dense tasks."""
        return None if self.spec.dense else self.decoder[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.encoder(x), self.pool).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def build_task_network(task: str, image_size: int = shapes.SIZE, seed: int | None = None) -> TaskNetwork:
    """A fresh :class:`TaskNetwork` for ``task``; with ``seed`` its initial weights are a function of the
    seed (the global RNG is left as it was) and the encoder's are the same for every task."""
    with _seeded(seed):
        return TaskNetwork(task, image_size)


# ---------------------------------------------------------------------------------------------- loss


def task_loss(task: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The loss of ``task``, in float32: cross-entropy (classes, dense classes), mean squared error
    (regression, dense regression) or binary cross-entropy with logits (dense binary; targets (B, 1, H, W)
    or (B, H, W)). ``reduction="mean"``: a scalar, the mean over images and outputs / pixels;
    ``"none"``: one loss per image, (B,), the mean over that image's outputs / pixels (so its mean is the
    ``"mean"`` loss)."""
    spec = task_spec(task)
    if reduction not in ("mean", "none"):
        raise ValueError(f"task_loss: reduction must be 'mean' or 'none', got {reduction!r}")
    output = output.float()
    if spec.output in ("classes", "dense_classes"):
        losses = F.cross_entropy(output, target.long(), reduction=reduction)
    elif spec.output in ("regression", "dense_regression"):
        losses = F.mse_loss(output, target.float().reshape(output.shape), reduction=reduction)
    else:  # dense_binary
        losses = F.binary_cross_entropy_with_logits(output, target.float().reshape(output.shape), reduction=reduction)
    return losses if reduction == "mean" else losses.reshape(len(losses), -1).mean(dim=1)


def own_prediction(task: str, output: torch.Tensor) -> torch.Tensor:
    """The target a model's own (clean) ``output`` predicts: the argmax class (classes, dense classes), the
    thresholded sigmoid (dense binary: float {0, 1}, logit > 0) or the output itself (regression)."""
    spec = task_spec(task)
    output = output.detach()
    if spec.output in ("classes", "dense_classes"):
        return output.argmax(dim=1)
    if spec.output == "dense_binary":
        return (output > 0).float()
    return output.float().clone()


# ------------------------------------------------------------------------------------------ training


@torch.no_grad()
def _per_image_losses(
    model: nn.Module, task: str, x: torch.Tensor, t: torch.Tensor, batch_size: int, device
) -> torch.Tensor:
    """task_loss per image of ``model`` on (x, t), in eval mode (flags restored), as a float32 CPU tensor."""
    out = []
    with frozen_on(model, device) as net:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device)
            tb = t[start : start + batch_size].to(device)
            out.append(task_loss(task, net(xb), tb, reduction="none").cpu())
    return torch.cat(out)


def _lower_val_loss(record: dict[str, float], best: dict[str, float] | None) -> bool:
    """The task networks' selection: a lower validation loss (ties: the earlier epoch)."""
    return record["val_loss"] < (math.inf if best is None else best["val_loss"])


def _fit(
    model: nn.Module, task: str, train_x, train_t, val_x, val_t, settings: TrainSettings, *, seed: int, device,
    eval_batch_size: int = 512,
) -> dict:  # fmt: skip
    """The shared training loop (:func:`advtransfer.train.run_loop`) on task_loss, batches shuffled by
    torch.Generator(seed). With validation data: keep the weights of the epoch of lowest validation loss (ties:
    the earlier). Returns the summary dict of :func:`train_task_network`; the model ends in eval mode on
    ``device``."""
    started = time.perf_counter()
    device = resolve_device(device)
    if len(train_x) != len(train_t) or (val_x is not None and len(val_x) != len(val_t)):
        raise ValueError("train_task_network: inputs and targets differ in length")
    if settings.augment:
        raise ValueError("train_task_network: augment is not supported (a dense task's targets would need the crop)")
    if steps_per_epoch(len(train_x), settings.batch_size) == 0:
        raise ValueError(f"train_task_network: need at least 2 training samples, got {len(train_x)}")
    model.to(device)
    validate = val_x is not None and len(val_x) > 0

    def val_loss() -> dict[str, float]:
        losses = _per_image_losses(model, task, val_x, val_t, eval_batch_size, device)
        return {"val_loss": losses.double().mean().item()}

    initial = val_loss()["val_loss"] if validate else float("nan")
    loop = TrainLoop(
        model=model, optimizer=make_optimizer(model, settings), generator=seeded_generator(seed), settings=settings,
        n=len(train_x), device=device, batch=lambda idx: (train_x[idx].to(device), train_t[idx].to(device)),
        loss=lambda xb, tb: (task_loss(task, model(xb), tb), None), validate=val_loss if validate else None,
        better=_lower_val_loss, name=f"{type(model).__name__} for task {task}",
    )  # fmt: skip
    state = run_loop(loop)
    keep_best(model, state)
    best_loss = state.history[state.best_epoch - 1]["val_loss"] if state.best_epoch else math.inf
    return {
        "task": task_spec(task).name,
        "epochs": settings.epochs,
        "best_epoch": state.best_epoch if validate else settings.epochs,
        "val_loss": best_loss if validate else float("nan"),
        "initial_val_loss": initial,
        "history": state.history,
        "wall_seconds": time.perf_counter() - started,
    }


def train_task_network(
    model: nn.Module,
    task: str,
    train_x: torch.Tensor,
    train_t: torch.Tensor,
    val_x: torch.Tensor,
    val_t: torch.Tensor,
    settings: TrainSettings,
    *,
    seed: int,
    device: str | torch.device,
    eval_batch_size: int = 512,
) -> dict:
    """Train ``model`` (in place) on ``task_loss(task, ...)`` and keep the weights of the epoch with the lowest
    validation loss (mean per-image task loss in eval mode; ties: the earlier epoch).

    Inputs: float tensors (N, 3, H, W) in [0, 1] (:func:`task_inputs`), targets from :func:`task_targets`, on
    the CPU. ``settings``: a :class:`~advtransfer.train.TrainSettings` (the block's ``train`` mapping:
    ``TrainSettings.from_config``; ``augment`` is not supported). The loop of ``train_classifier``
    (:func:`advtransfer.train.run_loop`): SGD with ``momentum`` and ``weight_decay`` (or Adadelta); the learning
    rate follows lr (1 + cos(pi t / T)) / 2 over the T = epochs * steps optimiser steps; batches shuffled by
    torch.Generator(``seed``), a last batch of a single sample dropped. Deterministic on the CPU for fixed
    initial weights, data and arguments. Returns {task, epochs, best_epoch, val_loss (of the best epoch),
    initial_val_loss (before training), history (per epoch: epoch, lr of its last step, train_loss, val_loss),
    wall_seconds}; the model holds the best weights, in eval mode, on ``device``."""
    if val_x is None or len(val_x) == 0:
        raise ValueError("train_task_network: the validation split is empty; the epoch is chosen on it")
    return _fit(
        model, task, train_x, train_t, val_x, val_t, settings, seed=seed, device=device,
        eval_batch_size=eval_batch_size,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- attacks


def task_adversarial(
    model: nn.Module,
    task: str,
    x: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
    *,
    batch_size: int = 256,
    random_start: bool = True,
) -> torch.Tensor:
    """Untargeted L-inf PGD against ``model`` on its own prediction (Section 4.4): maximise
    ``task_loss(task, model(x + delta), own_prediction(task, model(x)))`` per image over ||delta||_inf <= eps
    with x + delta in [0, 1] (:func:`advtransfer.attacks.pgd`, sign steps of ``step_size``, default
    2.5 eps / steps), in batches of ``batch_size`` images, the model in eval mode (its flags restored).

    ``random_start`` (the default) starts from a uniform point of the ball drawn from ``generator``: for
    regression tasks the loss against the clean output has a zero gradient at x itself, so PGD without it
    never moves. Returns the adversarial inputs (same shape as ``x``, detached, on x's device)."""
    if step_size is None:
        step_size = 2.5 * eps / max(1, steps)
    device = x.device
    chunks = []
    with frozen_on(model, device) as net:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].detach()
            with torch.no_grad():
                target = own_prediction(task, net(xb))

            def objective(x_adv: torch.Tensor, target=target) -> torch.Tensor:
                return task_loss(task, net(x_adv), target, reduction="none")

            chunks.append(
                pgd(objective, xb, eps=eps, steps=steps, step_size=step_size, norm="linf", bounds=(0.0, 1.0),
                    random_start=random_start, generator=generator)
            )  # fmt: skip
    return torch.cat(chunks) if chunks else x.detach().clone()


# -------------------------------------------------------------------------------------------- readout


@torch.no_grad()
def encode_dataset(
    model: TaskNetwork, x: torch.Tensor, batch_size: int = 512, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """``model.encode(x)`` in eval mode (the model is left as it was), as a float32 CPU tensor (N, C, h, w):
    a source encoder's frozen maps, for :func:`fit_readout`."""
    device = resolve_device(device)
    with frozen_on(model, device) as net:
        return torch.cat(
            [net.encode(x[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(x), batch_size)]
        )


def standardise_maps(
    maps_train: torch.Tensor, maps_test: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets of frozen maps (N, C, h, w) standardised per channel with the TRAINING maps' mean and standard
    deviation (as the linear probe standardises features): encoders differ in the scale of their maps, and a
    readout at one learning rate must fit on every one (unscaled, a readout of the full block diverged)."""
    mean = maps_train.mean(dim=(0, 2, 3), keepdim=True)
    std = maps_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(eps)
    return (maps_train - mean) / std, (maps_test - mean) / std


def fit_readout(
    maps_train: torch.Tensor,
    targets_train: torch.Tensor,
    task: str,
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 128,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """A decoder of ``task`` (:func:`build_decoder`, the one its TaskNetwork has) trained on precomputed,
    frozen encoder maps (N, C, h, w) of a source network (:func:`encode_dataset`; for a ``denoising`` target
    encode the noisy inputs) for ``epochs`` epochs, with the optimiser and schedule of
    :func:`train_task_network` and no epoch selection. Its initial weights and the shuffling come from
    ``seed``. Returned in eval mode on ``device``."""
    with _seeded(seed):
        readout = build_decoder(task, maps_train.shape[1])
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay)
    _fit(readout, task, maps_train, targets_train, None, None, settings, seed=seed, device=device)
    return readout


def readout_losses(
    readout: nn.Module, maps_test: torch.Tensor, targets_test: torch.Tensor, task: str, batch_size: int = 512
) -> torch.Tensor:
    """The per-image task losses (N,) (float32, CPU) of ``readout`` on frozen maps, in eval mode."""
    device = next(readout.parameters()).device
    return _per_image_losses(readout, task, maps_test, targets_test, batch_size, device)


def subset(batch: shapes.ShapesBatch, idx: torch.Tensor) -> shapes.ShapesBatch:
    """The images ``idx`` of a rendered batch, with their factors and maps."""
    return shapes.ShapesBatch(
        images=batch.images[idx], factors={k: v[idx] for k, v in batch.factors.items()}, mask=batch.mask[idx],
        main=batch.main[idx], edges=batch.edges[idx], depth=batch.depth[idx],
    )  # fmt: skip


def experiment_images(data_root, n_train: int, n_val: int, n_test: int, seed: int) -> dict[str, tuple]:
    """The tasks family's images: train and validation parts of a seeded permutation of the shapes world's
    train split (disjoint), and the first ``n_test`` images of its test split (drawn from another
    generator). Returns {part: (ShapesBatch, indices into its split)}; the indices seed each image's
    denoising noise, so an image has the same noise in every job."""
    train = shapes.cached_split(str(data_root), "train")
    test = shapes.cached_split(str(data_root), "test")
    if n_train + n_val > len(train.images) or n_test > len(test.images):
        raise ValueError(f"tasks: {n_train} + {n_val} train / validation and {n_test} test images requested; "
                         f"the shapes world has {len(train.images)} and {len(test.images)}")  # fmt: skip
    order = torch.randperm(len(train.images), generator=seeded_generator(seed))
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val]}
    out = {part: (subset(train, idx), idx) for part, idx in parts.items()}
    test_idx = torch.arange(n_test)
    out["test"] = (subset(test, test_idx), test_idx + len(train.images))  # noise indices distinct from train's
    return out


@torch.no_grad()
def _losses(model: nn.Module, task: str, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([
        task_loss(task, model(x[i : i + batch_size]), target[i : i + batch_size], reduction="none")
        for i in range(0, len(x), batch_size)
    ])  # fmt: skip


def transfer_gains(
    models: dict[str, nn.Module],
    inputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    eps: float,
    steps: int,
    generator: torch.Generator,
    batch_size: int = 256,
) -> torch.Tensor:
    """The adversarial transferability matrix's raw data (Section 4.4, appendix): gains[i, j, n] = task j's
    loss at image n under source task i's adversarial perturbation minus its clean loss.

    Source i's perturbation delta_i = :func:`task_adversarial` of model i on its own inputs (PGD, L-inf
    ``eps``, ``steps`` steps) minus those inputs; target j is evaluated at its own inputs plus delta_i
    (clipped to [0, 1]; the denoising task's inputs are noisy) against its true ``targets``, with
    ``task_loss(..., reduction="none")``: one batched forward of each target per source, no loop over
    images. ``models``, ``inputs`` and ``targets`` are keyed by task, in the matrix's order."""
    names = list(models)
    clean = {j: _losses(models[j], j, inputs[j], targets[j], batch_size) for j in names}
    gains = torch.empty(len(names), len(names), len(next(iter(inputs.values()))))
    for a, i in enumerate(names):
        x_adv = task_adversarial(models[i], i, inputs[i], eps, steps, generator=generator, batch_size=batch_size)
        delta = x_adv - inputs[i]
        for b, j in enumerate(names):
            attacked = (inputs[j] + delta).clamp(0.0, 1.0)
            gains[a, b] = _losses(models[j], j, attacked, targets[j], batch_size) - clean[j]
    return gains


def readout_loss_matrix(
    models: dict[str, nn.Module],
    train: dict[str, tuple[torch.Tensor, torch.Tensor]],
    test: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The knowledge-transfer affinity's raw data: losses[i, j, n] = test loss at image n of a decoder of task
    j trained on source task i's FROZEN encoder (:func:`fit_readout`, on :func:`standardise_maps`). ``train`` /
    ``test`` map each target task to its (inputs, targets); the source encoder sees the target task's inputs
    (noisy for denoising)."""
    names = list(models)
    n_test = len(next(iter(test.values()))[1])
    losses = torch.empty(len(names), len(names), n_test)
    for a, i in enumerate(names):
        cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # maps of the same inputs computed once
        for b, j in enumerate(names):
            key = id(train[j][0])
            if key not in cache:
                cache[key] = (encode_dataset(models[i], train[j][0], device=device),
                              encode_dataset(models[i], test[j][0], device=device))  # fmt: skip
            maps_train, maps_test = standardise_maps(*cache[key])
            readout = fit_readout(maps_train, train[j][1], j, epochs=epochs, lr=lr, seed=seed, batch_size=batch_size,
                                  device=device)  # fmt: skip
            losses[a, b] = readout_losses(readout, maps_test.to(next(readout.parameters()).device), test[j][1], j)
    return losses


def load_task_network(path) -> TaskNetwork:
    """A task network saved by the train_task rule (safetensors + JSON sidecar naming the task), in eval mode;
    problems name the file."""
    info = load_json(Path(path).with_suffix(".json"))
    if "task" not in info:
        raise ValueError(f"{Path(path).with_suffix('.json')}: no 'task' entry (not a task network's sidecar)")
    return load_model(path, TaskNetwork(info["task"])).eval()


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "DENOISING_STD", "ENCODER_WIDTHS", "FEATURE_POOL", "KINDS", "OUTPUT_KINDS", "TASKS", "TaskNetwork",
    "TaskSpec", "build_decoder", "build_encoder", "build_task_network", "denoising_noise", "encode_dataset",
    "fit_readout", "images_float", "own_prediction", "parameter_count", "readout_losses", "task_adversarial",
    "task_inputs", "task_loss", "task_spec", "task_targets", "train_task_network",
]  # fmt: skip
