"""Supervised training of the source / reference classifiers, with validation-based checkpoint selection.

``train_classifier(model, train_x, train_y, val_x, val_y, settings, context)`` takes the optimisation settings
as a :class:`TrainSettings` (a config's ``train`` block: ``TrainSettings.from_config(mapping)``) and the run's
context as a :class:`TrainContext` (seed, device, checkpoint directory, objective and its parameters, teacher).
It runs SGD with momentum and weight decay (or Adadelta, ``optimizer="adadelta"``, as the paper trains its
CelebA attribute models) under a per-step cosine learning-rate schedule on a training objective chosen by name
(``advtransfer.registry.OBJECTIVES``; ``"ce"``: cross-entropy), evaluates on the VALIDATION split after every
epoch and keeps the weights of the best epoch. It never sees test data. On CPU the result is a deterministic
function of (initial weights, data, settings, objective, seed). With ``checkpoint_dir`` it writes one atomic
checkpoint per epoch and a later call with the same arguments resumes from it and ends with exactly the
weights of an uninterrupted run.

The loop itself (:func:`run_loop` over a :class:`TrainLoop`: shuffling, the cosine schedule, the optimiser
steps, validation after every epoch and the best epoch's weights) is shared with the task networks of
``advtransfer.tasks``, which give it their own per-batch loss, validation loss and selection rule.

An objective is ``function(model, x, y, **objective_params) -> (loss, logits)``: the scalar loss a
training step minimises and the logits of the batch it saw (for the running training accuracy). It is
called in train mode, under the training autocast context (bfloat16 on CUDA when enabled; compute the
loss in float32, as ``cross_entropy`` does). An objective that names any of ``OBJECTIVE_CONTEXT`` among its
parameters also gets it from the training loop: ``generator`` (the run's seeded CPU generator, for noise and
random starts: drawn on the CPU, the same numbers on every device), ``state`` (a dict that lives as long as
the run; its tensors are checkpointed, e.g. free adversarial training's perturbation) and ``teacher`` (a frozen
copy of the model passed as ``TrainContext(teacher=...)``, in eval mode on the training device).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from tqdm import tqdm

from advtransfer import registry
from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import frozen_on
from advtransfer.runtime import resolve_device

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "advtransfer-train-checkpoint/1"

Objective = Callable[..., tuple[torch.Tensor, torch.Tensor]]
OPTIMIZERS = ("sgd", "adadelta")
OBJECTIVE_CONTEXT = ("generator", "state", "teacher")  # supplied by the training loop, never by config


@dataclass(frozen=True)
class TrainSettings:
    """How a network is optimised: a config's ``train`` block (also a ``finetune`` block or a retraining
    scheme's settings). Raises ValueError on construction for settings no run can use.

    epochs, batch_size; lr (the cosine schedule's peak), momentum (SGD only), weight_decay (every parameter);
    augment: random crop and horizontal flip of the training images; optimizer: ``"sgd"`` or ``"adadelta"``
    (``OPTIMIZERS``); replays: optimiser steps per minibatch (free adversarial training's m).
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    augment: bool = False
    optimizer: str = "sgd"
    replays: int = 1

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"TrainSettings: epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainSettings: unknown optimizer {self.optimizer!r}; choose one of {list(OPTIMIZERS)}")
        if isinstance(self.replays, bool) or not isinstance(self.replays, int) or self.replays < 1:
            raise ValueError(f"TrainSettings: replays must be an integer >= 1, got {self.replays!r}")

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> TrainSettings:
        """The settings of a config's ``train`` mapping (values as they are; absent augment, optimizer and replays:
        False, "sgd", 1, as for a direct call). Unknown or missing keys raise ValueError naming them."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(mapping) - set(names))
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in mapping]
        if unknown or missing:
            raise ValueError(f"train settings {dict(mapping)}: unknown keys {unknown}, missing keys {missing} "
                             f"(the keys are {names})")  # fmt: skip
        return cls(**mapping)


@dataclass(frozen=True)
class TrainContext:
    """Where and how one training run happens, beyond its ``TrainSettings``.

    seed: the run's CPU generator (shuffling, augmentation, the objective's draws); device; checkpoint_dir: write
    a resumable checkpoint there after every epoch; stop_after: train at most this many epochs in this call;
    objective: a name in ``advtransfer.registry.OBJECTIVES`` and objective_params its keyword arguments (plain
    JSON values); teacher: the model an objective such as ``rrm`` reads (copied, never changed); amp: bfloat16
    autocast on CUDA (None: where supported); eval_batch_size: validation batches; progress: a progress bar.
    """

    seed: int
    device: str | torch.device
    checkpoint_dir: str | Path | None = None
    stop_after: int | None = None
    objective: str = "ce"
    objective_params: dict[str, Any] | None = None
    teacher: nn.Module | None = None
    amp: bool | None = None
    eval_batch_size: int = 512
    progress: bool = True


@dataclass
class TrainResult:
    """What ``train_classifier`` returns. Epochs are numbered from 1.

    best_state: CPU state dict of the epoch with the highest validation accuracy (ties: lower validation
        loss, then the earlier epoch);
        the model passed in holds these weights on return.
    final_state: CPU state dict after the last epoch run.
    history: one dict per epoch since the start (resumed epochs included): epoch, lr (of the epoch's
        last step), train_loss (the objective's), train_accuracy (on the augmented training batches, in
        train mode, of the logits the objective returned), val_loss (cross-entropy), val_accuracy.
    epochs_run: epochs trained by THIS call (0 when the checkpoint was already complete).
    resumed_from_epoch: last completed epoch restored from the checkpoint, None if started fresh.
    wall_seconds: wall time of this call.
    objective, objective_params: the training objective's registry name and its keyword arguments (as
        plain JSON values), for the model's sidecar.
    optimizer: "sgd" or "adadelta".
    """

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]]
    epochs_run: int
    resumed_from_epoch: int | None
    wall_seconds: float
    cpu_seconds: float = 0.0  # CPU time of this process during the call (time.process_time)
    final_state: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    completed: bool = True  # False when ``stop_after`` ended the call before ``epochs``
    objective: str = "ce"
    objective_params: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "sgd"


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    """The file ``train_classifier`` writes in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective ``"ce"``: (mean cross-entropy of ``model(x)`` against ``y``, computed in float32; the logits)."""
    logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def objective_context(fn: Objective) -> tuple[str, ...]:
    """The names of ``OBJECTIVE_CONTEXT`` that the objective ``fn`` takes as parameters."""
    try:
        names = inspect.signature(fn).parameters
    except ValueError:  # no signature to inspect (some builtins)
        return ()
    return tuple(k for k in OBJECTIVE_CONTEXT if k in names)


def resolve_objective(name: str, params: dict[str, Any] | None = None) -> tuple[Objective, dict[str, Any]]:
    """(function, parameters) of the objective registered as ``name``, the parameters as plain JSON values.

    Raises ValueError for an unknown name (listing the known ones), parameters that are not a dict of
    JSON values (finite numbers, strings, booleans, None, lists, dicts), that name a loop-supplied argument
    (``OBJECTIVE_CONTEXT``) or that the function does not accept.
    """
    if name not in registry.OBJECTIVES:
        raise ValueError(f"unknown training objective {name!r}; choose one of {sorted(registry.OBJECTIVES)}")
    fn = registry.load_object(registry.OBJECTIVES[name])
    if not callable(fn):
        raise ValueError(f"training objective {name!r}: {registry.OBJECTIVES[name]} is not callable")
    params = {} if params is None else params
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(
            f"training objective {name!r}: objective_params must be a dict with string keys, got {params!r}"
        )
    try:  # recorded in a JSON sidecar and compared on resume: plain values only, as they read back
        plain = json.loads(json.dumps(params, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"training objective {name!r}: objective_params must be plain JSON values ({err})") from err
    reserved = sorted(set(plain) & set(OBJECTIVE_CONTEXT))
    if reserved:
        raise ValueError(f"training objective {name!r}: {reserved} are supplied by the training loop, not by "
                         "objective_params")  # fmt: skip
    try:
        inspect.signature(fn).bind(None, None, None, **plain, **dict.fromkeys(objective_context(fn)))
    except TypeError as err:
        raise ValueError(f"training objective {name!r} does not accept objective_params {plain} ({err})") from None
    except ValueError:  # no signature to inspect (some builtins): the first step will tell
        pass
    return fn, plain


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: str | torch.device
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on (x, y), in eval mode, under no_grad.

    The model is not modified: its training flags are restored, and if it lives on another device a
    copy is evaluated. Computed in float32 (no autocast).
    """
    device = resolve_device(device)
    _check_xy(x, y, "evaluate")
    if len(x) == 0:
        raise ValueError("evaluate: empty data")
    correct, loss_sum = 0, 0.0
    with frozen_on(model, device) as net:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            yb = y[start : start + batch_size].to(device, non_blocking=True).long()
            logits = net(xb).float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x), loss_sum / len(x)


