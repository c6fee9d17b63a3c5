"""Shared machinery of the benchmark cases: settings, timing, peak memory, machine facts, results.

Timing: ``warmup`` untimed calls, then ``repeats`` timed calls; each figure records min / median / max.
Every timed call records its wall time and, on the CPU, the CPU time of this process
(``time.process_time``; for subprocesses, the children's user + system time). On CUDA every timed region
is bracketed by ``torch.cuda.synchronize``. Implementations compared in one case are timed interleaved
(A, B, A, B, ...) so that load from other processes hits both alike.

Ratios and goals use MEDIANS, of CPU time on the CPU and of wall time on CUDA. The CPU default is one
torch thread (as every workflow rule runs), so CPU time is the work the code does, and it stays put when
other processes share the cores, while wall time then mostly measures the scheduler. Wall-time ratios
are reported beside them (keys ending in ``_wall``).

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what was allocated before the call. On
the CPU, torch's allocations are invisible to tracemalloc, so each measurement runs in a fresh Python
process (``python -m benchmarks.memory``): it builds the case's inputs, warms up on one sample, resets
the kernel's peak-RSS mark, makes one call and reports the peak resident memory above the resident
memory before the call.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from advtransfer.runtime import environment

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "benchmarks"


@dataclass
class Settings:
    """Command-line settings every case sees (see ``benchmarks.runner``)."""

    device: torch.device
    quick: bool = False
    repeats: int | None = None  # None: each case's own default
    warmup: int = 1
    threads: int = 1
    out: Path = DEFAULT_OUT
    va_batch: int | None = None  # virtual_attack batch (None: 32 on CUDA, 2 on the CPU)
    tau_images: int | None = None  # transferability: target images (None: 1000; quick: 16)
    tau_subset: int | None = None  # transferability: images of the per-sample loop (None: 100 CPU, all CUDA)
    tau_model: str = "small_cnn"  # transferability: small_cnn (28x28) or resnet18_cifar (32x32)
    pgd_batch: int | None = None  # pgd batch (None: 32 on CUDA, 8 on the CPU)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def reps(self, default: int) -> int:
        """Timed repeats of a figure: ``--repeats`` if given, else the case's default (1 in --quick)."""
        if self.repeats is not None:
            return max(1, self.repeats)
        return 1 if self.quick else default


# --------------------------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of each timed call: wall clock, and CPU time of this process (all its threads)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result) of one call of ``fn``, synchronised on CUDA."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def time_calls(
    fn: Callable[[], Any],
    device: torch.device,
    repeats: int,
    warmup: int = 1,
    warmup_fn: Callable[[], Any] | None = None,
) -> tuple[Timing, Any]:
    """``warmup`` untimed calls (of ``warmup_fn`` if given, e.g. a smaller input), then ``repeats`` timed calls."""
    for _ in range(warmup):
        (warmup_fn or fn)()
    sync(device)
    timing, out = Timing(), None
    for _ in range(repeats):
        wall, cpu, out = timed(fn, device)
        timing.add(wall, cpu)
    return timing, out


def time_interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int = 1
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Time several implementations in turn (A B A B ...) after ``warmup`` rounds; last result of each."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    timings = {name: Timing() for name in fns}
    outs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu, outs[name] = timed(fn, device)
            timings[name].add(wall, cpu)
    return timings, outs


