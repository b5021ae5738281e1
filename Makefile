# Two commands: `make demo` and `make test`. Both create the local virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO ?= demo
NPROCS ?= 2

.PHONY: demo test test-all lint venv clean-demo

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: venv
	rm -rf $(DEMO)
	$(BIN)/tspo-bidsapp-synth $(DEMO)/bids --truth-dir $(DEMO)/truth --size demo --seed 42
	$(BIN)/tspo-bidsapp $(DEMO)/bids $(DEMO)/derivatives participant -w $(DEMO)/work --nprocs $(NPROCS)
	$(BIN)/tspo-bidsapp $(DEMO)/bids $(DEMO)/derivatives group -w $(DEMO)/work
	@echo "Demo outputs: $(DEMO)/derivatives"

lint: venv
	$(BIN)/ruff check tspo_bidsapp tests benchmarks
	$(BIN)/ruff format --check tspo_bidsapp tests benchmarks

test: venv
	$(BIN)/ruff check tspo_bidsapp tests benchmarks
	$(BIN)/python -m pytest

test-all: venv
	$(BIN)/python -m pytest --runslow

clean-demo:
	rm -rf $(DEMO)
