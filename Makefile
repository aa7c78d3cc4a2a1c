# Two commands for a new user: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# On a CUDA box add the CuPy extra that matches the driver: make run EXTRAS=dev,cuda12
EXTRAS ?= dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
CONFIG ?= configs/default.yaml

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/portopt plan $(CONFIG)

test: $(STAMP)
	$(BIN)/ruff check portopt tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check portopt tests bench
	$(BIN)/ruff format --check portopt tests bench

format: $(STAMP)
	$(BIN)/ruff format portopt tests bench
	$(BIN)/ruff check --fix portopt tests bench

bench: $(STAMP)
	$(BIN)/python -m pytest bench -m bench --benchmark-enable

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
