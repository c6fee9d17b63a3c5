"""Safe, atomic reading and writing of tensors, models and JSON sidecars.

Everything is written to a temporary file in the destination folder and renamed into place, so an
interrupted job never leaves a file a later run would trust. Tensors are stored as safetensors; nothing
is ever unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from advtransfer.runtime import environment


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None):
    """Write named tensors as safetensors atomically; ``metadata`` is stored as JSON in the header."""
    header = {"json": json.dumps(metadata, sort_keys=True)} if metadata else None
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=header)


def load_tensors(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file raises ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (rerun the rule that produces it)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err}); delete it and rerun") from err
    missing = [k for k in required if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensors {missing} (has {sorted(tensors)}); delete it and rerun")
    return tensors


def save_json(path: str | os.PathLike, payload: dict[str, Any]):
    """Write a JSON document atomically (sorted keys, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def load_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON document; a missing or corrupt file raises an error naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (rerun the rule that produces it)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt JSON ({err}); delete it and rerun") from err


def save_model(path: str | os.PathLike, model: torch.nn.Module, sidecar: dict[str, Any]):
    """Save a model's state as safetensors plus a JSON sidecar (``path`` with suffix .json); the sidecar also
    records the environment (package versions and the lock file's hash, advtransfer.runtime.environment)."""
    save_tensors(path, model.state_dict())
    save_json(Path(path).with_suffix(".json"), {**sidecar, "environment": environment()})


def load_model(path: str | os.PathLike, model: torch.nn.Module) -> torch.nn.Module:
    """Load weights saved by ``save_model`` into ``model``; wrong keys or shapes name the file."""
    state = load_tensors(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: checkpoint does not match the model ({err})") from err
    return model


def save_csv(path: str | os.PathLike, frame):
    """Write a pandas DataFrame as CSV atomically (10 significant digits)."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def _jsonable(value: Any):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_scalars(path: str | os.PathLike) -> dict:
    """A JSON file's number (and null) entries: what a family's summary row takes from a job's result (the
    per-draw lists and training histories stay in the file)."""
    return {k: v for k, v in load_json(path).items() if isinstance(v, (int, float, bool)) or v is None}
