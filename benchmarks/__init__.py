"""Performance benchmarks of advtransfer: ``python -m benchmarks`` (see benchmarks/runner.py and docs/performance.md).

One module per case (virtual_attack, transferability, pgd, training, probe, workflow, scaling and the
opt-in main_job), each with ``measure(settings) -> CaseResult``; ``common`` holds timing, memory and
result helpers, ``memory`` the fresh-process peak-memory probe, ``runner`` the command line.
"""
