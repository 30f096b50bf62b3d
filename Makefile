# Two commands set up everything on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench venv clean extension screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Index the bundled demo library into the default catalog, show what was found, then serve it: the bridge
## and the dashboard (http://127.0.0.1:8765/) until Ctrl-C.
demo: $(STAMP)
	$(PY) -m bridge.demo --serve

## Lint, then the whole test suite.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## Dashboard screenshots for the README (headless Debian chromium), by the end-to-end tests.
screenshots: $(STAMP)
	MEDIAIDX_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/web/test_dashboard.py -q

## The Blender extension: fetch the manifest's wheels, validate, one zip per platform in dist/.
extension: $(STAMP)
	$(PY) -m bridge.packaging.extension wheels
	$(PY) -m bridge.packaging.extension validate
	$(PY) -m bridge.packaging.extension build --split-platforms

## Benchmarks are run by hand; figures go to docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m pip install --quiet --no-deps 'scenedetect>=0.6' 'syncstart>=1.1'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