def train_classifier(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    settings: TrainSettings,
    context: TrainContext,
) -> TrainResult:
    """Train ``model`` (in place) on ``context.objective``; select the epoch with the best validation accuracy.

    Inputs: float tensors in [0, 1] of shape (N, C, H, W) on the CPU, integer labels (N,). Batches are
    shuffled by a torch.Generator seeded with ``context.seed``; ``settings.augment`` adds a random crop (zero
    padding of max(1, H // 8) pixels: 4 for 32x32) and a horizontal flip, drawn from the same generator. A last
    batch of a single sample is dropped (batch norm cannot train on it). Weight decay applies to every
    parameter. The learning rate follows lr * (1 + cos(pi * t / T)) / 2 over the T = epochs * steps * replays
    optimiser steps (:func:`run_loop`), of SGD with momentum or Adadelta (``settings.optimizer``; it ignores
    momentum). An unknown objective or parameters it does not take raise ValueError. Validation (and so the
    selection) always uses cross-entropy.

    ``context.checkpoint_dir``: after every epoch write ``checkpoint.safetensors`` there (atomically), holding
    the model, optimiser and generator states, the best-so-far weights, the history and a fingerprint of the
    arguments (objective and its parameters, and the optimizer unless SGD, included), initial weights and data.
    A later call finding it resumes after its epoch if the fingerprint matches (else warns and starts afresh);
    an unreadable checkpoint raises ValueError naming the file. ``context.stop_after``: train at most this many
    epochs in this call (time-limited jobs; pair it with ``checkpoint_dir``).

    On CUDA (only): cudnn.benchmark, channels_last and, when ``context.amp`` is None or True and the GPU
    supports it, bfloat16 autocast. On return the model holds the best weights, in eval mode, on the device.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    device = resolve_device(context.device)
    _check_arguments(train_x, train_y, val_x, val_y, settings.batch_size)
    loss_fn, params = resolve_objective(context.objective, context.objective_params)
    if "teacher" in objective_context(loss_fn) and context.teacher is None:
        raise ValueError(f"train_classifier: objective {context.objective!r} needs a teacher model (teacher=...)")
    data = (train_x, train_y.long(), val_x, val_y.long())
    run = _setup(model, data, settings, context, device, loss_fn, params)
    state = _resume(run, model)
    start_epoch = len(state.history) + 1
    stop = context.stop_after
    last_epoch = settings.epochs if stop is None else min(settings.epochs, start_epoch - 1 + max(0, int(stop)))
    run_loop(_classifier_loop(run, model, data, context), state, last_epoch)
    final_state, best_state = keep_best(model, state)
    return TrainResult(
        best_state=best_state,
        best_epoch=state.best_epoch,
        best_val_accuracy=state.history[state.best_epoch - 1]["val_accuracy"] if state.best_epoch else float("nan"),
        history=state.history,
        epochs_run=max(0, last_epoch - start_epoch + 1),
        resumed_from_epoch=state.resumed_from,
        wall_seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        final_state=final_state,
        completed=len(state.history) == settings.epochs,
        objective=context.objective,
        objective_params=params,
        optimizer=settings.optimizer,
    )


# ------------------------------------------------------------------------------ the shared training loop


@dataclass
class TrainLoop:
    """One run of :func:`run_loop` (the loop of ``train_classifier`` and of ``advtransfer.tasks``' networks).

    model: trained in place, already on ``device``; optimizer: over its parameters (:func:`make_optimizer`);
    generator: the CPU generator that shuffles (and that ``batch`` may draw from); settings: epochs, batch_size,
    lr and replays are read (the optimiser already holds the rest); n: training samples.
    batch(indices) -> (inputs, targets) on the device; loss(inputs, targets) -> (scalar loss, logits or None),
    called in train mode; with ``accuracy`` the logits' argmax is scored against the targets
    (``train_accuracy``). validate() -> the epoch's validation entries (e.g. {"val_loss": ...}), in eval mode,
    None: no validation and no selection; better(record, best record or None) -> whether the epoch's record
    beats the best so far. on_epoch_end(state): after every epoch (checkpoints). name: for error messages.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    settings: TrainSettings
    n: int
    device: torch.device
    batch: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
    validate: Callable[[], dict[str, float]] | None = None
    better: Callable[[dict[str, float], dict[str, float] | None], bool] | None = None
    accuracy: bool = False
    on_epoch_end: Callable[[LoopState], None] | None = None
    progress: bool = False
    name: str = "train"


@dataclass
class LoopState:
    """What changes from epoch to epoch (checkpointed by ``train_classifier``): the history (one record per epoch
    from the first: epoch, lr of its last step, train_loss, [train_accuracy], the validation entries) and the
    best epoch so far (0: none) with a CPU copy of its weights."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = 0
    resumed_from: int | None = None


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """torch.optim.SGD (momentum, weight decay) or, for ``optimizer="adadelta"``, Adadelta (weight decay)."""
    if settings.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )


def run_loop(loop: TrainLoop, state: LoopState | None = None, last_epoch: int | None = None) -> LoopState:
    """Train the epochs after ``state``'s history up to ``last_epoch`` (default: all): per epoch one pass of
    :func:`train_epoch`, then ``validate`` and, when ``better`` says so, a CPU copy of the weights as the best
    epoch's (ties are the caller's ``better`` to break; keeping the earlier epoch means answering False).
    Returns the state (``state``, updated, or a fresh one)."""
    state = LoopState() if state is None else state
    epochs = loop.settings.epochs
    for epoch in range(len(state.history) + 1, (epochs if last_epoch is None else last_epoch) + 1):
        bar = tqdm(
            total=steps_per_epoch(loop.n, loop.settings.batch_size), desc=f"train epoch {epoch}/{epochs}",
            file=sys.stderr, disable=not loop.progress, mininterval=10.0, ascii=True, dynamic_ncols=False,
        )  # fmt: skip
        try:
            record = {"epoch": epoch, **train_epoch(loop, epoch, bar)}
            if loop.validate is not None:
                record.update(loop.validate())
            state.history.append(record)
            best = state.history[state.best_epoch - 1] if state.best_epoch else None
            if loop.validate is not None and loop.better(record, best):
                state.best_epoch, state.best_state = epoch, _cpu_state(loop.model)
            shown = {"train_loss": "loss", "train_accuracy": "acc", "val_accuracy": "val_acc"}
            bar.set_postfix(**{s: f"{record[k]:.4f}" for k, s in shown.items() if k in record}, best=state.best_epoch)
        finally:
            bar.close()
        if loop.on_epoch_end is not None:
            loop.on_epoch_end(state)
    return state


def train_epoch(loop: TrainLoop, epoch: int, bar: tqdm | None = None) -> dict[str, float]:
    """One pass over the training set shuffled by ``loop.generator``, ``replays`` optimiser steps per batch, the
    learning rate set before each step by :func:`cosine_lr` over all the run's steps.

    Returns {"lr": of the last step, "train_loss": mean loss, ["train_accuracy"]}. Raises FloatingPointError
    when the mean loss is not finite.
    """
    model, s = loop.model, loop.settings
    model.train()
    steps = steps_per_epoch(loop.n, s.batch_size)
    order = torch.randperm(loop.n, generator=loop.generator)
    loss_sum = torch.zeros((), dtype=torch.float64, device=loop.device)
    correct = torch.zeros((), dtype=torch.int64, device=loop.device)
    seen = 0
    for i in range(steps):
        idx = order[i * s.batch_size : (i + 1) * s.batch_size]
        xb, yb = loop.batch(idx)
        for r in range(s.replays):
            lr_now = cosine_lr(s.lr, ((epoch - 1) * steps + i) * s.replays + r, s.epochs * steps * s.replays)
            for group in loop.optimizer.param_groups:
                group["lr"] = lr_now
            loss, logits = loop.loss(xb, yb)
            loop.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            loop.optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            if loop.accuracy:
                correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
        if bar is not None:
            bar.update(1)
    train_loss = loss_sum.item() / seen
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"{loop.name}: training diverged in epoch {epoch} (loss {train_loss}); lower lr (now {s.lr})"
        )
    stats = {"lr": lr_now, "train_loss": train_loss}
    return {**stats, "train_accuracy": correct.item() / seen} if loop.accuracy else stats


def keep_best(model: nn.Module, state: LoopState) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Load the best epoch's weights into ``model`` (the final ones when no epoch was selected) and put it in eval
    mode. Returns (CPU copy of the final weights, the weights loaded)."""
    final_state = _cpu_state(model)
    best_state = final_state if state.best_state is None else state.best_state
    model.load_state_dict(best_state)
    model.eval()
    return final_state, best_state


