"""The adversarial transferability matrix (ATM, Section 4.4) of ANY user-supplied model zoo, without labels.

The paper builds the ATM from Taskonomy's zoo of task networks; :mod:`advtransfer.tasks` builds it for the
shapes world's tasks against their true targets. Here a zoo is any list of networks that map the same
float images (B, C, H, W) in [0, 1] to their own task's output, each described by a :class:`ZooEntry`
(config: a list of dicts, :func:`zoo_entries`; loading: :func:`load_zoo_model`). No labels are needed:
every model is attacked, and every target is scored, against its OWN clean prediction
(:func:`own_target`), so

    gains[i, j, n] = loss_j(f_j(x_n + delta_i(x_n)), t_j(x_n)) - loss_j(f_j(x_n), t_j(x_n)),
    t_j(x_n) = own_target(f_j(x_n)),

where delta_i is L-inf PGD on source i's own loss (:func:`zoo_gains`). ``advtransfer.affinity.transfer_matrix
(gains)`` turns it into the ATM.

Output kinds are those of the task registry (``advtransfer.registry.OUTPUT_KINDS``) and so are the losses:
:func:`output_loss` and :func:`own_target` dispatch on the output kind to :func:`advtransfer.tasks.task_loss`
and :func:`advtransfer.tasks.own_prediction` (one implementation of the losses for both).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from advtransfer.models import frozen_on, read_weights
from advtransfer.registry import KINDS, OUTPUT_KINDS, TaskSpec, load_object
from advtransfer.tasks import own_prediction, task_adversarial, task_loss

# ------------------------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class ZooEntry:
    """One network of a zoo.

    ``model`` is an import path ``"package.module:function"``; the function, called with no arguments,
    returns an nn.Module mapping float images (B, C, H, W) in [0, 1] to its task's output. ``weights`` is a
    local state dict (.safetensors, or .pt / .pth / .bin read with ``torch.load(weights_only=True)``) or
    None (the function's own weights). ``kind`` is free text grouping the tasks (e.g. Taskonomy's
    "semantic", "2d", "3d"); ``output`` is one of ``OUTPUT_KINDS`` and says how the output looks:
    ``classes`` (B, K) logits, ``regression`` (B, K) values, ``dense_regression`` (B, K, H, W) values,
    ``dense_binary`` (B, K, H, W) logits (K independent binary maps, usually K = 1), ``dense_classes``
    (B, K, H, W) logits of K classes per pixel."""

    name: str
    model: str
    weights: str | None
    kind: str
    output: str


_REQUIRED = ("name", "model", "kind", "output")
_OPTIONAL = ("weights",)


def zoo_entries(config_list: Sequence[Mapping[str, Any]]) -> list[ZooEntry]:
    """The zoo described by a config list of dicts {name, model, weights (optional), kind, output}, checked
    (without importing any model): problems raise ValueError naming the entry's index and key."""
    if isinstance(config_list, (str, bytes, Mapping)) or not isinstance(config_list, Sequence):
        raise ValueError(f"zoo: expected a list of entries (dicts), got a {type(config_list).__name__}")
    if not config_list:
        raise ValueError("zoo: the list of entries is empty")
    entries, seen = [], {}
    for index, item in enumerate(config_list):
        where = f"zoo entry {index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected a dict with keys {', '.join(_REQUIRED + _OPTIONAL)}, got {item!r}")
        if isinstance(item.get("name"), str) and item["name"].strip():
            where = f"zoo entry {index} ({item['name']!r})"
        unknown = [k for k in item if k not in _REQUIRED + _OPTIONAL]
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(_REQUIRED + _OPTIONAL)}")
        for key in _REQUIRED:
            if key not in item:
                raise ValueError(f"{where}: missing key {key!r}")
            if not isinstance(item[key], str) or not item[key].strip():
                raise ValueError(f"{where}: key {key!r} must be a non-empty string, got {item[key]!r}")
        name = item["name"]
        module, sep, attribute = item["model"].partition(":")
        if not sep or not module or not attribute:
            raise ValueError(
                f"{where}: key 'model' must be an import path 'package.module:function', got {item['model']!r}"
            )
        if item["output"] not in OUTPUT_KINDS:
            raise ValueError(f"{where}: key 'output' is {item['output']!r}; choose one of {', '.join(OUTPUT_KINDS)}")
        weights = item.get("weights")
        if weights is not None and (not isinstance(weights, (str, os.PathLike)) or not str(weights)):
            raise ValueError(f"{where}: key 'weights' must be a file path or null, got {weights!r}")
        if name in seen:
            raise ValueError(f"{where}: key 'name' repeats entry {seen[name]}'s name; names must be unique")
        seen[name] = index
        weights = None if weights is None else os.fspath(weights)
        entries.append(ZooEntry(name, item["model"], weights, item["kind"], item["output"]))
    return entries


