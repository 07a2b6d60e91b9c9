# ingestd: `make demo` shows the main job, `make test` runs everything CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv demo demo-pg demo-s3 dist docs docs-serve test test-fast test-postgres-system test-postgres-wheel test-s3-moto \
	container-test lint format bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash bench/demo.sh

demo-pg: venv
	$(BIN)/python bench/demo_pg.py

demo-s3: venv
	$(BIN)/python bench/demo_s3.py

test: venv
	$(BIN)/pytest

# The docs site: the reference pages written from the code, then MkDocs, strict (a broken
# link or a page left out of the navigation fails).
docs: venv
	$(BIN)/python tools/reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: venv
	$(BIN)/python tools/reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# The PostgreSQL tests on each server: the system's (Debian's package) and the wheel's (18).
# `make test` runs them on the system's when it is installed, else on the wheel's.
test-postgres-system: venv
	INGESTD_TEST_POSTGRES=system $(BIN)/pytest -q -m postgres

test-postgres-wheel: venv
	INGESTD_TEST_POSTGRES=wheel $(BIN)/pytest -q -m postgres

# The S3 tests against moto's server too (`make test` runs them against SeaweedFS).
test-s3-moto: venv
	INGESTD_TEST_S3=moto $(BIN)/pytest -q -m s3

# The quick loop: in-process tests only (no worker processes, no servers), in seconds.
test-fast: venv
	$(BIN)/pytest -q tests/unit tests/contract -m "not server and not process"

# The image and compose.yaml, run for real with podman (containers/test.sh).
container-test: venv
	bash containers/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict ingestd
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The release build: sdist and wheel, twine's metadata check, then tools/check_dist.py (their
# contents, and the wheel installed in a fresh venv outside the checkout and run).
dist: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*
	$(BIN)/python tools/check_dist.py dist

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-run bench/out containers/wheels dist .pytest_cache .mypy_cache .ruff_cache
