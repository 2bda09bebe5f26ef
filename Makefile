# The two commands of the README:  `make render`  and  `make test`.
# Each installs what it needs by itself: Python packages into .venv, Debian tools with apt-get.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
POLICY_VENV  := policy/venv
STACK ?= staging
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: render test validate checkov urns lint typecheck bench bench-cluster mutants system-deps venv clean tools cluster up down

## Deploy a stack (STACK=staging by default) onto the local cluster through the real Pulumi engine,
## building the tools and starting the cluster first when needed (docs/local-cluster.md).
up: cluster $(POLICY_VENV)/.installed
	$(PY) -m tools.cluster.deploy up $(STACK)
	@$(PY) -m tools.cluster.report $(STACK)

## Destroy every stack deployed on the local cluster, then stop the cluster and remove its state.
down: $(VENV)/.runtime-installed
	$(PY) -m tools.cluster.down $(if $(FORCE),--force)

## Build the local cluster's tools from the Go module proxy into ~/.cache/codai-platform/tools.
tools:
	@tools/cluster/build.sh

## Start the local cluster (etcd, API server, controllers, scheduler, kwok nodes) on 127.0.0.1.
cluster: tools $(VENV)/.runtime-installed
	@$(PY) -m tools.cluster.local_cluster start

## Render every stack's Kubernetes objects to dist/<stack>/ and print a summary per stack.
render: $(VENV)/.runtime-installed
	$(PY) -m tools.render

## Run the whole test suite: lint, types, unit tests with mocks, schemas, checkov, real tools and servers,
## and every stack deployed through the Pulumi engine onto the local cluster (tests/cluster/).
## As under CI (CI=true, whatever the environment says), a test whose tool or server is missing fails, and
## a run with any skipped test fails: nothing is skipped quietly.
test: export CI = true
test: $(VENV)/.dev-installed $(CHECKOV_VENV)/.installed $(POLICY_VENV)/.installed system-deps tools lint typecheck
	$(PY) -m pytest

## Schema validation and cross-object lint of every rendered stack.
validate: $(VENV)/.dev-installed
	$(PY) -m tools.validate

## checkov on every rendered stack, with the figures and the exceptions in use (docs/security.md).
checkov: $(VENV)/.dev-installed $(CHECKOV_VENV)/.installed
	$(PY) -m tools.checkov_scan

## Rewrite the URN snapshots after a deliberate change (tests/snapshots/, docs/ci.md).
urns: $(VENV)/.dev-installed
	$(PY) -m tools.urns --update

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy settings services components tools policy/codai_policies.py __main__.py

venv: $(VENV)/.dev-installed

$(VENV)/.runtime-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# After system-deps: psycopg2 (for barman-cloud) builds against libpq's headers.
$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed | system-deps
	@echo "Installing the test tools into $(VENV) (requirements-dev.txt; a first install takes a few minutes) ..."
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(POLICY_VENV)/.installed: policy/requirements.txt
	test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $@

## Debian packages the tests drive for real (PostgreSQL, PgBouncer, Redis, Sentinel, promtool...) and psycopg2's build.
system-deps:
	@tools/install-system-deps.sh

## Render time and peak memory: each stack, and synthetic catalogs of 290 and 2,900 services.
bench: $(VENV)/.runtime-installed
	$(PY) -m tools.bench

## The mutation gate: apply each realistic defect of tests/mutants.yaml alone, on a scratch copy, then
## mutmut on the pure generators, and report what no test catches (docs/security.md). Not part of `make test`.
mutants: $(VENV)/.mutants-installed $(CHECKOV_VENV)/.installed $(POLICY_VENV)/.installed system-deps
	$(PY) -m tools.mutants $(if $(ONLY),--only $(ONLY))

$(VENV)/.mutants-installed: requirements-mutants.txt $(VENV)/.dev-installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-mutants.txt
	touch $@

## Real deploys on the local cluster beside kubectl's floor, per stack (docs/performance.md); about 15 minutes.
bench-cluster: tools $(VENV)/.runtime-installed $(POLICY_VENV)/.installed
	$(PY) -m tools.cluster.bench

clean:
	rm -rf dist .pytest_cache .mypy_cache .ruff_cache
