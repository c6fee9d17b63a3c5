"""Supervised training of the source / reference classifiers, with validation-based checkpoint selection.

``train_classifier`` runs SGD with momentum and weight decay under a per-step cosine learning-rate
schedule, evaluates on the VALIDATION split after every epoch and keeps the weights of the best epoch.
It never sees test data. On CPU the result is a deterministic function of (initial weights, data,
hyper-parameters, seed). With ``checkpoint_dir`` it writes one atomic checkpoint per epoch and a later
call with the same arguments resumes from it and ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from tqdm import tqdm

from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import frozen_on
from advtransfer.runtime import resolve_device

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "advtransfer-train-checkpoint/1"


@dataclass
class TrainResult:
    """What ``train_classifier`` returns. Epochs are numbered from 1.

    best_state: CPU state dict of the epoch with the highest validation accuracy (ties: lower validation
        loss, then the earlier epoch);
        the model passed in holds these weights on return.
    final_state: CPU state dict after the last epoch run.
    history: one dict per epoch since the start (resumed epochs included): epoch, lr (of the epoch's
        last step), train_loss, train_accuracy (on the augmented training batches, in train mode),
        val_loss, val_accuracy.
    epochs_run: epochs trained by THIS call (0 when the checkpoint was already complete).
    resumed_from_epoch: last completed epoch restored from the checkpoint, None if started fresh.
    wall_seconds: wall time of this call.
    """

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]]
    epochs_run: int
    resumed_from_epoch: int | None
    wall_seconds: float
    final_state: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    completed: bool = True  # False when ``stop_after`` ended the call before ``epochs``


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    """The file ``train_classifier`` writes in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


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
) -> TrainResult:
    """Train ``model`` (in place) with cross-entropy; select the epoch with the best validation accuracy.

    Inputs: float tensors in [0, 1] of shape (N, C, H, W) on the CPU, integer labels (N,). Batches are
    shuffled by a torch.Generator seeded with ``seed``; ``augment`` adds a random crop (zero padding
    of max(1, H // 8) pixels: 4 for 32x32) and a horizontal flip, drawn from the same generator. A last
    batch of a single sample is dropped (batch norm cannot train on it). Weight decay applies to every
    parameter. The learning rate follows lr * (1 + cos(pi * t / T)) / 2 over the T = epochs * steps
    optimiser steps.

    ``checkpoint_dir``: after every epoch write ``checkpoint.safetensors`` there (atomically), holding the
    model, optimiser and generator states, the best-so-far weights, the history and a fingerprint of
    the arguments, initial weights and data. A later call finding it resumes after its epoch if the
    fingerprint matches (else warns and starts afresh); an unreadable checkpoint raises ValueError
    naming the file. ``stop_after``: train at most this many epochs in this call (time-limited jobs;
    pair it with ``checkpoint_dir``).

    On CUDA (only): cudnn.benchmark, channels_last and, when ``amp`` is None or True and the GPU
    supports it, bfloat16 autocast. On return the model holds the best weights, in eval mode, on
    ``device``.
    """
    started = time.perf_counter()
    device = resolve_device(device)
    _check_xy(train_x, train_y, "train_classifier: train")
    _check_xy(val_x, val_y, "train_classifier: validation")
    if len(val_x) == 0:
        raise ValueError("train_classifier: the validation split is empty; the checkpoint is chosen on it")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"train_classifier: epochs ({epochs}) and batch_size ({batch_size}) must be >= 1")
    n = len(train_x)
    steps_per_epoch = _steps_per_epoch(n, batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"train_classifier: need at least 2 training samples, got {n}")
    total_steps = epochs * steps_per_epoch
    train_y, val_y = train_y.long(), val_y.long()

    fingerprint = None if checkpoint_dir is None else {  # identifies the run a checkpoint belongs to
        "format": CHECKPOINT_FORMAT,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": float(lr),
        "momentum": float(momentum),
        "weight_decay": float(weight_decay),
        "seed": int(seed),
        "augment": bool(augment),
        "initial_weights": _digest(model.state_dict().items()),
        "data": _digest([("train_x", train_x), ("train_y", train_y), ("val_x", val_x), ("val_y", val_y)]),
    }

    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    use_amp = cuda and (amp if amp is not None else True) and torch.cuda.is_bf16_supported()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))

    # Keep the training set on the GPU when it is small enough: no per-batch host-to-device copies.
    data_x, data_y = train_x, train_y
    if cuda and train_x.element_size() * train_x.numel() <= 2**31:
        data_x, data_y = train_x.to(device), train_y.to(device)

    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, best_acc, best_loss = 0, -1.0, math.inf
    start_epoch, resumed_from = 1, None
    ckpt = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None and ckpt.exists():
        restored = _load_checkpoint(ckpt, fingerprint, model, optimizer, generator)
        if restored is not None:
            history, best_state, best_epoch, best_acc, best_loss = restored
            resumed_from = len(history)
            start_epoch = resumed_from + 1
            print(f"[train] resumed from {ckpt} after epoch {resumed_from}/{epochs}", file=sys.stderr)

    last_epoch = epochs if stop_after is None else min(epochs, start_epoch - 1 + max(0, int(stop_after)))
    for epoch in range(start_epoch, last_epoch + 1):
        model.train()
        order = torch.randperm(n, generator=generator)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"train epoch {epoch}/{epochs}",
            file=sys.stderr,
            disable=not progress,
            mininterval=10.0,
            ascii=True,
            dynamic_ncols=False,
        )
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            flips = offsets = None
            if augment:  # draw on the CPU generator, whatever the device: same numbers everywhere
                pad = max(1, train_x.shape[-1] // 8)
                offsets = torch.randint(0, 2 * pad + 1, (len(idx), 2), generator=generator)
                flips = torch.rand(len(idx), generator=generator) < 0.5
            xb = data_x[idx.to(data_x.device)].to(device, non_blocking=True)
            yb = data_y[idx.to(data_y.device)].to(device, non_blocking=True)
            if augment:
                xb = _crop_flip(xb, offsets.to(device), flips.to(device), pad)
            if cuda:
                xb = xb.contiguous(memory_format=torch.channels_last)
            step = (epoch - 1) * steps_per_epoch + i
            lr_now = _cosine_lr(lr, step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr_now
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
            bar.update(1)
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            bar.close()
            raise FloatingPointError(
                f"train_classifier: training diverged in epoch {epoch} (loss {train_loss}); lower lr (now {lr})"
            )
        val_acc, val_loss = evaluate(model, val_x, val_y, eval_batch_size, device)
        record = {
            "epoch": epoch,
            "lr": lr_now,
            "train_loss": train_loss,
            "train_accuracy": correct.item() / seen,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
        }
        history.append(record)
        if val_acc > best_acc or (val_acc == best_acc and val_loss < best_loss):
            best_acc, best_loss, best_epoch, best_state = val_acc, val_loss, epoch, _cpu_state(model)
        bar.set_postfix(
            loss=f"{train_loss:.4f}", acc=f"{record['train_accuracy']:.4f}", val_acc=f"{val_acc:.4f}", best=best_epoch
        )
        bar.close()
        if ckpt is not None:
            _save_checkpoint(ckpt, fingerprint, model, optimizer, generator, history, best_state, best_epoch)

    final_state = _cpu_state(model)
    if best_state is None:  # stop_after=0 on a fresh start: nothing trained yet
        best_state = final_state
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        best_state=best_state,
        best_epoch=best_epoch,
        best_val_accuracy=best_acc if best_epoch else float("nan"),
        history=history,
        epochs_run=max(0, last_epoch - start_epoch + 1),
        resumed_from_epoch=resumed_from,
        wall_seconds=time.perf_counter() - started,
        final_state=final_state,
        completed=len(history) == epochs,
    )


# ---------------------------------------------------------------------------------------------- helpers


def _check_xy(x: torch.Tensor, y: torch.Tensor, what: str):
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{what}: inputs must be a float tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x) or y.is_floating_point():
        raise ValueError(f"{what}: labels must be an integer tensor of shape ({len(x)},), got {getattr(y, 'shape', type(y))}")


def _steps_per_epoch(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0)


def _cosine_lr(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


def _crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int) -> torch.Tensor:
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


def _save_checkpoint(path, fingerprint, model, optimizer, generator, history, best_state, best_epoch):
    tensors: dict[str, torch.Tensor] = {"generator_state": generator.get_state()}
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


def _load_checkpoint(path: Path, fingerprint, model, optimizer, generator):
    """Restore states from ``path``; None (with a warning) if it belongs to another run."""
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
            stacklevel=3,
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
        best_epoch = int(meta["best_epoch"])
        if not 1 <= best_epoch <= epoch:
            raise ValueError(f"best epoch {best_epoch} outside 1..{epoch}")
        best_acc = float(history[best_epoch - 1]["val_accuracy"])
        best_loss = float(history[best_epoch - 1]["val_loss"])
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: training checkpoint does not fit this run ({err}); delete it and rerun") from err
    return history, best_state, best_epoch, best_acc, best_loss