# ------------------------------------------------------------------------------------- classifier runs


@dataclass
class _Run:
    """What stays fixed during a ``train_classifier`` call (set up by ``_setup``)."""

    device: torch.device
    cuda: bool
    use_amp: bool  # bfloat16 autocast around the objective (CUDA only)
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # CPU: shuffling and augmentation draws
    data_x: torch.Tensor  # the training set, on the GPU when it fits
    data_y: torch.Tensor
    settings: TrainSettings
    loss_fn: Objective
    objective_params: dict[str, Any]
    context: dict[str, Any]  # the loop-supplied arguments the objective takes (OBJECTIVE_CONTEXT)
    checkpoint: Path | None
    fingerprint: dict[str, Any] | None  # identifies the run a checkpoint belongs to


def _check_arguments(train_x, train_y, val_x, val_y, batch_size: int):
    """ValueError for inputs ``train_classifier`` cannot train on."""
    _check_xy(train_x, train_y, "train_classifier: train")
    _check_xy(val_x, val_y, "train_classifier: validation")
    if len(val_x) == 0:
        raise ValueError("train_classifier: the validation split is empty; the checkpoint is chosen on it")
    if steps_per_epoch(len(train_x), batch_size) == 0:
        raise ValueError(f"train_classifier: need at least 2 training samples, got {len(train_x)}")


