# jobbench: the single entry point. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Options passed through to jobbench, e.g. make bench-celery ARGS="--repeat 5 --cpu-jobs 2000"
ARGS ?=
FLOWER_PORT ?= 5555
PYTEST_ARGS ?=

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

clean: ## remove the virtualenv and caches (results/ is kept)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
