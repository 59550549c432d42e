# Two commands: `make dev` runs the product locally, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup dev test lint bench browser clean package

setup: $(VENV)/.installed node_modules/.installed static/vendor/.installed local.settings.json

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed (set PYTHON=)")'
	@node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? (console.error("Node 20 or newer is needed"), 1) : 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Browser libraries are served by the app itself (no CDN): copied from node_modules, not committed.
static/vendor/.installed: node_modules/.installed
	mkdir -p static/vendor
	cp node_modules/@microsoft/signalr/dist/browser/signalr.min.js static/vendor/signalr.min.js
	cp node_modules/@microsoft/teams-js/dist/umd/MicrosoftTeams.min.js static/vendor/teams.min.js
	cp node_modules/uplot/dist/uPlot.iife.min.js static/vendor/uplot.min.js
	cp node_modules/uplot/dist/uPlot.min.css static/vendor/uplot.min.css
	touch $@

# The deployable app: what Azure runs (`func azure functionapp publish` or zip deploy).
package: static/vendor/.installed
	rm -f dist/app.zip && mkdir -p dist
	zip -qr dist/app.zip host.json function_app.py requirements.txt blueprints shared static -x '*/__pycache__/*' 'static/vendor/.installed'
	@echo "dist/app.zip"

local.settings.json: local.settings.sample.json
	test -f $@ || cp $< $@

# Browser tests use Debian's Chromium (no browser download); installed when missing and root.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "browser tests need Chromium: sudo apt-get install chromium (or set CHROMIUM_PATH)"; fi; }

dev: setup
	$(BIN)/python -m devhost.dev

test: setup browser
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

BENCHMARKS := cold_start widget_size chat_turn realtime admin knowledge

bench: setup
	for b in $(BENCHMARKS); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) node_modules static/vendor dist .azurite .mypy_cache .ruff_cache test-results
