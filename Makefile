# The README's two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest demo bench bench-quick clean generate

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,postgres,fuzz]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check runhistory tests bench tools

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

DEMO_STORE := sqlite:///runhistory.db

demo: install
	@echo "== Validating the real-server histories in examples/ (copied from shared/conformance)"
	$(BIN)/runhistory validate examples/*.json
	@$(BIN)/python -m runhistory.adapters.demo examples
	@echo "== Importing them into ./runhistory.db (a second import changes nothing)"
	$(BIN)/runhistory import examples/*.json --store $(DEMO_STORE)
	$(BIN)/runhistory import examples/*.json --store $(DEMO_STORE)
	@echo "== The runs table"
	$(BIN)/runhistory runs --store $(DEMO_STORE)
	@echo "== describe of one run, from the store"
	$(BIN)/runhistory describe oracle-update_accepted_completed --store $(DEMO_STORE)
	@echo "== A timeline picture"
	$(BIN)/runhistory timeline oracle-activity_retry_then_success --store $(DEMO_STORE) -o runhistory-demo.html

bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.readme_table

bench-quick: install
	$(BIN)/python -m bench.run --quick

generate:
	$(BIN)/python tools/generate_schema.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
