# The two commands first: `make demo` and `make test` set up .venv themselves.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.fieldkit-installed
PEERS   := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
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

unit: $(STAMP) $(PEERS_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -s -o addopts="" tests/bench

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap-venv.sh
	bash scripts/bootstrap-venv.sh $(VENV)
	touch $(STAMP)

# Independent peers the tests interoperate with (smpmgr, imgtool), in a venv of their own.
$(PEERS_STAMP): scripts/bootstrap-peer-tools.sh $(STAMP)
	bash scripts/bootstrap-peer-tools.sh $(PEERS) $(BIN)/python
	touch $(PEERS_STAMP)

clean:
	rm -rf $(VENV) $(PEERS) $(DEMO) .mypy_cache .ruff_cache .pytest_cache .hypothesis
