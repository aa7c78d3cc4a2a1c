# Two commands for a new user: `make run` and `make test`. Both create .venv when it is missing.
# `make run` installs the runtime only; `make test`, `lint`, `format` and `bench` add the dev extra.
# EXTRAS adds extras to both, e.g. on a CUDA box `make run EXTRAS=cuda12` (or cuda13), and CI's
# `make test EXTRAS=nvrtc` brings the NVIDIA compiler wheels that tests/engine/test_nvrtc.py needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?=
CONFIG ?= configs/default.yaml
# test processes (pytest-xdist): one per core by default; TEST_JOBS=0 runs the suite in this process
TEST_JOBS ?= auto
PYTEST_JOBS = $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

empty :=
space := $(empty) $(empty)
comma := ,
extras_of = $(subst $(space),$(comma),$(sort $(subst $(comma),$(space),$(1))))
RUN_EXTRAS := $(call extras_of,$(EXTRAS))
DEV_EXTRAS := $(call extras_of,dev $(EXTRAS))
stamp_of = $(VENV)/.installed-$(if $(1),$(subst $(comma),-,$(1)),runtime)
RUN_STAMP := $(call stamp_of,$(RUN_EXTRAS))
DEV_STAMP := $(call stamp_of,$(DEV_EXTRAS))

.PHONY: run test check lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.$(if $(filter runtime,$*),,[$(subst -,$(comma),$*)])'
	@touch $@

run: $(RUN_STAMP)
	$(BIN)/portopt plan $(CONFIG)

test: $(DEV_STAMP)
	$(BIN)/ruff check portopt tests bench
	$(BIN)/python -m pytest $(PYTEST_JOBS)

# the fast loop: lint and the tests that run no pipeline on the bundled catalog (README, Development)
check: $(DEV_STAMP)
	$(BIN)/ruff check portopt tests bench
	$(BIN)/ruff format --check portopt tests bench
	$(BIN)/python -m pytest $(PYTEST_JOBS) -m "not slow and not browser and not gpu"

lint: $(DEV_STAMP)
	$(BIN)/ruff check portopt tests bench
	$(BIN)/ruff format --check portopt tests bench

format: $(DEV_STAMP)
	$(BIN)/ruff format portopt tests bench
	$(BIN)/ruff check --fix portopt tests bench

bench: $(DEV_STAMP)
	$(BIN)/python -m pytest bench -m bench --benchmark-enable

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
