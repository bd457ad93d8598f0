# `make test` is what CI runs; `make test-unit` is the fast loop (pure tests, seconds).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"
PYTEST := $(RUN) $(BIN)/pytest

# Dummy values so the dry run shows real versioned secret names. Never use them anywhere.
DEMO_SECRETS := GAIA_POSTGRES_ADMIN_PASSWORD=demo-only GAIA_MONGO_ADMIN_PASSWORD=demo-only \
	GAIA_REDIS_ADMIN_PASSWORD=demo-only \
	GAIA_GRAFANA_ADMIN_PASSWORD=demo-only GAIA_SESSION_KEY=demo-only GAIA_TELEGRAM_TOKEN=demo-only

.PHONY: help venv lock tools testbed lint test test-unit coverage test-tools test-engine demo bench plan golden schema clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

PIP := $(BIN)/pip --quiet --disable-pip-version-check

# pip 25.1 is the first to install a [dependency-groups] group (--group)
$(BIN)/swarm-deploy: dagger/pyproject.toml dagger/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install pip==26.3
	$(PIP) install -c dagger/constraints.txt -e ./dagger --group dagger/pyproject.toml:dev
	touch $@

venv: $(BIN)/swarm-deploy ## the virtualenv with the package and its test tools

lock: ## after editing dagger/pyproject.toml: dagger/uv.lock as the engine writes it, and constraints.txt
	scripts/dagger-sdk lock

tools: ## nginx and promtool, the validators the tests run (apt; needs root or sudo)
	scripts/install-tools

lint: venv ## ruff and mypy --strict (the package, and the in-memory Swarm as the engine's stand-in)
	$(BIN)/ruff check --config dagger/pyproject.toml dagger/src tests bench
	$(BIN)/ruff format --check --config dagger/pyproject.toml dagger/src tests bench
	cd dagger && ../$(BIN)/mypy
	$(BIN)/mypy --strict --python-version 3.11 tests/unit/swarm_sim.py tests/unit/test_lock.py \
		tests/unit/test_interrupts.py tests/unit/test_runner.py tests/unit/test_engine.py \
		tests/unit/test_facts.py tests/unit/test_status.py tests/unit/test_destroy.py \
		tests/unit/test_state_machine.py tests/unit/test_lock_sim.py \
		tests/unit/test_rollback_sim.py tests/unit/test_status_sim.py \
		tests/unit/test_edge_replicas.py tests/unit/test_doctor.py tests/engine/test_doctor.py \
		tests/engine/test_compose_fixtures.py bench/figures.py tests/unit/test_bench_figures.py

test-unit: venv ## pure tests and the offline Dagger tests: seconds, no tools
	$(PYTEST) tests/unit tests/dagger

# The modules of the blue/green state machine the fast tests cover (issue 13): the deployer,
# its actions in nginx (edge_actions) and the use cases that run it, its locks, status, the
# facts and the live colour they read (edge, truth), the steps of a colour, and the rollback
# bookkeeping (record, truth).
COVERAGE_MODULES := deploy edge_actions usecases usecases_plan usecases_deploy usecases_target \
	lock lock_seen status facts edge truth colour_steps record
comma := ,
coverage: venv ## test-unit with coverage: the state machine's modules, then the whole package
	COVERAGE_FILE=$(VENV)/.coverage $(PYTEST) -q tests/unit tests/dagger --cov=swarm_deploy --cov-report=
	@COVERAGE_FILE=$(VENV)/.coverage $(BIN)/coverage report --precision=1 \
		--include="$(subst $() ,$(comma),$(COVERAGE_MODULES:%=*/swarm_deploy/%.py))"
	@COVERAGE_FILE=$(VENV)/.coverage $(BIN)/coverage report --precision=1 | tail -1 | sed 's/^TOTAL /package/'

test-tools: venv tools ## rendered files through docker stack config, nginx, promtool
	$(PYTEST) tests/tools

testbed: ## start the local Swarm, registries and sshd (root; installs them on first use)
	scripts/testbed up

test-engine: venv testbed ## real deploys on the test bed's Swarm (minutes)
	$(PYTEST) tests/engine

test: venv tools lint ## everything CI runs: lint, unit, tools, Dagger, engine
	$(PYTEST) tests

demo: venv ## deploy develop of the example app to the local Swarm, print its URL
	@scripts/testbed up >/dev/null
	@$(RUN) swarm-deploy deploy --config swarm-deploy.local.yml --branch develop

bench: venv testbed ## the benchmark: time to live of a release, blue/green vs Swarm's own updates, 1 and 3 nodes (minutes)
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(RUN) $(BIN)/python -m bench.run

plan: venv ## the dry run of a production deploy of develop (no engine needed)
	@$(RUN) $(DEMO_SECRETS) swarm-deploy plan --branch develop

golden: venv ## rewrite tests/golden after a deliberate template change
	UPDATE_GOLDEN=1 $(PYTEST) tests/unit/test_render.py -k golden

schema: venv ## rewrite the JSON Schemas of swarm-deploy.yml and its profiles in docs/ from config_keys.py
	$(BIN)/python -m swarm_deploy.config_schema > docs/swarm-deploy.schema.json
	$(BIN)/python -m swarm_deploy.config_schema profile > docs/swarm-deploy.profile.schema.json

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache dagger/.mypy_cache
