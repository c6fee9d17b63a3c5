"""Model zoos: the models a user brings, one loader for them, and the adversarial transferability matrix (ATM,
Section 4.4) of a zoo without labels.

A zoo is a list of models the user brings, each entry {name, model, weights} plus the keys its family needs,
built by one loader (advtransfer.zoo.load_zoo_model).

Entries (:class:`ZooEntry`; a config list checked by :func:`zoo_entries`). Every entry has ``name``, ``model``
(a model-registry spec: a built-in, ``torchvision:<arch>``, ``timm:<name>`` or ``package.module:function``) and
``weights`` (a local state dict or None). The tasks family's zoo (task networks, :mod:`advtransfer.families.tasks`)
adds ``kind`` and ``output`` (and ``num_classes`` for a registry classifier); model selection's (candidate
sources, :mod:`advtransfer.families.model_selection`) adds ``num_classes``, ``features`` and ``seed``
(:data:`FAMILY_KEYS`; the schema's shared part is ``$defs/zoo_entry`` in schemas/config.schema.yaml).

Loading (:func:`load_zoo_model`): an entry with ``num_classes`` is a classifier built through the model registry
(:func:`advtransfer.models.build_model`, so it follows the feature protocol) for the images it will see; an entry
without is a ``package.module:function`` called with no arguments that returns the whole network, used as it is.

The ATM of a zoo: any networks that map the same float images (B, C, H, W) in [0, 1] to their own task's output.
No labels are needed: every model is attacked, and every target is scored, against its OWN clean prediction
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

import inspect
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from advtransfer.models import build_model, frozen_on, read_weights
from advtransfer.names import check_model_name
from advtransfer.registry import KINDS, MODEL_PREFIXES, OUTPUT_KINDS, TaskSpec, load_object
from advtransfer.tasks import own_prediction, task_adversarial, task_loss

# ------------------------------------------------------------------------------------------- entries

ZOO_DEFINITION = (
    "A zoo is a list of models the user brings, each entry {name, model, weights} plus the keys its family needs, "
    "built by one loader (advtransfer.zoo.load_zoo_model)."
)  # the same sentence opens the zoo's description in both families' docstrings and schemas

ENTRY_KEYS = ("name", "model", "weights")  # every zoo entry's (weights optional)
FAMILY_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tasks": (("kind", "output"), ("num_classes",)),
    "model_selection": (("num_classes",), ("features", "seed")),
}  # each family's own keys: (required, optional)


@dataclass(frozen=True)
class ZooEntry:
    """One model of a zoo (a zoo is a list of models the user brings, each entry {name, model, weights} plus the
    keys its family needs, built by one loader (advtransfer.zoo.load_zoo_model)).

    Every entry: ``name`` (letters, digits and _, starting with a letter; unique in its zoo), ``model`` (a
    model-registry spec; :func:`load_zoo_model` says how it is built) and ``weights`` (a local state dict:
    .safetensors, or .pt / .pth / .bin read with ``torch.load(weights_only=True)``; None: the model's own initial
    weights). Building reads ``num_classes`` (given: a classifier of that many classes through the model
    registry; None: ``model`` is a function returning the whole network), ``features`` (a registry classifier's
    feature layer; None: the input of its final Linear) and ``seed`` (torch's seed while it is built: the
    initial weights where there are no weights). The tasks family's entries add ``kind`` (free text grouping the
    tasks, e.g. Taskonomy's "semantic", "2d", "3d") and ``output``, one of ``OUTPUT_KINDS``: ``classes`` (B, K)
    logits, ``regression`` (B, K) values, ``dense_regression`` (B, K, H, W) values, ``dense_binary`` (B, K, H, W)
    logits (K independent binary maps, usually K = 1), ``dense_classes`` (B, K, H, W) logits of K classes per
    pixel. Model selection's entries need ``num_classes`` (:data:`FAMILY_KEYS`)."""

    name: str
    model: str
    weights: str | None = None
    num_classes: int | None = None
    features: str | None = None
    seed: int = 0
    kind: str | None = None
    output: str | None = None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_KEY_CHECKS = {
    "name": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v) is not None,
             "a name of letters, digits and _ that starts with a letter"),
    "model": (lambda v: isinstance(v, str) and bool(v.strip()), "a model-registry spec (a non-empty string)"),
    "weights": (lambda v: v is None or (isinstance(v, (str, os.PathLike)) and bool(os.fspath(v))),
                "a file path or null"),
    "num_classes": (lambda v: _whole(v) and v >= 2, "an integer >= 2"),
    "features": (lambda v: v is None or (isinstance(v, str) and bool(v)), "a layer name or null"),
    "seed": (lambda v: _whole(v) and v >= 0, "an integer >= 0"),
    "kind": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    "output": (lambda v: isinstance(v, str) and v in OUTPUT_KINDS, f"one of {', '.join(OUTPUT_KINDS)}"),
}  # fmt: skip