def _fingerprint(model, data, settings: TrainSettings, context: TrainContext, objective_params, wanted):
    """What identifies a run's checkpoint (None without a checkpoint directory). It names the optimizer only when
    it is not SGD and the replays only when not 1, so checkpoints written before those options still resume."""
    if context.checkpoint_dir is None:
        return None
    s = settings
    train_x, train_y, val_x, val_y = data
    fingerprint = {
        "format": CHECKPOINT_FORMAT, "epochs": s.epochs, "batch_size": s.batch_size, "lr": float(s.lr),
        "momentum": float(s.momentum), "weight_decay": float(s.weight_decay), "seed": int(context.seed),
        "augment": bool(s.augment), "objective": context.objective, "objective_params": objective_params,
        "initial_weights": _digest(model.state_dict().items()),
        "data": _digest([("train_x", train_x), ("train_y", train_y), ("val_x", val_x), ("val_y", val_y)]),
    }  # fmt: skip
    if s.optimizer != "sgd":
        fingerprint["optimizer"] = s.optimizer
    if s.replays != 1:
        fingerprint["replays"] = s.replays
    if "teacher" in wanted:
        fingerprint["teacher"] = _digest(context.teacher.state_dict().items())
    return fingerprint


def _setup(model, data, settings: TrainSettings, context: TrainContext, device, loss_fn, objective_params) -> _Run:
    """Fingerprint the run (before the model moves), put the model (and the training data, if small) on
    ``device``, and create the optimiser and the seeded generator. Labels are already int64."""
    wanted = objective_context(loss_fn)
    fingerprint = _fingerprint(model, data, settings, context, objective_params, wanted)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    use_amp = cuda and (context.amp if context.amp is not None else True) and torch.cuda.is_bf16_supported()
    opt = make_optimizer(model, settings)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(context.seed))
    loop_args: dict[str, Any] = {"generator": generator, "state": {}}
    if "teacher" in wanted:
        loop_args["teacher"] = copy.deepcopy(context.teacher).to(device).eval().requires_grad_(False)
    loop_args = {k: loop_args[k] for k in wanted}

    # Keep the training set on the GPU when it is small enough: no per-batch host-to-device copies.
    data_x, data_y = data[0], data[1]
    if cuda and data_x.element_size() * data_x.numel() <= 2**31:
        data_x, data_y = data_x.to(device), data_y.to(device)

    return _Run(
        device=device, cuda=cuda, use_amp=use_amp, optimizer=opt, generator=generator, data_x=data_x,
        data_y=data_y, settings=settings, loss_fn=loss_fn, objective_params=objective_params, context=loop_args,
        fingerprint=fingerprint,
        checkpoint=None if context.checkpoint_dir is None else checkpoint_path(context.checkpoint_dir),
    )  # fmt: skip


