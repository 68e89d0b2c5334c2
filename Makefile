# ClipMix platform — developer entry points. `make` (or `make help`) lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# Prerequisites are steps in order (install, then infra, then migrate): never run them in parallel.
.NOTPARALLEL:

VENV        := .venv
VENV_PY     := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
RUN_DIR     := .run
PYTEST_ARGS ?=
# Processes of each stateless service `make up` starts (gateway, jobs, billing, webhooks,
# status); the edge (HAProxy) balances the gateway replicas.
REPLICAS    ?= 1
# Test processes (pytest-xdist). tests/conftest.py's scheduler puts the e2e and browser files (one
# suite of services each) in one process and hands the other files out whole, one at a time.
PYTEST_WORKERS ?= 2
# When `make` started (ns), so `make up` can print its total time.
MAKE_T0_NS  := $(shell date +%s%N)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help install infra migrate up down logs ps test lint fmt clean screenshot bench drill

help: ## list the targets
	@echo "ClipMix platform — make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-9s %s\n", $$1, $$2}'
	@echo "Variables: REPLICAS=2 (make up), PYTEST_ARGS='-k name -x' (make test), BENCH_ARGS='--quick' (make bench), DRILL_RATE=10 DRILL_SECONDS=60 (make drill)"

install: $(STAMP) ## create .venv (Python 3.11+) and install the project, its dev extras and the Python SDK

# Re-runs only when a pyproject.toml changes (or the venv is gone).
$(STAMP): pyproject.toml sdk/python/pyproject.toml
	@py=""; \
	for cand in python3.11 python3.12 python3; do \
		if command -v "$$cand" >/dev/null 2>&1 && \
		   "$$cand" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' >/dev/null 2>&1; then \
			py="$$cand"; break; \
		fi; \
	done; \
	if [[ -z "$$py" ]]; then \
		echo "install: ERROR: Python 3.11 or 3.12 is needed (python3.11 / python3 not found or too old)" >&2; exit 1; \
	fi; \
	if [[ -x $(VENV_PY) ]] && ! $(VENV_PY) -c 'import sys' >/dev/null 2>&1; then \
		echo "install: $(VENV) is broken; recreating it"; rm -rf $(VENV); \
	fi; \
	if [[ ! -x $(VENV_PY) ]]; then \
		echo "install: creating $(VENV) with $$py ($$("$$py" --version 2>&1))"; \
		"$$py" -m venv $(VENV); \
	fi
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -e '.[dev]' -e sdk/python
	@touch $(STAMP)
	@echo "install: done ($(VENV))"

infra: ## make sure PostgreSQL and RabbitMQ run (start or install them locally)
	@bash scripts/ensure-infra.sh

migrate: install infra ## create the database and apply every service's migrations
	$(VENV_PY) -m services.runtime.migrate

up: install infra migrate ## start the whole suite in the background and print a demo key (REPLICAS=2: two of each stateless service)
	@MAKE_T0_NS=$(MAKE_T0_NS) CLIPMIX_REPLICAS=$(REPLICAS) bash scripts/up.sh

down: ## stop the suite started by `make up`
	@bash scripts/down.sh

logs: ## follow the suite's logs (.run/suite.log)
	@if [[ ! -f $(RUN_DIR)/suite.log ]]; then echo "no $(RUN_DIR)/suite.log yet: run 'make up'"; exit 1; fi
	tail -n 100 -F $(RUN_DIR)/suite.log

ps: ## show whether the suite runs, its processes and each service's /readyz
	@bash scripts/up.sh --status

test: install infra ## run the whole test suite (services and both SDKs) against real PostgreSQL and RabbitMQ
	@bash scripts/ensure-node.sh
	@bash scripts/ensure-test-tools.sh
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

lint: install ## ruff and mypy (strict) on the services, the tests, the bench and the Python SDK
	$(VENV_PY) scripts/unasync_sdk.py --check  # the SDK's _sync.py is generated from _async.py
	$(VENV_PY) scripts/check_openapi.py  # the gateway's OpenAPI document (from its route table) validates
	$(VENV)/bin/ruff check services tests bench scripts/unasync_sdk.py scripts/check_openapi.py
	$(VENV)/bin/mypy
	cd sdk/python && ../../$(VENV)/bin/ruff check . && ../../$(VENV)/bin/mypy

DRILL_RATE    ?= 10
DRILL_SECONDS ?= 60
drill: install infra ## the fault drill (docs/runbook.md): a RabbitMQ node, a gateway replica and the S3 store fail under live load
	@bash scripts/ensure-test-tools.sh
	@mkdir -p $(RUN_DIR)
	CLIPMIX_DRILL_RATE=$(DRILL_RATE) CLIPMIX_DRILL_SECONDS=$(DRILL_SECONDS) \
		CLIPMIX_DRILL_REPORT=$(RUN_DIR)/drill.json \
		$(VENV)/bin/pytest -q -s tests/e2e/test_fault_drill.py

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS  ?=
$(BENCH_STAMP): $(STAMP)
	$(VENV_PY) -m pip install -q -e '.[bench]'
	@touch $(BENCH_STAMP)

bench: install infra $(BENCH_STAMP) ## measure the suite against same-run baselines (about 7 min) into bench/results/
	@command -v wrk >/dev/null 2>&1 || bash scripts/ensure-wrk.sh
	$(VENV_PY) -m bench $(BENCH_ARGS)

screenshot: install infra ## photograph the status page (headless Chromium) into docs/img/status-page.png
	CLIPMIX_SCREENSHOT=docs/img/status-page.png $(VENV)/bin/pytest -q tests/e2e/test_status_page.py -k outage

fmt: install ## format the code with ruff
	$(VENV)/bin/ruff format services tests bench sdk/python
	$(VENV)/bin/ruff check --fix --select I services tests bench sdk/python

clean: ## stop the suite, remove .venv, .run and caches
	@bash scripts/down.sh
	rm -rf $(VENV) $(RUN_DIR) .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . \( -path ./.git -o -path ./node_modules \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
