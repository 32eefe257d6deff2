# The two set-up commands. Each creates .venv if missing, installs torch first (the pinned
# CPU build), then the package, and runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mirisk-installed

.PHONY: demo test bench-art clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mirisk demo --out demo-output --force

# Two workers, one per core; each test module stays on one worker, so its fixtures are built once.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

# ART is installed only for this benchmark (see BENCHMARKS.md).
bench-art: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/miface_vs_art.py --arch softmax --out benchmarks/results/miface_vs_art_softmax.json
	$(BIN)/python benchmarks/miface_vs_art.py --arch mlp --iterations 50 --out benchmarks/results/miface_vs_art_mlp_50.json

clean:
	rm -rf $(VENV) demo-output