def load_zoo_model(entry: ZooEntry) -> nn.Module:
    """The network of ``entry`` in eval mode: ``load_object(entry.model)()``, then the local ``weights`` if
    given (:func:`advtransfer.models.read_weights`, loaded strictly). Problems name the entry or the file."""
    factory = load_object(entry.model)
    if not callable(factory):
        raise ValueError(f"zoo model {entry.name!r}: {entry.model!r} is a {type(factory).__name__}, not a function")
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"zoo model {entry.name!r}: {entry.model}() returned a {type(model).__name__}, not an nn.Module"
        )
    if entry.weights is not None:
        state = read_weights(entry.weights)  # names the file itself
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{entry.weights}: the weights do not match zoo model {entry.name!r} ({err})") from err
    return model.eval()


# -------------------------------------------------------------------------------------------- losses

# The losses are advtransfer.tasks' (task_loss / own_prediction), which read only a TaskSpec's ``output``:
# one stand-in TaskSpec per output kind. TaskSpec only accepts the shapes world's kinds, so the stand-ins
# carry a placeholder kind (KINDS[0]), which neither function reads.
_SPECS = {
    output: TaskSpec(f"zoo:{output}", KINDS[0], output, 1, f"stand-in for zoo models with {output} outputs")
    for output in OUTPUT_KINDS
}


def _spec(output_kind: str, output: torch.Tensor) -> TaskSpec:
    if output_kind not in _SPECS:
        raise ValueError(f"unknown output kind {output_kind!r}; choose one of {', '.join(OUTPUT_KINDS)}")
    want = 4 if output_kind.startswith("dense_") else 2
    if output.ndim != want:
        raise ValueError(
            f"a {output_kind} output must have {want} dimensions ({'(B, K, H, W)' if want == 4 else '(B, K)'}), "
            f"got shape {tuple(output.shape)}"
        )
    return _SPECS[output_kind]


def output_loss(output_kind: str, output: torch.Tensor, target: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """The loss of an output of ``output_kind`` against ``target``, in float32: cross-entropy (classes, dense
    classes; integer targets), mean squared error (regression, dense regression) or binary cross-entropy
    with logits (dense binary; {0, 1} targets). ``"none"``: one loss per image, (B,), the mean over its
    outputs / pixels; ``"mean"``: their mean (:func:`advtransfer.tasks.task_loss`)."""
    return task_loss(_spec(output_kind, output), output, target, reduction=reduction)


def own_target(output_kind: str, output: torch.Tensor) -> torch.Tensor:
    """The target an output predicts itself (detached): the argmax class (classes, dense classes), the
    thresholded logits (dense binary: float {0, 1}, logit > 0) or the output itself (regression)
    (:func:`advtransfer.tasks.own_prediction`)."""
    return own_prediction(_spec(output_kind, output), output)


# --------------------------------------------------------------------------------------------- gains


@torch.no_grad()
def _clean(net: nn.Module, output_kind: str, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``net``'s own targets at ``x`` and its per-image losses (N,) against them, on the CPU (the targets of
    dense outputs are as large as the outputs): one forward per batch."""
    targets, losses = [], []
    for s in range(0, len(x), batch_size):
        out = net(x[s : s + batch_size])
        target = own_target(output_kind, out)
        losses.append(output_loss(output_kind, out, target).float().cpu())
        targets.append(target.cpu())
    return torch.cat(targets), torch.cat(losses)


@torch.no_grad()
def _losses(net: nn.Module, output_kind: str, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Per-image losses (N,) of ``net`` at ``x`` against ``target`` (moved to x's device a batch at a time), on
    the CPU: one forward per batch of images."""
    return torch.cat([
        output_loss(output_kind, net(x[s : s + batch_size]), target[s : s + batch_size].to(x.device)).float().cpu()
        for s in range(0, len(x), batch_size)
    ])  # fmt: skip


def zoo_gains(
    models: Mapping[str, nn.Module],
    outputs: Mapping[str, str],
    x: torch.Tensor,
    eps: float,
    steps: int,
    generator: torch.Generator | None,
    batch_size: int = 256,
) -> torch.Tensor:
    """The ATM's raw data for a zoo, float32 (S, S, n) on the CPU: gains[i, j, n] = model j's loss at image n
    under model i's adversarial perturbation minus its clean loss, both against model j's own clean
    prediction (:func:`own_target`), so no labels are needed (the clean term is 0 for regression outputs
    and the loss of the argmax / thresholded prediction otherwise).

    Model i's adversarial images: :func:`advtransfer.tasks.task_adversarial` (L-inf PGD through
    :func:`advtransfer.attacks.pgd`: ``steps`` sign steps of 2.5 eps / steps, a random start drawn from
    ``generator``, bounds [0, 1]) maximising its own :func:`output_loss` against its own clean prediction,
    ``batch_size`` images at a time (the random start, hence the result, depends on the batching).
    Targets: one forward per (source, target) pair and batch of images, no loop over images. ``models``
    (any device; used in eval mode, flags restored) and ``outputs`` (their output kinds) are keyed by name,
    in the matrix's order; ``x`` (n, C, H, W) in [0, 1] is the images, on the device to compute on."""
    names = list(models)
    if not names:
        raise ValueError("zoo_gains: no models")
    if set(outputs) != set(names):
        raise ValueError(f"zoo_gains: models {names} and outputs {list(outputs)} name different networks")
    for name in names:
        if outputs[name] not in OUTPUT_KINDS:
            raise ValueError(
                f"zoo_gains: model {name!r} has output kind {outputs[name]!r}; choose one of {', '.join(OUTPUT_KINDS)}"
            )
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"zoo_gains: x must be float images (n, C, H, W), got {x.dtype} {tuple(x.shape)}")
    if batch_size < 1:
        raise ValueError(f"zoo_gains: batch_size must be >= 1, got {batch_size}")
    x = x.detach()
    gains = torch.empty(len(names), len(names), len(x))
    with ExitStack() as stack:
        nets = {name: stack.enter_context(frozen_on(models[name], x.device)) for name in names}
        targets, clean = {}, {}
        for j in names:
            targets[j], clean[j] = _clean(nets[j], outputs[j], x, batch_size)
        for a, i in enumerate(names):
            x_adv = task_adversarial(
                nets[i], _SPECS[outputs[i]], x, eps, steps, generator=generator, batch_size=batch_size
            )  # x + delta_i, already in [0, 1]
            for b, j in enumerate(names):
                gains[a, b] = _losses(nets[j], outputs[j], x_adv, targets[j], batch_size) - clean[j]
    return gains