def _resume(run: _Run, model: nn.Module) -> LoopState:
    """The state to continue from: restored from the run's checkpoint when there is one of this run (model,
    optimiser and generator restored in place), else a fresh start."""
    if run.checkpoint is None or not run.checkpoint.exists():
        return LoopState()
    restored = _load_checkpoint(
        run.checkpoint, run.fingerprint, model, run.optimizer, run.generator, run.context.get("state")
    )
    if restored is None:  # another run's checkpoint (warned): start afresh
        return LoopState()
    history, best_state, best_epoch = restored
    state = LoopState(history, best_state, best_epoch, resumed_from=len(history))
    print(f"[train] resumed from {run.checkpoint} after epoch {len(history)}/{run.settings.epochs}", file=sys.stderr)
    return state


def _classifier_loop(run: _Run, model: nn.Module, data, context: TrainContext) -> TrainLoop:
    """The :class:`TrainLoop` of a ``train_classifier`` call: batches (augmented; channels_last on CUDA), the
    objective under the run's autocast, cross-entropy validation, selection on accuracy, checkpoints."""
    train_x, _, val_x, val_y = data
    augment, device = run.settings.augment, run.device
    pad = max(1, train_x.shape[-1] // 8)

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if augment:  # draw on the CPU generator, whatever the device: same numbers everywhere
            offsets = torch.randint(0, 2 * pad + 1, (len(idx), 2), generator=run.generator)
            flips = torch.rand(len(idx), generator=run.generator) < 0.5
        xb = run.data_x[idx.to(run.data_x.device)].to(device, non_blocking=True)
        yb = run.data_y[idx.to(run.data_y.device)].to(device, non_blocking=True)
        if augment:
            xb = crop_flip(xb, offsets.to(device), flips.to(device), pad)
        if run.cuda:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=run.use_amp):
            value, logits = run.loss_fn(model, xb, yb, **run.objective_params, **run.context)
        if value.ndim != 0:
            raise ValueError(
                f"train_classifier: the objective returned a loss of shape {tuple(value.shape)}, not a scalar"
            )
        return value, logits

    def validate() -> dict[str, float]:
        val_acc, val_loss = evaluate(model, val_x, val_y, context.eval_batch_size, device)
        return {"val_loss": val_loss, "val_accuracy": val_acc}

    def checkpoint(state: LoopState):
        _save_checkpoint(run.checkpoint, run.fingerprint, model, run.optimizer, run.generator, state.history,
                         state.best_state, state.best_epoch, run.context.get("state"))  # fmt: skip

    return TrainLoop(
        model=model, optimizer=run.optimizer, generator=run.generator, settings=run.settings, n=len(train_x),
        device=device, batch=batch, loss=loss, validate=validate, better=more_accurate, accuracy=True,
        on_epoch_end=None if run.checkpoint is None else checkpoint, progress=context.progress,
        name="train_classifier",
    )  # fmt: skip


