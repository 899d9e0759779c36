# `make demo` and `make test` do all the setup themselves on a fresh machine
# (Python 3.10+ present): a virtualenv in .venv, installed from constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

.PHONY: install demo ui test emulator validate
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rest-assets demo

ui: $(STAMP)
	$(BIN)/rest-assets demo --ui

test: $(STAMP)
	$(BIN)/python -m pytest

emulator: $(STAMP)
	$(BIN)/rest-assets emulator --port 8765

validate: $(STAMP)
	$(BIN)/dagster definitions validate -m rest_assets.definitions
