# Two commands: `make demo` and `make test`. Both create the local virtual environment first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO ?= demo
NPROCS ?= 2

.PHONY: demo demo-samseg demo-run test test-slow test-all lint venv clean-demo container boutiques

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

# The demo supplies the simulated anatomy (--derivatives) so it runs in minutes; `make demo-samseg`
# segments with SAMSEG instead (about 15 min per participant on 2 cores).
DEMO_RUN = $(BIN)/tspo-bidsapp $(DEMO)/bids $(DEMO)/derivatives
DEMO_OPTS = -w $(DEMO)/work --nprocs $(NPROCS) --pvc gtm --pet-fwhm 4.5

demo: venv
	rm -rf $(DEMO)
	$(BIN)/tspo-bidsapp-synth $(DEMO)/bids --truth-dir $(DEMO)/truth --size demo --seed 42 \
		--anat-derivatives $(DEMO)/anat
	$(MAKE) --no-print-directory demo-run DEMO_ANAT="--derivatives $(DEMO)/anat"

demo-samseg: venv
	rm -rf $(DEMO)
	$(BIN)/tspo-bidsapp-synth $(DEMO)/bids --truth-dir $(DEMO)/truth --size demo --seed 42
	$(MAKE) --no-print-directory demo-run DEMO_ANAT=

# Participant level (lesion phenotypes from per-lesion GTM-corrected TACs by the lesion rule,
# which needs no controls), then the group level: statistics, phenotype proportions and the
# controls' active-voxel thresholds per rs6971 binding class for the published voxel rule
# (PBR28 is genotype-sensitive; the demo's two controls are one HAB and one MAB, hence
# --min-controls 1: a real study needs several per class).
demo-run:
	$(DEMO_RUN) participant $(DEMO_OPTS) $(DEMO_ANAT)
	$(DEMO_RUN) group -w $(DEMO)/work --min-controls 1
	@echo "Demo outputs: $(DEMO)/derivatives (reports: $(DEMO)/derivatives/sub-*.html, $(DEMO)/derivatives/group/)"

LINTED = tspo_bidsapp tests benchmarks scripts

lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m pytest

# Only the checks marked slow (SAMSEG on synthetic and real MS data, registration robustness,
# resuming a killed run, SLURM when a cluster is reachable).
test-slow: venv
	$(BIN)/python -m pytest --runslow -m slow

test-all: venv
	$(BIN)/python -m pytest --runslow

# Build the container image and run the demo data through it (podman or docker).
container:
	scripts/container-test.sh

boutiques: venv
	$(BIN)/python scripts/make_boutiques.py

clean-demo:
	rm -rf $(DEMO)