def zoo_entries(config_list: Sequence[Mapping[str, Any]], family: str) -> list[ZooEntry]:
    """The zoo of ``family`` ("tasks" or "model_selection") a config list of dicts describes, each checked by
    :func:`zoo_entry` (without importing any model) and the names unique: problems raise ValueError naming the
    entry's index and key."""
    if isinstance(config_list, (str, bytes, Mapping)) or not isinstance(config_list, Sequence):
        raise ValueError(f"zoo: expected a list of entries (dicts), got a {type(config_list).__name__}")
    if not config_list:
        raise ValueError("zoo: the list of entries is empty")
    entries: list[ZooEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(config_list):
        entry = zoo_entry(item, family, f"zoo entry {index}")
        if entry.name in seen:
            raise ValueError(
                f"zoo entry {index} ({entry.name!r}): key 'name' repeats entry {seen[entry.name]}'s name; "
                "names must be unique"
            )
        seen[entry.name] = index
        entries.append(entry)
    return entries


def zoo_entry(item: Mapping[str, Any], family: str, label: str = "zoo entry") -> ZooEntry:
    """One config dict of ``family``'s zoo as a :class:`ZooEntry`: its keys are :data:`ENTRY_KEYS` and the
    family's (:data:`FAMILY_KEYS`), each of its type, and ``model`` fits ``num_classes`` (a registry spec with
    it, a ``package.module:function`` without). Problems raise ValueError starting with ``label`` and the name."""
    if family not in FAMILY_KEYS:
        raise ValueError(f"{label}: unknown zoo family {family!r}; choose one of {', '.join(FAMILY_KEYS)}")
    required, optional = FAMILY_KEYS[family]
    keys = (*ENTRY_KEYS, *required, *optional)
    if not isinstance(item, Mapping):
        raise ValueError(f"{label}: expected a dict with keys {', '.join(keys)}, got {item!r}")
    named = isinstance(item.get("name"), str) and item["name"].strip()
    where = f"{label} ({item['name']!r})" if named else label
    unknown = [k for k in item if k not in keys]
    if unknown:
        other = [f for f, (req, opt) in FAMILY_KEYS.items() if f != family and unknown[0] in req + opt]
        hint = f" ({unknown[0]!r} is a key of the {other[0]} zoo's entries)" if other else ""
        raise ValueError(f"{where}: unknown key {unknown[0]!r}{hint}; a {family} zoo entry's keys: {', '.join(keys)}")
    for key in keys:
        if key not in item:
            if key in ("name", "model", *required):
                raise ValueError(f"{where}: missing key {key!r}")
            continue
        check, text = _KEY_CHECKS[key]
        if not check(item[key]):
            raise ValueError(f"{where}: key {key!r} must be {text}, got {item[key]!r}")
    entry = ZooEntry(**{k: os.fspath(v) if k == "weights" and v is not None else v for k, v in item.items()})
    _check_model(entry, where)
    if family == "tasks" and entry.num_classes is not None and entry.output != "classes":
        raise ValueError(
            f"{where}: key 'num_classes' builds a classifier through the model registry (logits (B, num_classes)), "
            f"so its output is classes, not {entry.output!r}; drop num_classes, or set output: classes"
        )
    return entry


def _check_model(entry: ZooEntry, where: str) -> None:
    """``model`` fits ``num_classes``: any model-registry spec with it; a ``package.module:function`` (called
    with no arguments) without."""
    if entry.num_classes is not None:
        try:
            check_model_name(entry.model)
        except ValueError as err:
            raise ValueError(f"{where}: key 'model': {err}") from None
        return
    module, sep, attribute = entry.model.partition(":")
    if not sep or not attribute or not re.fullmatch(r"[A-Za-z_][\w.]*", module) or f"{module}:" in MODEL_PREFIXES:
        raise ValueError(
            f"{where}: key 'model' is {entry.model!r}; without key 'num_classes' it must be an import path "
            "'package.module:function' whose function, called with no arguments, returns the whole network. "
            "A model-registry classifier (a built-in, torchvision:<arch>, timm:<name>) needs key 'num_classes'"
        )


def load_zoo_model(entry: ZooEntry, in_channels: int = 3, image_size: int | None = None) -> nn.Module:
    """The model of a zoo entry (either family's), in eval mode; the one loader of every zoo.

    - With ``num_classes``: a classifier following the feature protocol of :func:`advtransfer.models.build_model`
      (``features``, ``head``, ``feature_dim``) for ``num_classes`` classes and (in_channels, image_size,
      image_size) images: ``build_model({"name": model, "weights": weights, "features": features}, ...)``; a
      ``package.module:function`` is called as function(num_classes=, in_channels=, image_size=); the weights
      are keyed as the network's own code names them (a head of another size starts fresh).
    - Without: ``load_object(model)()``, the whole network (its own outputs), used as it is; the weights are
      loaded strictly.

    Initial weights come from torch's RNG seeded with ``seed`` (the global RNG is left as it was). Weights are
    read by :func:`advtransfer.models.read_weights` (safetensors, or ``torch.load(weights_only=True)``: nothing
    is unpickled). Every problem raises ValueError (FileNotFoundError for a missing weights file) naming the
    entry."""
    where = f"zoo entry {entry.name!r} (model {entry.model!r})"
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(entry.seed)
            if entry.num_classes is None:
                model = _whole_network(entry)
            elif image_size is None:
                raise ValueError("a classifier (num_classes) is built for its images: give image_size")
            else:
                spec = {"name": entry.model, "weights": entry.weights, "features": entry.features}
                model = build_model(spec, entry.num_classes, in_channels, image_size)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{where}: {err}") from err
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: {err}") from err
    return model.eval()


def _whole_network(entry: ZooEntry) -> nn.Module:
    """``load_object(entry.model)()`` with ``entry.weights`` loaded strictly."""
    factory = load_object(entry.model)
    if not callable(factory):
        raise ValueError(f"{entry.model!r} is a {type(factory).__name__}, not a function")
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise ValueError(
            f"{entry.model} cannot be called with no arguments, as the function of an entry without num_classes "
            "is; to have it called as function(num_classes=, in_channels=, image_size=), give key 'num_classes'"
        ) from None
    except ValueError:
        pass  # no signature to check (a builtin): the call says
    model = factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{entry.model}() returned a {type(model).__name__}, not an nn.Module")
    if entry.weights is not None:
        state = read_weights(entry.weights)  # names the file itself
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{entry.weights}: the weights do not match the network ({err})") from err
    return model


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
# arguments, as the function of a zoo entry without num_classes is (a tasks zoo):
#
#   zoo:
#     - {name: classifier, model: "advtransfer.zoo:example_classifier", kind: semantic, output: classes}
#     - {name: regressor, model: "advtransfer.zoo:example_regressor", kind: geometric, output: regression}
#     - {name: segmenter, model: "advtransfer.zoo:example_segmenter", kind: 2d, output: dense_classes}
#
# The same loader builds a model-selection zoo's classifiers through the model registry (num_classes given):
#
#   zoo:
#     - {name: cnn, model: small_cnn, num_classes: 3, seed: 2}
#     - {name: r18, model: "torchvision:resnet18", num_classes: 10, weights: weights/r18.pth, features: layer3}


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
)  # the config list of the example zoo (zoo_entries(EXAMPLE_ZOO, "tasks"))


__all__ = [
    "ENTRY_KEYS", "EXAMPLE_ZOO", "FAMILY_KEYS", "ZOO_DEFINITION", "ZooEntry", "example_classifier", "example_regressor",
    "example_segmenter", "load_zoo_model", "output_loss", "own_target", "zoo_entries", "zoo_entry", "zoo_gains",
]  # fmt: skip
