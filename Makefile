# fm-pipeline: `make run` builds everything on the embedded sample corpus, `make test` runs the tests,
# `make ui` opens the Dagster UI on 127.0.0.1. `make run PROFILE=thorough` also runs the comparisons (every
# adaptation strategy, the thorough compression sweep).
PYTHON ?= python3
VENV ?= .venv
FM_PIPELINE_HOME ?= $(CURDIR)/.fm_pipeline
DAGSTER_HOME ?= $(FM_PIPELINE_HOME)/dagster
UI_PORT ?= 3000
PROFILE ?= default
export FM_PIPELINE_HOME DAGSTER_HOME

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install instance run ui test test-deps lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

instance: install
	mkdir -p "$(DAGSTER_HOME)"
	cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	$(BIN)/dagster instance concurrency set gpu 1 >/dev/null

run: instance
	$(BIN)/python -m fm_pipeline.materialize --profile $(PROFILE)
	@echo
	@echo "Every asset is materialized under $(FM_PIPELINE_HOME)/lake."
	@echo "Open the Dagster UI with:  make ui   (then browse http://127.0.0.1:$(UI_PORT))"

ui: instance
	$(BIN)/dagster dev -h 127.0.0.1 -p $(UI_PORT) -w workspace.yaml

# System tools for tests, installed with apt when missing (as root): docker-compose v1 renders and validates the
# compose file; Debian's chromium is the browser Playwright drives (never `playwright install`).
TEST_TOOLS := docker-compose:docker-compose chromium:/usr/bin/chromium
test-deps:
	@missing=""; for tool in $(TEST_TOOLS); do pkg=$${tool%%:*}; cmd=$${tool#*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "not installed:$$missing (the compose and browser tests will be skipped)"; fi; \
	fi

lint: install
	$(BIN)/ruff check fm_pipeline fm_pipeline_tests benchmarks tools

test: install test-deps lint
	$(BIN)/python -m pytest -n 2 -q

bench: install
	for b in ingest curation langid quality pii dedup; do $(BIN)/python -m benchmarks.$$b || exit 1; done

clean:
	rm -rf $(FM_PIPELINE_HOME)
