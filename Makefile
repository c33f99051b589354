# jobbench: the single entry point. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Options passed through to jobbench, e.g. make bench-celery ARGS="--repeat 5 --cpu-jobs 2000"
ARGS ?=
FLOWER_PORT ?= 5555
PYTEST_ARGS ?= --durations=15

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint format typecheck bench-celery bench-inprocess \
        flower up down bench-compose clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/jobbench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/jobbench ## create .venv and install jobbench with its dev tools

test: install ## run the whole test suite (real Redis, workers, HTTP target)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install ## unit tests only (no services)
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# Fault injection (README "Nothing lost"). `make test` runs these too; this runs only them and writes
# each fault's figures (enqueued, finished, redelivered, lost, recovery s) to FAULTS_REPORT.
FAULTS_REPORT ?= results/faults.jsonl
.PHONY: test-faults
test-faults: install ## fault injection only: worker kills, Redis restart, failing target
	@mkdir -p $(dir $(FAULTS_REPORT)) && rm -f $(FAULTS_REPORT)
	JOBBENCH_FAULTS_REPORT=$(FAULTS_REPORT) $(BIN)/pytest -m faults $(PYTEST_ARGS)
	@cat $(FAULTS_REPORT)

lint: install ## ruff lint + format check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict on worker shared producer
	$(BIN)/mypy

bench-celery: install ## the main job: every model (in-process and Celery) on both workloads
	$(BIN)/jobbench bench $(ARGS)

bench-inprocess: install ## in-process models only
	$(BIN)/jobbench bench --models sequential,threading,thread_pool,asyncio,multiprocessing_pool,process_pool,process_pool_map $(ARGS)

# --- performance targets (README "Why Celery is slow by default") ---
# bench-perf: the seed workloads, >= 5 repeats, only the models the targets compare; each run
# prints its target ratios (also in results.json "targets"). The CPU run leaves out the threads
# and solo pools: on CPU jobs each uses one core (the GIL, one process), so neither can be the
# best Celery pool; the IO run leaves out the models that do 2 requests at a time.
PERF_REPEAT ?= 5
PERF_CPU_MODELS ?= multiprocessing_pool,process_pool_map,celery_prefork
PERF_IO_MODELS ?= asyncio,celery_threads
.PHONY: bench-perf bench-overhead
bench-perf: install ## performance targets: CPU and IO seed runs (>= 5 repeats) with their ratios
	$(BIN)/jobbench bench --workloads cpu --models $(PERF_CPU_MODELS) --repeat $(PERF_REPEAT) $(ARGS)
	$(BIN)/jobbench bench --workloads io --models $(PERF_IO_MODELS) --repeat $(PERF_REPEAT) $(ARGS)

bench-overhead: install ## Celery without the work: enqueue rate, noop throughput, capture cost, memory
	$(BIN)/jobbench overhead $(ARGS)

# Simulated hosts (README "Scaling out"): network namespaces on 10.250.<k>.0/24, one Redis for all, a
# worker per host and broker, one host's link cut mid-run. Needs root and iproute2; elsewhere it
# says why and skips (fails under CI=true). Everything it creates is removed, also on failure.
.PHONY: bench-hosts
bench-hosts: install ## N simulated hosts (needs root): jobs per host, one host cut mid-run, Redis vs RabbitMQ
	$(BIN)/jobbench hosts $(ARGS)

# --- Flower and docker compose (README sections on both) ---
# Compose v2 (`docker compose`); with Debian's v1: make up COMPOSE=docker-compose
COMPOSE ?= docker compose
# Extra `docker compose up` arguments, e.g. make up UP_ARGS="--scale worker-threads=3"
UP_ARGS ?=
# The compose producer writes JOBBENCH_RESULTS_DIR (default ./results) as this user (the bind
# mount must stay yours).
JOBBENCH_UID ?= $(shell id -u)
JOBBENCH_GID ?= $(shell id -g)
JOBBENCH_RESULTS_DIR ?= ./results
# IMAGES=local: the base images and wheelhouse make images-local built from Debian packages (for
# a machine that cannot pull; docs/compose.md), named in docker/local.env. Default: upstream.
IMAGES ?= upstream
ifeq ($(IMAGES),local)
ifeq ($(wildcard docker/local.env),)
$(error IMAGES=local: no docker/local.env; run make images-local first)
endif
include docker/local.env
export PYTHON_IMAGE REDIS_IMAGE RABBITMQ_IMAGE WHEELHOUSE
endif
# Debian packages the browser test and the compose validation use.
BROWSER_DEPS := chromium chromium-driver docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: browser-deps images-local test-docker

flower: install ## Flower on 127.0.0.1:5555 (FLOWER_PORT=N) for the Celery app; auth: FLOWER_BASIC_AUTH=u:p
	$(BIN)/python -m producer.flower --port $(FLOWER_PORT)

up: ## compose: redis, target, a worker per pool, flower, detached (UP_ARGS="--scale worker-threads=3")
	FLOWER_PORT=$(FLOWER_PORT) $(COMPOSE) up -d --build $(UP_ARGS)
	@echo "flower: http://127.0.0.1:$(FLOWER_PORT)/"

down: ## compose: stop and remove every service, the producer too (the Redis volume is kept)
	$(COMPOSE) --profile bench down --remove-orphans

# --no-deps: the producer measures the stack `make up` started, as scaled. A `run` that starts
# its dependencies also scales every one of them back to the file's single replica, removing
# the replicas added with --scale (Compose v2, measured).
bench-compose: ## compose: run the producer (jobbench bench) against the running compose workers
	mkdir -p $(JOBBENCH_RESULTS_DIR)
	$(COMPOSE) --profile bench build producer
	JOBBENCH_UID=$(JOBBENCH_UID) JOBBENCH_GID=$(JOBBENCH_GID) FLOWER_PORT=$(FLOWER_PORT) \
		JOBBENCH_RESULTS_DIR=$(JOBBENCH_RESULTS_DIR) \
		$(COMPOSE) --profile bench run --rm --no-deps producer

images-local: install ## compose: local stand-ins for the upstream images (Debian packages; root)
	PYTHON=$(BIN)/python docker/images-local.sh

# The compose stack under a real engine (tests/test_compose_docker.py): built, scaled, benched,
# faults, Flower in Chromium, RabbitMQ, torn down. Needs an engine (docker/engine.sh start) and,
# without a registry, IMAGES=local after make images-local. Not part of make test.
test-docker: install ## compose: the docker test tier against a real engine (IMAGES=local: no registry)
	$(BIN)/pytest -m docker -p no:cacheprovider $(PYTEST_ARGS) tests/test_compose_docker.py

browser-deps: ## apt-get install chromium chromium-driver docker-compose where missing
	@missing=""; \
	for pkg in $(BROWSER_DEPS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "browser-deps: $(BROWSER_DEPS) already installed"; \
	fi

clean: ## remove the virtualenv and caches (results/ is kept)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
