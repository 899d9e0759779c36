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
	@# pip compiles installed packages, not an editable one: without this, every Dagster process
	@# compiles rest_assets again where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q rest_assets >/dev/null
	touch $(STAMP)

.PHONY: install browser demo ui test test-fast lint emulator validate
install: $(STAMP)

# The browser test drives Debian's Chromium through Playwright (no browser download is possible).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium (needs root and Debian's packages): the browser test will fail" >&2

demo: $(STAMP)
	$(BIN)/rest-assets demo

ui: $(STAMP)
	$(BIN)/rest-assets demo --ui

test: $(STAMP) browser
	$(BIN)/python -m pytest

# ruff (lint and format check) and mypy (strict on dialect/, compile/, runtime/); config in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check rest_assets rest_assets_tests deploy benchmarks
	$(BIN)/ruff format --check rest_assets rest_assets_tests deploy benchmarks
	$(BIN)/mypy

# The unit set alone (no loads, no Dagster runs): under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest rest_assets_tests/unit -m "not e2e"

emulator: $(STAMP)
	$(BIN)/rest-assets emulator --port 8765

validate: $(STAMP)
	$(BIN)/dagster definitions validate -m rest_assets.definitions