def children_cpu_seconds() -> float:
    """User + system CPU seconds of all waited-for child processes so far (subprocess timings)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_figures(name: str, timing: Timing, settings: Settings, per: float = 1.0, unit: str = "s") -> dict[str, Any]:
    """``{name}_time`` (wall) and, on the CPU, ``{name}_cpu_time``; values multiplied by ``per``."""
    figs = {f"{name}_time": figure([v * per for v in timing.wall], unit)}
    if not settings.cuda:
        figs[f"{name}_cpu_time"] = figure([v * per for v in timing.cpu], f"{unit} cpu")
    return figs


def judged(figures: dict[str, dict[str, Any]], name: str, settings: Settings) -> dict[str, Any]:
    """The figure goals are judged on: ``{name}_cpu_time`` on the CPU, ``{name}_time`` on CUDA."""
    return figures[f"{name}_time" if settings.cuda else f"{name}_cpu_time"]


def time_ratio(
    figures: dict[str, dict[str, Any]], num: str, den: str, settings: Settings, wall: bool = False
) -> float:
    """median(num) / median(den) of the judged figures (``wall=True``: of the wall-time figures)."""
    if wall:
        return ratio(figures[f"{num}_time"], figures[f"{den}_time"], "median")
    return ratio(judged(figures, num, settings), judged(figures, den, settings), "median")


def figure(values: list[float] | float, unit: str) -> dict[str, Any]:
    """{"min", "median", "max", "unit", "repeats"} of measured values (a scalar counts as one value)."""
    vals = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
    return {
        "min": min(vals),
        "median": statistics.median(vals),
        "max": max(vals),
        "unit": unit,
        "repeats": len(vals),
    }


def ratio(num: dict[str, Any], den: dict[str, Any], key: str) -> float:
    return float(num[key] / den[key]) if den[key] else float("inf")


# --------------------------------------------------------------------------------------------- memory


def peak_memory_mb(case: str, variants: list[str], params: dict[str, Any], settings: Settings) -> dict[str, float]:
    """Peak memory (MiB) that one call of each variant of ``case`` adds on top of its inputs.

    The case module provides ``setup(params, device) -> ctx`` and ``run(ctx, variant)``. On the CPU the
    variants run in separate fresh processes, started together (memory does not depend on timing).
    """
    if settings.cuda:
        import importlib

        module = importlib.import_module(f"benchmarks.{case}")
        ctx = module.setup(params, settings.device)
        peaks = {}
        for variant in variants:
            module.run(ctx, variant)  # warm-up: cuBLAS / cuDNN workspaces are not the method's memory
            sync(settings.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(settings.device)
            base = torch.cuda.memory_allocated(settings.device)
            module.run(ctx, variant)
            sync(settings.device)
            peaks[variant] = (torch.cuda.max_memory_allocated(settings.device) - base) / 2**20
        del ctx
        torch.cuda.empty_cache()
        return peaks
    procs = {
        variant: subprocess.Popen(
            [sys.executable, "-m", "benchmarks.memory", case, variant, json.dumps(params),
             "--threads", str(settings.threads)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for variant in variants
    }
    peaks = {}
    for variant, proc in procs.items():
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"memory measurement {case}/{variant} failed:\n{out}\n{err[-4000:]}")
        peaks[variant] = float(json.loads(out.strip().splitlines()[-1])["peak_delta_mb"])
    return peaks


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory in MiB.

    Linux: VmHWM from /proc/self/status, which belongs to the address space and so starts afresh at
    exec. (getrusage's ru_maxrss would not do for a child process: Linux carries the parent's peak over
    fork + exec into it, so a child of a big benchmark process would see no growth at all.) Elsewhere:
    ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


# --------------------------------------------------------------------------------------------- facts


def machine() -> dict[str, Any]:
    """Platform, CPU count and processor (model name from /proc/cpuinfo where platform leaves it empty)."""
    processor = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "processor": processor or platform.machine(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
    if hasattr(os, "getloadavg"):
        info["loadavg_1min_at_start"] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# --------------------------------------------------------------------------------------------- results


@dataclass
class CaseResult:
    """What a case returns; ``to_json`` adds the machine, torch version and device."""

    case: str
    figures: dict[str, dict[str, Any]]
    ratios: dict[str, float]
    goal: str
    met: bool
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    command: str = ""

    def to_json(self, settings: Settings, wall_seconds: float) -> dict[str, Any]:
        return {
            "case": self.case,
            "machine": machine(),
            "torch": torch.__version__,
            "environment": environment(),
            "device": str(settings.device),
            "figures": self.figures,
            "ratios": self.ratios,
            "goal": self.goal,
            "met": bool(self.met),
            "params": self.params,
            "notes": self.notes,
            "command": self.command,
            "quick": settings.quick,
            "wall_seconds": round(wall_seconds, 2),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


# --------------------------------------------------------------------------------------------- data


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def images(n: int, channels: int, size: int, seed: int = 1) -> torch.Tensor:
    """Uniform random images in [0, 1], (n, channels, size, size), drawn on the CPU."""
    return torch.rand(n, channels, size, size, generator=seeded(seed))


def class_images(
    n: int, classes: int, channels: int, size: int, seed: int = 0, noise: float = 0.35
) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable synthetic image task: one smooth random prototype per class plus pixel noise, in [0, 1].

    Stands in for real data where only speed matters (no download); balanced labels in random order.
    """
    g = seeded(seed)
    coarse = torch.rand(classes, channels, max(2, size // 4), max(2, size // 4), generator=g)
    protos = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    x = protos[labels] + noise * torch.randn(n, channels, size, size, generator=g)
    return x.clamp(0, 1), labels


def build(name: str, num_classes: int, channels: int, size: int, seed: int = 0, **kwargs) -> torch.nn.Module:
    """A registered model (``advtransfer.models``) with seeded initial weights, in eval mode."""
    from advtransfer import models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kwargs:  # e.g. hidden=... for SmallCNN
            if name != "small_cnn":
                raise ValueError(f"build: keyword arguments only for small_cnn, got {name}")
            model = models.SmallCNN(num_classes, channels, size, **kwargs)
        else:
            model = models.build_model(name, num_classes, channels, size)
    return model.eval()
