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

# The slow tier: the manual's own commands, perf over independent runs, the simulated hosts and
# the sweeps (minutes together); CI runs it after make test.
.PHONY: test-slow
test-slow: install ## the slow tier: docs commands, perf, hosts, sweeps (not in make test; CI runs it)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

# The fresh-machine check (docs/fresh-machine.md): bench, verify, history and the suite in a network
# namespace with only loopback and an empty HOME. Needs root and iproute2; CI runs it.
.PHONY: test-fresh
test-fresh: install ## bench + verify + history + make test in a loopback-only netns (root)
	tests/fresh_machine.sh

# Fault injection (README "Nothing lost"). `make test` runs these too; this runs only them and writes
# each fault's figures (enqueued, finished, redelivered, lost, recovery s) to FAULTS_REPORT.
FAULTS_REPORT ?= results/faults.jsonl
.PHONY: test-faults
test-faults: install ## fault injection only: worker kills, Redis restart, failing target
	@mkdir -p $(dir $(FAULTS_REPORT)) && rm -f $(FAULTS_REPORT)
	JOBBENCH_FAULTS_REPORT=$(FAULTS_REPORT) $(BIN)/pytest -m faults $(PYTEST_ARGS)
	@cat $(FAULTS_REPORT)

# The chaos soak (docs/faults.md "The chaos soak"): >= 10,000 jobs over the three pools with >= 20
# random faults, a few minutes; not part of `make test`. JOBBENCH_CHAOS_SEED=N replays a schedule.
CHAOS_REPORT ?= results/chaos.json
.PHONY: test-chaos
test-chaos: install ## chaos soak: 10,000 jobs, random kills, Redis restarts, bad target (minutes)
	JOBBENCH_CHAOS_REPORT=$(CHAOS_REPORT) $(BIN)/pytest -m chaos -s $(PYTEST_ARGS)

lint: install ## ruff lint + format check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict on worker shared producer
	$(BIN)/mypy

# The default run repeats each model until the verdicts are known or the budget is spent
# (--repeat auto, docs/operations.md); BENCH_REPEAT=3, or ARGS="--repeat 3", fixes the count.
BENCH_REPEAT ?= auto
bench-celery: install ## the main job: every model (in-process and Celery) on both workloads
	$(BIN)/jobbench bench --repeat $(BENCH_REPEAT) $(ARGS)

RUN ?= results/latest
.PHONY: predict-errors
predict-errors: install ## the cost model's error per model of a finished run (RUN=results/latest)
	$(BIN)/python -m producer.predict $(RUN)

bench-inprocess: install ## in-process models only
	$(BIN)/jobbench bench --models sequential,threading,thread_pool,asyncio,multiprocessing_pool,process_pool,process_pool_map $(ARGS)

# --- performance goals (docs/performance.md) ---
# bench-perf: `jobbench perf`, K independent runs (PERF_RUNS) of the goals' candidate models on
# each seed workload, 5 repeats each; every goal's ratio per run with its 95 % interval and
# verdict, and the run-to-run spread. Run it alone on the machine: figures under load mean little.
PERF_RUNS ?= 3
# Repeats per model of make bench-celery-io (as jobbench perf's own default).
PERF_REPEAT ?= 5
.PHONY: bench-perf bench-overhead calibrate
bench-perf: install ## performance goals over PERF_RUNS independent runs, ratios with intervals
	$(BIN)/jobbench perf --runs $(PERF_RUNS) $(ARGS)

calibrate: install ## harness cost: every in-process model against the bare code a user writes
	$(BIN)/jobbench calibrate $(ARGS)

# bench-celery-io (issue 18): the IO seed with every Celery-on-IO configuration tried beside the
# in-process IO models, each Celery one on Redis and on RabbitMQ (IO_BROKERS; the
# --disable-prefetch model runs on Redis only), PERF_REPEAT repeats. Run it alone on a quiet
# machine. The first run gives the figures and the IO ratio (fetch trace off: it costs nothing);
# the second, with --fetch-trace, each message's fetch path broken down per row.
IO_INPROCESS_MODELS ?= threading,asyncio,asyncio_unbounded
IO_CELERY_MODELS ?= celery_threads,celery_threads_switch_1ms,celery_threads_prefetch8,celery_threads_noprefetch,celery_threads_2x50,celery_solo_asyncio
IO_BROKERS ?= redis,amqp://guest:guest@127.0.0.1:5672//
.PHONY: bench-celery-io
bench-celery-io: install ## IO seed: every Celery-on-IO configuration vs in-process, then fetch-path breakdown
	$(BIN)/jobbench bench --workloads io --models $(IO_INPROCESS_MODELS),$(IO_CELERY_MODELS) \
		--brokers $(IO_BROKERS) --repeat $(PERF_REPEAT) $(ARGS)
	$(BIN)/jobbench bench --workloads io --models $(IO_CELERY_MODELS) \
		--brokers $(IO_BROKERS) --repeat $(PERF_REPEAT) --fetch-trace $(ARGS)

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
	$(BIN)/jobbench flower --port $(FLOWER_PORT)

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
