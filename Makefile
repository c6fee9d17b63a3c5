# Entry points (see README "Quick start"):
#   make run     create .venv if needed, install the locked environment, run the workflow on config.yaml
#   make test    same set-up, then the test suite
#   make lint    ruff (lint + import order), snakefmt --check and snakemake --lint
#   make report  the HTML report of the last run (results/report.html)
#   make calibration  the claims' tests on simulated data in each claim's design (results/calibration.csv)
#   make lock    regenerate requirements.lock from pyproject.toml's ranges (uv pip compile)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.installed
# The exact environment: every package pinned with its hashes, for every platform (uv's universal resolution).
LOCK := requirements.lock
LOCK_ARGS := pyproject.toml --constraint lock-constraints.txt --extra test --universal --python-version 3.11 --generate-hashes --quiet -o $(LOCK)

.PHONY: run test lint report lock install clean bench calibration

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# Test-only reference PGD. --no-deps: its metadata pins requests~=2.25, which PGD never uses.
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

# The claims protocol's false-positive rates and power in every configured claim's design (docs/claims.md):
# results/calibration.csv (and results/calibration_rules.csv: the rules it replaced). CALIBRATION_ARGS="--reps 200"
calibration: $(STAMP)
	$(BIN)/python -m advtransfer.calibration --compare $(CALIBRATION_ARGS)

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile $(LOCK_ARGS)

# Performance benchmarks (docs/performance.md): make bench BENCH_ARGS="--quick" or "--only pgd" ...
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf results .snakemake
