# Lazarus: `make demo` and `make test` work on a fresh Debian 12 machine (they install what they need).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := redis-server openipmi ipmitool prometheus prometheus-alertmanager
STAMP := $(VENV)/.installed

.PHONY: help deps venv demo test test-unit test-integration test-e2e test-nova lint typecheck rules-check bench clean

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## Install the Debian packages the tests and the demo use (redis-server, ipmi_sim, promtool, amtool)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(STAMP) ## Create the virtualenv with Lazarus and its dev tools

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: deps venv ## The whole flow on one machine: dead hosts fenced and evacuated (scheduler, reserved spare), nova-compute and instance failures
	$(PY) -m receiver.lab.demo

test: deps venv lint typecheck ## Everything: lint, types, unit, integration, e2e (and real Nova when configured)
	$(PY) -m pytest -q

test-unit: venv ## Pure logic only (fast)
	$(PY) -m pytest -q -m unit

test-integration: deps venv ## Real redis-server, the lab over HTTP and UDP
	$(PY) -m pytest -q -m integration

test-e2e: deps venv ## Real processes: gunicorn, workers, promtool, amtool
	$(PY) -m pytest -q -m e2e

test-nova: venv ## Against the real Nova test bed (../shared/nova-lab must be running)
	LAZARUS_TEST_NOVA_ENDPOINT=$${LAZARUS_TEST_NOVA_ENDPOINT:-http://127.0.0.1:18774/v2.1} \
	LAZARUS_TEST_NOVA_LAB=$${LAZARUS_TEST_NOVA_LAB:-$(abspath ../shared/nova-lab)} \
	$(PY) -m pytest -q -m nova

lint: venv ## ruff
	$(VENV)/bin/ruff check receiver tests
	$(VENV)/bin/ruff format --check receiver

typecheck: venv ## mypy --strict on the package
	$(VENV)/bin/mypy

rules-check: deps venv ## promtool and amtool on rules/ and deploy/; generated rules and dashboards up to date
	$(PY) -m receiver.monitoring.rules --check
	$(PY) -m receiver.monitoring.dashboards --check
	promtool check rules rules/*.rules.yml
	cd rules/tests && promtool test rules *.test.yml
	promtool check config deploy/prometheus.yml
	amtool check-config deploy/alertmanager.yml

bench: deps venv ## Benchmarks: webhook intake, lab scale, host recovery, IPMI calls (bench-results/bench.json + table)
	$(PY) -m bench.run --out bench-results/

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
