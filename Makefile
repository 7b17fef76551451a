# Two entry points (see README): `make smoke` runs the main job on the embedded default,
# `make test` runs the test suite. Both create/refresh the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup smoke smoke-results paper-dry-run test lint clean-smoke

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch/torchvision pinned exactly first, so nothing can pull another torch
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -e ".[test,nerf]"
	# nerfstudio 1.1.5 pulls nuscenes-devkit, which pins numpy<2 (used only by its nuScenes parser);
	# pandas/snakemake's SLURM plugin need numpy 2, so put it back (pip will note the nuscenes conflict)
	$(BIN)/pip install numpy==2.4.6
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

# The main job: the smoke grid trained from scratch into $(SMOKE_CHECK) (beside, never over, the committed
# results/smoke), its report, then every metric compared with the committed cells' records.
SMOKE_CHECK ?= work/reproduce
SMOKE_RUN = $(BIN)/snakemake --cores $(CORES) --configfile presets/smoke.yaml --config output_root=$(SMOKE_CHECK)
smoke: setup
	@start=$$(date +%s) \
	&& $(SMOKE_RUN) \
	&& $(SMOKE_RUN) --report $(SMOKE_CHECK)/results/smoke/report.html \
	&& $(BIN)/iga reproduce-check --ours $(SMOKE_CHECK)/results/smoke --committed results/smoke \
		--started $$start --report $(SMOKE_CHECK)/results/smoke/report.html

# Regenerate the committed results/smoke (incremental: only cells whose settings changed retrain;
# `rm -rf work/smoke results/smoke` first to retrain everything).
smoke-results: setup
	$(BIN)/snakemake --cores $(CORES) --configfile presets/smoke.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile presets/smoke.yaml --report results/smoke/report.html

paper-dry-run: setup
	$(BIN)/snakemake -n --cores $(CORES) --quiet rules  # the job counts per rule

test: setup lint
	$(BIN)/python -m pytest -q

# style and workflow checks (ruff, snakefmt, snakemake --lint with the documented exceptions)
lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python .ci/snakemake_lint.py

# forget the last `make smoke` check run, so that the next one trains from scratch again
clean-smoke:
	rm -rf $(SMOKE_CHECK)
