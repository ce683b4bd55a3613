# The two commands first: `make demo` and `make test` set up .venv themselves.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.fieldkit-installed
DEMO    := .demo
export FIELDKIT_HOME ?= $(abspath $(DEMO))/home

.PHONY: demo test lint typecheck imports unit bench venv clean

demo: $(STAMP)
	$(BIN)/fieldkit demo init --dir $(DEMO)
	$(BIN)/fieldkit demo check --dir $(DEMO)
	$(BIN)/fieldkit demo run --dir $(DEMO)

test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check fieldkit tests
	$(BIN)/ruff format --check fieldkit tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -s -o addopts="" tests/bench

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap-venv.sh
	bash scripts/bootstrap-venv.sh $(VENV)
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache .hypothesis
