# ChainChat — the two commands a newcomer needs are `make up` and `make test`.
# Only Python >= 3.11 and make are required; everything else is installed into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
NPM    := $(BIN)/npm
UV_VERSION := 0.13.9
NODE_TOOLS := deploy/node-tools
IPFS_NODE  := deploy/ipfs-node
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install up up-detached down test test-fast lint typecheck bench chaos fuzz contracts clean check-python web browser compose-tool compose-up compose-down compose-build compose-test

check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11+ is required: install python3 (e.g. apt-get install python3 python3-venv) and retry."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python 3.11+ is required; $(PYTHON) is $$($(PYTHON) -V 2>&1). Set PYTHON=/path/to/python3.11 and retry."; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "Python's venv module is missing: install python3-venv and retry."; exit 1; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

$(NODE_TOOLS)/node_modules/.installed: $(NODE_TOOLS)/package-lock.json | $(VENV)/.synced
	cd $(NODE_TOOLS) && ../../$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(IPFS_NODE)/node_modules/.installed: $(IPFS_NODE)/package-lock.json | $(VENV)/.synced
	cd $(IPFS_NODE) && ../../$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

WEB := web
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json -type f 2>/dev/null)

$(WEB)/node_modules/.installed: $(WEB)/package-lock.json | $(VENV)/.synced
	cd $(WEB) && ../$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

# the web client is built once and served by the gateway at /
$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && PATH=$(CURDIR)/$(BIN):$$PATH ../$(NPM) run build --silent

web: $(WEB)/dist/index.html

install: $(VENV)/.synced $(NODE_TOOLS)/node_modules/.installed $(IPFS_NODE)/node_modules/.installed web

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			reinstall=$$(dpkg-query -W -f='$${Status}' chromium 2>/dev/null | grep -q "install ok installed" && echo --reinstall); \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$reinstall chromium) >/dev/null; \
		else echo "Chromium is missing: run 'sudo apt-get install -y chromium' (browser tests need it)"; exit 1; fi; \
	fi

# tests/deploy validate compose.yaml with Debian's docker-compose (1.29; no Docker engine is needed
# for `docker-compose config`). Without recommends: the engine (docker.io) is not wanted here.
compose-tool:
	@if ! command -v docker-compose >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose) >/dev/null; \
		else echo "docker-compose is missing: run 'sudo apt-get install -y --no-install-recommends docker-compose' (tests/deploy need it)"; exit 1; fi; \
	fi

# The same stack in Docker (docker-compose 1.29, compose.yaml): installs and starts the engine when
# missing (as root), builds every image (bases from Debian when the official ones cannot be pulled),
# edge on 127.0.0.1:8000, mail UI on 127.0.0.1:1080; SCALE="chat=3 gateway=2" scales.
compose-up: install
	$(BIN)/python -m devstack.compose up --scale "$(SCALE)"

compose-build: install
	$(BIN)/python -m devstack.compose build

# VOLUMES=1 removes the data volumes too
compose-down: install
	$(BIN)/python -m devstack.compose down $(if $(VOLUMES),--volumes)

# tests/compose against a stack of its own (free ports, its own project and volumes, removed after)
compose-test: install
	CHAINCHAT_COMPOSE_REQUIRED=1 $(BIN)/pytest -q -p no:cacheprovider -m compose tests/compose

up: install
	$(BIN)/chainchat-dev up $(UP_ARGS)

up-detached: install
	$(BIN)/chainchat-dev up --detach $(UP_ARGS)

down:
	@if [ -x $(BIN)/chainchat-dev ]; then $(BIN)/chainchat-dev down; else echo "nothing to stop"; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check protocol sdk services deploy/devstack tests bench contracts tools testing
	$(BIN)/mypy protocol/chainchat_protocol sdk/chainchat tools/vectors.py tools/wire_ts.py
	$(BIN)/python -m tools.vectors --check
	$(BIN)/python -m tools.wire_ts --check
	$(BIN)/lint-imports --no-cache

typecheck: lint

test: install browser compose-tool lint
	cd $(IPFS_NODE) && PATH=$(CURDIR)/$(BIN):$$PATH ../../$(NPM) test --silent
	cd $(WEB) && PATH=$(CURDIR)/$(BIN):$$PATH ../$(NPM) test --silent
	@echo "browser: $$(/usr/bin/chromium --version 2>/dev/null)"
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow and not compose"

test-fast: install
	$(BIN)/pytest -q -x -m "not integration" -p no:cacheprovider

bench: install
	$(BIN)/python -m bench.run_all

# every fault scenario, the long ones included (make test runs the fast subset)
chaos: install
	CHAINCHAT_CHAOS_REPORT_DIR=$(CURDIR)/bench/results/chaos $(BIN)/pytest -q -p no:cacheprovider -m chaos tests/chaos

# the fuzz and security suite with many more generated examples than make test uses
fuzz: install browser
	CHAINCHAT_FUZZ_EXAMPLES=$${CHAINCHAT_FUZZ_EXAMPLES:-1000} $(BIN)/pytest -q -p no:cacheprovider tests/security

contracts: install
	$(BIN)/python -m contracts.build

clean:
	rm -rf var
