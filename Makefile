# Two commands for a new machine: `make demo` and `make test`. Both set up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

# Idempotent: the venv is built once and reinstalled only when pyproject.toml changes.
# Without CUDA we install the CPU build of torch first, so that nothing pulls the multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/pip install -q torch==2.13.0; \
	else \
		$(BIN)/pip install -q "torch==2.13.0+cpu" || \
		$(BIN)/pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/worldsmith demo --out demo_out

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) demo_out .pytest_cache
