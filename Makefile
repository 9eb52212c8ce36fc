# Two entry points (see README Quickstart): `make run` and `make test` (lint-imports, then pytest).
# Both create the virtual environment on first use; the stamp file re-runs pip when the
# requirement files change.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= $(or $(GRADIO_SERVER_NAME),127.0.0.1)
PORT ?= $(or $(GRADIO_SERVER_PORT),7860)

.PHONY: run test env test-env browser

$(VENV)/.stamp-run: requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.stamp-test: requirements.txt requirements-test.txt $(VENV)/.stamp-run
	$(BIN)/python -m pip install -q -r requirements-test.txt
	touch $@

env: $(VENV)/.stamp-run

test-env: $(VENV)/.stamp-test browser

# Debian's chromium for the Playwright browser tests (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

run: env
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py --host $(HOST) --port $(PORT)

# The import contracts (.importlinter) first: a layer violation fails the run before any test.
test: test-env
	$(BIN)/lint-imports
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest $(PYTEST_ARGS)
