"""Safe, atomic reading and writing of tensors, models and JSON sidecars.

Everything is written to a temporary file in the destination folder and renamed into place, so an
interrupted job never leaves a file a later run would trust. Tensors are stored as safetensors; nothing
is ever unpickled. Each file written here gets its content digest recorded beside it (``.<name>.sha256``),
and the readers here check it: a result changed, emptied or corrupted behind the workflow's back (even
with its modification time kept) stops the job that would read it, naming the file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from advtransfer.digests import check_digest, digest_path, file_digest, rerun_advice
from advtransfer.runtime import environment


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", digest: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds, after
    recording its content digest (``digest_path``) unless ``digest`` is false (data files, figures: no job reads
    them through these readers)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if digest:
            with atomic_path(digest_path(path), digest=False) as record:
                record.write_text(file_digest(tmp) + "\n")
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
    check_digest(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err}); {rerun_advice(path)}") from err
    missing = [k for k in required if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensors {missing} (has {sorted(tensors)}); {rerun_advice(path)}")
    return tensors


def save_json(path: str | os.PathLike, payload: dict[str, Any]):
    """Write a JSON document atomically (sorted keys, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")


def load_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON document; a missing or corrupt file raises an error naming it."""
    path = Path(path)
    try:
        check_digest(path)
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (rerun the rule that produces it)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt JSON ({err}); {rerun_advice(path)}") from err


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


def load_csv(path: str | os.PathLike, **read_csv: Any):
    """A CSV result as a pandas DataFrame, after checking its content digest (``check_digest``)."""
    import pandas as pd

    path = Path(path)
    check_digest(path)
    return pd.read_csv(path, **read_csv)


def json_scalars(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict:
    """A JSON file's number (and null) entries: what a family's summary row takes from a job's result (the
    per-draw lists and training histories stay in the file). Each of ``required`` must be there, and every
    number must be finite: otherwise ValueError naming the file and the key."""
    values = {k: v for k, v in load_json(path).items() if isinstance(v, (int, float, bool)) or v is None}
    missing = [k for k in required if k not in values]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)} (has {', '.join(sorted(values)) or 'nothing'}); "
                         f"{rerun_advice(path)}")  # fmt: skip
    broken = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    if broken:
        raise ValueError(f"{path}: {', '.join(f'{k} = {values[k]}' for k in broken)} (not finite): the job that "
                         "wrote it diverged or read a broken input; its log says which")  # fmt: skip
    return values
