"""Run the benchmark cases, print a table and write results/benchmarks/{case}.json.

    .venv/bin/python -m benchmarks [--quick] [--device cpu|cuda] [--repeats N] [--only CASE[,CASE]]

Default: every case except ``main_job`` (opt-in, about five minutes); 6 to 10 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import DEFAULT_OUT, CaseResult, Settings

CASES = (
    "products", "virtual_attack", "transferability", "pgd", "training", "probe", "atm", "smoothing", "robust_training",
    "interactions", "workflow", "scaling", "main_job", "floor",
)  # fmt: skip
OPT_IN = ("main_job", "floor")
DEFAULT_CASES = tuple(c for c in CASES if c not in OPT_IN)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke test, under a minute)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the library runs (default cpu)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of every figure (default: per case, 3-5; 1 for the minutes-long CPU "
                             "baselines)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (default 1)")
    parser.add_argument("--only", action="append", default=None, metavar="CASE",
                        help=f"run only these cases (comma-separated or repeated): {', '.join(CASES)}")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1, as every workflow rule; "
                             "see docs/performance.md)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON folder (default {DEFAULT_OUT})")
    parser.add_argument("--va-batch", type=int, default=None, help="virtual_attack batch (default 32 CUDA, 2 CPU)")
    parser.add_argument("--pgd-batch", type=int, default=None, help="pgd batch (default 32 CUDA, 8 CPU)")
    parser.add_argument("--tau-images", type=int, default=None, help="transferability: target images (default 1000)")
    parser.add_argument("--tau-subset", type=int, default=None,
                        help="transferability: images in the timed per-sample loop "
                             "(default 100 CPU, all CUDA)")  # fmt: skip
    parser.add_argument("--tau-model", default="small_cnn", choices=("small_cnn", "resnet18_cifar"),
                        help="transferability: model of source and reference (default small_cnn, 28x28)")  # fmt: skip
    args = parser.parse_args(argv)
    only = [c.strip() for item in (args.only or []) for c in item.split(",") if c.strip()]
    unknown = sorted(set(only) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    args.cases = [c for c in CASES if c in only] if only else list(DEFAULT_CASES)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device")
    return args


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 1000 or abs(value) < 0.01:
            return f"{value:.3g}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _cell(value: Any) -> str:
    """A Markdown table cell: numbers formatted, pipes escaped."""
    return (_fmt(value) if isinstance(value, (int, float)) else str(value)).replace("|", "\\|")


def table(results: list[dict[str, Any]]) -> str:
    """Plain-text (Markdown) table: one row per figure, then one row per case with its ratios and goal."""
    lines = ["| case | figure | min | median | max | unit | n |", "|---|---|---|---|---|---|---|"]
    for r in results:
        for name, f in r["figures"].items():
            cells = [r["case"], name, f["min"], f["median"], f["max"], f["unit"], f.get("repeats", "")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "| case | ratios | goal | met |", "|---|---|---|---|"]
    for r in results:
        ratios = ", ".join(f"{k} {_fmt(v)}" for k, v in r["ratios"].items())
        lines.append(f"| {r['case']} | {ratios} | {_cell(r['goal'])} | {'yes' if r['met'] else 'NO'} |")
    notes = [f"- {r['case']}: {n}" for r in results for n in r.get("notes", [])]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    settings = Settings(
        device=torch.device(args.device), quick=args.quick, repeats=args.repeats, warmup=max(0, args.warmup),
        threads=max(1, args.threads), out=args.out, va_batch=args.va_batch, tau_images=args.tau_images,
        tau_subset=args.tau_subset, tau_model=args.tau_model, pgd_batch=args.pgd_batch,
    )  # fmt: skip
    settings.out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    results, started = [], time.perf_counter()
    print(f"advtransfer benchmarks: {', '.join(args.cases)} on {settings.device}, torch {torch.__version__}, "
          f"{settings.threads} thread(s){', quick' if settings.quick else ''}", flush=True)  # fmt: skip
    for case in args.cases:
        module = importlib.import_module(f"benchmarks.{case}")
        t0 = time.perf_counter()
        print(f"[{case}] running ...", flush=True)
        result: CaseResult = module.measure(settings)
        result.command = command.strip()
        record = result.to_json(settings, time.perf_counter() - t0)
        path = settings.out / f"{case}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        results.append(record)
        print(f"[{case}] done in {record['wall_seconds']:.1f} s: goal {'met' if record['met'] else 'NOT met'} "
              f"-> {path}", flush=True)  # fmt: skip
    text = table(results)
    name = "table.md" if args.cases == list(DEFAULT_CASES) else f"table-{'-'.join(args.cases)}.md"
    (settings.out / name).write_text(text + "\n")
    print()
    print(text)
    print(f"\ntotal {time.perf_counter() - started:.1f} s; JSON in {settings.out}")
    return 0