def more_accurate(record: dict[str, float], best: dict[str, float] | None) -> bool:
    """``train_classifier``'s selection: a higher validation accuracy (ties: a lower validation loss, then the
    earlier epoch)."""
    if best is None:
        return True
    acc, best_acc = record["val_accuracy"], best["val_accuracy"]
    return acc > best_acc or (acc == best_acc and record["val_loss"] < best["val_loss"])


# ---------------------------------------------------------------------------------------------- helpers


def _check_xy(x: torch.Tensor, y: torch.Tensor, what: str):
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{what}: inputs must be a float tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x) or y.is_floating_point():
        raise ValueError(
            f"{what}: labels must be an integer tensor of shape ({len(x)},), got {getattr(y, 'shape', type(y))}"
        )


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch of ``n`` samples: a last batch of a single sample is dropped (batch norm)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)


def cosine_lr(base: float, step: int, total: int) -> float:
    """The learning rate at optimiser step ``step`` of ``total``: base (1 + cos(pi step / total)) / 2."""
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-sample random crop of a zero-padded batch (offsets (B, 2) in [0, 2 pad]) and horizontal flip."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C): advanced dims first
    return out.permute(0, 3, 1, 2).contiguous()


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _digest(items) -> str:
    """sha256 over names, dtypes, shapes and bytes of tensors (a fingerprint, not a security measure)."""
    h = hashlib.sha256()
    for name, t in items:
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # buffer protocol: no copy
    return h.hexdigest()


