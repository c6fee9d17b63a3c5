"""Supervised training of the source / reference classifiers, with validation-based checkpoint selection.

``train_classifier`` runs SGD with momentum and weight decay (or Adadelta, ``optimizer="adadelta"``, as
the paper trains its CelebA attribute models) under a per-step cosine learning-rate schedule on a training
objective chosen by name (``advtransfer.registry.OBJECTIVES``; ``"ce"``: cross-entropy), evaluates on the
VALIDATION split after every epoch and keeps the weights of the best epoch. It never sees test data. On
CPU the result is a deterministic function of (initial weights, data, hyper-parameters, objective, seed).
With ``checkpoint_dir`` it writes one atomic checkpoint per epoch and a later call with the same arguments
resumes from it and ends with exactly the weights of an uninterrupted run.

An objective is ``function(model, x, y, **objective_params) -> (loss, logits)``: the scalar loss a
training step minimises and the logits of the batch it saw (for the running training accuracy). It is
called in train mode, under the training autocast context (bfloat16 on CUDA when enabled; compute the
loss in float32, as ``cross_entropy`` does). An objective that names any of ``OBJECTIVE_CONTEXT`` among its
parameters also gets it from the training loop: ``generator`` (the run's seeded CPU generator, for noise and
random starts: drawn on the CPU, the same numbers on every device), ``state`` (a dict that lives as long as
the run; its tensors are checkpointed, e.g. free adversarial training's perturbation) and ``teacher`` (a frozen
copy of the model passed as ``train_classifier(teacher=...)``, in eval mode on the training device).
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
from collections.abc import Callable
from dataclasses import dataclass, field
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
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int,
    device: str | torch.device,
    checkpoint_dir: str | Path | None = None,
    augment: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    eval_batch_size: int = 512,
    amp: bool | None = None,
    objective: str = "ce",
    objective_params: dict[str, Any] | None = None,
    optimizer: str = "sgd",
    teacher: nn.Module | None = None,
    replays: int = 1,
) -> TrainResult:
    """Train ``model`` (in place) on ``objective``; select the epoch with the best validation accuracy.

    Inputs: float tensors in [0, 1] of shape (N, C, H, W) on the CPU, integer labels (N,). Batches are
    shuffled by a torch.Generator seeded with ``seed``; ``augment`` adds a random crop (zero padding
    of max(1, H // 8) pixels: 4 for 32x32) and a horizontal flip, drawn from the same generator. A last
    batch of a single sample is dropped (batch norm cannot train on it). Weight decay applies to every
    parameter. The learning rate follows lr * (1 + cos(pi * t / T)) / 2 over the T = epochs * steps
    optimiser steps.

    ``optimizer``: ``"sgd"`` (torch.optim.SGD with ``momentum`` and ``weight_decay``, the default) or
    ``"adadelta"`` (torch.optim.Adadelta(lr=lr, weight_decay=weight_decay); ``momentum`` is ignored), both
    under that schedule; another name raises ValueError.

    ``objective``: a name in ``advtransfer.registry.OBJECTIVES`` (``"ce"``: cross-entropy, the default);
    ``objective_params``: keyword arguments for it (plain JSON values). An unknown name or parameters the
    objective does not take raise ValueError. Validation (and so the selection) always uses cross-entropy.
    ``teacher``: a model the objective reads (``rrm``); it is copied, never changed. ``replays``: optimiser
    steps per minibatch (free adversarial training replays each minibatch m times; divide ``epochs`` by m
    to keep the number of steps), each with its own learning rate on the cosine schedule.

    ``checkpoint_dir``: after every epoch write ``checkpoint.safetensors`` there (atomically), holding the
    model, optimiser and generator states, the best-so-far weights, the history and a fingerprint of
    the arguments (objective and its parameters, and the optimizer unless SGD, included), initial weights
    and data. A later call finding it resumes after its epoch if the fingerprint matches (else warns and
    starts afresh); an unreadable checkpoint raises ValueError naming the file. ``stop_after``: train at
    most this many epochs in this call (time-limited jobs; pair it with ``checkpoint_dir``).

    On CUDA (only): cudnn.benchmark, channels_last and, when ``amp`` is None or True and the GPU
    supports it, bfloat16 autocast. On return the model holds the best weights, in eval mode, on
    ``device``.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    device = resolve_device(device)
    _check_arguments(train_x, train_y, val_x, val_y, epochs, batch_size)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"train_classifier: unknown optimizer {optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if isinstance(replays, bool) or not isinstance(replays, int) or replays < 1:
        raise ValueError(f"train_classifier: replays must be an integer >= 1, got {replays!r}")
    loss_fn, params = resolve_objective(objective, objective_params)
    if "teacher" in objective_context(loss_fn) and teacher is None:
        raise ValueError(f"train_classifier: objective {objective!r} needs a teacher model (teacher=...)")
    train_y, val_y = train_y.long(), val_y.long()
    run = _setup(
        model, train_x, train_y, val_x, val_y, device=device, epochs=epochs, batch_size=batch_size, lr=lr,
        momentum=momentum, weight_decay=weight_decay, seed=seed, augment=augment, amp=amp,
        checkpoint_dir=checkpoint_dir, objective=objective, loss_fn=loss_fn, objective_params=params,
        optimizer=optimizer, teacher=teacher, replays=replays,
    )  # fmt: skip
    state = _resume(run, model)
    start_epoch = len(state.history) + 1
    last_epoch = epochs if stop_after is None else min(epochs, start_epoch - 1 + max(0, int(stop_after)))
    for epoch in range(start_epoch, last_epoch + 1):
        bar = tqdm(
            total=run.steps_per_epoch,
            desc=f"train epoch {epoch}/{epochs}",
            file=sys.stderr,
            disable=not progress,
            mininterval=10.0,
            ascii=True,
            dynamic_ncols=False,
        )
        try:
            stats = _train_one_epoch(run, model, train_x, epoch, bar)
            record = _validate_and_select(run, model, val_x, val_y, eval_batch_size, epoch, stats, state)
            bar.set_postfix(
                loss=f"{record['train_loss']:.4f}",
                acc=f"{record['train_accuracy']:.4f}",
                val_acc=f"{record['val_accuracy']:.4f}",
                best=state.best_epoch,
            )
        finally:
            bar.close()
        if run.checkpoint is not None:
            _save_checkpoint(
                run.checkpoint, run.fingerprint, model, run.optimizer, run.generator, state.history,
                state.best_state, state.best_epoch, run.context.get("state"),
            )  # fmt: skip

    final_state = _cpu_state(model)
    best_state = final_state if state.best_state is None else state.best_state  # None: stop_after=0, fresh
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        best_state=best_state,
        best_epoch=state.best_epoch,
        best_val_accuracy=state.best_acc if state.best_epoch else float("nan"),
        history=state.history,
        epochs_run=max(0, last_epoch - start_epoch + 1),
        resumed_from_epoch=state.resumed_from,
        wall_seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        final_state=final_state,
        completed=len(state.history) == epochs,
        objective=objective,
        objective_params=params,
        optimizer=optimizer,
    )


# ------------------------------------------------------------------------------------- training steps


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
    epochs: int
    batch_size: int
    steps_per_epoch: int
    lr: float
    augment: bool
    loss_fn: Objective
    objective_params: dict[str, Any]
    context: dict[str, Any]  # the loop-supplied arguments the objective takes (OBJECTIVE_CONTEXT)
    replays: int
    checkpoint: Path | None
    fingerprint: dict[str, Any] | None  # identifies the run a checkpoint belongs to


@dataclass
class _State:
    """What changes from epoch to epoch: the history and the best epoch so far (checkpointed)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = 0
    best_acc: float = -1.0
    best_loss: float = math.inf
    resumed_from: int | None = None


def _check_arguments(train_x, train_y, val_x, val_y, epochs: int, batch_size: int):
    """ValueError for inputs ``train_classifier`` cannot train on."""
    _check_xy(train_x, train_y, "train_classifier: train")
    _check_xy(val_x, val_y, "train_classifier: validation")
    if len(val_x) == 0:
        raise ValueError("train_classifier: the validation split is empty; the checkpoint is chosen on it")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"train_classifier: epochs ({epochs}) and batch_size ({batch_size}) must be >= 1")
    if _steps_per_epoch(len(train_x), batch_size) == 0:
        raise ValueError(f"train_classifier: need at least 2 training samples, got {len(train_x)}")


def _setup(
    model, train_x, train_y, val_x, val_y, *, device, epochs, batch_size, lr, momentum, weight_decay, seed,
    augment, amp, checkpoint_dir, objective, loss_fn, objective_params, optimizer="sgd", teacher=None, replays=1,
) -> _Run:  # fmt: skip
    """Fingerprint the run (before the model moves), put the model (and the data, if small) on ``device``,
    and create the optimiser (``optimizer``: "sgd" or "adadelta") and the seeded generator. Labels are
    already int64. The fingerprint names the optimizer only when it is not SGD, so checkpoints written
    before the option existed still resume."""
    fingerprint = None if checkpoint_dir is None else {
        "format": CHECKPOINT_FORMAT,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": float(lr),
        "momentum": float(momentum),
        "weight_decay": float(weight_decay),
        "seed": int(seed),
        "augment": bool(augment),
        "objective": objective,
        "objective_params": objective_params,
        "initial_weights": _digest(model.state_dict().items()),
        "data": _digest([("train_x", train_x), ("train_y", train_y), ("val_x", val_x), ("val_y", val_y)]),
    }  # fmt: skip
    if fingerprint is not None and optimizer != "sgd":
        fingerprint["optimizer"] = optimizer
    if fingerprint is not None and replays != 1:
        fingerprint["replays"] = replays
    wanted = objective_context(loss_fn)
    if fingerprint is not None and "teacher" in wanted:
        fingerprint["teacher"] = _digest(teacher.state_dict().items())

    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    use_amp = cuda and (amp if amp is not None else True) and torch.cuda.is_bf16_supported()
    if optimizer == "adadelta":
        opt = torch.optim.Adadelta(model.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    context: dict[str, Any] = {"generator": generator, "state": {}}
    if "teacher" in wanted:
        context["teacher"] = copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    context = {k: context[k] for k in wanted}

    # Keep the training set on the GPU when it is small enough: no per-batch host-to-device copies.
    data_x, data_y = train_x, train_y
    if cuda and train_x.element_size() * train_x.numel() <= 2**31:
        data_x, data_y = train_x.to(device), train_y.to(device)

    return _Run(
        device=device, cuda=cuda, use_amp=use_amp, optimizer=opt, generator=generator, data_x=data_x,
        data_y=data_y, epochs=epochs, batch_size=batch_size,
        steps_per_epoch=_steps_per_epoch(len(train_x), batch_size), lr=lr, augment=augment, loss_fn=loss_fn,
        objective_params=objective_params, context=context, replays=replays, fingerprint=fingerprint,
        checkpoint=None if checkpoint_dir is None else checkpoint_path(checkpoint_dir),
    )  # fmt: skip


def _resume(run: _Run, model: nn.Module) -> _State:
    """The state to continue from: restored from the run's checkpoint when there is one of this run (model,
    optimiser and generator restored in place), else a fresh start."""
    if run.checkpoint is None or not run.checkpoint.exists():
        return _State()
    restored = _load_checkpoint(
        run.checkpoint, run.fingerprint, model, run.optimizer, run.generator, run.context.get("state")
    )
    if restored is None:  # another run's checkpoint (warned): start afresh
        return _State()
    history, best_state, best_epoch, best_acc, best_loss = restored
    state = _State(history, best_state, best_epoch, best_acc, best_loss, resumed_from=len(history))
    print(f"[train] resumed from {run.checkpoint} after epoch {len(history)}/{run.epochs}", file=sys.stderr)
    return state


def _train_one_epoch(
    run: _Run, model: nn.Module, train_x: torch.Tensor, epoch: int, bar: tqdm
) -> dict[str, float]:
    """One pass over the shuffled (and augmented) training set, ``run.replays`` optimiser steps per batch.

    Returns {"lr": of the last step, "train_loss": mean objective, "train_accuracy": of the objective's
    logits}. Raises FloatingPointError when the mean loss is not finite.
    """
    model.train()
    n, batch_size, device = len(train_x), run.batch_size, run.device
    total_steps = run.epochs * run.steps_per_epoch * run.replays
    order = torch.randperm(n, generator=run.generator)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for i in range(run.steps_per_epoch):
        idx = order[i * batch_size : (i + 1) * batch_size]
        flips = offsets = None
        if run.augment:  # draw on the CPU generator, whatever the device: same numbers everywhere
            pad = max(1, train_x.shape[-1] // 8)
            offsets = torch.randint(0, 2 * pad + 1, (len(idx), 2), generator=run.generator)
            flips = torch.rand(len(idx), generator=run.generator) < 0.5
        xb = run.data_x[idx.to(run.data_x.device)].to(device, non_blocking=True)
        yb = run.data_y[idx.to(run.data_y.device)].to(device, non_blocking=True)
        if run.augment:
            xb = crop_flip(xb, offsets.to(device), flips.to(device), pad)
        if run.cuda:
            xb = xb.contiguous(memory_format=torch.channels_last)
        for r in range(run.replays):
            step = ((epoch - 1) * run.steps_per_epoch + i) * run.replays + r
            lr_now = cosine_lr(run.lr, step, total_steps)
            for group in run.optimizer.param_groups:
                group["lr"] = lr_now
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=run.use_amp):
                loss, logits = run.loss_fn(model, xb, yb, **run.objective_params, **run.context)
            if loss.ndim != 0:
                raise ValueError(
                    f"train_classifier: the objective returned a loss of shape {tuple(loss.shape)}, not a scalar"
                )
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
        bar.update(1)
    train_loss = loss_sum.item() / seen
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"train_classifier: training diverged in epoch {epoch} (loss {train_loss}); lower lr (now {run.lr})"
        )
    return {"lr": lr_now, "train_loss": train_loss, "train_accuracy": correct.item() / seen}


def _validate_and_select(
    run: _Run, model: nn.Module, val_x, val_y, eval_batch_size: int, epoch: int, stats: dict[str, float], state: _State
) -> dict[str, float]:
    """Evaluate on the validation split, append the epoch's record to the history and keep the model's
    weights if this is the best epoch so far (higher accuracy; ties: lower loss, then earlier). Returns
    the record."""
    val_acc, val_loss = evaluate(model, val_x, val_y, eval_batch_size, run.device)
    record = {
        "epoch": epoch,
        "lr": stats["lr"],
        "train_loss": stats["train_loss"],
        "train_accuracy": stats["train_accuracy"],
        "val_loss": val_loss,
        "val_accuracy": val_acc,
    }
    state.history.append(record)
    if val_acc > state.best_acc or (val_acc == state.best_acc and val_loss < state.best_loss):
        state.best_acc, state.best_loss, state.best_epoch = val_acc, val_loss, epoch
        state.best_state = _cpu_state(model)
    return record


# ---------------------------------------------------------------------------------------------- helpers


def _check_xy(x: torch.Tensor, y: torch.Tensor, what: str):
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{what}: inputs must be a float tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x) or y.is_floating_point():
        raise ValueError(
            f"{what}: labels must be an integer tensor of shape ({len(x)},), got {getattr(y, 'shape', type(y))}"
        )


def _steps_per_epoch(n: int, batch_size: int) -> int:
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
        best_acc = float(history[best_epoch - 1]["val_accuracy"])
        best_loss = float(history[best_epoch - 1]["val_loss"])
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: training checkpoint does not fit this run ({err}); delete it and rerun") from err
    return history, best_state, best_epoch, best_acc, best_loss
