"""Peak CPU memory of one call, measured in a fresh process (``benchmarks.common.peak_memory_mb`` runs it).

    python -m benchmarks.memory CASE VARIANT PARAMS_JSON [--threads N]

Builds the case's inputs (``setup``), warms the code path up with the case's ``warm(ctx, variant)`` (a
call on one sample: loads libraries and kernels, whose pages are no part of the method's memory), hands
freed heap back to the system (``malloc_trim``), resets the kernel's high-water mark of resident memory
(``/proc/self/clear_refs``), runs ``run(ctx, VARIANT)`` once and prints {"peak_delta_mb": peak resident
memory during the call minus resident memory before it, in MiB, "baseline_mb", "warm"} as JSON. Where the
high-water mark cannot be reset (not Linux), the call runs cold and the growth of the peak is reported.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
from pathlib import Path

import torch

from benchmarks.common import peak_rss_mb


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**10
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident size (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case")
    parser.add_argument("variant")
    parser.add_argument("params")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    module = importlib.import_module(f"benchmarks.{args.case}")
    ctx = module.setup(json.loads(args.params), torch.device("cpu"))
    warm = _reset_peak() and _rss_mb() is not None and hasattr(module, "warm")
    if warm:
        module.warm(ctx, args.variant)
        _trim()
        before = _rss_mb()
        _reset_peak()
    else:
        _trim()
        before = peak_rss_mb()
    module.run(ctx, args.variant)
    after = peak_rss_mb()
    print(json.dumps({"peak_delta_mb": max(0.0, after - before), "baseline_mb": before, "warm": warm}))


if __name__ == "__main__":
    main()