def _save_checkpoint(
    path, fingerprint, model, optimizer, generator, history, best_state, best_epoch, objective_state=None
):
    """Write the end-of-epoch state atomically: model, optimiser and generator states, the objective's state
    tensors and the best weights as tensors; fingerprint, history, best epoch and the optimiser's non-tensor
    state as JSON metadata."""
    tensors: dict[str, torch.Tensor] = {"generator_state": generator.get_state()}
    tensors.update({f"objective_state.{k}": v.detach() for k, v in (objective_state or {}).items()})
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors.update({f"best.{k}": v for k, v in best_state.items()})
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for idx, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{idx}.{key}"] = value
            else:
                opt_scalars.setdefault(str(idx), {})[key] = value
    meta = {
        "fingerprint": fingerprint,
        "epoch": len(history),
        "history": history,
        "best_epoch": best_epoch,
        "optimizer_param_groups": opt["param_groups"],
        "optimizer_scalars": opt_scalars,
    }
    save_tensors(path, tensors, metadata=meta)


def _load_checkpoint(path: Path, fingerprint, model, optimizer, generator, objective_state=None):
    """Restore states from ``path`` (the objective's state tensors into ``objective_state``); None (with a
    warning) if it belongs to another run."""
    tensors = load_tensors(path, required=("generator_state",))
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header["json"])
        old = meta["fingerprint"]
        epoch, history = int(meta["epoch"]), list(meta["history"])
    except Exception as err:  # noqa: BLE001 - any failure here means an unreadable checkpoint
        raise ValueError(f"{path}: corrupt training checkpoint metadata ({err!r}); delete it and rerun") from err
    if old != fingerprint:
        changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        warnings.warn(
            f"{path}: checkpoint is from a different run (changed: {', '.join(changed)}); starting afresh "
            "and overwriting it",
            stacklevel=4,  # the caller of train_classifier (via _resume)
        )
        return None
    try:
        if epoch != len(history) or not 1 <= epoch <= fingerprint["epochs"]:
            raise ValueError(f"epoch {epoch} vs {len(history)} history entries")
        model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        best_state = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
        model.load_state_dict(model_state)
        if set(best_state) != set(model_state):
            raise ValueError("best-state keys do not match the model")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        for idx, scalars in meta["optimizer_scalars"].items():
            state.setdefault(int(idx), {}).update(scalars)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_param_groups"]})
        generator.set_state(tensors["generator_state"])
        if objective_state is not None:
            prefix = "objective_state."
            objective_state.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        best_epoch = int(meta["best_epoch"])
        if not 1 <= best_epoch <= epoch:
            raise ValueError(f"best epoch {best_epoch} outside 1..{epoch}")
        best = history[best_epoch - 1]
        if not all(isinstance(best.get(k), (int, float)) for k in ("val_accuracy", "val_loss")):
            raise ValueError(f"best epoch {best_epoch} has no validation accuracy and loss")
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: training checkpoint does not fit this run ({err}); delete it and rerun") from err
    return history, best_state, best_epoch
