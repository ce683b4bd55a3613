# The two commands first: `make demo` and `make test` set up .venv themselves.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.fieldkit-installed
PEERS   := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
DEMO    := .demo
export FIELDKIT_HOME ?= $(abspath $(DEMO))/home

.PHONY: demo test lint typecheck imports unit bench venv clean dist wheelhouse test-dist

demo: $(STAMP)
	$(BIN)/fieldkit demo init --dir $(DEMO)
	$(BIN)/fieldkit demo check --dir $(DEMO)
	$(BIN)/fieldkit demo run --dir $(DEMO)

test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check fieldkit tests packaging
	$(BIN)/ruff format --check fieldkit tests packaging
	$(BIN)/mypy
	$(BIN)/mypy packaging/build_wheelhouse.py packaging/vulncheck.py packaging/fieldkit_entry.py
	$(BIN)/lint-imports

unit: $(STAMP) $(PEERS_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -s -o addopts="" tests/bench

# Release artifacts (packaging/README.md): the offline wheelhouse alone, or everything: wheelhouse, SBOM and
# the self-contained one-folder build, in dist/.
wheelhouse: $(STAMP)
	$(BIN)/python packaging/build_wheelhouse.py dist/wheelhouse

dist: $(STAMP)
	bash packaging/build-dist.sh dist build

# Builds the artifact in a temporary directory and runs it under `env -i` (tests/packaging, marked slow).
test-dist: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -s -o addopts="--strict-markers" tests/packaging

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