# ------------------------------------------------------------------------------ example zoo for tests and docs
#
# Three tiny, randomly initialised (seeded, the global RNG untouched) conv nets on RGB images of any size
# (32 x 32 in the tests), importable as "advtransfer.zoo:example_classifier" etc. and called with no
# arguments, as a zoo entry's function is:
#
#   zoo:
#     - {name: classifier, model: "advtransfer.zoo:example_classifier", kind: semantic, output: classes}
#     - {name: regressor, model: "advtransfer.zoo:example_regressor", kind: geometric, output: regression}
#     - {name: segmenter, model: "advtransfer.zoo:example_segmenter", kind: 2d, output: dense_classes}


class _ExampleNet(nn.Module):
    """conv3x3 (3 -> width) -> ReLU -> conv3x3 stride 2 -> ReLU, then a head: global average pool + Linear
    (``dense=False``: (B, outputs)) or conv1x1 + bilinear upsampling to the input's size (``dense=True``:
    (B, outputs, H, W))."""

    def __init__(self, outputs: int, dense: bool, width: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU()
        )
        self.dense = dense
        if dense:
            self.head = nn.Conv2d(width, outputs, 1)
        else:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.encoder(x))
        if self.dense:
            out = nn.functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def _example(outputs: int, dense: bool, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _ExampleNet(outputs, dense).eval()


def example_classifier(num_classes: int = 5, seed: int = 0) -> nn.Module:
    """An example zoo network with ``classes`` output: (B, num_classes) logits."""
    return _example(num_classes, False, seed)


def example_regressor(outputs: int = 2, seed: int = 1) -> nn.Module:
    """An example zoo network with ``regression`` output: (B, outputs) values."""
    return _example(outputs, False, seed)


def example_segmenter(num_classes: int = 3, seed: int = 2) -> nn.Module:
    """An example zoo network with ``dense_classes`` output: (B, num_classes, H, W) logits."""
    return _example(num_classes, True, seed)


EXAMPLE_ZOO: tuple[dict[str, str], ...] = (
    {"name": "classifier", "model": "advtransfer.zoo:example_classifier", "kind": "semantic", "output": "classes"},
    {"name": "regressor", "model": "advtransfer.zoo:example_regressor", "kind": "geometric", "output": "regression"},
    {"name": "segmenter", "model": "advtransfer.zoo:example_segmenter", "kind": "2d", "output": "dense_classes"},
)  # the config list of the example zoo (zoo_entries(EXAMPLE_ZOO))


__all__ = [
    "EXAMPLE_ZOO", "ZooEntry", "example_classifier", "example_regressor", "example_segmenter", "load_zoo_model",
    "output_loss", "own_target", "zoo_entries", "zoo_gains",
]  # fmt: skip
